/**
 * Files written whole or not at all, moved into place across file systems,
 * and hashed as they are read (interruptible: a SIGINT stops a long hash).
 */
import { createHash, randomBytes } from 'node:crypto';
import { constants, createReadStream } from 'node:fs';
import { copyFile, mkdir, open, rename, rm, writeFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { dirname } from 'node:path';
import { interruptSignal } from './interrupt.js';

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
  await mkdir(dirname(path), { recursive: true });
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

/** Reads `path` once and returns its digest and size. */
export async function digestFile(path: string, algorithm: 'md5' | 'sha1'): Promise<{ digest: Buffer; size: number }> {
  const h = createHash(algorithm);
  let size = 0;
  for await (const c of createReadStream(path, { signal: interruptSignal() })) {
    h.update(c as Buffer);
    size += (c as Buffer).length;
  }
  return { digest: h.digest(), size };
}

/** MD5 as Manta's Content-MD5 (base64) and as md5sum(1) prints it (hex). */
export async function md5File(path: string): Promise<{ md5: string; md5hex: string; size: number }> {
  const { digest, size } = await digestFile(path, 'md5');
  return { md5: digest.toString('base64'), md5hex: digest.toString('hex'), size };
}

export async function sha1File(path: string): Promise<{ sha1: string; size: number }> {
  const { digest, size } = await digestFile(path, 'sha1');
  return { sha1: digest.toString('hex'), size };
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
