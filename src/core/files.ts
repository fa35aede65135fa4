/**
 * Files written whole or not at all, moved into place across file systems,
 * and hashed as they are read (interruptible: a SIGINT stops a long hash);
 * directories made on paths users give, with a bounded walk.
 */
import { createHash, randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { copyFile, lstat, mkdir, open, readlink, rename, rm, stat, writeFile, type FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { dirname, join, resolve } from 'node:path';
import { oneLine, UsageError } from './errors.js';
import { abortReason, interruptSignal } from './interrupt.js';

/**
 * A temp name beside `path` that nobody can guess, so that in a shared
 * directory (/tmp) no link can be planted there in advance.
 */
export function tempNameFor(path: string): string {
  return `${path}.tmp-${randomBytes(8).toString('hex')}`;
}

/** Open flags for a new temp file: created here, never an existing file or a link. */
export const NEW_FILE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

/** Writes through a temp file and rename, so a reader never sees half a file. */
export async function writeAtomic(path: string, content: string, mode = 0o644): Promise<void> {
  await ensureDir(dirname(path), { what: 'directory' });
  const tmp = tempNameFor(path);
  try {
    await writeFile(tmp, content, { mode, flush: true, flag: NEW_FILE_FLAGS });
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/**
 * Moves a file into place by rename; across filesystems (the work dir on
 * /var/tmp, outputs on a tmpfs /tmp as on SmartOS) it copies to a temp name
 * beside the destination first, so the destination still appears whole.
 */
export async function moveInto(src: string, dest: string): Promise<void> {
  try {
    await rename(src, dest);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
    const tmp = tempNameFor(dest);
    try {
      // COPYFILE_EXCL: the temp is created by the copy (O_EXCL), never written through a link.
      await copyFile(src, tmp, constants.COPYFILE_EXCL);
      await rename(tmp, dest);
    } finally {
      await rm(tmp, { force: true });
    }
    await rm(src, { force: true });
  }
}

/** A file that is to be read as a regular file is a symlink, a FIFO, a device or a directory. */
export class NotRegularFile extends Error {
  constructor(
    readonly path: string,
    readonly why: string,
  ) {
    super(`${path} ${why}`);
  }
}

/** Bytes hashed so far, after each chunk (a 1.4 GiB image takes seconds: core/progress shows it). */
export type HashProgress = (bytes: number) => void;

/** The hashes files are read for: MD5 (Manta, md5sums.txt), SHA-1 (IMGAPI), SHA-256/512 (SHA256SUMS, provenance). */
export type HashAlgorithm = 'md5' | 'sha1' | 'sha256' | 'sha512';

/**
 * Reads `path` once and returns its digests by every algorithm asked, and
 * its size: one pass however many (a multi-GB image is read once). Only a
 * regular file: opened without following a link or blocking on a FIFO,
 * checked by fstat and hashed from that same descriptor (no window between
 * check and read).
 */
export async function digestFile<A extends HashAlgorithm>(
  path: string | Buffer,
  algorithms: A | readonly A[],
  onProgress?: HashProgress,
): Promise<{ digests: Record<A, Buffer>; size: number }> {
  const algs = [...new Set(typeof algorithms === 'string' ? [algorithms] : algorithms)];
  const { fh } = await openRegular(path);
  try {
    const hs = algs.map((a) => createHash(a));
    let size = 0;
    // Already stopped: a stream made with an aborted signal emits its error before anyone listens (an uncaught crash).
    const signal = interruptSignal();
    if (signal.aborted) throw abortReason(signal);
    for await (const c of fh.createReadStream({ autoClose: false, signal })) {
      for (const h of hs) h.update(c as Buffer);
      size += (c as Buffer).length;
      onProgress?.(size);
    }
    return { digests: Object.fromEntries(algs.map((a, i) => [a, hs[i].digest()])) as Record<A, Buffer>, size };
  } finally {
    await fh.close();
  }
}

/** Opens a regular file for reading, never through a link and never blocking on a FIFO. */
async function openRegular(path: string | Buffer) {
  const fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK).catch((err: NodeJS.ErrnoException) => {
    throw err.code === 'ELOOP' ? new NotRegularFile(String(path), 'is a symlink') : err;
  });
  const st = await fh.stat();
  if (!st.isFile()) {
    await fh.close();
    throw new NotRegularFile(String(path), 'is not a regular file');
  }
  return { fh, size: st.size };
}

const READ_CHUNK_BYTES = 64 * 1024;

/**
 * Up to `maxBytes` + 1 bytes of an open file, from where it stands: one
 * byte more than the bound tells a file that grew past it since its fstat,
 * and no more is ever read or allocated.
 */
export async function readAtMost(fh: FileHandle, maxBytes: number): Promise<Buffer> {
  // In chunks: memory follows what the file holds, not the bound (a 1 KiB package.json under a 32 MiB bound).
  const chunks: Buffer[] = [];
  let n = 0;
  while (n <= maxBytes) {
    const chunk = Buffer.allocUnsafe(Math.min(READ_CHUNK_BYTES, maxBytes + 1 - n));
    const { bytesRead } = await fh.read(chunk, 0, chunk.length, null);
    if (bytesRead === 0) break;
    chunks.push(chunk.subarray(0, bytesRead));
    n += bytesRead;
  }
  return Buffer.concat(chunks, n);
}

/** A small regular file's text (a stamp, a pointer), refused when it is larger than `maxBytes`. */
export async function readSmallFile(path: string, maxBytes: number): Promise<string> {
  const { fh, size } = await openRegular(path);
  try {
    const tooBig = new NotRegularFile(path, `is larger than ${maxBytes} bytes`);
    if (size > maxBytes) throw tooBig;
    const bytes = await readAtMost(fh, maxBytes);
    if (bytes.length > maxBytes) throw tooBig;
    return bytes.toString('utf8');
  } finally {
    await fh.close();
  }
}

/** MD5 as Manta's Content-MD5 (base64) and as md5sum(1) prints it (hex). */
export async function md5File(path: string, onProgress?: HashProgress): Promise<{ md5: string; md5hex: string; size: number }> {
  const { digests, size } = await digestFile(path, 'md5', onProgress);
  return { md5: digests.md5.toString('base64'), md5hex: digests.md5.toString('hex'), size };
}

export async function sha1File(path: string, onProgress?: HashProgress): Promise<{ sha1: string; size: number }> {
  const { digests, size } = await digestFile(path, 'sha1', onProgress);
  return { sha1: digests.sha1.toString('hex'), size };
}

/** What publish needs of every file, in one read: MD5 (base64 and hex), SHA-1 and SHA-256 (hex). */
export interface FileDigests {
  md5: string;
  md5hex: string;
  sha1: string;
  sha256: string;
  size: number;
}

export async function publishDigests(path: string, onProgress?: HashProgress): Promise<FileDigests> {
  const { digests: d, size } = await digestFile(path, ['md5', 'sha1', 'sha256'], onProgress);
  return { md5: d.md5.toString('base64'), md5hex: d.md5.toString('hex'), sha1: d.sha1.toString('hex'), sha256: d.sha256.toString('hex'), size };
}

/** SHA-256 and SHA-512 (hex) and size of a file, in one read (build-info's digests of every output). */
export async function sha2File(path: string, onProgress?: HashProgress): Promise<{ sha256: string; sha512: string; size: number }> {
  const { digests: d, size } = await digestFile(path, ['sha256', 'sha512'], onProgress);
  return { sha256: d.sha256.toString('hex'), sha512: d.sha512.toString('hex'), size };
}

/**
 * A file's bytes for an upload, opened without following a final symlink
 * (ELOOP): a file swapped for a link after it was checked is not read.
 */
export function readNoFollow(path: string): Readable {
  return Readable.from(
    (async function* () {
      const fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
      yield* fh.createReadStream();
    })(),
    { objectMode: false },
  );
}

/** What a directory is, for the error when it cannot be made: `{ what: 'output directory', flag: '--output-dir' }`. */
export interface DirLabel {
  what: string;
  flag?: string;
  /** Mode of the directories made (default 0755: root's dirs on a shared agent are not group-writable whatever the umask). */
  mode?: number;
}

/** Lost races with another process creating the same component, before giving up. */
const ENSURE_DIR_ATTEMPTS = 3;

const ERRNO_TEXT: Record<string, string> = {
  EACCES: 'permission denied',
  EPERM: 'not permitted',
  EROFS: 'read-only file system',
  ENAMETOOLONG: 'name too long',
  ENOSPC: 'no space left',
  ELOOP: 'too many levels of symlinks',
  ENOTDIR: 'a component is not a directory',
  // mkdir of a child of an existing directory: procfs, sysfs and the like refuse new names this way.
  ENOENT: 'this file system does not allow it',
};

/**
 * `mkdir -p` for a path a user gave, bounded: one component at a time,
 * looked at with lstat first. Node's recursive mkdir loops forever where
 * a file system answers ENOENT for a child of an existing directory
 * (/proc/nope) and blocks the event loop in its sync form; this fails
 * instead, with one line naming the path and its flag. A symlink to a
 * directory is followed; a dangling one, or anything else that is not a
 * directory, is refused.
 */
export async function ensureDir(path: string, label: DirLabel): Promise<void> {
  const abs = resolve(path);
  const fail = (at: string, why: string, code?: string): UsageError =>
    new UsageError(
      `cannot create ${label.what} ${abs}${label.flag ? ` (${label.flag})` : ''}: ${at === abs ? '' : `${at}: `}${why}${code ? ` (${code})` : ''}`,
    );
  const failErr = (at: string, err: NodeJS.ErrnoException): UsageError => fail(at, ERRNO_TEXT[err.code ?? ''] ?? oneLine(err), err.code);
  let at = '/';
  for (const part of abs.split('/').filter(Boolean)) {
    at = join(at, part);
    for (let attempt = 1; ; attempt++) {
      const st = await lstat(at).catch((err: NodeJS.ErrnoException) => err);
      if (st instanceof Error) {
        if (st.code !== 'ENOENT') throw failErr(at, st);
        const err = await mkdir(at, { mode: label.mode ?? 0o755 }).then(
          () => undefined,
          (e: NodeJS.ErrnoException) => e,
        );
        if (!err) break;
        // Someone else made it between our look and our mkdir: look again, a few times.
        if (err.code === 'EEXIST' && attempt < ENSURE_DIR_ATTEMPTS) continue;
        throw failErr(at, err);
      }
      if (st.isDirectory()) break;
      if (!st.isSymbolicLink()) throw fail(at, 'exists and is not a directory');
      const target = await stat(at).catch(() => undefined);
      if (target?.isDirectory()) break;
      const to = await readlink(at).catch(() => '?');
      throw fail(at, target ? `is a symlink to ${to}, which is not a directory` : `is a dangling symlink (to ${to})`);
    }
  }
}
