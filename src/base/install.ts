/**
 * Installing a base image and its origin chain into `<root>/<uuid>@final`,
 * as `imgadm import` does (imgapi.md §5; "import" is kept for IMGAPI's
 * AdminImportImage in publish): origins first, a lock per image,
 * size and sha1 checked while the bytes flow, `zfs receive` into
 * `<uuid>-partial`, exactly one snapshot normalized to `@final`, its
 * manifest kept (base/known), then the rename. An image is only ever
 * renamed into place whole. As imgadm, it looks on this machine first: an
 * installed image whose manifest is known asks no source at all.
 */
import { readFile, rm, writeFile } from 'node:fs/promises';
import { BuildError, BuildimageError, oneLine } from '../core/errors.js';
import { ensureDir } from '../core/files.js';
import { Zfs } from '../host/zfs.js';
import { acquireLock, type Lock } from '../host/lock.js';
import type { Layout } from '../core/layout.js';
import { log } from '../core/log.js';
import { byteProgress } from '../core/progress.js';
import { isUuid, type ImageManifest } from '../image/manifest/types.js';
import { assertValidManifest } from '../image/manifest/validate.js';
import { receiveStream } from '../image/streams.js';
import { knownManifest, rememberManifest, type KnownManifest } from './known.js';
import type { ImageSource } from './source.js';

export interface InstallContext {
  zfs: Zfs;
  /** Where images, their locks, receive journals and manifests live. */
  layout: Layout;
  /** The source, or how to open it: opened only when an image is not installed or its manifest is not known. */
  source: ImageSource | (() => Promise<ImageSource>);
  /** imgadm's image records, read for images imgadm installed (SmartOS: base/known defaultImgadmDir). */
  imgadmDir?: string;
}

export interface InstallResult {
  /** The top image's manifest. */
  manifest: ImageManifest;
  dataset: string;
  /** Uuids received by this run, base first (empty when all were there). */
  imported: string[];
}

const MAX_ORIGIN_DEPTH = 100;

/** Installed = `<root>/<uuid>` exists with an `@final` snapshot. */
export async function isInstalled(zfs: Zfs, layout: Layout, uuid: string): Promise<boolean> {
  const ds = layout.imageDataset(uuid);
  return (await zfs.exists(ds)) && (await zfs.exists(`${ds}@final`));
}

/**
 * Image `uuid` installed with a known manifest, or undefined. Its origins
 * need no look: they are the ZFS origins of its dataset, so it is installed
 * only with them, and a build needs only its own manifest.
 */
export async function installedWithManifest(
  ctx: Pick<InstallContext, 'zfs' | 'layout' | 'imgadmDir'>,
  uuid: string,
): Promise<KnownManifest | undefined> {
  if (!isUuid(uuid) || !(await isInstalled(ctx.zfs, ctx.layout, uuid))) return undefined;
  return knownManifest(ctx.layout, uuid, { imgadmDir: ctx.imgadmDir });
}

export async function installImage(ctx: InstallContext, uuid: string, again = 0): Promise<InstallResult> {
  const { zfs, layout } = ctx;
  // It names datasets and lock files: a uuid, whatever the state file or flag said.
  if (!isUuid(uuid)) throw new BuildError(`base image ${JSON.stringify(uuid)} is not an image uuid`);
  // Local first, as imgadm: an installed image is used whatever its state at the source, and the source need not answer.
  const known = await installedWithManifest(ctx, uuid);
  if (known) {
    log.info(`image ${uuid} (${known.manifest.name}@${known.manifest.version}) already installed; manifest from ${known.from}, no source asked`);
    return { manifest: known.manifest, dataset: layout.imageDataset(uuid), imported: [] };
  }
  const source = typeof ctx.source === 'function' ? await ctx.source() : ctx.source;
  const opened: OpenedContext = { ...ctx, source };
  const top = await source.getManifest(uuid, { requireActive: true });
  assertValidManifest(top, `image ${uuid} manifest from ${source.description}`, 'import');
  if (top.uuid !== uuid) throw new BuildError(`source ${source.description} answered image ${top.uuid} when asked for ${uuid}`);
  if (await isInstalled(zfs, layout, uuid)) {
    // Installed by hand or by an older buildimage: keep the manifest, so the next build needs no source.
    log.info(`image ${uuid} (${top.name}@${top.version}) already imported`);
    await rememberManifest(layout, top);
    return { manifest: top, dataset: layout.imageDataset(uuid), imported: [] };
  }

  // Walk the origin chain until an installed ancestor; install base first.
  const chain: ImageManifest[] = [top];
  /** The installed ancestor the chain is received onto: locked too, so prune (base/cache) cannot take it meanwhile. */
  let onto: string | undefined;
  for (let m = top; m.origin; ) {
    if (chain.length > MAX_ORIGIN_DEPTH) throw new BuildError(`image ${uuid}: origin chain deeper than ${MAX_ORIGIN_DEPTH}`);
    if (chain.some((c) => c.uuid === m.origin)) {
      throw new BuildError(`image ${uuid}: the origin chain from ${source.description} loops (${[...chain.map((c) => c.uuid), m.origin].join(' → ')})`);
    }
    if (await isInstalled(zfs, layout, m.origin)) {
      onto = m.origin;
      break;
    }
    const origin = await source.getManifest(m.origin);
    assertValidManifest(origin, `origin image ${m.origin} manifest from ${source.description}`, 'import');
    if (origin.uuid !== m.origin) throw new BuildError(`source ${source.description} answered image ${origin.uuid} when asked for origin ${m.origin}`);
    chain.push(origin);
    m = origin;
  }

  // Locks are taken top to base, in one order for everyone, so waiters cannot deadlock.
  const locks: Lock[] = [];
  const imported: string[] = [];
  let pruned: boolean;
  try {
    for (const u of [...chain.map((m) => m.uuid), ...(onto ? [onto] : [])]) {
      locks.push(
        await acquireLock(layout.importLock(u), {
          purpose: `import ${u}`,
          onWait: (h) => log.info(`waiting for image ${u} import lock (held by pid ${h?.pid ?? '?'})`),
        }),
      );
    }
    if (await isInstalled(zfs, layout, uuid)) {
      log.info(`image ${uuid} was imported meanwhile by another build`);
      return { manifest: top, dataset: layout.imageDataset(uuid), imported };
    }
    // Gone since the walk (a prune took it before we held its lock): the chain is longer now.
    pruned = !!onto && !(await isInstalled(zfs, layout, onto)) && again < 3;
    for (const m of pruned ? [] : [...chain].reverse()) {
      if (await isInstalled(zfs, layout, m.uuid)) continue;
      await installWithRetry(opened, m);
      imported.push(m.uuid);
    }
  } finally {
    for (const l of locks.reverse()) await l.release();
  }
  if (pruned) {
    log.info(`image ${onto} was pruned meanwhile; looking at the chain of ${uuid} again`);
    return installImage(ctx, uuid, again + 1);
  }
  return { manifest: top, dataset: layout.imageDataset(uuid), imported };
}

/** Whole-image attempts when a download broke in a way the source could not resume. */
const INSTALL_ATTEMPTS = 3;

function isRetryable(err: unknown): boolean {
  return (err as { retryable?: unknown }).retryable === true;
}

/**
 * The file streams straight into decompress → `zfs receive`: no second copy
 * on disk, and a source that can resume (Range) hides dropped connections.
 * When it cannot, the partial dataset is destroyed and the image starts over.
 */
type OpenedContext = InstallContext & { source: ImageSource };

async function installWithRetry(ctx: OpenedContext, m: ImageManifest): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await installSingle(ctx, m);
    } catch (err) {
      if (attempt >= INSTALL_ATTEMPTS || !isRetryable(err)) throw err;
      log.warn(`image ${m.uuid}: ${oneLine(err)}; starting the import over (attempt ${attempt + 1} of ${INSTALL_ATTEMPTS})`);
    }
  }
}

/** Destroys `<uuid>-partial` if it is ours (our property, or our receive journal names it). */
export async function removePartial(ctx: InstallContext, uuid: string): Promise<void> {
  const partial = ctx.layout.partialDataset(uuid);
  if (!(await ctx.zfs.exists(partial))) {
    await rm(ctx.layout.receiveJournal(uuid), { force: true });
    return;
  }
  const journaled = (await readFile(ctx.layout.receiveJournal(uuid), 'utf8').catch(() => '')).trim() === partial;
  if (journaled && !(await ctx.zfs.owner(partial))) await ctx.zfs.markOwned(partial, 'image');
  if (!(await ctx.zfs.owner(partial))) {
    throw new BuildError(`${partial} exists but was not created by buildimage`, {
      hint: 'another tool (imgadm?) may be importing it; remove it yourself if it is stale',
    });
  }
  await ctx.zfs.destroyOwned(partial);
  await rm(ctx.layout.receiveJournal(uuid), { force: true });
}

async function installSingle(ctx: OpenedContext, m: ImageManifest): Promise<void> {
  const { zfs } = ctx;
  const dataset = ctx.layout.imageDataset(m.uuid);
  const partial = ctx.layout.partialDataset(m.uuid);
  const file = m.files![0];
  await ensureDir(ctx.layout.lockDir, { what: 'lock directory', flag: '--work-dir' });
  await removePartial(ctx, m.uuid); // a crash may have left one
  log.info(`importing image ${m.uuid} (${m.name}@${m.version}, ${file.size} bytes ${file.compression}) from ${ctx.source.description}`);
  await writeFile(ctx.layout.receiveJournal(m.uuid), partial + '\n');
  try {
    const input = await ctx.source.openFile(m, { onProgress: byteProgress(`  image ${m.uuid}`, file.size) });
    await receiveStream(zfs, partial, input, file.compression, { sha1: file.sha1, size: file.size }, m.uuid);
    await zfs.markOwned(partial, 'image');
    const snaps = await zfs.snapshots(partial);
    if (snaps.length !== 1) {
      throw new BuildError(`image ${m.uuid}: received dataset has ${snaps.length} snapshots, expected exactly 1`);
    }
    if (snaps[0] !== `${partial}@final`) await zfs.renameSnapshot(snaps[0], `${partial}@final`);
    // Before the rename: an image installed by this tool always has its manifest beside it.
    await rememberManifest(ctx.layout, m);
    await zfs.rename(partial, dataset);
    await rm(ctx.layout.receiveJournal(m.uuid), { force: true });
  } catch (err) {
    await removePartial(ctx, m.uuid).catch((e) => log.warn(`could not remove ${partial}: ${oneLine(e)}`));
    if (err instanceof BuildimageError && (isRetryable(err) || err.message.startsWith(`image ${m.uuid}`) || !(err instanceof BuildError))) throw err;
    const hint = /invalid stream|bad magic|corrupt/i.test(oneLine(err))
      ? `the file is damaged or not ${file.compression}-compressed as its manifest says`
      : undefined;
    throw new BuildError(`import of image ${m.uuid} failed: ${oneLine(err)}`, { cause: err, hint });
  }
}
