/**
 * Importing a base image and its origin chain into `<root>/<uuid>@final`,
 * as `imgadm import` does (imgapi.md §5): origins first, a lock per image,
 * size and sha1 checked while the bytes flow, `zfs receive` into
 * `<uuid>-partial`, exactly one snapshot normalized to `@final`, then the
 * rename. An image is only ever renamed into place whole.
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { VerifyingStream, decompressor } from '../compress.js';
import { BuildError, BuildimageError, oneLine } from '../errors.js';
import { checkExit, spawn } from '../host/exec.js';
import { Zfs } from '../host/zfs.js';
import { acquireLock, type Lock } from '../lock.js';
import { log } from '../log.js';
import { byteProgress } from '../progress.js';
import { assertValidManifest, type Compression, type ImageManifest } from '../manifest.js';
import type { ImageSource } from './source.js';

export interface ImportContext {
  zfs: Zfs;
  /** Dataset under which images live as `<root>/<uuid>`. */
  datasetRoot: string;
  source: ImageSource;
  /** Directory of lock files and receive journals. */
  lockDir: string;
}

export interface ImportResult {
  /** The top image's manifest. */
  manifest: ImageManifest;
  dataset: string;
  /** Uuids received by this run, base first (empty when all were there). */
  imported: string[];
}

const MAX_ORIGIN_DEPTH = 100;

export function imageDataset(root: string, uuid: string): string {
  return `${root}/${uuid}`;
}

/** Installed = `<root>/<uuid>` exists with an `@final` snapshot. */
export async function isInstalled(zfs: Zfs, root: string, uuid: string): Promise<boolean> {
  const ds = imageDataset(root, uuid);
  return (await zfs.exists(ds)) && (await zfs.exists(`${ds}@final`));
}

function lockPath(ctx: ImportContext, uuid: string): string {
  return join(ctx.lockDir, `img.${uuid}.import.lock`);
}

/** Marks a `-partial` we are about to create, so cleanup knows it is ours even before it carries our property. */
function journalPath(ctx: ImportContext, uuid: string): string {
  return join(ctx.lockDir, `img.${uuid}.receiving`);
}

export async function importImage(ctx: ImportContext, uuid: string): Promise<ImportResult> {
  const { zfs, datasetRoot: root } = ctx;
  const top = await ctx.source.getManifest(uuid, { requireActive: true });
  assertValidManifest(top, `image ${uuid} manifest from ${ctx.source.description}`, 'import');
  if (top.uuid !== uuid) throw new BuildError(`source ${ctx.source.description} answered image ${top.uuid} when asked for ${uuid}`);
  if (await isInstalled(zfs, root, uuid)) {
    log.info(`image ${uuid} (${top.name}@${top.version}) already imported`);
    return { manifest: top, dataset: imageDataset(root, uuid), imported: [] };
  }

  // Walk the origin chain until an installed ancestor; install base first.
  const chain: ImageManifest[] = [top];
  for (let m = top; m.origin; ) {
    if (chain.length > MAX_ORIGIN_DEPTH) throw new BuildError(`image ${uuid}: origin chain deeper than ${MAX_ORIGIN_DEPTH}`);
    if (await isInstalled(zfs, root, m.origin)) break;
    const origin = await ctx.source.getManifest(m.origin);
    assertValidManifest(origin, `origin image ${m.origin} manifest from ${ctx.source.description}`, 'import');
    chain.push(origin);
    m = origin;
  }

  // Locks are taken top to base, in one order for everyone, so waiters cannot deadlock.
  const locks: Lock[] = [];
  const imported: string[] = [];
  try {
    for (const m of chain) {
      locks.push(
        await acquireLock(lockPath(ctx, m.uuid), {
          purpose: `import ${m.uuid}`,
          onWait: (h) => log.info(`waiting for image ${m.uuid} import lock (held by pid ${h?.pid ?? '?'})`),
        }),
      );
    }
    if (await isInstalled(zfs, root, uuid)) {
      log.info(`image ${uuid} was imported meanwhile by another build`);
      return { manifest: top, dataset: imageDataset(root, uuid), imported };
    }
    for (const m of [...chain].reverse()) {
      if (await isInstalled(zfs, root, m.uuid)) continue;
      await installWithRetry(ctx, m);
      imported.push(m.uuid);
    }
  } finally {
    for (const l of locks.reverse()) await l.release();
  }
  return { manifest: top, dataset: imageDataset(root, uuid), imported };
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
async function installWithRetry(ctx: ImportContext, m: ImageManifest): Promise<void> {
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
export async function removePartial(ctx: ImportContext, uuid: string): Promise<void> {
  const partial = `${imageDataset(ctx.datasetRoot, uuid)}-partial`;
  if (!(await ctx.zfs.exists(partial))) {
    await rm(journalPath(ctx, uuid), { force: true });
    return;
  }
  const journaled = (await readFile(journalPath(ctx, uuid), 'utf8').catch(() => '')).trim() === partial;
  if (journaled && !(await ctx.zfs.owner(partial))) await ctx.zfs.markOwned(partial, 'image');
  if (!(await ctx.zfs.owner(partial))) {
    throw new BuildError(`${partial} exists but was not created by buildimage`, {
      hint: 'another tool (imgadm?) may be importing it; remove it yourself if it is stale',
    });
  }
  await ctx.zfs.destroyOwned(partial);
  await rm(journalPath(ctx, uuid), { force: true });
}

async function installSingle(ctx: ImportContext, m: ImageManifest): Promise<void> {
  const { zfs } = ctx;
  const dataset = imageDataset(ctx.datasetRoot, m.uuid);
  const partial = `${dataset}-partial`;
  const file = m.files![0]!;
  await mkdir(ctx.lockDir, { recursive: true });
  await removePartial(ctx, m.uuid); // a crash may have left one
  log.info(`importing image ${m.uuid} (${m.name}@${m.version}, ${file.size} bytes ${file.compression}) from ${ctx.source.description}`);
  await writeFile(journalPath(ctx, m.uuid), partial + '\n');
  try {
    const input = await ctx.source.openFile(m, { onProgress: byteProgress(`  image ${m.uuid}`, file.size) });
    await receiveStream(zfs, partial, input, file.compression as Compression, { sha1: file.sha1, size: file.size }, m.uuid);
    await zfs.markOwned(partial, 'image');
    const snaps = await zfs.snapshots(partial);
    if (snaps.length !== 1) {
      throw new BuildError(`image ${m.uuid}: received dataset has ${snaps.length} snapshots, expected exactly 1`);
    }
    if (snaps[0] !== `${partial}@final`) await zfs.renameSnapshot(snaps[0]!, `${partial}@final`);
    await zfs.rename(partial, dataset);
    await rm(journalPath(ctx, m.uuid), { force: true });
  } catch (err) {
    await removePartial(ctx, m.uuid).catch((e) => log.warn(`could not remove ${partial}: ${oneLine(e)}`));
    if (err instanceof BuildimageError && (isRetryable(err) || err.message.startsWith(`image ${m.uuid}`) || !(err instanceof BuildError))) throw err;
    const hint = /invalid stream|bad magic|corrupt/i.test(oneLine(err))
      ? `the file is damaged or not ${file.compression}-compressed as its manifest says`
      : undefined;
    throw new BuildError(`import of image ${m.uuid} failed: ${oneLine(err)}`, { cause: err, hint });
  }
}

/**
 * input → verify (size, sha1) → decompressor → `zfs receive -u dataset`.
 * The last chunk is held back until verification passes, so receive can
 * only complete on good bytes.
 */
export async function receiveStream(
  zfs: Zfs,
  dataset: string,
  input: Readable,
  compression: Compression,
  expected: { sha1?: string; size?: number },
  what: string,
): Promise<void> {
  const verify = new VerifyingStream(expected, (detail) => new BuildError(`image ${what}: ${detail}`));
  const recv = zfs.receive(dataset);
  const tool = decompressor(compression);
  const dec = tool ? spawn(tool.cmd, tool.args) : undefined;
  let streamErr: unknown;
  const flows = [pipeline(input, verify, dec ? dec.stdin! : recv.stdin!)];
  if (dec) flows.push(pipeline(dec.stdout!, recv.stdin!));
  await Promise.all(flows).catch((err) => {
    streamErr = err;
    dec?.kill();
    recv.kill();
  });
  const [decResult, recvResult] = await Promise.all([dec, recv]);
  log.debug(`receive ${dataset}: ${verify.size} bytes read, decompressor exit ${decResult?.exitCode ?? '-'}, zfs receive exit ${recvResult.exitCode}`);
  // Our own verification verdict explains more than the pipe errors it causes.
  if (streamErr instanceof BuildimageError) throw streamErr;
  if (decResult) checkExit(tool!.cmd, tool!.args, decResult);
  checkExit('zfs', ['receive', '-u', dataset], recvResult);
  if (streamErr) throw new BuildError(`image ${what}: ${oneLine(streamErr)}`);
}
