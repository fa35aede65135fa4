/**
 * pkgadd: pkgsrc work in a chroot of the image root, with the host's
 * platform dirs mounted read-only; always unmounted, on failure too. Then
 * the cruft a service image must not carry: /var/db/pkgin and the zone's
 * config/ directory.
 */
import { rm } from 'node:fs/promises';
import { zoneConfig } from '../../core/layout.js';
import type { StageContext } from '../context.js';
import { setupChroot, teardownChroot } from '../../host/chroot.js';
import { checkImageRoot, removeInRoot } from '../../host/rootfs.js';
import { log } from '../../core/log.js';
import { Pkgsrc, auditJunit, chrootEnv, chrootProxyEnv } from '../../pkgsrc/tools.js';
import { writeAtomic } from '../../core/files.js';

export async function pkgadd(ctx: StageContext): Promise<void> {
  const { sf } = ctx;
  const def = sf.state.definition;
  const mountpoint = sf.state.analog!.mountpoint;
  // Before the host's dirs are mounted in it (a stage may run in a process of its own).
  const root = await checkImageRoot(mountpoint);
  const env = chrootEnv(await chrootProxyEnv());
  const pkgsrc = new Pkgsrc(root, env, ctx.stepTimeoutMs);
  const reports = ctx.layout.reports(sf.state.buildId);

  try {
    await setupChroot(root, sf.state.chroot, () => sf.save());
    await sf.save();
    if (def.upgrade) {
      await pkgsrc.pkginUpdate();
      await pkgsrc.pkginFullUpgrade();
    }
    if (def.packages.length) await pkgsrc.pkgAdd(def.packages);
    const installed = await pkgsrc.installed();
    sf.state.packagesInstalled = installed;
    log.info(`${installed.length} packages installed in the image`);
    await writeAtomic(reports.packages, JSON.stringify({ packages: installed }, null, 2) + '\n');
    if (def.audit) {
      const audit = await pkgsrc.audit();
      await writeAtomic(reports.audit, audit);
      await writeAtomic(reports.auditJunit, auditJunit(audit, `${def.manifest.name}-${def.manifest.version}`));
    }
  } finally {
    await teardownChroot(root, sf.state.chroot);
    await sf.save();
  }
  // After unmounting: nothing of the host is below root any more.
  if (await removeInRoot(root, 'var/db/pkgin')) log.info('removed /var/db/pkgin');
  // rm removes a link here, never what it points to.
  await rm(zoneConfig(mountpoint), { recursive: true, force: true });
}
