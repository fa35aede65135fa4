/**
 * prepare: import the base image (and its origin chain) and create the zone
 * analog, a clone of the base's @final mounted at this build's own
 * mountpoint.
 */
import { mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { lockDir, zoneMountpoint, type StageContext } from '../context.js';
import { BuildError } from '../errors.js';
import { BUILD_PROPERTY, OWNER_PROPERTY } from '../host/zfs.js';
import { openSource } from '../images/sources.js';
import { importImage } from '../images/import.js';
import { log } from '../log.js';

export async function prepare(ctx: StageContext): Promise<void> {
  const { zfs, sf } = ctx;
  const def = sf.state.definition;
  if (!(await zfs.exists(def.datasetRoot))) {
    throw new BuildError(`dataset root ${def.datasetRoot} does not exist`, { hint: 'create it, or pass --dataset-root' });
  }
  const source = await openSource(def.source, def.channel);
  const base = await importImage(
    { zfs, datasetRoot: def.datasetRoot, source, lockDir: lockDir(def.workDir) },
    def.imageUuid,
  );
  sf.state.base = {
    uuid: base.manifest.uuid,
    name: base.manifest.name,
    version: base.manifest.version,
    dataset: base.dataset,
    imported: base.imported,
    manifest: base.manifest,
  };

  const analog = `${def.datasetRoot}/${sf.state.buildId}`;
  const mountpoint = zoneMountpoint(sf);
  // Recorded before it exists: a kill right after the clone still leaves a trail for clean.
  sf.state.analog = { dataset: analog, mountpoint };
  await sf.save();
  await mkdir(mountpoint, { recursive: true });
  log.info(`creating zone analog ${analog} from ${base.dataset}@final at ${mountpoint}`);
  await zfs.clone(`${base.dataset}@final`, analog, {
    mountpoint,
    [OWNER_PROPERTY]: 'analog',
    [BUILD_PROPERTY]: sf.state.buildId,
  });
  if (!(await zfs.isMounted(analog))) await zfs.mount(analog);
  const root = await stat(join(mountpoint, 'root')).catch(() => undefined);
  if (!root?.isDirectory()) {
    throw new BuildError(`base image ${def.imageUuid} has no root/ directory: not a zone dataset image`);
  }
}
