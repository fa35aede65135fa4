/**
 * Extracts proto archives (eng's release tarball, the agents' prebuilt
 * tarballs) straight into an image root: what eng's `buildimage` target
 * did with gtar into a stage dir, `chown -R root:root` and a copy of
 * `stage/root`, in one pass and without the stage dir.
 *
 * `root/` inside an archive is the image's `/`; other top-level entries
 * (eng's `site/`) are skipped with one info line. An archive given with a
 * directory (`--add DIR=ARCHIVE`, eng's `tar -xf ARCHIVE -C
 * $(STAGEDIR)/$(X_PREBUILT_ROOTDIR)`) is extracted whole under DIR, whose
 * missing components are made as real directories. Archives are extracted in
 * order, later entries win. Owners are root:root unless asked to keep
 * them; modes (set-id bits too) and times are the archive's.
 *
 * Every entry is checked before anything is written, against what the
 * image root holds (its listing, read once per directory, plus what the
 * extraction made): no absolute names, no "..", nothing written through a
 * symlink (whoever made it: the base image, an earlier archive, this one);
 * a directory entry replaces a link, as gtar and `rsync -a` do; hard links
 * only to entries already in the image under `root/`; device nodes and
 * FIFOs refused. Symlink entries may point anywhere: they are only links in
 * the image. Small files are written by host/copy's worker threads (their
 * data handed over, several file system round trips in flight), big ones
 * here; directory owners, modes and times last.
 */
import {
  closeSync, constants, fchmodSync, fchownSync, futimesSync, linkSync, lstatSync, mkdirSync, openSync, readdirSync, readlinkSync, unlinkSync,
} from 'node:fs';
import { resolve } from 'node:path';
import { BuildError, BuildimageError, UsageError } from '../core/errors.js';
import { throwIfInterrupted } from '../core/interrupt.js';
import { log } from '../core/log.js';
import { DEFAULT_WORKERS, WorkerPool, currentUmask, isNoSpace } from '../host/copy.js';
import { writeAll, type Meta, type WorkerInit } from '../host/copy-worker.js';
import { realDirIn } from '../host/rootfs.js';
import { ArchiveFormatError, TarReader, openArchive, type TarEntry } from './tar.js';

/** Files up to this size are handed to the workers with their data; bigger ones are written here as they stream. */
const SMALL_FILE = 1 << 20;
/** Data handed to the workers and not yet written (at least BATCH_JOBS × SMALL_FILE, or the walk could wait forever). */
const MAX_IN_FLIGHT = 32 << 20;

export interface ExtractStats {
  archives: number;
  files: number;
  dirs: number;
  symlinks: number;
  hardlinks: number;
  bytes: number;
  /** Entries outside root/ (eng's site/). */
  ignored: number;
}

export interface ExtractOptions {
  /** Keep the archive's numeric owners instead of root:root. */
  keepOwners?: boolean;
  concurrency?: number;
  onProgress?: (stats: ExtractStats) => void;
}

type Kind = 'dir' | 'file' | 'link' | 'other';

interface Listing {
  kinds: Map<string, Kind>;
  setgid: boolean;
}

/** An archive to extract: its root/ into the image's /, or (with `dir`, an image path like `/opt/smartdc`) all of it under dir. */
export interface AddArchive {
  path: string;
  dir?: string;
}

/**
 * `ARCHIVE`, `DIR=ARCHIVE` or `=ARCHIVE` (an archive whose path holds a
 * "="): only the first "=" splits. DIR is an absolute image path
 * (`/opt/smartdc`) or eng's stage-relative one (`root/opt/smartdc`), the
 * same; it is kept as `/opt/smartdc`. No ".." in it. Stage-relative "."
 * (the stage dir) is the same as no DIR.
 */
export function parseAddArchive(text: string, label = '--add'): AddArchive {
  const eq = text.indexOf('=');
  if (eq < 0) return { path: text };
  const dirText = text.slice(0, eq);
  const path = text.slice(eq + 1);
  const bad = (why: string) => new UsageError(`${label} ${JSON.stringify(text)}: ${why}`, 'give ARCHIVE, or DIR=ARCHIVE with DIR like /opt/smartdc or root/opt/smartdc');
  if (path === '') throw bad('no archive after "="');
  if (dirText === '') return { path };
  if (dirText.includes('\0')) throw bad('DIR has a NUL');
  const comps = dirText.split('/').filter((c) => c !== '' && c !== '.');
  if (comps.includes('..')) throw bad('DIR has a ".." component');
  if (!dirText.startsWith('/')) {
    // Stage-relative "." is eng's stage dir itself: the archive's root/ is the image, as without DIR.
    if (comps.length === 0) return { path };
    if (comps[0] !== 'root') throw bad('DIR must be an absolute image path (/opt) or stage-relative under root/ (root/opt)');
    comps.shift();
  }
  return { path, dir: `/${comps.join('/')}` };
}

/** One line naming the archive and the entry. */
function refuse(archive: string, e: TarEntry, why: string): never {
  throw new BuildError(`archive ${archive}: ${JSON.stringify(e.name)} ${why}`, { hint: 'nothing was written outside the image; fix the archive' });
}

/**
 * The image-relative components of an archive name: undefined for an entry
 * outside root/, [] for root/ itself; with `under` (an archive given a
 * DIR), every entry, under DIR's components. Absolute names and ".." are
 * refused.
 */
export function imageComponents(name: string, under?: readonly string[]): { comps?: string[]; top?: string; problem?: string } {
  if (name === '') return { problem: 'has an empty name' };
  if (name.includes('\0')) return { problem: 'has a NUL in its name' };
  if (name.startsWith('/')) return { problem: 'is an absolute name: refusing to extract outside the image' };
  const comps = name.split('/').filter((c) => c !== '' && c !== '.');
  if (comps.includes('..')) return { problem: 'has a ".." component: refusing to extract outside the image' };
  if (under) return { comps: [...under, ...comps] };
  if (comps[0] !== 'root') return { top: comps[0] ?? '.' };
  return { comps: comps.slice(1) };
}

export async function extractArchives(archives: readonly (string | AddArchive)[], root: string, opts: ExtractOptions = {}): Promise<ExtractStats> {
  root = resolve(root);
  await realDirIn(root);
  const rootDev = lstatSync(root).dev;
  const stats: ExtractStats = { archives: 0, files: 0, dirs: 0, symlinks: 0, hardlinks: 0, bytes: 0, ignored: 0 };
  const who: WorkerInit = { umask: currentUmask(), uid: process.geteuid?.() ?? -1, gid: process.getegid?.() ?? -1 };
  const lists = new Map<string, Listing>();
  /** Symlinks this extraction made (a queued one may not exist yet), for messages. */
  const madeLinks = new Map<string, string>();
  /** Paths with a job in a worker's hands: touching one again waits for the workers first. */
  const pending = new Set<string>();
  /** Owner, mode and times of directories, set last (the last archive's entry wins). */
  const dirMeta = new Map<string, Meta>();
  let inFlight = 0;
  let byteWaiters: Array<() => void> = [];
  const pool = new WorkerPool(opts.concurrency ?? DEFAULT_WORKERS, who, (r) => {
    stats.files += r.files;
    stats.symlinks += r.symlinks;
    stats.bytes += r.bytes;
    inFlight -= r.bytes;
    const ws = byteWaiters;
    byteWaiters = [];
    for (const w of ws) w();
  });
  const check = () => {
    if (pool.error) throw pool.error instanceof Error ? pool.error : Object.assign(new Error(pool.error.message), pool.error);
  };
  const settle = async () => {
    await pool.drain();
    check();
    pending.clear();
  };

  /** A directory's listing, read once; a directory met for the first time is checked to be a real one in the dataset. */
  function listing(dir: string): Listing {
    let l = lists.get(dir);
    if (l) return l;
    const st = lstatSync(dir);
    if (!st.isDirectory() || st.dev !== rootDev) throw new BuildError(`${dir} is not a directory of the image's dataset: refusing to extract into it`);
    const kinds = new Map<string, Kind>();
    for (const d of readdirSync(dir, { withFileTypes: true })) {
      kinds.set(d.name, d.isDirectory() ? 'dir' : d.isSymbolicLink() ? 'link' : d.isFile() ? 'file' : 'other');
    }
    l = { kinds, setgid: (st.mode & 0o2000) !== 0 };
    lists.set(dir, l);
    return l;
  }

  /**
   * A directory the archive needs but does not list: 0755 and the process's
   * owner, also in a setgid directory (whose bit and group the kernel would
   * hand down).
   */
  function madeDir(parent: Listing, name: string, p: string): void {
    mkdirSync(p, 0o755);
    if (parent.setgid) {
      const fd = openSync(p, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
      try {
        fchownSync(fd, who.uid, who.gid);
        fchmodSync(fd, 0o755);
      } finally {
        closeSync(fd);
      }
    }
    parent.kinds.set(name, 'dir');
    lists.set(p, { kinds: new Map(), setgid: false });
  }

  const linkText = (p: string) => {
    try {
      return readlinkSync(p);
    } catch {
      return madeLinks.get(p) ?? '?';
    }
  };

  /**
   * The directory holding `comps`' last component, each component above it
   * a real directory (missing ones are made, as gtar makes them). With
   * `create: false`, a missing one is a problem.
   */
  function parentOf(archive: string, e: TarEntry, comps: string[], what = 'is', create = true): string {
    let dir = root;
    for (let i = 0; i < comps.length - 1; i++) {
      const l = listing(dir);
      const c = comps[i];
      const k = l.kinds.get(c);
      const p = `${dir}/${c}`;
      const shown = `/${comps.slice(0, i + 1).join('/')}`;
      if (k === undefined) {
        if (!create) refuse(archive, e, `${what} not in the image (${shown} is missing)`);
        madeDir(l, c, p);
      } else if (k === 'link') {
        refuse(archive, e, `would be written through ${shown}, a symlink in the image (to ${linkText(p)}): refusing to write through links`);
      } else if (k !== 'dir') {
        refuse(archive, e, `needs ${shown} to be a directory, and in the image it is not`);
      }
      dir = p;
    }
    return dir;
  }

  function metaOf(e: TarEntry, parentSetgid: boolean, isDir = false): Meta {
    const uid = opts.keepOwners ? e.uid : 0;
    const gid = opts.keepOwners ? e.gid : 0;
    const mode = e.mode & 0o7777;
    return {
      uid,
      gid,
      mode,
      atime: e.atime ?? e.mtime,
      mtime: e.mtime,
      chown: isDir || uid !== who.uid || gid !== who.gid || parentSetgid,
      chmod: isDir || mode !== (mode & 0o777 & ~who.umask),
    };
  }

  async function room(bytes: number): Promise<void> {
    await pool.room();
    while (inFlight > MAX_IN_FLIGHT && !pool.error) await new Promise<void>((r) => byteWaiters.push(r));
    inFlight += bytes;
  }

  async function entry(archive: string, reader: TarReader, e: TarEntry, comps: string[], under?: string[]): Promise<void> {
    if (e.type === 'char' || e.type === 'block' || e.type === 'fifo') {
      refuse(archive, e, `is a ${{ char: 'character device', block: 'block device', fifo: 'FIFO' }[e.type]}: device nodes and FIFOs are not extracted into an image`);
    }
    if (e.type === 'other') refuse(archive, e, `has tar type ${JSON.stringify(e.flag)}, which is not extracted (files, directories, symlinks and hard links are)`);
    if (comps.length === 0) {
      if (e.type !== 'dir') refuse(archive, e, 'is root/, the image root, and not a directory');
      dirMeta.set(root, metaOf(e, false, true));
      return;
    }
    const dir = parentOf(archive, e, comps);
    const l = listing(dir);
    const name = comps[comps.length - 1];
    const dest = `${dir}/${name}`;
    const ex = l.kinds.get(name);
    if (ex !== undefined && pending.has(dest)) await settle();
    if (e.type === 'dir') {
      if (ex === 'dir') listing(dest);
      else {
        if (ex !== undefined) unlinkSync(dest);
        mkdirSync(dest, (e.mode & 0o777) | 0o700);
        l.kinds.set(name, 'dir');
        // Made in a setgid directory it is setgid too, with that group, until its own mode and owner are set
        // at the end: what goes in meanwhile needs its owner set.
        lists.set(dest, { kinds: new Map(), setgid: l.setgid });
      }
      dirMeta.set(dest, metaOf(e, l.setgid, true));
      stats.dirs++;
      return;
    }
    if (ex === 'dir') refuse(archive, e, `is a ${e.type} in the archive, and /${comps.join('/')} is a directory in the image`);
    const replace = ex !== undefined;
    if (e.type === 'symlink') {
      if (!e.linkname) refuse(archive, e, 'is a symlink without a target');
      if (e.linkname.includes('\0')) refuse(archive, e, 'is a symlink with a NUL in its target');
      await room(0);
      pool.add({ kind: 'symlink', dest, target: e.linkname, replace, ...metaOf(e, l.setgid) });
      pending.add(dest);
      madeLinks.set(dest, e.linkname);
      l.kinds.set(name, 'link');
      return;
    }
    if (e.type === 'hardlink') {
      const t = imageComponents(e.linkname, under);
      if (t.problem || !t.comps) refuse(archive, e, `is a hard link to ${JSON.stringify(e.linkname)}, outside ${under ? 'the archive' : 'root/'}: refusing`);
      if (!t.comps.length) refuse(archive, e, 'is a hard link to root/ itself');
      const tdir = parentOf(archive, e, t.comps, `is a hard link to ${JSON.stringify(e.linkname)}, which is`, false);
      const tname = t.comps[t.comps.length - 1];
      const tkind = listing(tdir).kinds.get(tname);
      if (tkind !== 'file' && tkind !== 'link') refuse(archive, e, `is a hard link to ${JSON.stringify(e.linkname)}, which is ${tkind ? `a ${tkind}` : 'not'} in the image`);
      const target = `${tdir}/${tname}`;
      if (target === dest) return;
      if (pending.has(target)) await settle();
      if (replace) unlinkSync(dest);
      linkSync(target, dest);
      l.kinds.set(name, tkind);
      stats.hardlinks++;
      return;
    }
    // A regular file.
    const m = metaOf(e, l.setgid);
    l.kinds.set(name, 'file');
    if (e.size <= SMALL_FILE) {
      const data = await reader.readAll();
      await room(data.length);
      pool.add({ kind: 'write', dest, data, replace, ...m });
      pending.add(dest);
      return;
    }
    // Big: written here as it streams (synchronous writes: the reader waits, the decompressor keeps going).
    if (replace) unlinkSync(dest);
    const fd = openSync(dest, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, m.mode & 0o777);
    let bytes = 0;
    try {
      for await (const c of reader.data()) bytes += writeAll(fd, c);
      // After the data (a write may clear set-id bits), chown before chmod (chown clears them).
      if (m.chown) fchownSync(fd, m.uid, m.gid);
      if (m.chmod) fchmodSync(fd, m.mode & 0o7777);
      futimesSync(fd, m.atime, m.mtime);
    } finally {
      closeSync(fd);
    }
    stats.files++;
    stats.bytes += bytes;
  }

  /** DIR's components, each a real directory of the image (missing ones made 0755, as gtar -C's stage dir would have them). */
  function dirIn(archive: string, dir: string): string[] {
    const comps = dir.split('/').filter((c) => c !== '');
    let d = root;
    comps.forEach((c, i) => {
      const l = listing(d);
      const k = l.kinds.get(c);
      const p = `${d}/${c}`;
      const shown = `/${comps.slice(0, i + 1).join('/')}`;
      const no = (why: string): never => {
        throw new BuildError(`archive ${archive}: its directory ${dir} ${why}`, { hint: 'nothing was written; give a DIR that is a directory in the image' });
      };
      if (k === undefined) madeDir(l, c, p);
      else if (k === 'link') no(`would be reached through ${shown}, a symlink in the image (to ${linkText(p)}): refusing to write through links`);
      else if (k !== 'dir') no(`needs ${shown} to be a directory, and in the image it is not`);
      d = p;
    });
    return comps;
  }

  async function one(spec: string | AddArchive): Promise<void> {
    const { path: archive, dir } = typeof spec === 'string' ? { path: spec, dir: undefined } : spec;
    const a = await openArchive(archive);
    log.info(`extracting ${archive}${a.compression === 'none' ? '' : ` (${a.compression})`} into ${root}${dir ? ` under ${dir}` : ''}`);
    let under: string[] | undefined;
    try {
      if (dir !== undefined) under = dirIn(archive, dir);
    } catch (err) {
      await a.close(false).catch(() => undefined);
      throw err;
    }
    const reader = new TarReader(a.stream, archive);
    const tops = new Set<string>();
    let ignored = 0;
    let n = 0;
    try {
      for (let e = await reader.next(); e; e = await reader.next()) {
        if (++n % 64 === 0) {
          throwIfInterrupted();
          check();
          opts.onProgress?.(stats);
        }
        const c = imageComponents(e.name, under);
        if (c.problem) refuse(archive, e, c.problem);
        if (!c.comps) {
          ignored++;
          tops.add(`${c.top}/`);
          continue;
        }
        await entry(archive, reader, e, c.comps, under);
      }
    } catch (err) {
      // A decompressor that failed on its own explains a truncated or garbled stream better than the reader can.
      const decErr = await a.close(false).then(
        () => undefined,
        (x: unknown) => x,
      );
      throw err instanceof ArchiveFormatError && decErr ? decErr : err;
    }
    await a.close(true);
    stats.archives++;
    stats.ignored += ignored;
    if (ignored) log.info(`archive ${archive}: ${ignored} entries outside root/ ignored (${[...tops].slice(0, 5).join(', ')}${tops.size > 5 ? ', ...' : ''})`);
  }

  try {
    await pool.run(async () => {
      for (const archive of archives) await one(archive);
      await settle();
      for (const [dest, m] of dirMeta) pool.add({ kind: 'dir', dest, ...m });
      await settle();
    });
  } catch (err) {
    if (err instanceof BuildimageError) throw err;
    const e = err as { path?: string; message: string };
    if (isNoSpace(err)) throw new BuildError(`no space left extracting into the image at ${e.path ?? root}`, { cause: err, hint: "the dataset root's pool or quota is full" });
    throw new BuildError(`extract failed at ${e.path ?? root}: ${e.message}`, { cause: err });
  }
  opts.onProgress?.(stats);
  return stats;
}
