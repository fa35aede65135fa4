/**
 * The publish plan: everything decided from local files alone (what
 * bits-upload.sh computed before its first mput): which files go where
 * with which MD5 and Content-Type, which directories are needed,
 * md5sums.txt, the pointers, and the images to import with -p, every
 * image manifest checked with its image (images.ts). Apply
 * (apply.ts) compares it with the store and carries it out.
 */
import { lstat, readdir, stat } from 'node:fs/promises';
import { basename, join, posix, sep } from 'node:path';
import { PublishError, UsageError } from '../core/errors.js';
import { publishDigests, type FileDigests } from '../core/files.js';
import { log } from '../core/log.js';
import { contentTypeFor, pointerNames } from './bits.js';
import { hashBits, type HashProgressOptions } from './hash.js';
import { checkImages, type CheckedImage } from './images.js';

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
  /** hex, from the same read as the MD5. */
  sha1: string;
  sha256: string;
  contentType: string;
}

/** An image to import with -p: its manifest and image file, checked against each other while planning. */
export type PlannedImport = CheckedImage<PlannedFile>;

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
  /** SHA256SUMS, as sha256sum(1) writes it: `sha256sum -c SHA256SUMS` in the stamp directory checks every file. */
  sha256sums: { remote: string; body: string };
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
  /** How hashing progress shows (default: a live line on a TTY, else a log line every 5 s). */
  progress?: HashProgressOptions;
  /**
   * Called once every file is hashed, before the images are checked: may
   * change build outputs (publish signs the build's provenance) and returns
   * the ones it changed, which are hashed again.
   */
  beforeCheck?: (files: PlannedFile[]) => Promise<PlannedFile[]>;
}

const ARTIFACTS = 'artifacts.txt';
export const MD5SUMS = 'md5sums.txt';
export const SHA256SUMS = 'SHA256SUMS';
const toPosix = (p: string): string => p.split(sep).join('/');

interface Found {
  dirs: string[];
  files: Map<string, string>;
  /** Symlinks met (never followed, never published), relative paths. */
  links: string[];
  /** FIFOs, sockets, devices: not published either. */
  special: string[];
}

/**
 * Every directory and regular file, by lstat: symlinks (to files or to
 * directories) are not followed, as bits-upload.sh's `find -type f` did not;
 * a link to ~/.ssh/id_rsa in a bits dir must not end up in public Manta.
 */
async function walk(root: string, rel: string, out: Found): Promise<void> {
  out.dirs.push(rel);
  const entries = await readdir(join(root, rel), { withFileTypes: true });
  for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (r === ARTIFACTS || e.name.includes('.partial-')) continue;
    if (e.isSymbolicLink()) out.links.push(r);
    else if (e.isDirectory()) await walk(root, r, out);
    else if (e.isFile()) out.files.set(r, join(root, r));
    else out.special.push(r);
  }
}

/** A subdirectory argument: inside the bits dir, and no component of it a symlink. */
async function checkSubdir(bitsDir: string, s: string): Promise<string> {
  const rel = toPosix(posix.normalize(toPosix(s))).replace(/\/+$/, '');
  if (rel === '..' || rel.startsWith('../') || rel.startsWith('/')) throw new UsageError(`subdirectory ${s} is not inside the bits directory`);
  if (rel === '.' || rel === '') return '';
  let at = '';
  for (const part of rel.split('/')) {
    at = at ? `${at}/${part}` : part;
    const st = await lstat(join(bitsDir, at)).catch(() => undefined);
    if (st?.isSymbolicLink()) {
      throw new UsageError(`subdirectory ${s}: ${at} is a symlink; publish does not follow links inside the bits directory`, 'name the real directory, or copy the files in');
    }
    if (!st?.isDirectory()) throw new UsageError(`${join(bitsDir, rel)} is not a directory`, 'check the subdirectory arguments');
  }
  return rel;
}

/** One read per file for every digest publish needs (MD5 for Manta and md5sums.txt, SHA-1 for the image check, SHA-256 for SHA256SUMS). */
function hashFile(rel: string, src: string, output: boolean, progress?: HashProgressOptions): Promise<FileDigests> {
  return hashBits(src, output ? 'build output' : 'bits file', `hashing ${rel} (MD5, SHA-1, SHA-256)`, publishDigests, progress);
}

/**
 * A line of md5sum(1)/sha256sum(1) output: `HEX  NAME`; a name with a
 * backslash or a newline is escaped as GNU coreutils does (the line starts
 * with a backslash), so `-c` reads every name back as it is.
 */
export function sumsLine(hex: string, name: string): string {
  if (!/[\\\n\r]/.test(name)) return `${hex}  ${name}\n`;
  return `\\${hex}  ${name.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/\r/g, '\\r')}\n`;
}

export async function makePlan(i: PlanInput): Promise<PublishPlan> {
  const st = await stat(i.bitsDir).catch(() => undefined);
  if (!st?.isDirectory()) throw new UsageError(`bits directory ${i.bitsDir} does not exist`, 'check -D, or run the build first');
  const found: Found = { dirs: [], files: new Map(), links: [], special: [] };
  if (i.subdirs?.length) {
    for (const s of i.subdirs) await walk(i.bitsDir, await checkSubdir(i.bitsDir, s), found);
  } else {
    await walk(i.bitsDir, '', found);
  }
  if (found.links.length) {
    const n = found.links.length;
    log.warn(`not publishing ${n} symlink${n === 1 ? '' : 's'} in ${i.bitsDir} (only regular files are published): ${[...new Set(found.links)].sort().join(', ')}`);
  }
  if (found.special.length) {
    log.warn(`not publishing ${found.special.length} special file(s) (FIFO, socket, device) in ${i.bitsDir}: ${[...new Set(found.special)].sort().join(', ')}`);
  }

  const staged: PublishPlan['staged'] = [];
  if (i.outputs?.length) {
    // Outputs are staged into <bits>/<name>/: that must be a real directory (or not there yet), not a link out.
    const st = await lstat(join(i.bitsDir, i.name)).catch(() => undefined);
    if (st && !st.isDirectory()) throw new PublishError(`${join(i.bitsDir, i.name)} is not a directory (${st.isSymbolicLink() ? 'a symlink' : 'a file'}); build outputs are not staged through it`);
  }
  for (const from of i.outputs ?? []) {
    const lst = await lstat(from).catch(() => undefined);
    if (!lst?.isFile()) throw new PublishError(`build output ${from} is ${lst ? 'not a regular file' : 'missing'}; only regular files are published`);
    const rel = `${i.name}/${basename(from)}`;
    staged.push({ from, to: join(i.bitsDir, rel) });
    found.files.set(rel, from);
    if (!found.dirs.includes(i.name)) found.dirs.push(i.name);
  }
  if (!found.files.size) throw new UsageError(`nothing to publish: no files in ${i.bitsDir}`, 'check -D and -n');

  const stampDir = posix.join(i.baseDir, i.stamp);
  const files: PlannedFile[] = [];
  for (const [rel, src] of [...found.files.entries()].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const h = await hashFile(rel, src, staged.some((x) => x.from === src), i.progress);
    const stagedTo = staged.find((s) => s.from === src)?.to;
    files.push({ rel, local: stagedTo ?? src, source: src, remote: posix.join(stampDir, rel), ...h, contentType: contentTypeFor(basename(rel)) });
  }
  for (const f of (await i.beforeCheck?.(files)) ?? []) Object.assign(f, await hashFile(f.rel, f.source, true, i.progress));
  const dirs = [i.baseDir, ...[...new Set(found.dirs)].sort().map((d) => (d ? posix.join(stampDir, d) : stampDir))];
  const uniqueDirs = [...new Set(dirs)];

  // Before anything is uploaded or a pointer moved: every image manifest valid, every image its manifest's.
  const images = await checkImages(files, { imports: !!i.imports, progress: i.progress });

  // md5sum(1) and sha256sum(1) lines relative to the stamp directory, so `md5sum -c`
  // and `sha256sum -c` work there (bits-upload.sh wrote the build host's bits path instead).
  const md5sums = files.map((f) => sumsLine(f.md5hex, f.rel)).join('');
  const sha256sums = files.map((f) => sumsLine(f.sha256, f.rel)).join('');

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
    md5sums: { remote: posix.join(stampDir, MD5SUMS), body: md5sums },
    sha256sums: { remote: posix.join(stampDir, SHA256SUMS), body: sha256sums },
    pointers: pointerNames(i.branch, i.tryBranch).map((n) => ({ remote: posix.join(i.baseDir, n), target: stampDir })),
    imports: i.imports ? images : [],
    artifactsFile: join(i.bitsDir, ARTIFACTS),
  };
}
