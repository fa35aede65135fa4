/**
 * Hashing the bits: regular files only (core/files reads no link, no FIFO),
 * with progress, since a 1.4 GiB image takes seconds to hash: a live line on
 * a TTY, otherwise a log line every few seconds, as uploads show theirs.
 */
import { lstat } from 'node:fs/promises';
import { PublishError } from '../core/errors.js';
import { NotRegularFile, type HashProgress } from '../core/files.js';
import { startProgress, type ProgressOptions } from '../core/progress.js';

/** How hashing progress shows (tests and callers pick the TTY line or the log interval). */
export type HashProgressOptions = Pick<ProgressOptions, 'everyMs' | 'live'>;

/**
 * `hash(path, onProgress)` over a bits file or build output, `what` naming it
 * in errors ("bits file"), `label` in progress lines ("hashing demo/x.zfs.gz (MD5)").
 */
export async function hashBits<T>(
  path: string,
  what: string,
  label: string,
  hash: (path: string, onProgress: HashProgress) => Promise<T>,
  progress?: HashProgressOptions,
): Promise<T> {
  const total = (await lstat(path).catch(() => undefined))?.size;
  const p = startProgress(label, { unit: 'bytes', total, ...progress });
  try {
    return await hash(path, (b) => p.update(b));
  } catch (err) {
    if (err instanceof NotRegularFile) throw new PublishError(`${what} ${path} ${err.why}; only regular files are published`);
    if ((err as NodeJS.ErrnoException).syscall) throw new PublishError(`${what} ${path} cannot be read: ${(err as Error).message}`);
    throw err;
  } finally {
    p.done();
  }
}
