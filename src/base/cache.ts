/**
 * The installed base images as a cache: which build used each one last
 * (prepare records it on the image and every image of its origin chain, in
 * LAST_USED_PROPERTY, while holding the image's import lock), `buildimage
 * images` (what is installed on the dataset root and who depends on it) and
 * `buildimage prune` (destroy what no build used lately and no one is cloned
 * from).
 *
 * Prune decides from ZFS alone: ownership is OWNER_PROPERTY set on the image
 * itself (never inherited, never an imgadm image: those are never pruned),
 * "no one's origin" is no dataset of the pool whose ZFS `origin` is one of
 * the image's snapshots (images, live analogs, seal's origin views, anyone's
 * zones), never a name. It holds each image's import lock from deciding to
 * destroying, so an import or a build (prepare holds it while it records
 * its use and clones) is never pulled from under; an image whose lock is
 * held is skipped. Children go first, so one run takes a whole unused chain.
 */
import { lstat, readFile, rm } from 'node:fs/promises';
import { BuildError, oneLine } from '../core/errors.js';
import { ensureDir } from '../core/files.js';
import type { Layout } from '../core/layout.js';
import { log } from '../core/log.js';
import { acquireLock, lockHeld, readLock, tryLock, type Lock } from '../host/lock.js';
import { checkPrivateDir } from '../host/trusted.js';
import { BUILD_PROPERTY, LAST_USED_PROPERTY, OWNER_PROPERTY, type Zfs } from '../host/zfs.js';
import { isUuid } from '../image/manifest/types.js';
import { isInstalled, installImage, type InstallContext, type InstallResult } from './install.js';
import { knownManifest } from './known.js';

/** prune's default: an image no build used for this many days goes. */
export const DEFAULT_KEEP_DAYS = 30;
export const MAX_KEEP_DAYS = 36500;
const DAY_MS = 24 * 3600 * 1000;
/** A recorded time this far ahead of now is a clock's skew; beyond it, not a record to trust. */
const FUTURE_SLACK_MS = DAY_MS;
/** Longer than any value prepare writes: a longer one is not ours. */
const MAX_USE_VALUE = 1024;
const MAX_ORIGIN_DEPTH = 100;

/** Who used an image last, as recorded on it. */
export interface UseRecord {
  /** ISO 8601 UTC. */
  at: string;
  /** The build's id. */
  build: string;
  /** What it built: `<name>@<version>`. */
  image: string;
}

/** The property's value: `<at> <build> <image>`, the image's name kept to printable ASCII with no spaces. */
export function formatUse(r: UseRecord): string {
  const image = r.image.replace(/[^\x21-\x7e]/g, '_').slice(0, 600);
  return `${r.at} ${r.build} ${image}`;
}

const USE_RE = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?Z) ([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}) ([\x21-\x7e]{1,600})$/;

/**
 * A recorded use, or undefined when `value` is none (unset, garbage, too
 * long, an impossible date, or more than a day in the future: who wrote it
 * was not prepare, or its clock was wrong).
 */
export function parseUse(value: string, now: Date): UseRecord | undefined {
  if (!value || value === '-' || value.length > MAX_USE_VALUE) return undefined;
  const m = USE_RE.exec(value);
  if (!m) return undefined;
  const t = Date.parse(m[1]);
  if (!Number.isFinite(t) || new Date(t).toISOString().slice(0, 19) !== m[1].slice(0, 19)) return undefined;
  if (t > now.getTime() + FUTURE_SLACK_MS) return undefined;
  return { at: new Date(t).toISOString(), build: m[2], image: m[3] };
}

/** The image uuid of `dataset` when it is `<root>/<uuid>`, else undefined. */
function imageUuidOf(layout: Layout, dataset: string): string | undefined {
  const prefix = `${layout.datasetRoot}/`;
  if (!dataset.startsWith(prefix)) return undefined;
  const rest = dataset.slice(prefix.length);
  return isUuid(rest) && layout.imageDataset(rest) === dataset ? rest : undefined;
}

/**
 * Records `by` on installed image `uuid` and each image of its origin chain
 * (followed by ZFS's `origin`, as far as it stays an image on the dataset
 * root) that buildimage created; images it did not create are not written
 * to. Never fails the build: an unrecorded use only makes prune keep the
 * image for less long. Returns the uuids recorded.
 */
export async function recordUse(zfs: Zfs, layout: Layout, uuid: string, by: Omit<UseRecord, 'at'>, now = new Date()): Promise<string[]> {
  const value = formatUse({ at: now.toISOString(), ...by });
  const recorded: string[] = [];
  let current: string | undefined = uuid;
  try {
    for (let depth = 0; current && depth < MAX_ORIGIN_DEPTH; depth++) {
      const ds = layout.imageDataset(current);
      if (!(await zfs.exists(ds))) break;
      if ((await zfs.owner(ds)) === 'image') {
        await zfs.set(ds, { [LAST_USED_PROPERTY]: value });
        recorded.push(current);
      }
      const origin = await zfs.getOne(ds, 'origin');
      current = origin.endsWith('@final') ? imageUuidOf(layout, origin.slice(0, -'@final'.length)) : undefined;
    }
  } catch (err) {
    log.warn(`could not record the use of image ${current ?? uuid}: ${oneLine(err)}; prune may take it sooner`);
  }
  return recorded;
}

/**
 * Installs `uuid` (base/install) and holds its import lock, so prune cannot
 * take it before the caller has cloned it (a clone then keeps it); records
 * the use on the chain. The caller releases `hold` once its clone exists.
 */
export async function installForUse(
  ctx: InstallContext,
  uuid: string,
  by: Omit<UseRecord, 'at'>,
): Promise<{ base: InstallResult; hold: Lock }> {
  for (let attempt = 1; ; attempt++) {
    const base = await installImage(ctx, uuid);
    const hold = await acquireLock(ctx.layout.importLock(uuid), {
      purpose: `use ${uuid}`,
      onWait: (h) => log.info(`waiting for image ${uuid} (held by pid ${h?.pid ?? '?'})`),
    });
    if (await isInstalled(ctx.zfs, ctx.layout, uuid)) {
      await recordUse(ctx.zfs, ctx.layout, uuid, by);
      return { base, hold };
    }
    await hold.release();
    // Pruned between the install and the lock: install it again.
    if (attempt >= 3) throw new BuildError(`base image ${uuid} keeps disappearing after its install`, { hint: 'is a prune running in a loop?' });
    log.info(`image ${uuid} was pruned meanwhile; installing it again`);
  }
}

/** A dataset cloned from one of an image's snapshots. */
export interface Dependent {
  dataset: string;
  /** `image`: an installed image on the root; `analog`/`origin-view`: a build's; `other`: not buildimage's (a zone, an imgadm image elsewhere). */
  kind: 'image' | 'analog' | 'origin-view' | 'other';
  /** For an analog: the build id on it. */
  build?: string;
}

export interface ImageInfo {
  uuid: string;
  dataset: string;
  /** From the manifest kept at install (base/known), else "-". */
  name: string;
  version: string;
  /** ZFS `used`: bytes destroying it frees (its snapshots included). */
  used: number;
  /** ZFS `referenced`: bytes its data takes, shared with its origin included. */
  referenced: number;
  /** OWNER_PROPERTY set on it: only these are ever pruned. */
  createdByBuildimage: boolean;
  /** ZFS `creation`, ISO 8601: when it was installed. */
  installed: string;
  /** The last recorded use; null when none (or what is there is not a record prepare wrote). */
  lastUsed: UseRecord | null;
  /** The image it is cloned from, when that is an image on the dataset root. */
  origin: string | null;
  /** Who is cloned from it. */
  originOf: Dependent[];
}

export interface ImagesResult {
  ok: true;
  datasetRoot: string;
  images: ImageInfo[];
}

interface Scan {
  images: ImageInfo[];
  /** `-partial` datasets directly under the root, with the uuid each is for. */
  partials: Array<{ dataset: string; uuid: string }>;
  /** Image datasets that have datasets of their own below them. */
  withChildren: Set<string>;
}

async function dependent(zfs: Zfs, layout: Layout, dataset: string): Promise<Dependent> {
  if (imageUuidOf(layout, dataset)) {
    const role = await zfs.owner(dataset).catch(() => undefined);
    if (role === 'analog') return { dataset, kind: 'analog', build: await zfs.getOne(dataset, BUILD_PROPERTY).catch(() => '?') };
    return { dataset, kind: 'image' };
  }
  const role = await zfs.owner(dataset).catch(() => undefined);
  return { dataset, kind: role === 'origin-view' ? 'origin-view' : 'other' };
}

function isoOfEpoch(seconds: string): string {
  const n = Number(seconds);
  return Number.isFinite(n) && n >= 0 && n < 1e11 ? new Date(n * 1000).toISOString() : new Date(0).toISOString();
}

async function scan(zfs: Zfs, layout: Layout, o: { imgadmDir?: string; now: Date }): Promise<Scan> {
  const pool = layout.datasetRoot.split('/')[0];
  const all = await zfs.origins(pool);
  const clonesOf = new Map<string, string[]>();
  for (const { name, origin } of all) {
    if (!origin) continue;
    const ds = origin.split('@')[0];
    clonesOf.set(ds, [...(clonesOf.get(ds) ?? []), name]);
  }
  const names = new Set(all.map((d) => d.name));
  const withChildren = new Set<string>();
  for (const { name } of all) {
    const parent = name.slice(0, name.lastIndexOf('/'));
    if (name.includes('/') && imageUuidOf(layout, parent)) withChildren.add(parent);
  }
  const images: ImageInfo[] = [];
  const partials: Scan['partials'] = [];
  for (const ds of [...names].filter((n) => n.startsWith(`${layout.datasetRoot}/`)).sort()) {
    const partialOf = layout.partialUuid(ds);
    if (partialOf && isUuid(partialOf)) {
      partials.push({ dataset: ds, uuid: partialOf });
      continue;
    }
    const uuid = imageUuidOf(layout, ds);
    if (!uuid || !(await zfs.exists(`${ds}@final`))) continue;
    const owner = await zfs.owner(ds);
    // Zone analogs are uuid-named too (a build id), and have an @final after seal: not images.
    if (owner === 'analog' || owner === 'origin-view') continue;
    const p = await zfs.get(ds, ['used', 'referenced', 'creation', 'origin']);
    // Apart: a user property's value may hold anything, even lines that read like other properties.
    const use = await zfs.getOne(ds, LAST_USED_PROPERTY);
    const known = await knownManifest(layout, uuid, { imgadmDir: o.imgadmDir });
    const origin = p.origin?.endsWith('@final') ? imageUuidOf(layout, p.origin.slice(0, -'@final'.length)) : undefined;
    const originOf: Dependent[] = [];
    for (const c of clonesOf.get(ds) ?? []) originOf.push(await dependent(zfs, layout, c));
    images.push({
      uuid,
      dataset: ds,
      name: known?.manifest.name ?? '-',
      version: known?.manifest.version ?? '-',
      used: Number(p.used) || 0,
      referenced: Number(p.referenced) || 0,
      createdByBuildimage: owner === 'image',
      installed: isoOfEpoch(p.creation ?? ''),
      lastUsed: parseUse(use, o.now) ?? null,
      origin: origin ?? null,
      originOf,
    });
  }
  return { images, partials, withChildren };
}

async function rootExists(zfs: Zfs, layout: Layout): Promise<void> {
  if (!(await zfs.exists(layout.datasetRoot))) {
    throw new BuildError(`dataset root ${layout.datasetRoot} does not exist`, { hint: 'pass the --dataset-root your builds use' });
  }
}

/** `buildimage images`: the base images installed on the dataset root. */
export async function listImages(zfs: Zfs, layout: Layout, o: { imgadmDir?: string; now?: Date } = {}): Promise<ImagesResult> {
  await rootExists(zfs, layout);
  const { images } = await scan(zfs, layout, { imgadmDir: o.imgadmDir, now: o.now ?? new Date() });
  return { ok: true, datasetRoot: layout.datasetRoot, images };
}

export interface PruneOptions {
  /** Keep what a build used within this many days; 0: keep only what is in use. */
  keepDays?: number;
  dryRun?: boolean;
  /** Injectable for tests. */
  now?: Date;
  imgadmDir?: string;
}

export interface PruneEntry {
  uuid: string;
  dataset: string;
  name: string;
  version: string;
  /** `destroy`: destroyed (with --dry-run: would be); `keep`: stays, and why; `skip`: held by an import or a build; `failed`: could not be destroyed. */
  action: 'destroy' | 'keep' | 'skip' | 'failed';
  reason: string;
  used: number;
}

export interface PruneResult {
  ok: true;
  dryRun: boolean;
  keepDays: number;
  /** Bytes freed (ZFS `used` of what was destroyed; with --dry-run, what would be). */
  freed: number;
  images: PruneEntry[];
  /** `-partial` leftovers of killed imports: destroyed, kept or skipped. */
  partials: Array<{ dataset: string; action: 'destroy' | 'keep' | 'skip' | 'failed'; reason: string }>;
  /** Manifest files (and receive journals) removed. */
  removed: string[];
}

function holderText(h: { pid?: unknown } | undefined): string {
  return typeof h?.pid === 'number' ? `pid ${h.pid}` : 'another process';
}

function dependentText(d: Dependent): string {
  switch (d.kind) {
    case 'image':
      return `image ${d.dataset}`;
    case 'analog':
      return `live analog ${d.dataset} (build ${d.build})`;
    case 'origin-view':
      return `a build's origin view ${d.dataset}`;
    default:
      return `${d.dataset} (not buildimage's)`;
  }
}

/** Removes a regular file or a link (never what it leads to) inside a real directory; false when not there. */
async function removeOwnFile(dir: string, path: string): Promise<boolean> {
  const d = await lstat(dir).catch(() => undefined);
  if (!d?.isDirectory()) return false;
  const st = await lstat(path).catch(() => undefined);
  if (!st || st.isDirectory()) return false;
  await rm(path, { force: true });
  return true;
}

/** `buildimage prune`. */
export async function pruneImages(zfs: Zfs, layout: Layout, o: PruneOptions = {}): Promise<PruneResult> {
  const keepDays = o.keepDays ?? DEFAULT_KEEP_DAYS;
  if (!Number.isInteger(keepDays) || keepDays < 0 || keepDays > MAX_KEEP_DAYS) throw new BuildError(`keep days must be a whole number from 0 to ${MAX_KEEP_DAYS}`);
  const now = o.now ?? new Date();
  const dryRun = !!o.dryRun;
  await rootExists(zfs, layout);
  // Locks, journals and manifests are read and removed here: only in a work dir no one else can change.
  await checkPrivateDir(layout.workDir, { what: 'work dir', hint: 'pass the --work-dir your builds use', subdirs: ['locks', 'images'] });
  const cutoff = now.getTime() - keepDays * DAY_MS;
  const result: PruneResult = { ok: true, dryRun, keepDays, freed: 0, images: [], partials: [], removed: [] };
  const locks = new Map<string, Lock>();
  try {
    /** Takes the image's import lock (dry run: only looks); the holder when another has it. */
    const lock = async (uuid: string): Promise<string | undefined> => {
      const path = layout.importLock(uuid);
      if (dryRun) return (await lockHeld(path)) ? holderText(await readLock(path)) : undefined;
      const l = await tryLock(path, `prune ${uuid}`);
      if ('holder' in l) return holderText(l.holder);
      locks.set(uuid, l);
      return undefined;
    };
    const unlock = async (uuid: string) => {
      await locks.get(uuid)?.release();
      locks.delete(uuid);
    };

    // Locks first, then the look: a build records its use while holding the lock, so what is read now holds until we let go.
    if (!dryRun) await ensureDir(layout.lockDir, { what: 'lock directory', flag: '--work-dir' });
    const first = await scan(zfs, layout, { imgadmDir: o.imgadmDir, now });
    const held = new Map<string, string>();
    for (const img of first.images) {
      if (!img.createdByBuildimage) continue;
      const holder = await lock(img.uuid);
      if (holder) held.set(img.uuid, holder);
    }
    const { images, partials, withChildren } = await scan(zfs, layout, { imgadmDir: o.imgadmDir, now });

    const entry = (img: ImageInfo, action: PruneEntry['action'], reason: string): PruneEntry => ({
      uuid: img.uuid,
      dataset: img.dataset,
      name: img.name,
      version: img.version,
      action,
      reason,
      used: img.used,
    });
    const decided = new Map<string, PruneEntry>();
    const candidates: ImageInfo[] = [];
    for (const img of images) {
      if (!img.createdByBuildimage) {
        decided.set(img.uuid, entry(img, 'keep', `not created by buildimage (no ${OWNER_PROPERTY} set on it): never pruned`));
      } else if (held.has(img.uuid) || (!first.images.some((f) => f.uuid === img.uuid) && !dryRun)) {
        decided.set(img.uuid, entry(img, 'skip', held.has(img.uuid) ? `in use: its import lock is held by ${held.get(img.uuid)}` : 'installed while prune looked'));
      } else if (withChildren.has(img.dataset)) {
        decided.set(img.uuid, entry(img, 'keep', 'has datasets below it'));
      } else {
        const t = img.lastUsed ? Date.parse(img.lastUsed.at) : Date.parse(img.installed);
        if (t > cutoff) {
          const when = img.lastUsed
            ? `used ${img.lastUsed.at} by build ${img.lastUsed.build} (${img.lastUsed.image})`
            : `installed ${img.installed}, no recorded use`;
          decided.set(img.uuid, entry(img, 'keep', `${when}: within ${keepDays} days`));
        } else {
          candidates.push(img);
        }
      }
    }

    // Children first: an image goes once everything cloned from it goes.
    const going = new Set<string>();
    const order: ImageInfo[] = [];
    for (let changed = true; changed; ) {
      changed = false;
      for (const img of candidates) {
        if (going.has(img.dataset)) continue;
        if (img.originOf.every((d) => going.has(d.dataset))) {
          going.add(img.dataset);
          order.push(img);
          changed = true;
        }
      }
    }
    for (const img of candidates) {
      if (going.has(img.dataset)) continue;
      const staying = img.originOf.filter((d) => !going.has(d.dataset));
      decided.set(img.uuid, entry(img, 'keep', `origin of ${staying.map(dependentText).join(', ')}`));
    }
    for (const img of order) {
      const when = img.lastUsed ? `last used ${img.lastUsed.at} by build ${img.lastUsed.build} (${img.lastUsed.image})` : `installed ${img.installed}, no recorded use`;
      const why = `${when}; no one's origin`;
      if (dryRun) {
        decided.set(img.uuid, entry(img, 'destroy', why));
        result.freed += img.used;
        continue;
      }
      try {
        // ZFS refuses (dependent clones) whatever was cloned from it since the look.
        await zfs.destroyOwned(img.dataset);
        decided.set(img.uuid, entry(img, 'destroy', why));
        result.freed += img.used;
        log.info(`destroyed image ${img.uuid} (${img.name}@${img.version}): ${why}`);
      } catch (err) {
        decided.set(img.uuid, entry(img, 'failed', `could not be destroyed: ${oneLine(err)}`));
        continue;
      }
      const manifest = layout.installedManifest(img.uuid);
      try {
        if (await removeOwnFile(layout.manifestDir, manifest)) result.removed.push(manifest);
      } catch (err) {
        log.warn(`could not remove ${manifest}: ${oneLine(err)}`);
      }
    }
    result.images = images.map((img) => decided.get(img.uuid)!);

    for (const p of partials) {
      const journal = layout.receiveJournal(p.uuid);
      const journaled = (await readJournal(journal)) === p.dataset;
      if (!journaled) {
        result.partials.push({ dataset: p.dataset, action: 'keep', reason: 'no receive journal of ours names it (another tool may be receiving it)' });
        continue;
      }
      const holder = locks.has(p.uuid) ? undefined : await lock(p.uuid);
      if (holder) {
        result.partials.push({ dataset: p.dataset, action: 'skip', reason: `being received: its import lock is held by ${holder}` });
        continue;
      }
      if (dryRun) {
        result.partials.push({ dataset: p.dataset, action: 'destroy', reason: 'left by a killed import' });
        continue;
      }
      try {
        if (!(await zfs.owner(p.dataset))) await zfs.markOwned(p.dataset, 'image');
        await zfs.destroyOwned(p.dataset);
        if (await removeOwnFile(layout.lockDir, journal)) result.removed.push(journal);
        result.partials.push({ dataset: p.dataset, action: 'destroy', reason: 'left by a killed import' });
      } catch (err) {
        result.partials.push({ dataset: p.dataset, action: 'failed', reason: `could not be destroyed: ${oneLine(err)}` });
      } finally {
        await unlock(p.uuid);
      }
    }
  } finally {
    for (const l of locks.values()) await l.release().catch(() => undefined);
  }
  return result;
}

/** Our receive journal's one line (a small file in the lock dir; a link there is not ours to read through). */
async function readJournal(path: string): Promise<string> {
  const st = await lstat(path).catch(() => undefined);
  if (!st?.isFile() || st.size > 4096) return '';
  return (await readFile(path, 'utf8').catch(() => '')).trim();
}
