/**
 * The package cache on the build machine: pkgsrc package files fetched
 * once, kept under the work dir (core/layout `packageCacheDir`) for every
 * later build with the same work dir, bounded in size, least recently used
 * evicted.
 *
 *   <cache>/<repo key>/<sha256>-<FILE_NAME>   one package file, by the sha256 of its
 *                                             repository directory's URL and of its bytes
 *   <cache>/tmp/<pid>-<random>                a download in progress
 *
 * The cache is hostile input: another build on the agent (or anything else
 * running as root) may have written it. A file is offered only when it is
 * a regular file with one link, opened without following a link, whose
 * size is the repository's FILE_SIZE, whose sha256 is the one in its name,
 * and whose FILE_CKSUM, when the summary has one, matches; anything else
 * found in the cache is removed (a link is removed, never followed).
 * Files arrive by rename from tmp/, so a reader never sees half of one;
 * eviction runs under a lock; a file opened for serving stays readable
 * when another build evicts it.
 */
import { createHash, randomBytes } from 'node:crypto';
import { constants, type Stats } from 'node:fs';
import { lstat, mkdir, open, opendir, rename, rm, rmdir, unlink, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { NEW_FILE_FLAGS } from '../core/files.js';
import { log } from '../core/log.js';
import { acquireLock, pidAlive } from '../host/lock.js';
import { isPackageFileName, type SummaryFile } from './summary.js';

/** `--package-cache-size`'s default, in bytes. */
export const DEFAULT_PACKAGE_CACHE_BYTES = 2 * 1024 ** 3;
/** Entries looked at per directory when evicting: the walk is bounded whatever was planted. */
const MAX_ENTRIES_PER_DIR = 100_000;
/** A download in progress whose process is gone, or older than this, is removed when evicting. */
const STALE_TEMP_MS = 24 * 3600 * 1000;
const TEMP_DIR = 'tmp';
const KEY_RE = /^[0-9a-f]{32}$/;
const ENTRY_RE = /^[0-9a-f]{64}-/;
const TEMP_RE = /^(\d+)-[0-9a-f]{16}$/;

/** The directory of one repository in the cache: the first 128 bits of the sha256 of its URL (without credentials). */
export function repositoryKey(dirUrl: string): string {
  return createHash('sha256').update(dirUrl).digest('hex').slice(0, 32);
}

/** A package file found in the cache and checked, open for reading. */
export interface CachedFile {
  fh: FileHandle;
  size: number;
  sha256: string;
}

/** A download being written into the cache's tmp/. */
export interface TempFile {
  path: string;
  fh: FileHandle;
}

/** Why the cache cannot be used (a planted link, a directory others can write): the build goes on without it. */
export class CacheUnusable extends Error {}

const uid = (): number => process.getuid?.() ?? 0;

/** `path` as a real directory of ours (made when missing): no link, ours, nobody else may write it. */
async function ownDir(path: string): Promise<void> {
  let st: Stats | undefined = await lstat(path).catch(() => undefined);
  if (!st) {
    await mkdir(path, { mode: 0o755 }).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') throw new CacheUnusable(`cannot create ${path}: ${err.message}`);
    });
    st = await lstat(path).catch(() => undefined);
  }
  if (!st) throw new CacheUnusable(`${path} vanished`);
  if (st.isSymbolicLink()) throw new CacheUnusable(`${path} is a symlink`);
  if (!st.isDirectory()) throw new CacheUnusable(`${path} is not a directory`);
  if (st.uid !== uid() && st.uid !== 0) throw new CacheUnusable(`${path} is owned by uid ${st.uid}`);
  if (st.mode & 0o022) throw new CacheUnusable(`${path} is writable by others (mode ${(st.mode & 0o7777).toString(8)})`);
}

/** Removes what is at `path` without following it (a link goes, not what it points to). */
async function remove(path: string): Promise<void> {
  await rm(path, { recursive: true, force: true }).catch(() => undefined);
}

export class PackageCache {
  /** Files found bad (wrong size, digest, kind) and removed during this build. */
  dropped = 0;

  private constructor(
    readonly dir: string,
    private readonly lockPath: string,
    readonly maxBytes: number,
  ) {}

  /**
   * The cache at `dir` (its parents made as needed), or undefined with a
   * warning when it cannot be trusted: the build then fetches as if there
   * were no cache.
   */
  static async open(o: { dir: string; lockPath: string; maxBytes: number }): Promise<PackageCache | undefined> {
    try {
      // From the work dir down, each part checked before it is used (ensureDir would follow a planted link).
      for (const d of [dirname(o.dir), o.dir, join(o.dir, TEMP_DIR)]) await ownDir(d);
    } catch (err) {
      log.warn(`package cache not used: ${(err as Error).message}`);
      return undefined;
    }
    return new PackageCache(o.dir, o.lockPath, o.maxBytes);
  }

  private keyDir(key: string): string {
    if (!KEY_RE.test(key)) throw new Error(`bad repository key ${key}`);
    return join(this.dir, key);
  }

  /**
   * The cached copy of `file` from the repository `key`, checked against
   * its summary entry, or undefined. Every copy that fails a check is
   * removed. A hit is marked used now (its mtime: eviction's order).
   */
  async lookup(key: string, file: SummaryFile): Promise<CachedFile | undefined> {
    if (file.cksum === 'unknown' || file.size > this.maxBytes) return undefined;
    const dir = this.keyDir(key);
    const st = await lstat(dir).catch(() => undefined);
    if (!st) return undefined;
    if (!st.isDirectory() || st.isSymbolicLink()) {
      log.warn(`package cache: ${dir} is not a directory of ours; removed`);
      await remove(dir);
      this.dropped++;
      return undefined;
    }
    const suffix = `-${file.fileName}`;
    const candidates: string[] = [];
    const d = await opendir(dir);
    let seen = 0;
    for await (const e of d) {
      if (++seen > MAX_ENTRIES_PER_DIR) break;
      if (e.name.length === 64 + suffix.length && e.name.endsWith(suffix) && ENTRY_RE.test(e.name)) candidates.push(e.name);
    }
    for (const name of candidates) {
      const found = await this.check(join(dir, name), name.slice(0, 64), file);
      if (found) return found;
    }
    return undefined;
  }

  /** Opens and verifies one entry; a bad one is removed (and counted), never followed. */
  private async check(path: string, sha256: string, file: SummaryFile): Promise<CachedFile | undefined> {
    const bad = async (why: string, fh?: FileHandle) => {
      await fh?.close();
      log.warn(`package cache: ${path} ${why}; removed, fetching ${file.fileName} again`);
      await unlink(path).catch(() => undefined);
      this.dropped++;
      return undefined;
    };
    let fh: FileHandle;
    try {
      fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return undefined; // evicted by another build meanwhile
      return bad(code === 'ELOOP' ? 'is a symlink' : `cannot be opened (${code ?? (err as Error).message})`);
    }
    const st = await fh.stat();
    if (!st.isFile()) return bad('is not a regular file', fh);
    // A hard link could be a file of the host's: never read it, never touch its times.
    if (st.nlink !== 1) return bad(`has ${st.nlink} links`, fh);
    if (st.size !== file.size) return bad(`has ${st.size} bytes, the repository's pkg_summary says ${file.size} (FILE_SIZE)`, fh);
    const cksum = file.cksum === 'unknown' ? undefined : file.cksum;
    const h256 = createHash('sha256');
    const hSum = cksum && cksum.alg !== 'sha256' ? createHash(cksum.alg) : undefined;
    const buf = Buffer.allocUnsafe(256 * 1024);
    let pos = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
      if (!bytesRead) break;
      h256.update(buf.subarray(0, bytesRead));
      hSum?.update(buf.subarray(0, bytesRead));
      pos += bytesRead;
      if (pos > file.size) break;
    }
    const digest = h256.digest('hex');
    if (pos !== file.size) return bad(`changed size while being read`, fh);
    if (digest !== sha256) return bad('does not have the sha256 in its name (corrupt or replaced)', fh);
    if (cksum && (hSum ? hSum.digest('hex') : digest) !== cksum.hex) return bad(`does not match the repository's pkg_summary (FILE_CKSUM ${cksum.alg})`, fh);
    const now = new Date();
    await fh.utimes(now, now).catch(() => undefined);
    return { fh, size: st.size, sha256 };
  }

  /** A new file in tmp/ for a download: created here (never an existing file or a link), 0600. */
  async newTemp(): Promise<TempFile> {
    await ownDir(join(this.dir, TEMP_DIR));
    const path = join(this.dir, TEMP_DIR, `${process.pid}-${randomBytes(8).toString('hex')}`);
    // Read back to serve it once it is checked: O_RDWR, otherwise as core/files makes a new file.
    return { path, fh: await open(path, (NEW_FILE_FLAGS & ~constants.O_WRONLY) | constants.O_RDWR, 0o600) };
  }

  /** Puts a checked download in place by rename (atomic: a reader sees the whole file or none). */
  async store(key: string, fileName: string, tempPath: string, sha256: string): Promise<void> {
    if (!isPackageFileName(fileName) || !/^[0-9a-f]{64}$/.test(sha256)) throw new Error(`bad cache entry ${fileName}`);
    const dir = this.keyDir(key);
    for (let attempt = 0; ; attempt++) {
      await ownDir(dir);
      try {
        await rename(tempPath, join(dir, `${sha256}-${fileName}`));
        return;
      } catch (err) {
        // Another build's eviction removed the empty directory between the two: once more.
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || attempt > 0) throw err;
      }
    }
  }

  /**
   * Under the cache's lock: removes what is not a cache entry (links,
   * other files, stale downloads), then the least recently used entries
   * until the rest fit in the bound. Returns what it evicted.
   */
  async evict(): Promise<{ files: number; bytes: number }> {
    const lock = await acquireLock(this.lockPath, { purpose: 'package cache eviction', timeoutMs: 10 * 60 * 1000 });
    try {
      const entries: Array<{ path: string; size: number; mtimeMs: number }> = [];
      for (const top of await this.list(this.dir)) {
        const path = join(this.dir, top.name);
        if (top.name === TEMP_DIR && top.st.isDirectory()) {
          for (const t of await this.list(path)) {
            const m = TEMP_RE.exec(t.name);
            const stale = !m || !t.st.isFile() || !pidAlive(Number(m[1])) || Date.now() - t.st.mtimeMs > STALE_TEMP_MS;
            if (stale && !(m && Number(m[1]) === process.pid)) await remove(join(path, t.name));
          }
          continue;
        }
        if (!KEY_RE.test(top.name) || !top.st.isDirectory()) {
          await remove(path);
          continue;
        }
        const files = await this.list(path);
        for (const f of files) {
          const name = f.name.slice(65);
          if (ENTRY_RE.test(f.name) && isPackageFileName(name) && f.st.isFile() && f.st.nlink === 1) {
            entries.push({ path: join(path, f.name), size: f.st.size, mtimeMs: f.st.mtimeMs });
          } else {
            await remove(join(path, f.name));
          }
        }
        // Empty now? Then it goes (a build storing into it meanwhile makes it again).
        await rmdir(path).catch(() => undefined);
      }
      entries.sort((a, b) => a.mtimeMs - b.mtimeMs);
      let total = entries.reduce((s, e) => s + e.size, 0);
      let files = 0;
      let bytes = 0;
      for (const e of entries) {
        if (total <= this.maxBytes) break;
        await unlink(e.path).catch(() => undefined);
        total -= e.size;
        files++;
        bytes += e.size;
      }
      return { files, bytes };
    } finally {
      await lock.release();
    }
  }

  /** A directory's entries with their lstat (never followed), bounded. */
  private async list(dir: string): Promise<Array<{ name: string; st: Stats }>> {
    const out: Array<{ name: string; st: Stats }> = [];
    const d = await opendir(dir).catch(() => undefined);
    if (!d) return out;
    for await (const e of d) {
      if (out.length >= MAX_ENTRIES_PER_DIR) break;
      const st = await lstat(join(dir, e.name)).catch(() => undefined);
      if (st) out.push({ name: e.name, st });
    }
    return out;
  }
}
