/**
 * The publish plan: everything decided from local files alone (what
 * bits-upload.sh computed before its first mput): which files go where
 * with which MD5 and Content-Type, which directories are needed,
 * md5sums.txt, the pointers, and the images to import with -p. Apply
 * (apply.ts) compares it with the store and carries it out.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, join, posix, sep } from 'node:path';
import { PublishError, UsageError } from '../core/errors.js';
import { COMPRESSIONS, fileSuffix } from '../image/compression.js';
import { contentTypeFor, pointerNames } from './bits.js';
import { md5File } from '../core/files.js';

export interface PlannedFile {
  /** Path relative to the bits dir (and to the stamp directory), with `/`. */
  rel: string;
  /** The file in the bits dir that is published. */
  local: string;
  /** Where its bytes are now (a build output before staging, else `local`). */
  source: string;
  /** Store path. */
  remote: string;
  size: number;
  /** base64, as Manta's Content-MD5. */
  md5: string;
  md5hex: string;
  contentType: string;
}

export interface PlannedImport {
  uuid: string;
  manifest: PlannedFile;
  image: PlannedFile;
  compression?: 'none';
}

export interface PublishPlan {
  name: string;
  stamp: string;
  branch: string;
  tryBranch?: string;
  channel: string;
  bitsDir: string;
  /** Store path of -d. */
  baseDir: string;
  /** Store path `<base>/<stamp>`. */
  stampDir: string;
  /** Build outputs (--state) to link or copy into the bits dir first. */
  staged: { from: string; to: string }[];
  /** Store directories needed, parents first. */
  dirs: string[];
  files: PlannedFile[];
  md5sums: { remote: string; body: string };
  pointers: { remote: string; target: string }[];
  imports: PlannedImport[];
  /** Local list of what was published (bits-upload.sh's artifacts.txt). */
  artifactsFile: string;
}

export interface PlanInput {
  name: string;
  branch: string;
  tryBranch?: string;
  stamp: string;
  channel: string;
  bitsDir: string;
  baseDir: string;
  /** Only these subdirectories of the bits dir (bits-upload.sh's trailing args). */
  subdirs?: string[];
  /** --state: build outputs that belong in `<bits>/<name>/`. */
  outputs?: string[];
  /** -p: find image manifests and their image files. */
  imports?: boolean;
}

const ARTIFACTS = 'artifacts.txt';
const toPosix = (p: string): string => p.split(sep).join('/');

interface Found {
  dirs: string[];
  files: Map<string, string>;
}

/** Every directory and regular file (symlinks to files followed, to directories not). */
async function walk(root: string, rel: string, out: Found): Promise<void> {
  out.dirs.push(rel);
  const entries = await readdir(join(root, rel), { withFileTypes: true });
  for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (r === ARTIFACTS || e.name.includes('.partial-')) continue;
    if (e.isDirectory()) await walk(root, r, out);
    else if (e.isFile() || (e.isSymbolicLink() && (await stat(join(root, r)).catch(() => undefined))?.isFile())) {
      out.files.set(r, join(root, r));
    }
  }
}

export async function makePlan(i: PlanInput): Promise<PublishPlan> {
  const st = await stat(i.bitsDir).catch(() => undefined);
  if (!st?.isDirectory()) throw new UsageError(`bits directory ${i.bitsDir} does not exist`, 'check -D, or run the build first');
  const found: Found = { dirs: [], files: new Map() };
  if (i.subdirs?.length) {
    for (const s of i.subdirs) {
      const rel = toPosix(posix.normalize(s)).replace(/\/+$/, '');
      if (rel.startsWith('..') || rel.startsWith('/')) throw new UsageError(`subdirectory ${s} is not inside the bits directory`);
      if (!(await stat(join(i.bitsDir, rel)).catch(() => undefined))?.isDirectory()) {
        throw new UsageError(`${join(i.bitsDir, rel)} is not a directory`, 'check the subdirectory arguments');
      }
      await walk(i.bitsDir, rel, found);
    }
  } else {
    await walk(i.bitsDir, '', found);
  }

  const staged: PublishPlan['staged'] = [];
  for (const from of i.outputs ?? []) {
    const rel = `${i.name}/${basename(from)}`;
    staged.push({ from, to: join(i.bitsDir, rel) });
    found.files.set(rel, from);
    if (!found.dirs.includes(i.name)) found.dirs.push(i.name);
  }
  if (!found.files.size) throw new UsageError(`nothing to publish: no files in ${i.bitsDir}`, 'check -D and -n');

  const stampDir = posix.join(i.baseDir, i.stamp);
  const files: PlannedFile[] = [];
  for (const [rel, src] of [...found.files.entries()].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const h = await md5File(src);
    const stagedTo = staged.find((s) => s.from === src)?.to;
    files.push({
      rel,
      local: stagedTo ?? src,
      source: src,
      remote: posix.join(stampDir, rel),
      size: h.size,
      md5: h.md5,
      md5hex: h.md5hex,
      contentType: contentTypeFor(basename(rel)),
    });
  }
  const dirs = [i.baseDir, ...[...new Set(found.dirs)].sort().map((d) => (d ? posix.join(stampDir, d) : stampDir))];
  const uniqueDirs = [...new Set(dirs)];

  // md5sum(1) lines relative to the stamp directory, so `md5sum -c` works there
  // (bits-upload.sh wrote the build host's bits path instead).
  const md5sums = files.map((f) => `${f.md5hex}  ${f.rel}\n`).join('');

  return {
    name: i.name,
    stamp: i.stamp,
    branch: i.branch,
    ...(i.tryBranch ? { tryBranch: i.tryBranch } : {}),
    channel: i.channel,
    bitsDir: i.bitsDir,
    baseDir: i.baseDir,
    stampDir,
    staged,
    dirs: uniqueDirs,
    files,
    md5sums: { remote: posix.join(stampDir, 'md5sums.txt'), body: md5sums },
    pointers: pointerNames(i.branch, i.tryBranch).map((n) => ({ remote: posix.join(i.baseDir, n), target: stampDir })),
    imports: i.imports ? await findImports(files) : [],
    artifactsFile: join(i.bitsDir, ARTIFACTS),
  };
}

/** Image payloads next to a manifest, in bits-upload.sh's order plus buildimage's other compressions. */
const IMAGE_SUFFIXES: { suffix: string; compression?: 'none' }[] = [
  ...COMPRESSIONS.map((c) => ({ suffix: fileSuffix(c) })),
  { suffix: '.sh', compression: 'none' },
  { suffix: '.tgz' },
  { suffix: '.tar.gz' },
];

/**
 * Every *.imgmanifest / *.manifest with its image file and uuid. A manifest
 * without either is an error: bits-upload.sh skipped it and exited 0, so a
 * release could silently miss the updates server.
 */
async function findImports(files: PlannedFile[]): Promise<PlannedImport[]> {
  const byRel = new Map(files.map((f) => [f.rel, f]));
  const out: PlannedImport[] = [];
  for (const mf of files.filter((f) => /\.(imgmanifest|manifest)$/.test(f.rel))) {
    const stem = mf.rel.replace(/\.(imgmanifest|manifest)$/, '');
    const hit = IMAGE_SUFFIXES.find((s) => byRel.has(stem + s.suffix));
    if (!hit) {
      throw new PublishError(`cannot import ${mf.rel} into updates IMGAPI: no image file beside it`, {
        hint: `looked for ${IMAGE_SUFFIXES.map((s) => basename(stem) + s.suffix).join(', ')}`,
      });
    }
    let uuid: unknown;
    try {
      uuid = (JSON.parse(await readFile(mf.source, 'utf8')) as { uuid?: unknown }).uuid;
    } catch {
      uuid = undefined;
    }
    if (typeof uuid !== 'string' || !uuid) throw new PublishError(`cannot import ${mf.rel} into updates IMGAPI: the manifest has no uuid`);
    out.push({ uuid, manifest: mf, image: byRel.get(stem + hit.suffix)!, ...(hit.compression ? { compression: hit.compression } : {}) });
  }
  return out;
}
