/**
 * Runs stages over a state file: one place for order checks, the build
 * lock, signals, timings and "always clean up on failure" (or, with
 * --keep-on-failure, keep the analog and the state for inspection and a
 * rerun of the failed stage: build/cleanup keepBuild, resetForRerun).
 */
import { mkdir, rm } from 'node:fs/promises';
import { resolve } from 'node:path';
import { cleanBuild, keepBuild, resetForRerun, setPhase } from './cleanup.js';
import type { StageContext } from './context.js';
import { BuildError, BuildimageError, ExitCode, InterruptedError, StateError, oneLine } from '../core/errors.js';
import { zoneRoot } from '../core/layout.js';
import { DEFAULT_TIMEOUT_MS, setDefaultTimeout } from '../host/exec.js';
import { BUILD_PROPERTY, Zfs } from '../host/zfs.js';
import { interruptError, interruptedBy, onInterruptSignals, stopOnInterrupt, throwIfInterrupted } from '../core/interrupt.js';
import { acquireLock, lockHeld, readLock } from '../host/lock.js';
import { log } from '../core/log.js';
import { assemble } from './stages/assemble.js';
import { pkgadd } from './stages/pkgadd.js';
import { prepare } from './stages/prepare.js';
import { seal } from './stages/seal.js';
import { allOf, EVENTS_VERSION, frozen, type BuildObserver, type StageEventPayload } from './events.js';
import { checkRecordedHooks, hookObserver, recordHooks } from './hooks.js';
import { checkedOutputs, checkOwned, checkWorkDir } from './owned.js';
import { layoutOf, type StageName, type StateFile } from './state.js';

const STAGE_FNS: Record<StageName, (ctx: StageContext) => Promise<void>> = { prepare, assemble, pkgadd, seal };

export interface PipelineOptions {
  zfs?: Zfs;
  stepTimeoutMs?: number;
  /** Remove the state file after the build is done or cleaned (a `build` with no --state). */
  discardState?: boolean;
  /** On failure keep the analog and the state (recorded: the build's later stages keep too). */
  keepOnFailure?: boolean;
  /** Told before and after each stage and when the build is done (plugins' events); the definition's hooks run besides. */
  observer?: BuildObserver;
}

/**
 * A failure after seal wrote the outputs (an after.seal hook): they are
 * withdrawn, the manifest first, so that no failed build leaves a set that
 * looks whole. Only the paths seal writes (build/owned checkedOutputs).
 */
async function withdrawOutputs(sf: StateFile): Promise<void> {
  if (!sf.state.outputs) return;
  const paths = await checkedOutputs(sf.state);
  const manifest = sf.state.outputs.manifest;
  for (const p of [...paths.filter((x) => x === manifest), ...paths.filter((x) => x !== manifest)]) await rm(p, { force: true });
  log.info(`removed the outputs of build ${sf.state.buildId}: it failed after seal`);
  sf.state.outputs = undefined;
  await sf.save();
}

/**
 * A later stage needs the analog this state recorded, still ours and
 * mounted where recorded: a state file from another machine or a cleaned
 * build must not send the copy or the chroot somewhere else.
 */
async function checkAnalog(sf: StateFile, zfs: Zfs): Promise<void> {
  const a = sf.state.analog;
  const gone = (why: string) =>
    new StateError(`state file ${sf.path}: zone analog ${a?.dataset ?? '(none)'} ${why}`, 'run `buildimage clean` and start again with `buildimage prepare`');
  if (!a) throw gone('was never created');
  if (!(await zfs.exists(a.dataset))) throw gone('no longer exists (cleaned up, or the state file comes from another machine)');
  if ((await zfs.getOne(a.dataset, BUILD_PROPERTY)) !== sf.state.buildId) throw gone(`does not belong to build ${sf.state.buildId}`);
  if (!(await zfs.isMounted(a.dataset))) await zfs.mount(a.dataset);
  if ((await zfs.getOne(a.dataset, 'mountpoint')) !== a.mountpoint) throw gone(`is not mounted at ${a.mountpoint}`);
}

export async function runStages(sf: StateFile, stages: StageName[], opts: PipelineOptions = {}): Promise<void> {
  const zfs = opts.zfs ?? new Zfs();
  const layout = layoutOf(sf.state);
  const ctx: StageContext = { zfs, sf, layout, stepTimeoutMs: opts.stepTimeoutMs ?? DEFAULT_TIMEOUT_MS };
  setDefaultTimeout(ctx.stepTimeoutMs);
  sf.checkCanRun(stages[0]);
  const lockPath = layout.buildLock(sf.state.buildId);
  if (await lockHeld(lockPath)) {
    throw new BuildError(`build ${sf.state.buildId} is already running (pid ${(await readLock(lockPath))?.pid})`);
  }
  await checkWorkDir(layout.workDir, sf.state.buildId);
  if (stages[0] !== 'prepare') {
    await checkAnalog(sf, zfs);
    // A stage tears the chroot down and removes temp files the state names: only the build's own.
    await checkOwned(zfs, sf.state);
    // The state's hooks run as root: only those the build was defined with.
    await checkRecordedHooks(zfs, sf);
  }
  const def = sf.state.definition;
  const observer = allOf([hookObserver(def.hooks, { stepTimeoutMs: ctx.stepTimeoutMs }), opts.observer]);
  const payload = (stage: StageName, when: 'before' | 'after'): StageEventPayload => ({
    version: EVENTS_VERSION,
    buildId: sf.state.buildId,
    stage,
    statePath: resolve(sf.path),
    // The root exists from prepare's end until seal destroyed the analog.
    ...((stage === 'prepare' && when === 'before') || (stage === 'seal' && when === 'after') ? {} : { imageRoot: zoneRoot(layout.zoneMountpoint(sf.state.buildId)) }),
    outputDir: def.outputDir,
  });
  const told = async (what: string, fn: () => Promise<void> | undefined) => {
    try {
      await fn();
    } catch (e) {
      log.warn(`${what}: ${oneLine(e)}`);
    }
  };
  // The build's own dir, 0755 whatever the umask (checkWorkDir refuses a group-writable one).
  if (stages[0] === 'prepare') await mkdir(layout.buildDir(sf.state.buildId), { recursive: true, mode: 0o755 });
  const lock = await acquireLock(lockPath, { purpose: `build ${sf.state.buildId}`, timeoutMs: 1000 });
  const uninstall = onInterruptSignals('stopping and cleaning up');
  if (opts.keepOnFailure) sf.state.keepOnFailure = true;
  let current: StageName | undefined;
  let stageStart = Date.now();
  try {
    if (stages[0] !== 'prepare') await setPhase(zfs, sf.state, 'running');
    for (const stage of stages) {
      current = stage;
      // A signal between two stages: the next one does not start.
      throwIfInterrupted();
      sf.checkCanRun(stage);
      if (sf.isRerun(stage)) {
        log.info(`== ${stage} again (kept after: ${sf.state.failed!.message})`);
        await stopOnInterrupt(resetForRerun(zfs, sf.state, stage));
        sf.state.failed = undefined;
        await sf.save();
      }
      log.info(`== ${stage}`);
      const t0 = Date.now();
      stageStart = t0;
      // The analog as this stage finds it, for a rerun after a kept failure (prepare makes the analog).
      const snap = sf.state.keepOnFailure && stage !== 'prepare' ? layout.stageSnapshot(sf.state.buildId, stage) : undefined;
      if (snap && !(await zfs.exists(snap))) await zfs.snapshot(snap);
      await stopOnInterrupt(observer.stageBefore!(frozen(payload(stage, 'before'))));
      await stopOnInterrupt(STAGE_FNS[stage](ctx));
      // Before any after.prepare hook: what a later stage checks its state's hooks against.
      if (stage === 'prepare') await recordHooks(zfs, sf);
      await stopOnInterrupt(observer.stageAfter!(frozen({ ...payload(stage, 'after'), outcome: 'ok', seconds: (Date.now() - t0) / 1000 })));
      sf.state.timings[stage] = (Date.now() - t0) / 1000;
      sf.state.completed.push(stage);
      await sf.save();
      // Not needed once the stage is done (seal destroyed the analog with it).
      if (snap && (await zfs.exists(snap))) await zfs.destroyOwned(snap).catch((e: unknown) => log.debug(`keeping ${snap}: ${oneLine(e)}`));
    }
    if (sf.state.completed.includes('seal')) {
      const s = sf.state;
      await told('build:done', () =>
        observer.buildDone!(frozen({ version: EVENTS_VERSION, buildId: s.buildId, statePath: resolve(sf.path), ok: true, completed: s.completed, imageUuid: s.manifestUuid ?? s.buildId, outputs: s.outputs, outputDir: def.outputDir })),
      );
    } else {
      // Between discrete stages: alive, though no process holds it.
      await setPhase(zfs, sf.state, 'waiting').catch((e: unknown) => log.warn(`could not mark ${sf.state.analog?.dataset} as waiting for its next stage (\`clean --all\` would take it for dead): ${oneLine(e)}`));
    }
  } catch (err) {
    const signal = interruptedBy();
    const failure = signal ? (interruptError() ?? new InterruptedError(signal)) : err;
    const stage = current ?? stages[0];
    if (current) await told(`stage:after ${stage}`, () => observer.stageAfter!(frozen({ ...payload(stage, 'after'), outcome: 'failed', error: oneLine(failure), seconds: (Date.now() - stageStart) / 1000 })));
    if (stage === 'seal') await withdrawOutputs(sf).catch((e: unknown) => log.error(`could not remove the outputs of the failed build: ${oneLine(e)}`));
    // Kept: a failure, not a stop asked for (SIGINT/SIGTERM/SIGHUP); and only with an analog to look at.
    const keep = sf.state.keepOnFailure && !signal && !!sf.state.analog && (await zfs.exists(sf.state.analog.dataset).catch(() => false));
    sf.state.failed = { stage, message: oneLine(failure), kept: keep };
    await sf.save().catch(() => undefined);
    if (keep) {
      log.error(`${stage} failed: ${oneLine(failure)}; keeping build ${sf.state.buildId} for inspection`);
      try {
        await keepBuild(zfs, sf.state);
      } catch (keepErr) {
        log.error(oneLine(keepErr));
      }
      await sf.save().catch(() => undefined);
      log.warn(`kept: zone analog ${sf.state.analog!.dataset}, its image root ${zoneRoot(sf.state.analog!.mountpoint)}, state ${sf.path}`);
      const code = failure instanceof BuildimageError ? failure.exitCode : ExitCode.BUILD_FAILED;
      throw new BuildimageError(oneLine(failure), { exitCode: code, hint: `kept for inspection; ${sf.keptHint()}`, cause: failure });
    }
    log.error(`${stage} failed: ${oneLine(failure)}; cleaning up`);
    try {
      await cleanBuild(zfs, sf.state);
      sf.state.cleaned = true;
      await sf.save().catch(() => undefined);
    } catch (cleanErr) {
      log.error(`${oneLine(cleanErr)} (run \`buildimage clean --state ${sf.path}\`)`);
    }
    const s = sf.state;
    await told('build:done', () =>
      observer.buildDone!(frozen({ version: EVENTS_VERSION, buildId: s.buildId, statePath: resolve(sf.path), ok: false, completed: s.completed, failedStage: stage, error: oneLine(failure), outputDir: def.outputDir })),
    );
    if (failure instanceof BuildimageError) throw failure;
    throw new BuildError(oneLine(failure), { cause: failure });
  } finally {
    uninstall();
    await lock.release();
    if (sf.state.cleaned || sf.state.completed.includes('seal')) {
      await rm(layout.buildDir(sf.state.buildId), { recursive: true, force: true }).catch(() => undefined);
    }
    if (opts.discardState && (sf.state.cleaned || sf.state.completed.includes('seal'))) {
      await rm(sf.path, { force: true });
    }
  }
}
