/**
 * seal: snapshot the analog as @final, send it incrementally against the
 * base's @final, compress, and hash (sha1, size) in the same pass; write
 * the v2 manifest; move every output into place by rename (temp names
 * until all is well); destroy the analog.
 */
import { open, rename, rm, stat } from 'node:fs/promises';
import { BuildError, BuildimageError, oneLine } from '../../core/errors.js';
import { digestFile, ensureDir, moveInto, NEW_FILE_FLAGS, writeAtomic } from '../../core/files.js';
import { log } from '../../core/log.js';
import { formatRate } from '../../core/progress.js';
import { isSmartOS, unameV } from '../../host/platform.js';
import { checkImageRoot } from '../../host/rootfs.js';
import { defaultImgadmDir, knownManifest } from '../../base/known.js';
import { writeSboms } from '../../sbom/sbom.js';
import { buildImageManifest, parseMinPlatformFromUname } from '../../image/manifest/create.js';
import type { ImageManifest } from '../../image/manifest/types.js';
import { assertValidManifest } from '../../image/manifest/validate.js';
import { sendCompressed } from '../../image/streams.js';
import type { StageContext } from '../context.js';
import type { BuildDefinition } from '../state.js';
import { destroyAnalog } from '../cleanup.js';
import { writeBuildInfo } from '../build-info.js';
import { outputPaths, sealTempPath } from '../owned.js';

/** `published_at`: SOURCE_DATE_EPOCH for reproducible builds, else now. */
export function publishedAt(env: NodeJS.ProcessEnv = process.env, now = new Date()): string {
  const epoch = env.SOURCE_DATE_EPOCH;
  if (epoch !== undefined && epoch !== '') {
    if (!/^\d+$/.test(epoch)) throw new BuildError(`SOURCE_DATE_EPOCH must be whole seconds since 1970, got ${JSON.stringify(epoch)}`);
    return new Date(Number(epoch) * 1000).toISOString();
  }
  return now.toISOString();
}

/** min_platform: an explicit one wins; on SmartOS the build host's stamp (as the original); else the origin's. */
async function minPlatform(def: BuildDefinition): Promise<Record<string, string> | undefined> {
  if (def.minPlatform) return def.minPlatform;
  if (isSmartOS()) return parseMinPlatformFromUname(await unameV());
  return undefined;
}

export async function seal(ctx: StageContext): Promise<void> {
  const { zfs, sf } = ctx;
  const state = sf.state;
  const def = state.definition;
  const analog = state.analog!.dataset;
  const base = state.base!;
  const outputs = outputPaths(def);
  await ensureDir(def.outputDir, { what: 'output directory', flag: '--output-dir' });
  const temps = {
    image: sealTempPath(outputs.image, state.buildId),
    manifest: sealTempPath(outputs.manifest, state.buildId),
    buildInfo: sealTempPath(outputs.buildInfo!, state.buildId),
    sbomCyclonedx: sealTempPath(outputs.sbomCyclonedx!, state.buildId),
    sbomSpdx: sealTempPath(outputs.sbomSpdx!, state.buildId),
  };
  state.tempFiles.push(...Object.values(temps));
  await sf.save();

  try {
    // The output dir may be a shared /tmp: the image's temp is created here, exclusively, never through a link.
    await (await open(temps.image, NEW_FILE_FLAGS, 0o644)).close();
    if (!(await zfs.exists(`${analog}@final`))) await zfs.snapshot(`${analog}@final`);
    log.info(`sending ${analog}@final (incremental from ${base.dataset}@final), ${def.compression}`);
    const t0 = Date.now();
    const file = await sendCompressed(zfs, `${analog}@final`, `${base.dataset}@final`, def.compression, temps.image);
    const secs = (Date.now() - t0) / 1000;
    log.info(`image file: ${file.size} bytes, sha1 ${file.sha1} (${formatRate(file.size, Math.max(secs, 0.001))})`);

    const origin = base.manifest as ImageManifest;
    const manifest = buildImageManifest({
      input: def.manifest,
      origin,
      uuid: state.buildId,
      file,
      minPlatform: await minPlatform(def),
      publishedAt: publishedAt(),
    });
    assertValidManifest(manifest, 'new image manifest', 'created');
    await writeAtomic(temps.manifest, JSON.stringify(manifest, null, 2) + '\n');
    await writeBuildInfo(temps.buildInfo, state, manifest);
    const reports = ctx.layout.reports(state.buildId);
    await writeSboms({
      root: await checkImageRoot(state.analog!.mountpoint),
      manifest,
      fileName: outputs.image,
      sha256: (await digestFile(temps.image, 'sha256')).digest.toString('hex'),
      origin,
      lookup: async (uuid) => (await knownManifest(ctx.layout, uuid, { imgadmDir: defaultImgadmDir() }))?.manifest,
      auditReport: def.audit ? reports.audit : undefined,
      paths: { cyclonedx: temps.sbomCyclonedx, spdx: temps.sbomSpdx },
    });

    // Reports first, the manifest last: a manifest beside an image means the set is whole.
    await rename(temps.image, outputs.image);
    // Reports come from the work dir, which may be another filesystem.
    await moveInto(reports.packages, outputs.packages!);
    if (outputs.audit) await moveInto(reports.audit, outputs.audit);
    if (outputs.auditJunit) {
      // A build whose pkgadd ran under an older buildimage has no JUnit report: none is claimed.
      if (await stat(reports.auditJunit).catch(() => undefined)) await moveInto(reports.auditJunit, outputs.auditJunit);
      else delete outputs.auditJunit;
    }
    await rename(temps.buildInfo, outputs.buildInfo!);
    await rename(temps.sbomCyclonedx, outputs.sbomCyclonedx!);
    await rename(temps.sbomSpdx, outputs.sbomSpdx!);
    await rename(temps.manifest, outputs.manifest);
    state.tempFiles = state.tempFiles.filter((t) => !Object.values(temps).includes(t));
    state.outputs = outputs;
    state.manifestUuid = manifest.uuid;
    await sf.save();
  } catch (err) {
    for (const t of Object.values(temps)) await rm(t, { force: true });
    if (err instanceof BuildimageError) throw err;
    throw new BuildError(`seal failed: ${oneLine(err)}`, { cause: err });
  }
  await destroyAnalog(zfs, state);
  const sz = await stat(outputs.image);
  log.info(`image ${state.buildId}: ${outputs.image} (${sz.size} bytes)`);
}
