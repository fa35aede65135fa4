/**
 * The worker side of copyTree (copy.ts): does batches of file system jobs
 * with synchronous calls, so each file costs only its system calls — on a
 * FUSE file system every call is a round trip to the daemon, and several
 * workers keep several round trips in flight. A file is created in place
 * with its mode, written, and gets owner (only when it differs), special
 * mode bits and times through its descriptor: CREATE, WRITE, SETATTR,
 * RELEASE, where `rsync -a` also renames a temp file and `fs.copyFile`
 * truncates and chmods.
 */
import {
  chmodSync, chownSync, closeSync, constants, fchmodSync, fchownSync, futimesSync, lchownSync, linkSync,
  lutimesSync, openSync, readSync, symlinkSync, unlinkSync, utimesSync, writeSync,
} from 'node:fs';
import { parentPort } from 'node:worker_threads';

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

export type Job =
  | ({ kind: 'file'; src: string; dest: string; replace: boolean; size: number } & Meta)
  | ({ kind: 'symlink'; dest: string; target: string; replace: boolean } & Meta)
  | { kind: 'link'; dest: string; first: string; replace: boolean }
  | ({ kind: 'dir'; dest: string } & Meta);

export interface BatchResult {
  id: number;
  /** The first failure: the batch stops there. */
  error?: { path: string; message: string; code?: string; errno?: number };
  files: number;
  bytes: number;
}

const BUF_SIZE = 1024 * 1024;
let buf: Buffer | undefined;

function copyFile(j: Extract<Job, { kind: 'file' }>): number {
  if (j.replace) unlinkSync(j.dest);
  const out = openSync(j.dest, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, j.mode & 0o777);
  let bytes = 0;
  try {
    if (j.size > 0) {
      buf ??= Buffer.allocUnsafe(BUF_SIZE);
      const inp = openSync(j.src, constants.O_RDONLY | constants.O_NOFOLLOW);
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
    if (j.chown) fchownSync(out, j.uid, j.gid);
    if (j.chmod) fchmodSync(out, j.mode & 0o7777);
    futimesSync(out, j.atime, j.mtime);
  } finally {
    closeSync(out);
  }
  return bytes;
}

function runJob(j: Job): number {
  switch (j.kind) {
    case 'file':
      return copyFile(j);
    case 'symlink':
      if (j.replace) unlinkSync(j.dest);
      symlinkSync(j.target, j.dest);
      if (j.chown) lchownSync(j.dest, j.uid, j.gid);
      lutimesSync(j.dest, j.atime, j.mtime);
      return 0;
    case 'link':
      if (j.replace) unlinkSync(j.dest);
      linkSync(j.first, j.dest);
      return 0;
    case 'dir':
      if (j.chown) chownSync(j.dest, j.uid, j.gid);
      if (j.chmod) chmodSync(j.dest, j.mode & 0o7777);
      utimesSync(j.dest, j.atime, j.mtime);
      return 0;
  }
}

export function runBatch(id: number, jobs: Job[]): BatchResult {
  const r: BatchResult = { id, files: 0, bytes: 0 };
  for (const j of jobs) {
    try {
      r.bytes += runJob(j);
      if (j.kind === 'file') r.files++;
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      r.error = { path: j.kind === 'file' ? j.src : j.dest, message: e.message, code: e.code, errno: e.errno };
      break;
    }
  }
  return r;
}

parentPort?.on('message', (m: { id: number; jobs: Job[] }) => parentPort!.postMessage(runBatch(m.id, m.jobs)));
