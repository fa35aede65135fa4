/**
 * prepare: import the base image (and its origin chain) and create the zone
 * analog, a clone of the base's @final mounted at this build's own
 * mountpoint.
 */
import type { StageContext } from '../context.js';
import { BuildError } from '../../core/errors.js';
import { ensureDir } from '../../core/files.js';
import { BUILD_PROPERTY, OWNER_PROPERTY } from '../../host/zfs.js';
import { openSource } from '../../base/open.js';
import type { InstallResult } from '../../base/install.js';
import { installForUse } from '../../base/cache.js';
import { defaultImgadmDir } from '../../base/known.js';
import { log } from '../../core/log.js';
import { checkImageRoot } from '../../host/rootfs.js';
import { hostDirsToMount } from '../../host/chroot.js';

export async function prepare(ctx: StageContext): Promise<void> {
  const { zfs, sf, layout } = ctx;
  const def = sf.state.definition;
  if (!(await zfs.exists(def.datasetRoot))) {
    throw new BuildError(`dataset root ${def.datasetRoot} does not exist`, { hint: 'create it, or pass --dataset-root' });
  }
  // The source is opened only if the base chain is not installed with known manifests: a cached base needs no network.
  const source = () => openSource(def.source, def.channel);
  // Held until the analog is cloned from it (a clone keeps it from then on): prune (base/cache) cannot take it meanwhile.
  const by = { build: sf.state.buildId, image: `${def.manifest.name}@${def.manifest.version}` };
  const { base, hold } = await installForUse({ zfs, layout, source, imgadmDir: defaultImgadmDir() }, def.imageUuid, by);
  try {
    await createAnalog(ctx, base);
  } finally {
    await hold.release();
  }
  // Before anything is written or mounted: a link at root/ (or root/etc ...) would aim the build at the host.
  await checkImageRoot(layout.zoneMountpoint(sf.state.buildId), await hostDirsToMount()).catch((err: Error) => {
    throw new BuildError(`base image ${def.imageUuid}: ${err.message}`, { cause: err });
  });
}

async function createAnalog(ctx: StageContext, base: InstallResult): Promise<void> {
  const { zfs, sf, layout } = ctx;
  sf.state.base = {
    uuid: base.manifest.uuid,
    name: base.manifest.name,
    version: base.manifest.version,
    dataset: base.dataset,
    imported: base.imported,
    manifest: base.manifest,
  };

  const analog = layout.analogDataset(sf.state.buildId);
  const mountpoint = layout.zoneMountpoint(sf.state.buildId);
  // Recorded before it exists: a kill right after the clone still leaves a trail for clean.
  sf.state.analog = { dataset: analog, mountpoint };
  await sf.save();
  await ensureDir(mountpoint, { what: 'zone analog mountpoint', flag: '--work-dir' });
  log.info(`creating zone analog ${analog} from ${base.dataset}@final at ${mountpoint}`);
  await zfs.clone(`${base.dataset}@final`, analog, {
    mountpoint,
    // Mounted on the host under the work dir: the image's device nodes and setuid files must not work there.
    devices: 'off',
    setuid: 'off',
    [OWNER_PROPERTY]: 'analog',
    [BUILD_PROPERTY]: sf.state.buildId,
  });
  if (!(await zfs.isMounted(analog))) await zfs.mount(analog);
}
