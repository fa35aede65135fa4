/**
 * What an image root adds, changes and deletes against its origin's root:
 * both trees walked side by side by lstat (a link is listed by its text,
 * never followed; another file system inside either root is refused), and
 * only what differs is hashed. A file is taken as unchanged without reading
 * it when its inode, ctime and mtime are the origin's (a ZFS clone keeps all
 * three for a file nobody touched, and no one can set a ctime); any other
 * file of the same size and type is read on both sides.
 */
import type { BigIntStats } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import { BuildError } from '../core/errors.js';
import { digestFile } from '../core/files.js';
import { displayText, encodeBytes, type Entry, type EntryType } from './listing.js';

export interface WalkStats {
  /** Entries of the image root looked at. */
  walked: number;
  /** Files read to hash them (both sides counted), and their bytes. */
  hashed: number;
  hashedBytes: number;
}

const SLASH = Buffer.from('/');
const HASH_CONCURRENCY = 4;

function child(dir: Buffer, name: Buffer): Buffer {
  return Buffer.concat([dir, SLASH, name]);
}

function typeOf(st: BigIntStats): EntryType {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isFIFO()) return 'fifo';
  if (st.isSocket()) return 'socket';
  if (st.isCharacterDevice()) return 'char';
  return 'block';
}

function modeOf(st: BigIntStats): string {
  return (Number(st.mode) & 0o7777).toString(8).padStart(4, '0');
}

async function lstatMaybe(p: Buffer): Promise<BigIntStats | undefined> {
  try {
    return await lstat(p, { bigint: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

interface HashJob {
  entry: Entry;
  img: Buffer;
  /** Same size, same type: the origin's file too, and the entry is kept only if they differ or `meta` changed. */
  org?: Buffer;
  meta: boolean;
}

class Walker {
  readonly entries: Array<Entry | undefined> = [];
  readonly jobs: HashJob[] = [];
  readonly stats: WalkStats = { walked: 0, hashed: 0, hashedBytes: 0 };

  constructor(
    private readonly imgDev: bigint,
    private readonly orgDev: bigint | undefined,
  ) {}

  private sameFs(st: BigIntStats, dev: bigint | undefined, p: Buffer): void {
    if (st.dev !== dev) throw new BuildError(`${displayText(encodeBytes(p))} is another file system inside the root being listed (a mount?): not listing through it`);
  }

  private describe(path: string, change: Entry['change'], st: BigIntStats): Entry {
    const type = typeOf(st);
    return {
      path,
      change,
      type,
      mode: modeOf(st),
      uid: Number(st.uid),
      gid: Number(st.gid),
      ...(type === 'file' ? { size: Number(st.size) } : {}),
      ...(type === 'char' || type === 'block' ? { rdev: Number(st.rdev) } : {}),
    };
  }

  private async withTarget(e: Entry, p: Buffer): Promise<Entry> {
    if (e.type === 'symlink') e.target = encodeBytes(await readlink(p, { encoding: 'buffer' }));
    return e;
  }

  /** Lists the directory pair `img` (in the image) and `org` (the origin's, when it has one there). */
  async dir(img: Buffer, org: Buffer | undefined, rel: string): Promise<void> {
    const names = await readdir(img, { encoding: 'buffer' });
    const orgNames = org ? await readdir(org, { encoding: 'buffer' }) : [];
    const inOrigin = new Set(orgNames.map((n) => n.toString('latin1')));
    const sts = await Promise.all(names.map((n) => lstatMaybe(child(img, n))));
    const osts = await Promise.all(names.map((n) => (org && inOrigin.has(n.toString('latin1')) ? lstatMaybe(child(org, n)) : Promise.resolve(undefined))));
    for (const [i, name] of names.entries()) {
      const st = sts[i];
      if (!st) continue;
      this.stats.walked++;
      const p = child(img, name);
      this.sameFs(st, this.imgDev, p);
      const ost = osts[i];
      const o = ost && org ? child(org, name) : undefined;
      if (ost && o) this.sameFs(ost, this.orgDev, o);
      await this.entry(p, o, st, ost, `${rel}/${encodeBytes(name)}`);
    }
    const here = new Set(names.map((n) => n.toString('latin1')));
    for (const name of orgNames) if (!here.has(name.toString('latin1'))) await this.deleted(child(org!, name), `${rel}/${encodeBytes(name)}`);
  }

  private async entry(img: Buffer, org: Buffer | undefined, st: BigIntStats, ost: BigIntStats | undefined, path: string): Promise<void> {
    const type = typeOf(st);
    if (!ost) {
      const e = await this.withTarget(this.describe(path, 'added', st), img);
      if (type === 'file') this.jobs.push({ entry: e, img, meta: true });
      else this.entries.push(e);
      if (type === 'dir') await this.dir(img, undefined, path);
      return;
    }
    const otype = typeOf(ost);
    const meta = st.mode !== ost.mode || st.uid !== ost.uid || st.gid !== ost.gid;
    const changed = await this.withTarget(this.describe(path, 'changed', st), img);
    if (type !== otype) {
      if (type === 'file') this.jobs.push({ entry: changed, img, meta: true });
      else this.entries.push(changed);
      if (otype === 'dir') await this.deletedBelow(org!, path);
      if (type === 'dir') await this.dir(img, undefined, path);
      return;
    }
    switch (type) {
      case 'dir':
        if (meta) this.entries.push(changed);
        await this.dir(img, org, path);
        return;
      case 'symlink': {
        const otarget = encodeBytes(await readlink(org!, { encoding: 'buffer' }));
        if (meta || otarget !== changed.target) this.entries.push(changed);
        return;
      }
      case 'file':
        if (st.size !== ost.size) this.jobs.push({ entry: changed, img, meta: true });
        else if (meta || st.ino !== ost.ino || st.ctimeNs !== ost.ctimeNs || st.mtimeNs !== ost.mtimeNs) this.jobs.push({ entry: changed, img, org, meta });
        return;
      case 'char':
      case 'block':
        if (meta || st.rdev !== ost.rdev) this.entries.push(changed);
        return;
      default:
        if (meta) this.entries.push(changed);
    }
  }

  private async deleted(org: Buffer, path: string): Promise<void> {
    const st = await lstatMaybe(org);
    if (!st) return;
    this.sameFs(st, this.orgDev, org);
    this.entries.push({ path, change: 'deleted', type: typeOf(st) });
    if (st.isDirectory()) await this.deletedBelow(org, path);
  }

  private async deletedBelow(org: Buffer, path: string): Promise<void> {
    for (const name of await readdir(org, { encoding: 'buffer' })) await this.deleted(child(org, name), `${path}/${encodeBytes(name)}`);
  }

  private async sha256(p: Buffer): Promise<string> {
    // digestFile opens without following a link or blocking on a FIFO, and reads only a regular file.
    const { digests, size } = await digestFile(p, 'sha256');
    this.stats.hashed++;
    this.stats.hashedBytes += size;
    return digests.sha256.toString('hex');
  }

  /** Hashes what the walk left to hash, a few files at a time. */
  async hashAll(): Promise<void> {
    let next = 0;
    const worker = async () => {
      while (next < this.jobs.length) {
        const job = this.jobs[next++];
        job.entry.sha256 = await this.sha256(job.img);
        const same = job.org ? (await this.sha256(job.org)) === job.entry.sha256 : false;
        if (!same || job.meta) this.entries.push(job.entry);
      }
    };
    await Promise.all(Array.from({ length: HASH_CONCURRENCY }, worker));
  }

  /** The roots themselves, as `/`: listed when their mode or owner differ (or, without an origin, added). */
  root(st: BigIntStats, ost: BigIntStats | undefined): void {
    if (!ost) this.entries.push(this.describe('/', 'added', st));
    else if (st.mode !== ost.mode || st.uid !== ost.uid || st.gid !== ost.gid) this.entries.push(this.describe('/', 'changed', st));
  }
}

/**
 * Every entry of `imageRoot` that is not as in `originRoot`, and every entry
 * of `originRoot` that `imageRoot` lacks, as listing entries (unsorted).
 * The roots themselves are compared as `/`. Without an origin, everything
 * is added.
 */
export async function listChanges(imageRoot: string, originRoot?: string): Promise<{ entries: Entry[]; stats: WalkStats }> {
  const img = Buffer.from(imageRoot);
  const org = originRoot === undefined ? undefined : Buffer.from(originRoot);
  const st = await lstat(img, { bigint: true });
  const ost = org ? await lstat(org, { bigint: true }) : undefined;
  if (!st.isDirectory()) throw new BuildError(`${imageRoot} is not a directory`);
  if (ost && !ost.isDirectory()) throw new BuildError(`${originRoot} is not a directory`);
  const w = new Walker(st.dev, ost?.dev);
  w.root(st, ost);
  await w.dir(img, org, '');
  await w.hashAll();
  return { entries: w.entries.filter((e): e is Entry => !!e), stats: w.stats };
}
