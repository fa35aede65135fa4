/**
 * The library entry points the commands call: start a build (all stages or
 * prepare only), continue one stage from a state file, clean. They return
 * plain results that the commands render as text or --json.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { cleanAll, cleanBuild, emptyReport, type CleanReport } from './cleanup.js';
import { StateError, BuildError } from '../core/errors.js';
import { ensureDir } from '../core/files.js';
import { Layout } from '../core/layout.js';
import { Zfs } from '../host/zfs.js';
import { interruptedBy } from '../core/interrupt.js';
import { lockHeld, tryLock } from '../host/lock.js';
import { log, setLogBuildId } from '../core/log.js';
import { makeWorkDir } from './owned.js';
import { checkLock, pkgnameOf } from '../pkgsrc/lock.js';
import type { PackageCacheStats } from '../pkgsrc/mirror.js';
import { writeLockfile } from '../settings/lockfile.js';
import type { BuildObserver } from './events.js';
import { runStages } from './pipeline.js';
import { layoutOf, newState, StateFile, stateLockPath, type BuildDefinition, type BuildState, type StageName } from './state.js';

export interface BuildResult {
  ok: true;
  buildId: string;
  stateFile?: string;
  completed: StageName[];
  base?: { uuid: string; name: string; version: string; imported: string[] };
  analog?: { dataset: string; mountpoint: string };
  image?: { uuid: string; outputs: NonNullable<BuildState['outputs']> };
  packages?: number;
  /** What the package cache did in pkgadd. */
  packageCache?: PackageCacheStats;
  /** --write-lock: the lockfile written. */
  lockfile?: string;
  timings: Record<string, number>;
}

export function resultOf(sf: StateFile, keepStatePath: boolean): BuildResult {
  const s = sf.state;
  const done = s.completed.includes('seal');
  return {
    ok: true,
    buildId: s.buildId,
    ...(keepStatePath ? { stateFile: resolve(sf.path) } : {}),
    completed: s.completed,
    ...(s.base ? { base: { uuid: s.base.uuid, name: s.base.name, version: s.base.version, imported: s.base.imported } } : {}),
    ...(s.analog && !done ? { analog: s.analog } : {}),
    ...(done && s.outputs ? { image: { uuid: s.manifestUuid ?? s.buildId, outputs: s.outputs } } : {}),
    ...(s.packagesInstalled ? { packages: s.packagesInstalled.length } : {}),
    ...(s.packageCache ? { packageCache: s.packageCache } : {}),
    timings: s.timings,
  };
}

/**
 * A new state file must not bury a build that still holds resources. A
 * build whose process is gone (killed) is cleaned up first; a running one
 * is refused.
 */
async function checkStateFree(path: string, zfs: Zfs): Promise<void> {
  if (!(await stat(path).catch(() => undefined))) return;
  let old: StateFile;
  try {
    old = await StateFile.load(path);
  } catch {
    throw new StateError(`${path} exists and is not a usable state file`, 'remove it, or pass another --state');
  }
  const s = old.state;
  if (s.cleaned || s.completed.includes('seal')) return;
  if (await lockHeld(layoutOf(s).buildLock(s.buildId))) {
    throw new StateError(`${path} holds build ${s.buildId}, which is running right now`, 'wait for it, or pass another --state');
  }
  // Kept on purpose: only `clean` removes it, never a new build on the same state file.
  if (s.failed?.kept) {
    throw new StateError(`${path} holds build ${s.buildId}, kept for inspection after ${s.failed.stage} failed`, `${old.keptHint()}; or pass another --state`);
  }
  log.warn(`${path} holds unfinished build ${s.buildId} whose process is gone; cleaning it up first`);
  await cleanBuild(zfs, s);
  s.cleaned = true;
  await old.save();
}

/**
 * Runs `fn` holding the state file's lock: a second process that would
 * write the same state file (two `prepare --state same.json`) is refused
 * before it creates anything, rather than orphaning the first one's analog.
 */
async function withStateLock<T>(statePath: string, fn: () => Promise<T>): Promise<T> {
  const got = await tryLock(stateLockPath(statePath), `state file ${statePath}`);
  if (!('release' in got)) {
    const h = got.holder;
    throw new StateError(`state file ${statePath} is in use by pid ${h?.pid ?? '(unknown)'}${h && h.host !== hostname() ? ` on ${h.host}` : ''}`, 'wait for it to finish, or pass another --state');
  }
  try {
    return await fn();
  } finally {
    await got.release();
  }
}

export interface FailedStage {
  stage: string;
  /** Stopped by SIGINT/SIGTERM rather than failed. */
  interrupted: boolean;
  /** Until the failure was reported, cleanup included. */
  seconds: number;
}

/** Called once a run ends, on failure too: the commands print the timing table (with the package cache's figures). */
export type TimingsHook = (timings: Record<string, number>, failed?: FailedStage, packageCache?: PackageCacheStats) => void;

export interface RunOptions {
  stepTimeoutMs?: number;
  zfs?: Zfs;
  onTimings?: TimingsHook;
  /** --keep-on-failure: a failed stage leaves the analog and the state for inspection and a rerun. */
  keepOnFailure?: boolean;
  /** Told about every stage and the build's end (the commands' oclif events for plugins). */
  observer?: BuildObserver;
}

/** Runs stages and reports their timings either way. */
async function runTimed(
  sf: StateFile,
  stages: StageName[],
  opts: RunOptions & { discardState?: boolean },
): Promise<void> {
  const t0 = Date.now();
  const before = new Set(sf.state.completed);
  try {
    await runStages(sf, stages, { zfs: opts.zfs, stepTimeoutMs: opts.stepTimeoutMs, discardState: opts.discardState, keepOnFailure: opts.keepOnFailure, observer: opts.observer });
  } catch (err) {
    // Only a stage that ran and failed has a time; a refused one (out of order) has none.
    if (sf.state.failed) {
      const okSecs = sf.state.completed.filter((s) => !before.has(s)).reduce((a, s) => a + (sf.state.timings[s] ?? 0), 0);
      const failed = { stage: sf.state.failed.stage, interrupted: !!interruptedBy(), seconds: (Date.now() - t0) / 1000 - okSecs };
      opts.onTimings?.(sf.state.timings, failed, sf.state.packageCache);
    }
    throw err;
  }
  opts.onTimings?.(sf.state.timings, undefined, sf.state.packageCache);
}

export async function startBuild(
  def: BuildDefinition,
  opts: RunOptions & { statePath?: string; stages: StageName[]; writeLock?: string },
): Promise<BuildResult> {
  const buildId = randomUUID();
  setLogBuildId(buildId);
  await makeWorkDir(def.workDir);
  const statePath = opts.statePath ?? new Layout(def.datasetRoot, def.workDir).defaultStatePath(buildId);
  // The directories a user named, made (or refused, in one line) before anything else is: not after three stages.
  await ensureDir(def.outputDir, { what: 'output directory', flag: '--output-dir' });
  await ensureDir(dirname(statePath), opts.statePath ? { what: "state file's directory", flag: '--state' } : { what: 'work directory', flag: '--work-dir' });
  if (opts.writeLock) await ensureDir(dirname(opts.writeLock), { what: "lockfile's directory", flag: '--lock-file' });
  return withStateLock(statePath, async () => {
    await checkStateFree(statePath, opts.zfs ?? new Zfs());
    const sf = new StateFile(statePath, newState(def, buildId));
    await sf.save();
    await runTimed(sf, opts.stages, { ...opts, discardState: !opts.statePath });
    if (opts.writeLock && sf.state.packagesResolved) {
      await writeLockfile(opts.writeLock, sf.state.packagesResolved);
      log.info(`wrote the package lock (${sf.state.packagesResolved.packages.length} packages) to ${opts.writeLock}`);
      return { ...resultOf(sf, !!opts.statePath), lockfile: opts.writeLock };
    }
    return resultOf(sf, !!opts.statePath);
  });
}

export interface LockResult {
  ok: true;
  lockfile: string;
  buildId: string;
  /** name-version of every locked package. */
  packages: string[];
}

/**
 * `buildimage lock`: the versions a build's pkgadd resolved, from its state
 * file (untrusted: checked as a lockfile is), written to the lockfile the
 * command line names (never a path from the state file).
 */
export async function writeLockFromState(statePath: string, lockfile: string): Promise<LockResult> {
  const sf = await StateFile.load(statePath);
  const s = sf.state;
  if (!s.completed.includes('pkgadd') || !s.packagesResolved) {
    throw new StateError(`build ${s.buildId} has not run pkgadd: no resolved package versions to lock`, `run \`buildimage pkgadd --state ${statePath}\` first`);
  }
  const lock = checkLock(s.packagesResolved, `the package lock in state file ${statePath}`);
  await writeLockfile(lockfile, lock);
  return { ok: true, lockfile, buildId: s.buildId, packages: lock.packages.map(pkgnameOf).sort() };
}

export async function continueBuild(
  statePath: string,
  stage: StageName,
  opts: RunOptions = {},
): Promise<BuildResult> {
  setLogBuildId((await StateFile.load(statePath)).state.buildId);
  return withStateLock(statePath, async () => {
    const sf = await StateFile.load(statePath);
    await runTimed(sf, [stage], opts);
    return resultOf(sf, true);
  });
}

export interface CleanResult extends CleanReport {
  ok: true;
}

/** `missingOk`: no state file means nothing to clean (a run that failed before prepare). */
export async function cleanFromState(statePath: string, zfs = new Zfs(), opts: { missingOk?: boolean } = {}): Promise<CleanResult> {
  if (opts.missingOk && !(await stat(statePath).catch(() => undefined))) return { ok: true, ...emptyReport() };
  setLogBuildId((await StateFile.load(statePath)).state.buildId);
  return withStateLock(statePath, async () => {
    const sf = await StateFile.load(statePath);
    const s = sf.state;
    if (await lockHeld(layoutOf(s).buildLock(s.buildId))) {
      throw new BuildError(`build ${s.buildId} is running right now; not cleaning it`);
    }
    const report = await cleanBuild(zfs, s);
    s.cleaned = true;
    await sf.save();
    return { ok: true as const, ...report };
  });
}

/** `includeKept`: also builds waiting for their next discrete stage and builds kept after a failure. */
export async function cleanEverything(datasetRoot: string, workDir: string, zfs = new Zfs(), opts: { includeKept?: boolean } = {}): Promise<CleanResult> {
  if (!(await zfs.exists(datasetRoot))) throw new BuildError(`dataset root ${datasetRoot} does not exist`);
  return { ok: true, ...(await cleanAll(zfs, new Layout(datasetRoot, workDir), opts)) };
}

