/**
 * Copies a proto directory into an image root, as `rsync -a DIR/ ROOT/`
 * would, plus hardlinks (rsync needs -H) and without rsync's
 * temp-file-and-rename per file: files are written in place, several at a
 * time. Directories that are symlinks in the image (e.g. `bin -> ./usr/bin`)
 * are followed inside the image root, never out of it.
 */
import { chmod, chown, copyFile, link, lchown, lstat, lutimes, mkdir, readdir, readlink, rm, symlink, utimes } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { join, relative } from 'node:path';
import { BuildError } from '../errors.js';
import { throwIfInterrupted } from '../interrupt.js';
import { isUnder, resolveInRoot } from './rootfs.js';

/** ENOSPC, or EDQUOT (which Node may only know by number: zfs-fuse returns it for quotas). */
export function isNoSpace(err: unknown): boolean {
  const e = err as NodeJS.ErrnoException;
  return e?.code === 'ENOSPC' || e?.code === 'EDQUOT' || e?.errno === -28 || e?.errno === -122;
}

export interface CopyStats {
  files: number;
  dirs: number;
  symlinks: number;
  hardlinks: number;
  bytes: number;
}

export interface CopyOptions {
  /** Files copied at once. */
  concurrency?: number;
  onProgress?: (stats: CopyStats) => void;
}

/** Runs at most `n` tasks at a time. */
class Limiter {
  private active = 0;
  private readonly queue: Array<() => void> = [];
  constructor(private readonly n: number) {}
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.n) await new Promise<void>((r) => this.queue.push(r));
    this.active++;
    try {
      return await fn();
    } finally {
      this.active--;
      this.queue.shift()?.();
    }
  }
}

async function setMeta(path: string, st: Stats): Promise<void> {
  await chown(path, st.uid, st.gid);
  // chmod after chown: chown clears setuid/setgid bits.
  await chmod(path, st.mode & 0o7777);
  await utimes(path, st.atime, st.mtime);
}

export async function copyTree(src: string, root: string, opts: CopyOptions = {}): Promise<CopyStats> {
  const stats: CopyStats = { files: 0, dirs: 0, symlinks: 0, hardlinks: 0, bytes: 0 };
  const limiter = new Limiter(opts.concurrency ?? 16);
  const linked = new Map<string, string>();
  const srcTop = await lstat(src).catch(() => undefined);
  if (!srcTop?.isDirectory()) throw new BuildError(`proto directory ${src} is not a directory`);

  const fail = (what: string, err: unknown): never => {
    if (isNoSpace(err)) {
      throw new BuildError(`no space left copying ${what} into the image`, { cause: err, hint: "the dataset root's pool or quota is full" });
    }
    throw new BuildError(`copy failed at ${what}: ${(err as Error).message}`, { cause: err });
  };

  async function copyEntry(s: string, d: string, st: Stats): Promise<void> {
    const existing = await lstat(d).catch(() => undefined);
    if (st.isDirectory()) {
      let into = d;
      if (existing?.isSymbolicLink()) {
        const target = await resolveInRoot(root, relative(root, d));
        const tst = await lstat(target).catch(() => undefined);
        if (tst?.isDirectory() && isUnder(root, target)) {
          // Keep the image's directory link and fill what it points to.
          await copyDir(s, target, false);
          return;
        }
        await rm(d);
      } else if (existing && !existing.isDirectory()) {
        await rm(d);
      }
      if (!existing || !existing.isDirectory()) await mkdir(into, { mode: 0o700 });
      await copyDir(s, into, true);
      return;
    }
    if (existing?.isDirectory()) throw new BuildError(`copy failed: ${d} is a directory in the image but not in the proto`);
    if (existing) await rm(d);
    if (st.isSymbolicLink()) {
      await symlink(await readlink(s), d);
      await lchown(d, st.uid, st.gid);
      await lutimes(d, st.atime, st.mtime);
      stats.symlinks++;
    } else if (st.isFile()) {
      const key = `${st.dev}:${st.ino}`;
      const first = st.nlink > 1 ? linked.get(key) : undefined;
      if (first) {
        await link(first, d);
        stats.hardlinks++;
        return;
      }
      if (st.nlink > 1) linked.set(key, d);
      await copyFile(s, d);
      await setMeta(d, st);
      stats.files++;
      stats.bytes += st.size;
    } else {
      throw new BuildError(`copy failed: ${s} is a special file (device, fifo or socket), not supported in a proto dir`);
    }
  }

  async function copyDir(s: string, d: string, applyMeta: boolean): Promise<void> {
    throwIfInterrupted();
    const entries = await readdir(s);
    const subdirs: Array<[string, string, Stats]> = [];
    await Promise.all(
      entries.map((name) =>
        limiter.run(async () => {
          const sp = join(s, name);
          const dp = join(d, name);
          const st = await lstat(sp);
          if (st.isDirectory()) subdirs.push([sp, dp, st]);
          else await copyEntry(sp, dp, st).catch((err) => (err instanceof BuildError ? Promise.reject(err) : fail(sp, err)));
        }),
      ),
    );
    opts.onProgress?.(stats);
    // Directories outside the limiter, so deep trees cannot starve it.
    for (const [sp, dp, st] of subdirs) {
      await copyEntry(sp, dp, st).catch((err) => (err instanceof BuildError ? Promise.reject(err) : fail(sp, err)));
    }
    if (applyMeta) {
      const st = await lstat(s);
      await setMeta(d, st);
      stats.dirs++;
    }
  }

  await mkdir(root, { recursive: true });
  await copyDir(src, root, true);
  return stats;
}
