/**
 * seal: list what the image adds, changes and deletes against its origin
 * (the contents listing, compared with a read-only clone of the origin's
 * @final); under SOURCE_DATE_EPOCH clamp the image's times to it; snapshot
 * the analog as @final, send it incrementally against the base's @final,
 * compress, and hash (sha1, sha256, sha512, size) in the same pass; write
 * the v2 manifest, the provenance (build/provenance) and build-info; move
 * every output into place by rename (temp names until all is well, the
 * manifest last); destroy the analog.
 */
import { open, rename, rm, rmdir, stat } from 'node:fs/promises';
import { BuildError, BuildimageError, oneLine } from '../../core/errors.js';
import { ensureDir, moveInto, NEW_FILE_FLAGS, writeAtomic } from '../../core/files.js';
import { log } from '../../core/log.js';
import { formatRate } from '../../core/progress.js';
import { isSmartOS, unameV } from '../../host/platform.js';
import { checkImageRoot, clampTimes } from '../../host/rootfs.js';
import { BUILD_PROPERTY, OWNER_PROPERTY, type Zfs } from '../../host/zfs.js';
import { writeListing } from '../../contents/file.js';
import { makeListing } from '../../contents/listing.js';
import { listChanges } from '../../contents/walk.js';
import { defaultImgadmDir, knownManifest } from '../../base/known.js';
import { writeSboms } from '../../sbom/sbom.js';
import { buildImageManifest, parseMinPlatformFromUname } from '../../image/manifest/create.js';
import type { ImageManifest } from '../../image/manifest/types.js';
import { assertValidManifest } from '../../image/manifest/validate.js';
import { sendImage } from '../../image/streams.js';
import type { StageContext } from '../context.js';
import type { BuildDefinition, BuildState } from '../state.js';
import { destroyAnalog } from '../cleanup.js';
import { buildGit, outputDigests, writeBuildInfo } from '../build-info.js';
import { provenanceStatement, writeProvenance } from '../provenance.js';
import { outputPaths, sealTempPath } from '../owned.js';

/** SOURCE_DATE_EPOCH (reproducible-builds.org) as seconds, when set. */
export function sourceDateEpoch(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const epoch = env.SOURCE_DATE_EPOCH;
  if (epoch === undefined || epoch === '') return undefined;
  if (!/^\d{1,12}$/.test(epoch)) throw new BuildError(`SOURCE_DATE_EPOCH must be whole seconds since 1970, got ${JSON.stringify(epoch.slice(0, 40))}`);
  return Number(epoch);
}

/** `published_at`: SOURCE_DATE_EPOCH for reproducible builds, else now. */
export function publishedAt(env: NodeJS.ProcessEnv = process.env, now = new Date()): string {
  const epoch = sourceDateEpoch(env);
  return (epoch === undefined ? now : new Date(epoch * 1000)).toISOString();
}

/** Seal's origin clone, if there: destroyed when it is this build's (a killed seal's, before a rerun; or after the listing). */
async function dropOriginView(zfs: Zfs, state: BuildState, dataset: string): Promise<void> {
  if (!(await zfs.exists(dataset))) return;
  const owner = await zfs.getOne(dataset, BUILD_PROPERTY);
  if (owner !== state.buildId) throw new BuildError(`refusing to destroy ${dataset}: it does not belong to build ${state.buildId}`);
  await zfs.destroyOwned(dataset);
}

/**
 * Writes the contents listing to `path`: the image root walked beside a
 * read-only clone of the origin's @final (recorded in the state before it
 * is made, a child of the analog, destroyed before this returns).
 */
async function writeContents(ctx: StageContext, imageRoot: string, path: string): Promise<void> {
  const { zfs, sf, layout } = ctx;
  const state = sf.state;
  const base = state.base!;
  const view = layout.originView(state.buildId);
  state.originView = view;
  await sf.save();
  const t0 = Date.now();
  try {
    await dropOriginView(zfs, state, view.dataset);
    await ensureDir(view.mountpoint, { what: 'origin clone mountpoint', flag: '--work-dir' });
    await zfs.clone(`${base.dataset}@final`, view.dataset, {
      mountpoint: view.mountpoint,
      readonly: 'on',
      devices: 'off',
      setuid: 'off',
      exec: 'off',
      [OWNER_PROPERTY]: 'origin-view',
      [BUILD_PROPERTY]: state.buildId,
    });
    if (!(await zfs.isMounted(view.dataset))) await zfs.mount(view.dataset);
    const originRoot = await checkImageRoot(view.mountpoint);
    const { entries, stats } = await listChanges(imageRoot, originRoot);
    const def = state.definition;
    const listing = makeListing({ uuid: state.buildId, name: def.manifest.name, version: def.manifest.version }, { uuid: base.uuid, name: base.name, version: base.version }, entries);
    await writeListing(path, listing);
    state.contents = { digest: listing.contentDigest, ...listing.counts };
    const c = listing.counts;
    log.info(
      `contents: ${c.added} added, ${c.changed} changed, ${c.deleted} deleted against ${base.name} ${base.version}; ${stats.walked} entries walked, ` +
        `${stats.hashed} files hashed (${stats.hashedBytes} bytes) in ${((Date.now() - t0) / 1000).toFixed(2)} s; ${listing.contentDigest}`,
    );
  } finally {
    await dropOriginView(zfs, state, view.dataset);
    await rmdir(view.mountpoint).catch(() => undefined);
    delete state.originView;
    await sf.save();
  }
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
    provenance: sealTempPath(outputs.provenance!, state.buildId),
    contents: sealTempPath(outputs.contents!, state.buildId),
    sbomCyclonedx: sealTempPath(outputs.sbomCyclonedx!, state.buildId),
    sbomSpdx: sealTempPath(outputs.sbomSpdx!, state.buildId),
  };
  state.tempFiles.push(...Object.values(temps));
  await sf.save();

  try {
    // The output dir may be a shared /tmp: the image's temp is created here, exclusively, never through a link.
    await (await open(temps.image, NEW_FILE_FLAGS, 0o644)).close();
    const imageRoot = await checkImageRoot(state.analog!.mountpoint);
    await writeContents(ctx, imageRoot, temps.contents);
    // After the listing (whose reads move access times), before the snapshot.
    const epoch = sourceDateEpoch();
    if (epoch !== undefined) {
      const n = await clampTimes(imageRoot, epoch);
      log.info(`SOURCE_DATE_EPOCH: times of ${n} entries clamped to ${new Date(epoch * 1000).toISOString()}`);
    }
    if (!(await zfs.exists(`${analog}@final`))) await zfs.snapshot(`${analog}@final`);
    log.info(`sending ${analog}@final (incremental from ${base.dataset}@final), ${def.compression}`);
    const t0 = Date.now();
    const { file, sha256, sha512 } = await sendImage(zfs, `${analog}@final`, `${base.dataset}@final`, def.compression, temps.image);
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
    const reports = ctx.layout.reports(state.buildId);
    const git = await buildGit(state);
    const statement = await provenanceStatement(state, ctx.layout, { imageFile: outputs.image, image: { sha256, sha1: file.sha1 }, git, contentDigest: state.contents?.digest.replace(/^sha256:/, ''), finishedOn: new Date().toISOString() });
    await writeProvenance(temps.provenance, statement);
    // The provenance is not among them: publish may sign it later, which changes its bytes.
    const digests = await outputDigests({ manifest: temps.manifest, packages: reports.packages, audit: outputs.audit && reports.audit, auditJunit: outputs.auditJunit && reports.auditJunit });
    await writeBuildInfo(temps.buildInfo, state, manifest, { image: { sha256, sha512 }, outputs: digests, git });
    await writeSboms({
      root: imageRoot,
      manifest,
      fileName: outputs.image,
      sha256,
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
    await rename(temps.contents, outputs.contents!);
    await rename(temps.buildInfo, outputs.buildInfo!);
    await rename(temps.provenance, outputs.provenance!);
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
