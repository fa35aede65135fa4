/**
 * Manifests of installed images, known without asking a source (as imgadm
 * reads its own database before any source): the one buildimage wrote when
 * it installed the image (`Layout.installedManifest`), else, on SmartOS,
 * imgadm's record of an image imgadm installed
 * (`/var/imgadm/images/<zpool>-<uuid>.json`, whose `manifest` field is the
 * manifest). Both are inputs like any other: read only as small regular
 * files (no link, no FIFO), parsed, validated as a served manifest and
 * matched against the uuid asked for. A bad one is ignored with a warning
 * that names the file, never its content, and the source is asked instead.
 */
import { lstat } from 'node:fs/promises';
import { oneLine } from '../core/errors.js';
import { ensureDir, NotRegularFile, readSmallFile, writeAtomic } from '../core/files.js';
import type { Layout } from '../core/layout.js';
import { log } from '../core/log.js';
import { isSmartOS } from '../host/platform.js';
import { isUuid, type ImageManifest } from '../image/manifest/types.js';
import { firstProblemLine, isPlainObject, validate } from '../image/manifest/validate.js';

/** imgadm's image records (smartos-live src/img/lib/database.js: DB_DIR/images). */
export const IMGADM_IMAGES_DIR = '/var/imgadm/images';

/** Bigger than any manifest the validator accepts (tags ≤ 100 KiB, description ≤ 10 KiB, ...). */
export const MAX_KNOWN_MANIFEST_BYTES = 1024 * 1024;

/** Where imgadm's records are on this machine: SmartOS only. */
export function defaultImgadmDir(): string | undefined {
  return isSmartOS() ? IMGADM_IMAGES_DIR : undefined;
}

export interface KnownManifest {
  manifest: ImageManifest;
  /** The file it was read from, for messages. */
  from: string;
}

/**
 * imgadm's record for the image installed as `<datasetRoot>/<uuid>`. imgadm
 * installs only at `<zpool>/<uuid>`, so a dataset root below a pool has none.
 */
export function imgadmRecordPath(dir: string, datasetRoot: string, uuid: string): string | undefined {
  if (!datasetRoot || datasetRoot.includes('/') || !isUuid(uuid)) return undefined;
  return `${dir}/${datasetRoot}-${uuid}.json`;
}

/** Reads `path`: undefined when it does not exist (JSON has no undefined); throws a one-line Error (no content) when it is not usable. */
async function readJson(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readSmallFile(path, MAX_KNOWN_MANIFEST_BYTES);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    if (err instanceof NotRegularFile) throw new Error(err.why, { cause: err });
    throw new Error(`cannot be read (${(err as NodeJS.ErrnoException).code ?? oneLine(err)})`, { cause: err });
  }
  try {
    return JSON.parse(text);
  } catch {
    // JSON.parse's message quotes the text: say only that it is not JSON.
    throw new Error('is not JSON');
  }
}

/** Throws a one-line Error when `m` is not a valid manifest of image `uuid`. */
function check(m: unknown, uuid: string): asserts m is ImageManifest {
  if (!isPlainObject(m)) throw new Error('holds no manifest object');
  if (m.uuid !== uuid) throw new Error(`names image ${isUuid(m.uuid) ? m.uuid : '(not a uuid)'}, not ${uuid}`);
  const problems = validate(m, 'import');
  if (problems.length) throw new Error(firstProblemLine('is not a valid manifest', problems));
}

async function readOne(path: string, uuid: string, unwrap: (x: unknown) => unknown): Promise<KnownManifest | undefined> {
  try {
    const x = await readJson(path);
    if (x === undefined) return undefined;
    const m = unwrap(x);
    check(m, uuid);
    return { manifest: m, from: path };
  } catch (err) {
    log.warn(`ignoring ${path}: ${(err as Error).message}; asking the source for image ${uuid}`);
    return undefined;
  }
}

export interface KnownOptions {
  /** imgadm's records to read too; undefined: none (not SmartOS). */
  imgadmDir?: string;
}

/**
 * The manifest of installed image `uuid` as recorded on this machine, or
 * undefined when none is known (or what is there is not to be trusted).
 * The caller checks the image is installed: a record alone proves nothing.
 */
export async function knownManifest(layout: Layout, uuid: string, opts: KnownOptions = {}): Promise<KnownManifest | undefined> {
  if (!isUuid(uuid)) return undefined;
  const problem = await dirProblem(layout.manifestDir);
  if (problem) log.warn(`ignoring ${layout.manifestDir}: it ${problem}`);
  const ours = problem ? undefined : await readOne(layout.installedManifest(uuid), uuid, (x) => x);
  if (ours) return ours;
  const record = opts.imgadmDir ? imgadmRecordPath(opts.imgadmDir, layout.datasetRoot, uuid) : undefined;
  if (!record) return undefined;
  return readOne(record, uuid, (x) => {
    if (!isPlainObject(x)) return x;
    // imgadm's record says which pool the image is on: it must be this one.
    if (x.zpool !== undefined && x.zpool !== layout.datasetRoot) throw new Error(`is for another pool than ${layout.datasetRoot}`);
    return x.manifest;
  });
}

/** Why `<work>/images` is not to be used (a link would aim reads and writes elsewhere), or undefined. */
async function dirProblem(dir: string): Promise<string | undefined> {
  const st = await lstat(dir).catch((err: NodeJS.ErrnoException) => err);
  if (st instanceof Error) return st.code === 'ENOENT' ? undefined : `cannot be read (${st.code ?? oneLine(st)})`;
  if (st.isSymbolicLink()) return 'is a symlink';
  return st.isDirectory() ? undefined : 'is not a directory';
}

/**
 * Keeps `m` as the manifest of the image installed from it. Written whole
 * (temp file and rename), so a reader sees the old file, the new one or
 * none. Never fails the install: without it the next build asks the source.
 */
export async function rememberManifest(layout: Layout, m: ImageManifest): Promise<void> {
  const dir = layout.manifestDir;
  try {
    if (!isUuid(m.uuid)) throw new Error(`${JSON.stringify(m.uuid)} is not an image uuid`);
    let problem = await dirProblem(dir);
    if (!problem) {
      await ensureDir(dir, { what: 'image manifest directory', flag: '--work-dir' });
      problem = await dirProblem(dir);
    }
    if (problem) throw new Error(`${dir} ${problem}`);
    await writeAtomic(layout.installedManifest(m.uuid), JSON.stringify(m, null, 2) + '\n');
  } catch (err) {
    log.warn(`cannot keep the manifest of image ${m.uuid} in ${dir}: ${oneLine(err)}; a build from it will ask the source`);
  }
}
