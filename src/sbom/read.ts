/**
 * Reading an image root for the SBOM. The root is hostile input: what the
 * proto, the base and every package's install script left there. A file is
 * read only when lstat says it is a regular file no larger than the bound
 * (a device node is never opened, a link never followed), then opened
 * without following a link or blocking, and checked again by fstat to be
 * the file lstat saw. Directories are walked by their own entries (a link
 * to a directory is an entry, not a directory), never across a mount.
 */
import { constants } from 'node:fs';
import { lstat, open } from 'node:fs/promises';
import { join } from 'node:path';
import { readAtMost } from '../core/files.js';

/** Why a file was not read: one phrase for a warning (it never quotes the file). */
export class Unreadable extends Error {}

/** The text of `path`, a regular file of at most `maxBytes`; else throws Unreadable (ENOENT stays an ENOENT error). */
export async function readBounded(path: string, maxBytes: number): Promise<string> {
  const st = await lstat(path);
  if (st.isSymbolicLink()) throw new Unreadable('is a symlink');
  if (!st.isFile()) throw new Unreadable('is not a regular file');
  if (st.size > maxBytes) throw new Unreadable(`is larger than ${maxBytes} bytes (${st.size})`);
  const fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK).catch((err: NodeJS.ErrnoException) => {
    throw err.code === 'ELOOP' ? new Unreadable('is a symlink') : err;
  });
  try {
    const fst = await fh.stat();
    if (!fst.isFile() || fst.ino !== st.ino || fst.dev !== st.dev) throw new Unreadable('changed while it was read');
    // Never more than the bound, even if it grew since.
    const bytes = await readAtMost(fh, maxBytes);
    if (bytes.length > maxBytes) throw new Unreadable(`is larger than ${maxBytes} bytes`);
    return bytes.toString('utf8');
  } finally {
    await fh.close();
  }
}

/**
 * `rel` (a path below `root`, '' for the root itself) when every component
 * is a real directory on the root's file system; else undefined with the
 * reason (missing, a symlink, a file, a mount).
 */
export async function realDirBelow(root: string, rel: string): Promise<{ path?: string; why?: string }> {
  const rootSt = await lstat(root);
  let path = root;
  for (const comp of rel.split('/').filter((c) => c && c !== '.')) {
    if (comp === '..') return { why: 'has ".." in it' };
    path = join(path, comp);
    const st = await lstat(path).catch(() => undefined);
    if (!st) return { why: 'does not exist' };
    if (st.isSymbolicLink()) return { why: `${JSON.stringify(path.slice(root.length))} is a symlink` };
    if (!st.isDirectory()) return { why: `${JSON.stringify(path.slice(root.length))} is not a directory` };
    if (st.dev !== rootSt.dev) return { why: `${JSON.stringify(path.slice(root.length))} is another file system` };
  }
  return { path };
}
