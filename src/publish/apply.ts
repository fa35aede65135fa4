/**
 * Carrying out a plan against a store, or, with dryRun, only reading the
 * store to say what would happen. Each step looks before it writes, so a
 * rerun after a kill at any point skips what is done and finishes the
 * rest: same MD5 → skip; different MD5 → fail before making a directory
 * or uploading anything;
 * absent → upload. Pointers move only after every file is in place.
 */
import { createHash, randomUUID } from 'node:crypto';
import { copyFile, link, rename, rm, stat } from 'node:fs/promises';
import { dirname, posix } from 'node:path';
import { PublishError } from '../core/errors.js';
import { throwIfInterrupted } from '../core/interrupt.js';
import { log } from '../core/log.js';
import { ensureDir, md5File, writeAtomic } from '../core/files.js';
import { formatBytes, formatRate, startProgress, type ProgressOptions } from '../core/progress.js';
import type { ImgapiImporter, ImportRequest } from './importer.js';
import type { PlannedFile, PublishPlan } from './plan.js';
import { transferWords, type Store } from './store.js';

export type Step =
  | { op: 'stage'; path: string; from: string }
  | { op: 'mkdir'; path: string }
  | { op: 'upload'; path: string; rel: string; size: number; md5: string }
  | { op: 'skip'; path: string; rel: string; reason: string }
  | { op: 'conflict'; path: string; rel: string; reason: string }
  | { op: 'put'; path: string; what: 'md5sums' | 'sha256sums' }
  | { op: 'pointer'; path: string; target: string; unchanged: boolean }
  | { op: 'artifacts'; path: string }
  | { op: 'import'; uuid: string; path: string; channel: string; action: string; detail: string; calls?: string[] };

export interface ApplyOptions {
  dryRun: boolean;
  importer?: ImgapiImporter;
  /** Upload progress: how often a log line (default every 5 s), or a live line on a TTY. */
  progress?: Pick<ProgressOptions, 'everyMs' | 'live'>;
}

export interface ApplyReport {
  steps: Step[];
  uploaded: number;
  skipped: number;
  conflicts: number;
  /** Bytes uploaded (or that would be). */
  bytes: number;
}

export async function runPlan(plan: PublishPlan, store: Store, o: ApplyOptions): Promise<ApplyReport> {
  const steps: Step[] = [];
  const note = (s: Step, line: string): void => {
    steps.push(s);
    if (o.dryRun) log.debug(`dry run: ${line}`);
    else log.info(line);
  };

  for (const s of plan.staged) {
    throwIfInterrupted();
    if (await alreadyStaged(s.from, s.to)) continue;
    if (!o.dryRun) await stage(s.from, s.to);
    note({ op: 'stage', path: s.to, from: s.from }, `staged ${s.from} as ${s.to}`);
  }

  // Look at every directory and file before writing any: a conflict stops the run with nothing made or half-published.
  const newDirs = await missingDirs(plan.dirs, store);
  const toUpload: PlannedFile[] = [];
  let skipped = 0;
  const conflicts: Step[] = [];
  for (const f of plan.files) {
    throwIfInterrupted();
    const fresh = newDirs.has(posix.dirname(f.remote));
    const e = fresh ? undefined : await store.stat(f.remote);
    if (!e) {
      toUpload.push(f);
    } else if (e.type === 'object' && e.md5 === f.md5) {
      skipped++;
      note({ op: 'skip', path: f.remote, rel: f.rel, reason: 'already published with the same MD5' }, `skip ${f.rel}: already published with the same MD5`);
    } else {
      const reason =
        e.type !== 'object'
          ? `exists and is a ${e.type}, not a file`
          : e.md5
            ? `exists with MD5 ${hex(e.md5)}, local ${f.md5hex} (${f.source})`
            : 'exists and has no MD5';
      const step: Step = { op: 'conflict', path: f.remote, rel: f.rel, reason };
      conflicts.push(step);
      steps.push(step);
    }
  }
  if (conflicts.length && !o.dryRun) {
    const c = conflicts[0] as Extract<Step, { op: 'conflict' }>;
    throw new PublishError(`${c.path} ${c.reason}${conflicts.length > 1 ? ` (and ${conflicts.length - 1} more)` : ''}`, {
      hint: 'published bits are never overwritten; build again with a new stamp',
    });
  }
  for (const d of newDirs) {
    throwIfInterrupted();
    if (!o.dryRun) await store.mkdir(d);
    note({ op: 'mkdir', path: d }, `mkdir ${d}`);
  }

  let bytes = 0;
  const words = transferWords(store.kind);
  for (const f of toUpload) {
    throwIfInterrupted();
    bytes += f.size;
    if (o.dryRun) {
      note({ op: 'upload', path: f.remote, rel: f.rel, size: f.size, md5: f.md5 }, `${words.verb} ${f.rel}`);
      continue;
    }
    const t0 = Date.now();
    log.info(`${words.doing} ${f.rel} (${formatBytes(f.size)}) to ${f.remote}`);
    const p = startProgress(f.remote, { unit: 'bytes', total: f.size, ...o.progress });
    try {
      await store.putFile(f.remote, f.local, { size: f.size, md5: f.md5, contentType: f.contentType }, (b) => p.update(b));
    } finally {
      p.done();
    }
    const secs = (Date.now() - t0) / 1000;
    note({ op: 'upload', path: f.remote, rel: f.rel, size: f.size, md5: f.md5 }, `${words.done} ${f.rel}: ${formatBytes(f.size)} in ${secs.toFixed(1)} s, ${formatRate(f.size, secs)}`);
  }

  // md5sums.txt and SHA256SUMS are derived from this run's files, so a different one is replaced, not a conflict.
  for (const [what, sums] of [
    ['md5sums', plan.md5sums],
    ['sha256sums', plan.sha256sums],
  ] as const) {
    throwIfInterrupted();
    const sumsMd5 = createHash('md5').update(sums.body).digest('base64');
    const curSums = newDirs.has(posix.dirname(sums.remote)) ? undefined : await store.stat(sums.remote);
    if (!(curSums?.type === 'object' && curSums.md5 === sumsMd5)) {
      if (!o.dryRun) await store.putText(sums.remote, sums.body, 'text/plain');
      note({ op: 'put', path: sums.remote, what }, `wrote ${sums.remote}`);
    }
  }
  const sumsFiles = [plan.md5sums.remote, plan.sha256sums.remote];

  for (const p of plan.pointers) {
    throwIfInterrupted();
    const unchanged = await store.pointsAt(p.remote, p.target);
    if (!unchanged && !o.dryRun) await store.setPointer(p.remote, p.target);
    note({ op: 'pointer', path: p.remote, target: p.target, unchanged }, unchanged ? `${p.remote} already points at ${p.target}` : `${p.remote} → ${p.target}`);
  }

  if (!o.dryRun) {
    const refs = [...plan.files.map((f) => f.remote), ...sumsFiles, ...plan.pointers.map((p) => p.remote)].map((p) => store.artifactRef(p));
    await writeAtomic(plan.artifactsFile, refs.map((r) => `${r}\n`).join(''));
  }
  note({ op: 'artifacts', path: plan.artifactsFile }, `listed ${plan.files.length + sumsFiles.length + plan.pointers.length} paths in ${plan.artifactsFile}`);

  for (const im of plan.imports) {
    throwIfInterrupted();
    const req: ImportRequest = {
      uuid: im.uuid,
      manifestFile: im.manifest.local,
      imageFile: im.image.local,
      imagePath: im.image.remote,
      size: im.image.size,
      sha1: im.sha1,
      ...(im.compression ? { compression: im.compression } : {}),
      channel: plan.channel,
      imageUrl: () => {
        if (!store.signedUrl) throw new PublishError('importing into updates IMGAPI needs the image in Manta (not -L)');
        return store.signedUrl(im.image.remote);
      },
    };
    if (!o.importer) throw new PublishError('-p: no updates IMGAPI importer configured');
    const r = o.dryRun ? await o.importer.plan(req) : await o.importer.apply(req);
    const step: Step = { op: 'import', uuid: im.uuid, path: im.image.remote, channel: plan.channel, action: r.action, detail: r.detail, ...(r.calls?.length ? { calls: r.calls } : {}) };
    // A dry run's import conflict is counted with the file conflicts: "publishing would fail".
    if (r.action === 'conflict') conflicts.push(step);
    note(step, `${r.action} ${im.uuid}: ${r.detail}`);
  }

  return { steps, uploaded: toUpload.length, skipped, conflicts: conflicts.length, bytes };
}

/**
 * The directories to make, parents first: one HEAD per level from each
 * planned directory up to the nearest existing ancestor. An object where a
 * directory goes stops the run (a PutDirectory over an *object* would
 * silently replace it in Manta).
 */
async function missingDirs(dirs: string[], store: Store): Promise<Set<string>> {
  const present = new Set<string>();
  const missing = new Set<string>();
  const look = async (d: string): Promise<void> => {
    if (store.isRoot(d) || present.has(d) || missing.has(d)) return;
    const parent = posix.dirname(d);
    const e = missing.has(parent) ? undefined : await store.stat(d);
    if (e?.type === 'directory') {
      for (let a = d; !store.isRoot(a) && a !== posix.dirname(a); a = posix.dirname(a)) present.add(a);
      return;
    }
    if (e) throw new PublishError(`${d} exists and is not a directory`, { hint: 'an object sits where the upload needs a directory: check -d (the upload base directory), or remove the object' });
    await look(parent);
    missing.add(d);
  };
  for (const d of dirs) {
    throwIfInterrupted();
    await look(d);
  }
  return missing;
}

async function alreadyStaged(from: string, to: string): Promise<boolean> {
  const [a, b] = await Promise.all([stat(from), stat(to).catch(() => undefined)]);
  if (!b) return false;
  if (a.ino === b.ino && a.dev === b.dev) return true;
  return a.size === b.size && (await md5File(from)).md5 === (await md5File(to)).md5;
}

/** eng's `cp /tmp/$(NAME)-zfs-$(VERSION).* bits/$(NAME)/`, as a hard link when it can (images are big). */
async function stage(from: string, to: string): Promise<void> {
  await ensureDir(dirname(to), { what: 'bits directory', flag: '-D' });
  const tmp = `${to}.partial-${randomUUID().slice(0, 8)}`;
  try {
    await link(from, tmp).catch(async (err: NodeJS.ErrnoException) => {
      if (!['EXDEV', 'EPERM', 'ENOTSUP', 'EMLINK'].includes(err.code ?? '')) throw err;
      await copyFile(from, tmp);
    });
    await rename(tmp, to);
  } catch (err) {
    await rm(tmp, { force: true });
    throw new PublishError(`cannot put ${from} into ${dirname(to)}: ${(err as Error).message}`);
  }
}

function hex(b64: string): string {
  return Buffer.from(b64, 'base64').toString('hex');
}
