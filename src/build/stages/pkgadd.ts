/**
 * pkgadd: pkgsrc work in a chroot of the image root, with the host's
 * platform dirs mounted read-only; always unmounted, on failure too. Then
 * the cruft a service image must not carry: /var/db/pkgin and the zone's
 * config/ directory. Every build records the versions it resolved
 * (state.packagesResolved, a lock); a --locked build installs the lock's
 * versions instead of resolving (pkgsrc/lock), after checking that the
 * repository still has each of them. pkg_add and pkgin fetch through the
 * package cache (pkgsrc/mirror) unless it is off (--package-cache-size 0).
 * Last in the chroot, the definition's scripts (`--run`, build/scripts).
 */
import { rm } from 'node:fs/promises';
import { zoneConfig } from '../../core/layout.js';
import type { StageContext } from '../context.js';
import { setupChroot, teardownChroot } from '../../host/chroot.js';
import { checkImageRoot, removeInRoot } from '../../host/rootfs.js';
import { log } from '../../core/log.js';
import { Pkgsrc, auditJunit, chrootEnv, chrootProxyEnv } from '../../pkgsrc/tools.js';
import { offerPackageCache, type PackageCacheOffer } from '../../pkgsrc/mirror.js';
import { writeAtomic } from '../../core/files.js';
import { BuildError } from '../../core/errors.js';
import { runScripts } from '../scripts.js';
import {
  LOCKFILE_VERSION,
  checkLock,
  goneFromRepository,
  installSteps,
  lockDifferences,
  pkgnameOf,
  recordedPath,
  resolvedLock,
  type PackageLock,
} from '../../pkgsrc/lock.js';

/** `pkg_add -U NAME-VERSION` of every locked package, dependencies first, once the repository is known to have them all. */
async function installLocked(pkgsrc: Pkgsrc, lock: PackageLock, repository: string | undefined): Promise<void> {
  if (lock.repository && repository !== lock.repository) {
    log.warn(`the lock was made with packages from ${lock.repository}; this image's pkg_add uses ${repository ?? '(no PKG_PATH)'}`);
  }
  const all = lock.packages.map(pkgnameOf);
  if (!all.length) return;
  // Looked up as pkg_add will, changing nothing: a version gone fails the build before the image changes.
  const gone = goneFromRepository(lock, await pkgsrc.pkgAddDryRun(all));
  if (gone.length) {
    throw new BuildError(`locked package version${gone.length === 1 ? ' is' : 's are'} gone from the repository${repository ? ` ${repository}` : ''}: ${gone.join(', ')}`, {
      hint: 'put them back in the repository, or build without --locked and write a new lock with --write-lock',
    });
  }
  for (const step of installSteps(lock)) await pkgsrc.pkgAdd(step.pkgnames, { automatic: step.automatic });
}

export async function pkgadd(ctx: StageContext): Promise<void> {
  const { sf } = ctx;
  const def = sf.state.definition;
  const mountpoint = sf.state.analog!.mountpoint;
  // Before the host's dirs are mounted in it (a stage may run in a process of its own).
  const root = await checkImageRoot(mountpoint);
  const env = chrootEnv(await chrootProxyEnv());
  const pkgsrc = new Pkgsrc(root, env, ctx.stepTimeoutMs);
  const reports = ctx.layout.reports(sf.state.buildId);
  let offer: PackageCacheOffer | undefined;

  try {
    await setupChroot(root, sf.state.chroot, () => sf.save());
    await sf.save();
    // From the state file: its names are checked as a lockfile's before they reach pkg_add.
    const lock = def.packageLock && checkLock(def.packageLock, 'the package lock in the state file');
    const changes = def.upgrade || def.packages.length > 0 || !!lock;
    const before = changes ? (await pkgsrc.installed()).map((p) => p.name) : [];
    const pkgPath = changes ? await pkgsrc.configVar('PKG_PATH') : undefined;
    const repository = pkgPath && recordedPath(pkgPath);
    if (changes) {
      const cache = ctx.layout;
      offer = await offerPackageCache({ root, dir: cache.packageCacheDir, lockPath: cache.packageCacheLock, maxBytes: def.packageCacheSize ?? 0, pkgPath, chrootEnv: env });
    }
    // Only what fetches packages goes through the cache; every question about the image asks it as it is.
    const fetching = offer ? pkgsrc.with(offer.env) : pkgsrc;
    if (lock) {
      await installLocked(fetching, lock, repository);
    } else {
      if (def.upgrade) {
        await fetching.pkginUpdate();
        await fetching.pkginFullUpgrade();
      }
      if (def.packages.length) await fetching.pkgAdd(def.packages);
    }
    if (offer) {
      const o = offer;
      offer = undefined;
      sf.state.packageCache = await o.finish();
      const c = sf.state.packageCache;
      log.info(`package cache: ${c.hits} package${c.hits === 1 ? '' : 's'} from the cache, ${c.misses} downloaded${c.dropped ? `, ${c.dropped} bad cached file(s) dropped` : ''}${c.evicted ? `, ${c.evicted} evicted` : ''}`);
    }
    const installed = await pkgsrc.installed();
    sf.state.packagesInstalled = installed;
    log.info(`${installed.length} packages installed in the image`);
    const after = installed.map((p) => p.name);
    if (lock) {
      const diffs = lockDifferences(lock, before, after);
      if (diffs.length) throw new BuildError(`the image's packages differ from the lock: ${diffs.join(', ')}`, { hint: 'the repository may have changed the packages behind the locked versions; build without --locked and write a new lock' });
    }
    sf.state.packagesResolved = changes
      ? resolvedLock({
          before,
          after,
          user: await pkgsrc.userInstalled(),
          requested: def.packages,
          depends: await pkgsrc.dependsOfInstalled(),
          repository,
          origin: def.imageUuid,
          upgrade: def.upgrade,
        })
      : { lockfileVersion: LOCKFILE_VERSION, origin: def.imageUuid, upgrade: false, requested: [], packages: [] };
    await writeAtomic(reports.packages, JSON.stringify({ packages: installed }, null, 2) + '\n');
    if (def.audit) {
      const audit = await pkgsrc.audit();
      await writeAtomic(reports.audit, audit);
      await writeAtomic(reports.auditJunit, auditJunit(audit, `${def.manifest.name}-${def.manifest.version}`));
    }
    // The definition's scripts, last, in the chroot as mounted (build/scripts).
    if (def.scripts?.length) await runScripts(root, def.scripts, ctx.stepTimeoutMs);
  } finally {
    if (offer) sf.state.packageCache = await offer.finish().catch(() => undefined);
    await teardownChroot(root, sf.state.chroot);
    await sf.save();
  }
  // After unmounting: nothing of the host is below root any more.
  if (await removeInRoot(root, 'var/db/pkgin')) log.info('removed /var/db/pkgin');
  // rm removes a link here, never what it points to.
  await rm(zoneConfig(mountpoint), { recursive: true, force: true });
}
