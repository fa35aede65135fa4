/**
 * Undoing a build: unmount whatever is mounted below the analog, destroy the
 * analog (only if it carries our property and this build's id), remove temp
 * outputs and the build's directory; all of it only once every resource the
 * state names is found to be the build's own (build/owned). `cleanAll` does the same for every
 * build under a dataset root whose process is gone, plus stale `-partial`
 * image datasets.
 */
import { lstat, readdir, readFile, rm, stat } from 'node:fs/promises';
import { BuildError, oneLine } from '../core/errors.js';
import type { Layout } from '../core/layout.js';
import { mountsUnder, teardownChroot, unmount } from '../host/chroot.js';
import { BUILD_PROPERTY, type Zfs } from '../host/zfs.js';
import { lockHeld } from '../host/lock.js';
import { log } from '../core/log.js';
import { checkOwned, checkWorkDir } from './owned.js';
import type { BuildState } from './state.js';

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
  skipped: string[];
}

export function emptyReport(): CleanReport {
  return { destroyed: [], unmounted: [], removed: [], skipped: [] };
}

/** Cleans one build from its state. Safe to run twice. Refuses, doing nothing, a state that names what is not the build's. */
export async function cleanBuild(zfs: Zfs, state: BuildState, report = emptyReport()): Promise<CleanReport> {
  const owned = await checkOwned(zfs, state);
  const errors: string[] = [];
  const attempt = async (what: string, fn: () => Promise<void>) => {
    try {
      await fn();
    } catch (err) {
      errors.push(`${what}: ${oneLine(err)}`);
    }
  };
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
    await attempt('destroy analog', async () => {
      if (owned.analog && (await destroyAnalog(zfs, state))) report.destroyed.push(owned.analog.dataset);
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
  await attempt('remove build dir', async () => {
    const dir = owned.buildDir;
    // The analog's mountpoint lives here; never remove through a live mount.
    if ((await mountsUnder(dir)).length) throw new BuildError(`${dir} still has mounts`);
    if (!(await stat(dir).catch(() => undefined))) return;
    await rm(dir, { recursive: true, force: true });
    report.removed.push(dir);
  });
  if (errors.length) throw new BuildError(`cleanup incomplete: ${errors.join('; ')}`);
  return report;
}

/**
 * Cleans every leftover under `datasetRoot` and `workDir` that no live
 * buildimage process holds: zone analogs, `-partial` images, build dirs.
 */
export async function cleanAll(zfs: Zfs, layout: Layout): Promise<CleanReport> {
  await checkWorkDir(layout.workDir);
  const report = emptyReport();
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
    if (await lockHeld(layout.buildLock(id))) continue;
    if ((await mountsUnder(dir)).length) {
      report.skipped.push(dir);
      continue;
    }
    await rm(dir, { recursive: true, force: true });
    report.removed.push(dir);
  }
  return report;
}
