/**
 * The -L store: the same layout in a local (often NFS-mounted) directory,
 * pointers as relative symlinks as bits-upload.sh -L makes them. Files are
 * copied to a temp name, checked against the planned MD5, then renamed,
 * so a killed copy never looks like a finished one.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { lstat, mkdir, readdir, readlink, rename, rm, stat, symlink } from 'node:fs/promises';
import { basename, dirname, join, relative } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { PublishError } from '../core/errors.js';
import { interruptSignal } from '../core/interrupt.js';
import { md5File, readNoFollow, writeAtomic } from '../core/files.js';
import type { PutFileMeta, Store, StoreEntry } from './store.js';

const PARTIAL = '.partial-';

export class LocalStore implements Store {
  readonly kind = 'local' as const;
  readonly description: string;

  constructor(readonly root: string) {
    this.description = `local directory ${root}`;
  }

  isRoot(path: string): boolean {
    return path === '/' || dirname(path) === path;
  }

  async stat(path: string): Promise<StoreEntry | undefined> {
    const st = await lstat(path).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw new PublishError(`cannot read ${path}: ${err.message}`);
    });
    if (!st) return undefined;
    if (st.isSymbolicLink()) {
      // -d may well be a symlink to an NFS mount: that counts as a directory.
      if ((await stat(path).catch(() => undefined))?.isDirectory()) return { type: 'directory' };
      return { type: 'link', target: await readlink(path) };
    }
    if (st.isDirectory()) return { type: 'directory' };
    const { md5, size } = await md5File(path);
    return { type: 'object', md5, size };
  }

  async mkdir(path: string): Promise<void> {
    await mkdir(path).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') throw new PublishError(`cannot create ${path}: ${err.message}`);
    });
  }

  async putFile(path: string, localFile: string, meta: PutFileMeta, onProgress?: (bytes: number) => void): Promise<void> {
    // A copy killed earlier left a temp file: it is never reused, only removed.
    const dir = dirname(path);
    const stale = (await readdir(dir)).filter((n) => n.startsWith(basename(path) + PARTIAL));
    await Promise.all(stale.map((n) => rm(join(dir, n), { force: true })));
    const tmp = `${path}${PARTIAL}${process.pid}`;
    const h = createHash('md5');
    let sent = 0;
    const counter = new Transform({
      transform(chunk: Buffer, _e, cb) {
        h.update(chunk);
        sent += chunk.length;
        onProgress?.(sent);
        cb(null, chunk);
      },
    });
    try {
      await pipeline(readNoFollow(localFile), counter, createWriteStream(tmp, { flush: true }), { signal: interruptSignal() });
      const got = h.digest('base64');
      if (got !== meta.md5 || sent !== meta.size) {
        throw new PublishError(`${localFile} changed while publishing (MD5 ${got}, planned ${meta.md5})`, { hint: 'rerun the publish' });
      }
      await rename(tmp, path);
    } catch (err) {
      await rm(tmp, { force: true });
      if (err instanceof PublishError) throw err;
      if (interruptSignal().aborted) throw interruptSignal().reason;
      throw new PublishError(`cannot copy ${localFile} to ${path}: ${(err as Error).message}`, { cause: err });
    }
  }

  async putText(path: string, body: string): Promise<void> {
    await writeAtomic(path, body);
  }

  async pointsAt(path: string, target: string): Promise<boolean> {
    const e = await lstat(path).catch(() => undefined);
    return !!e?.isSymbolicLink() && (await readlink(path)) === relative(dirname(path), target);
  }

  /** Replaces the symlink atomically (a rename over it), never leaving the pointer missing. */
  async setPointer(path: string, target: string): Promise<void> {
    const cur = await lstat(path).catch(() => undefined);
    if (cur && !cur.isSymbolicLink()) throw new PublishError(`${path} exists and is not a symlink; not replacing it`);
    const tmp = `${path}${PARTIAL}${process.pid}`;
    await rm(tmp, { force: true });
    await symlink(relative(dirname(path), target), tmp);
    await rename(tmp, path);
  }

  artifactRef(path: string): string {
    return path;
  }

  close(): void {}
}
