/**
 * The worker side of copyTree (copy.ts): does batches of file system jobs
 * with synchronous calls, so each file costs only its system calls — on a
 * FUSE file system every call is a round trip to the daemon, and several
 * workers keep several round trips in flight. A proto entry is looked at
 * here (lstat), not by the walk, so the walk's thread makes almost no
 * garbage per file and its heap stays small however many files there are.
 * A file is created in place with its mode, written, and gets owner (only
 * when it differs), special mode bits and times through its descriptor:
 * CREATE, WRITE, SETATTR, RELEASE, where `rsync -a` also renames a temp
 * file and `fs.copyFile` truncates and chmods.
 */
import {
  chmodSync, chownSync, closeSync, constants, fchmodSync, fchownSync, futimesSync, lchownSync, linkSync, lstatSync,
  lutimesSync, openSync, readSync, readlinkSync, symlinkSync, unlinkSync, utimesSync, writeSync, type Stats,
} from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';

/** Owner, mode and times to give a path; chown/chmod only when asked. */
export interface Meta {
  uid: number;
  gid: number;
  /** Full mode bits (0o7777). */
  mode: number;
  /** Seconds, fractional. */
  atime: number;
  mtime: number;
  chown: boolean;
  chmod: boolean;
}

/** Who the copy runs as, to know when a created entry needs chown/chmod. */
export interface WorkerInit {
  uid: number;
  gid: number;
  umask: number;
}

/**
 * A proto file or symlink (the walk knows only that it is no directory).
 * `defer`: a file with other hardlinks is handed back, not copied, so the
 * walk can copy the first of each set once and link the rest.
 */
export interface EntryJob {
  kind: 'entry';
  seq: number;
  src: string;
  dest: string;
  replace: boolean;
  parentSetgid: boolean;
  defer: boolean;
}

/** A file whose data is in hand (image/extract: an archive's small files). */
export type WriteJob = { kind: 'write'; dest: string; data: Uint8Array; replace: boolean } & Meta;
/** A symlink to make (image/extract); chmod is ignored. */
export type SymlinkJob = { kind: 'symlink'; dest: string; target: string; replace: boolean } & Meta;

export type Job =
  | EntryJob
  | WriteJob
  | SymlinkJob
  | { kind: 'link'; dest: string; first: string; replace: boolean }
  | ({ kind: 'dir'; dest: string } & Meta);

/** A file with more than one link, handed back to the walk; `key` is the proto file's dev:ino. */
export type Deferred = EntryJob & { key: string };

export interface BatchResult {
  id: number;
  /** The first failure: the batch stops there. code ESPECIAL: a device, fifo or socket in the proto. */
  error?: { path: string; message: string; code?: string; errno?: number };
  files: number;
  symlinks: number;
  bytes: number;
  deferred: Deferred[];
}

/** Owner and mode for an entry just created with `createMode` under `parentSetgid`. */
export function metaFor(st: Stats, createMode: number, parentSetgid: boolean, who: WorkerInit): Meta {
  return {
    uid: st.uid,
    gid: st.gid,
    mode: st.mode & 0o7777,
    atime: st.atimeMs / 1000,
    mtime: st.mtimeMs / 1000,
    chown: st.uid !== who.uid || st.gid !== who.gid || parentSetgid,
    chmod: (st.mode & 0o7777) !== (createMode & ~who.umask),
  };
}

const BUF_SIZE = 1024 * 1024;
let buf: Buffer | undefined;

/** Creates `dest` (never through a link), fills it with `fill(fd)`, then owner, mode and times as copyFile does. */
export function writeNew(dest: string, replace: boolean, m: Meta, fill: (fd: number) => number): number {
  if (replace) unlinkSync(dest);
  const out = openSync(dest, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, m.mode & 0o777);
  try {
    const bytes = fill(out);
    // After the data (a write may clear set-id bits), chown before chmod (chown clears them).
    if (m.chown) fchownSync(out, m.uid, m.gid);
    if (m.chmod) fchmodSync(out, m.mode & 0o7777);
    futimesSync(out, m.atime, m.mtime);
    return bytes;
  } finally {
    closeSync(out);
  }
}

/** Writes all of `data` to `fd`. */
export function writeAll(fd: number, data: Uint8Array): number {
  for (let off = 0; off < data.length; ) off += writeSync(fd, data, off, data.length - off);
  return data.length;
}

function copyFile(src: string, dest: string, replace: boolean, st: Stats, m: Meta): number {
  if (replace) unlinkSync(dest);
  const out = openSync(dest, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, m.mode & 0o777);
  let bytes = 0;
  try {
    if (st.size > 0) {
      buf ??= Buffer.allocUnsafe(BUF_SIZE);
      const inp = openSync(src, constants.O_RDONLY | constants.O_NOFOLLOW);
      try {
        for (;;) {
          const n = readSync(inp, buf, 0, BUF_SIZE, null);
          if (n === 0) break;
          for (let off = 0; off < n; ) off += writeSync(out, buf, off, n - off);
          bytes += n;
        }
      } finally {
        closeSync(inp);
      }
    }
    // After the data (a write may clear set-id bits), chown before chmod (chown clears them).
    if (m.chown) fchownSync(out, m.uid, m.gid);
    if (m.chmod) fchmodSync(out, m.mode & 0o7777);
    futimesSync(out, m.atime, m.mtime);
  } finally {
    closeSync(out);
  }
  return bytes;
}

class SpecialFileError extends Error {
  readonly code = 'ESPECIAL';
  constructor() {
    super('is a special file (device, fifo or socket), not supported in a proto dir');
  }
}

function runEntry(j: EntryJob, r: BatchResult, who: WorkerInit): void {
  const st = lstatSync(j.src);
  if (st.isSymbolicLink()) {
    const m = metaFor(st, 0o777, j.parentSetgid, who);
    if (j.replace) unlinkSync(j.dest);
    symlinkSync(readlinkSync(j.src), j.dest);
    if (m.chown) lchownSync(j.dest, m.uid, m.gid);
    lutimesSync(j.dest, m.atime, m.mtime);
    r.symlinks++;
  } else if (st.isFile()) {
    if (j.defer && st.nlink > 1) {
      r.deferred.push({ ...j, key: `${st.dev}:${st.ino}` });
      return;
    }
    r.bytes += copyFile(j.src, j.dest, j.replace, st, metaFor(st, st.mode & 0o777, j.parentSetgid, who));
    r.files++;
  } else {
    throw new SpecialFileError();
  }
}

function runJob(j: Job, r: BatchResult, who: WorkerInit): void {
  switch (j.kind) {
    case 'entry':
      return runEntry(j, r, who);
    case 'link':
      if (j.replace) unlinkSync(j.dest);
      linkSync(j.first, j.dest);
      return;
    case 'write':
      r.bytes += writeNew(j.dest, j.replace, j, (fd) => writeAll(fd, j.data));
      r.files++;
      return;
    case 'symlink':
      if (j.replace) unlinkSync(j.dest);
      symlinkSync(j.target, j.dest);
      if (j.chown) lchownSync(j.dest, j.uid, j.gid);
      lutimesSync(j.dest, j.atime, j.mtime);
      r.symlinks++;
      return;
    case 'dir':
      if (j.chown) chownSync(j.dest, j.uid, j.gid);
      if (j.chmod) chmodSync(j.dest, j.mode & 0o7777);
      utimesSync(j.dest, j.atime, j.mtime);
      return;
  }
}

export function runBatch(id: number, jobs: Job[], who: WorkerInit): BatchResult {
  const r: BatchResult = { id, files: 0, symlinks: 0, bytes: 0, deferred: [] };
  for (const j of jobs) {
    try {
      runJob(j, r, who);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      r.error = { path: j.kind === 'entry' ? j.src : j.dest, message: e.message, code: e.code, errno: e.errno };
      break;
    }
  }
  return r;
}

parentPort?.on('message', (m: { id: number; jobs: Job[] }) => parentPort!.postMessage(runBatch(m.id, m.jobs, workerData as WorkerInit)));
