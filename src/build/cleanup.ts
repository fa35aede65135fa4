/**
 * Undoing a build: unmount whatever is mounted below the analog, destroy the
 * analog (only if it carries our property and this build's id), remove temp
 * outputs and the build's directory; all of it only once every resource the
 * state names is found to be the build's own (build/owned). `cleanAll` does the same for every
 * build under a dataset root whose process is gone, plus stale `-partial`
 * image datasets; builds kept on purpose (waiting for their next discrete
 * stage, or kept after a failure) only when asked.
 *
 * Keeping a failed build (`keepBuild`) releases what must not stay (the
 * chroot's host mounts, seal's temp files) and keeps the analog and the
 * build dir; a rerun of the failed stage (`resetForRerun`) does the same and
 * rolls the analog back to the snapshot taken before that stage, so the
 * stage starts again from exactly what it first found.
 */
import { lstat, readdir, readFile, rm, stat } from 'node:fs/promises';
import { BuildError, StateError, oneLine } from '../core/errors.js';
import type { Layout } from '../core/layout.js';
import { mountsUnder, teardownChroot, unmount } from '../host/chroot.js';
import { BUILD_PROPERTY, type Zfs } from '../host/zfs.js';
import { lockHeld } from '../host/lock.js';
import { log } from '../core/log.js';
import { checkOwned, checkWorkDir, isKeptPhase, PHASE_PROPERTY, type Owned, type Phase } from './owned.js';
import { layoutOf, type BuildState, type StageName } from './state.js';

export async function destroyAnalog(zfs: Zfs, state: BuildState): Promise<boolean> {
  const analog = state.analog;
  if (!analog) return false;
  if (!(await zfs.exists(analog.dataset))) return false;
  const owner = await zfs.getOne(analog.dataset, BUILD_PROPERTY);
  if (owner !== state.buildId) {
    throw new BuildError(`refusing to destroy ${analog.dataset}: it does not belong to build ${state.buildId}`);
  }
  // Mounts inside keep the dataset busy. Where it is mounted is ZFS's word, not the state file's.
  const mountpoint = await zfs.getOne(analog.dataset, 'mountpoint');
  for (const m of await mountsUnder(mountpoint)) if (m !== mountpoint) await unmount(m);
  await zfs.destroyOwned(analog.dataset);
  log.info(`destroyed zone analog ${analog.dataset}`);
  return true;
}

/** Our receive journal names this `-partial`: ours even before it carries our property. */
async function journaledPartial(layout: Layout, uuid: string, ds: string): Promise<boolean> {
  return (await readFile(layout.receiveJournal(uuid), 'utf8').catch(() => '')).trim() === ds;
}

export interface CleanReport {
  destroyed: string[];
  unmounted: string[];
  removed: string[];
  /** Running right now. */
  skipped: string[];
  /** `--all`: kept on purpose (waiting for a discrete stage, or kept after a failure), left without --include-kept. */
  kept: string[];
}

export function emptyReport(): CleanReport {
  return { destroyed: [], unmounted: [], removed: [], skipped: [], kept: [] };
}

type Attempt = (what: string, fn: () => Promise<void>) => Promise<void>;

/** Runs every step even after one fails; `done()` throws all the failures as one line. */
function attempts(): { attempt: Attempt; done: (what: string) => void } {
  const errors: string[] = [];
  return {
    attempt: async (what, fn) => {
      try {
        await fn();
      } catch (err) {
        errors.push(`${what}: ${oneLine(err)}`);
      }
    },
    done: (what) => {
      if (errors.length) throw new BuildError(`${what}: ${errors.join('; ')}`);
    },
  };
}

/** What never outlives a stage: the chroot's mounts of the host below the analog, and seal's temp files. */
async function release(state: BuildState, owned: Owned, attempt: Attempt, report: CleanReport): Promise<void> {
  if (state.analog) {
    const mountpoint = owned.analog?.mountpoint ?? state.analog.mountpoint;
    await attempt('unmount', async () => {
      const before = await mountsUnder(mountpoint);
      try {
        await teardownChroot(owned.root, owned.chroot);
      } finally {
        state.chroot = owned.chroot;
      }
      report.unmounted.push(...before.filter((m) => m !== mountpoint));
    });
  }
  for (const f of owned.tempFiles) {
    await attempt(`remove ${f}`, async () => {
      // Not followed: a link here is removed, never what it points at.
      if (!(await lstat(f).catch(() => undefined))) return;
      await rm(f, { force: true });
      report.removed.push(f);
    });
  }
  state.tempFiles = [];
}

/** Marks the analog for `clean --all` (build/owned PHASE_PROPERTY). */
export async function setPhase(zfs: Zfs, state: BuildState, phase: Phase): Promise<void> {
  const a = state.analog;
  if (a && (await zfs.exists(a.dataset))) await zfs.set(a.dataset, { [PHASE_PROPERTY]: phase });
}

/**
 * Keeps a failed build for inspection: its host mounts and temp files go,
 * the analog (marked kept) and the build dir stay.
 */
export async function keepBuild(zfs: Zfs, state: BuildState): Promise<CleanReport> {
  const owned = await checkOwned(zfs, state);
  const report = emptyReport();
  const { attempt, done } = attempts();
  await release(state, owned, attempt, report);
  if (owned.analog) await attempt('mark kept', () => setPhase(zfs, state, 'kept'));
  done('keeping the build incomplete');
  return report;
}

/**
 * Before a kept stage runs again: what the failed run left goes (chroot
 * mounts, seal's temp files and, by the rollback, seal's @final, pkgadd's
 * packages, assemble's partial copy) and the analog is as that stage first
 * found it.
 */
export async function resetForRerun(zfs: Zfs, state: BuildState, stage: StageName): Promise<void> {
  const owned = await checkOwned(zfs, state);
  const snap = layoutOf(state).stageSnapshot(state.buildId, stage);
  if (!owned.analog || !(await zfs.exists(snap))) {
    throw new StateError(`cannot run ${stage} again for build ${state.buildId}: ${owned.analog ? `no snapshot ${snap} to start from` : 'its zone analog is gone'}`, 'run `buildimage clean` and start again');
  }
  const { attempt, done } = attempts();
  await release(state, owned, attempt, emptyReport());
  done(`cannot run ${stage} again: what the failed run left is still there`);
  await zfs.rollback(snap);
  log.info(`rolled ${owned.analog.dataset} back to ${snap}, as ${stage} first found it`);
}

/** Cleans one build from its state. Safe to run twice. Refuses, doing nothing, a state that names what is not the build's. */
export async function cleanBuild(zfs: Zfs, state: BuildState, report = emptyReport()): Promise<CleanReport> {
  const owned = await checkOwned(zfs, state);
  const { attempt, done } = attempts();
  await release(state, owned, attempt, report);
  if (state.analog) {
    await attempt('destroy analog', async () => {
      if (owned.analog && (await destroyAnalog(zfs, state))) report.destroyed.push(owned.analog.dataset);
    });
  }
  await attempt('remove build dir', async () => {
    const dir = owned.buildDir;
    // The analog's mountpoint lives here; never remove through a live mount.
    if ((await mountsUnder(dir)).length) throw new BuildError(`${dir} still has mounts`);
    if (!(await stat(dir).catch(() => undefined))) return;
    await rm(dir, { recursive: true, force: true });
    report.removed.push(dir);
  });
  done('cleanup incomplete');
  return report;
}

/**
 * Cleans every leftover under `datasetRoot` and `workDir` that no live
 * buildimage process holds: zone analogs, `-partial` images, build dirs.
 * A build kept on purpose (waiting for its next discrete stage, or kept
 * after a failure) is live too, unless `includeKept`.
 */
export async function cleanAll(zfs: Zfs, layout: Layout, opts: { includeKept?: boolean } = {}): Promise<CleanReport> {
  await checkWorkDir(layout.workDir);
  const report = emptyReport();
  /** Build ids whose analog stays: their build dirs (mountpoint, reports) stay too. */
  const staying = new Set<string>();
  const children = await zfs.listChildren(layout.datasetRoot);
  for (const ds of children) {
    let role = await zfs.owner(ds);
    const partialOf = layout.partialUuid(ds);
    if (!role && partialOf && (await journaledPartial(layout, partialOf, ds))) {
      // Killed between receive and marking it: our journal says it is ours.
      await zfs.markOwned(ds, 'image');
      role = 'image';
    }
    if (!role) continue;
    if (role === 'analog') {
      const buildId = await zfs.getOne(ds, BUILD_PROPERTY);
      if (await lockHeld(layout.buildLock(buildId))) {
        report.skipped.push(ds);
        staying.add(buildId);
        continue;
      }
      if (!opts.includeKept && isKeptPhase(await zfs.getOne(ds, PHASE_PROPERTY))) {
        report.kept.push(ds);
        staying.add(buildId);
        continue;
      }
      const mountpoint = await zfs.getOne(ds, 'mountpoint');
      for (const m of await mountsUnder(mountpoint)) {
        if (m === mountpoint) continue;
        await unmount(m);
        report.unmounted.push(m);
      }
      await zfs.destroyOwned(ds);
      report.destroyed.push(ds);
    } else if (role === 'image' && partialOf) {
      if (await lockHeld(layout.importLock(partialOf))) {
        report.skipped.push(ds);
        continue;
      }
      await zfs.destroyOwned(ds);
      report.destroyed.push(ds);
    }
  }
  for (const id of await readdir(layout.buildsDir).catch(() => [] as string[])) {
    const dir = layout.buildDir(id);
    if (staying.has(id) || (await lockHeld(layout.buildLock(id)))) continue;
    if ((await mountsUnder(dir)).length) {
      report.skipped.push(dir);
      continue;
    }
    await rm(dir, { recursive: true, force: true });
    report.removed.push(dir);
  }
  return report;
}
