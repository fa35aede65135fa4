/**
 * Where the package lockfile is (beside the build definition), reading it
 * as untrusted input (a regular file, not a link, bounded; the lock's own
 * rules in pkgsrc/lock) and writing it (temp name and rename: a link put
 * where the lockfile goes is replaced, never written through).
 */
import { basename, dirname, join, resolve } from 'node:path';
import { UsageError } from '../core/errors.js';
import { writeAtomic } from '../core/files.js';
import { DEFAULT_LOCKFILE, MAX_LOCKFILE_BYTES, checkLockFits, lockText, parseLock, type PackageLock } from '../pkgsrc/lock.js';
import { parseInputJson, readInputFile } from './input-file.js';
import type { DefinitionFile } from './resolve.js';

/**
 * --lock-file, else `<stem>.lock.json` beside --config, else
 * ./buildimage.lock.json; one image of a definition with several has its
 * own, `<stem>.<image>.lock.json` (buildimage.api.lock.json).
 */
export function lockfilePath(given: string | undefined, config: string | undefined, image?: string): string {
  if (given) return resolve(given);
  if (!config) return resolve(DEFAULT_LOCKFILE);
  const stem = basename(config).replace(/\.json$/, '');
  if (image !== undefined) return resolve(dirname(config), `${stem}.${image}.lock.json`);
  return resolve(dirname(config), stem === 'buildimage' ? DEFAULT_LOCKFILE : `${stem}.lock.json`);
}

/**
 * The lockfile `buildimage lock --state` writes. A definition of several
 * images gives each its own, and a state does not say which image it built:
 * then only --lock-file says where.
 */
export function lockfileForState(given: string | undefined, file: DefinitionFile | undefined): string {
  const images = file?.images;
  if (given === undefined && file && images?.length) {
    const names = images.map((i) => i.name);
    throw new UsageError(
      `--config ${file.path} defines ${names.length} images (${names.slice(0, 5).join(', ')}${names.length > 5 ? ', …' : ''}), each with its own lockfile: lock cannot tell which one this state built`,
      `pass --lock-file ${lockfilePath(undefined, file.path, names[0])} (or that image's "lock-file"), or lock at build time: build --only ${names[0]} --write-lock`,
    );
  }
  return lockfilePath(given, file?.path);
}

/** The lock a --locked build installs, checked against the build's own package list. */
export function readLockfile(path: string, def?: { packages: string[]; upgrade: boolean }): PackageLock {
  const what = `lockfile ${path}`;
  const hint = 'write one with `buildimage build --write-lock` (or `buildimage lock --state S` after pkgadd)';
  const text = readInputFile(path, MAX_LOCKFILE_BYTES, what, hint, { noFollow: true });
  const lock = parseLock(parseInputJson(text, what), what);
  if (def) checkLockFits(lock, def, what);
  return lock;
}

export async function writeLockfile(path: string, lock: PackageLock): Promise<void> {
  try {
    await writeAtomic(join(dirname(path), basename(path)), lockText(lock));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new UsageError(`cannot write lockfile ${path}: ${code === 'EISDIR' ? 'it is a directory' : code === 'ENOENT' ? 'no such directory' : (code ?? (err as Error).message)}`, 'pass --lock-file FILE');
  }
}
