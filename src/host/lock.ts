/**
 * Cross-process lock files. Node has no fcntl locks, so a lock is a file
 * created with O_EXCL holding the owner's pid; a lock whose pid is gone
 * (kill -9, crash) is stale and is broken, under a short-lived `.break`
 * directory so that two waiters never both break it.
 */
import { mkdir, open, readFile, rm, rmdir, stat, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { BuildError } from '../core/errors.js';
import { ensureDir } from '../core/files.js';
import { cancelSignalForNewWork } from '../core/interrupt.js';

export interface LockInfo {
  pid: number;
  host: string;
  since: string;
  purpose?: string;
}

export interface Lock {
  readonly path: string;
  release(): Promise<void>;
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export async function readLock(path: string): Promise<LockInfo | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as LockInfo;
  } catch {
    return undefined;
  }
}

/** A lock is held when its file names a live process on this host. */
export async function lockHeld(path: string): Promise<boolean> {
  const info = await readLock(path);
  return !!info && info.host === hostname() && pidAlive(info.pid);
}

async function tryCreate(path: string, purpose?: string): Promise<boolean> {
  try {
    const fh = await open(path, 'wx', 0o644);
    const info: LockInfo = { pid: process.pid, host: hostname(), since: new Date().toISOString(), purpose };
    await fh.writeFile(JSON.stringify(info));
    await fh.close();
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw new BuildError(`cannot create lock ${path}: ${(err as Error).message}`);
  }
}

/** Removes the lock at `path` if it is stale. Returns true if it did. */
async function breakIfStale(path: string): Promise<boolean> {
  const info = await readLock(path);
  // An unreadable file may be a lock being written right now: give it time.
  if (!info) {
    const st = await stat(path).catch(() => undefined);
    if (st && Date.now() - st.mtimeMs < 5000) return false;
  } else if (info.host !== hostname() || pidAlive(info.pid)) {
    return false;
  }
  const breaker = `${path}.break`;
  try {
    await mkdir(breaker);
  } catch {
    const st = await stat(breaker).catch(() => undefined);
    if (st && Date.now() - st.mtimeMs > 30_000) await rmdir(breaker).catch(() => undefined);
    return false;
  }
  try {
    const again = await readLock(path);
    if (JSON.stringify(again) === JSON.stringify(info)) await unlink(path).catch(() => undefined);
    return true;
  } finally {
    await rmdir(breaker).catch(() => undefined);
  }
}

export interface AcquireOptions {
  purpose?: string;
  /** Called once when the lock is busy and we start waiting. */
  onWait?: (holder: LockInfo | undefined) => void;
  timeoutMs?: number;
  pollMs?: number;
}

function ownLock(path: string): Lock {
  return {
    path,
    release: async () => {
      const info = await readLock(path);
      if (info?.pid === process.pid) await rm(path, { force: true });
    },
  };
}

export async function acquireLock(path: string, opts: AcquireOptions = {}): Promise<Lock> {
  await ensureDir(dirname(path), { what: 'lock directory' });
  const deadline = Date.now() + (opts.timeoutMs ?? 60 * 60 * 1000);
  let told = false;
  for (;;) {
    if (await tryCreate(path, opts.purpose)) return ownLock(path);
    if (await breakIfStale(path)) continue;
    if (!told) {
      told = true;
      opts.onWait?.(await readLock(path));
    }
    if (Date.now() > deadline) throw new BuildError(`timed out waiting for lock ${path}`);
    await sleep(opts.pollMs ?? 200, undefined, { signal: cancelSignalForNewWork() });
  }
}

/**
 * Takes the lock at `path` now (breaking a stale one), or returns who holds
 * it: for work that must not wait behind another process, only refuse. The
 * lock's directory must exist.
 */
export async function tryLock(path: string, purpose?: string): Promise<Lock | { holder: LockInfo | undefined }> {
  for (let i = 0; i < 3; i++) {
    if (await tryCreate(path, purpose)) return ownLock(path);
    if (!(await breakIfStale(path))) break;
  }
  return { holder: await readLock(path) };
}
