/**
 * What is in an image root, for its SBOM: the pkgsrc packages of its pkgdb
 * (+BUILD_INFO's PKGPATH, LICENSE, HOMEPAGE), the npm packages under every
 * node_modules (package.json, and integrity from the project's lockfile),
 * and every node binary with its version from the headers installed beside
 * it (an image's binary is never run). Taken at seal, from the final root.
 *
 * Everything here is read as hostile (see read.ts): bounded in bytes,
 * entries, depth and packages; a file that is a link, too large or not
 * JSON is skipped with one warning naming its path, never its content; a
 * bound reached stops that part with one warning and says so in the
 * inventory (`incomplete`), so the SBOM does not pass for whole.
 */
import type { Dirent } from 'node:fs';
import { opendir, lstat } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { oneLine } from '../core/errors.js';
import { log } from '../core/log.js';
import { recordedUrl } from '../core/redact.js';
import { PKG_DBDIR } from '../pkgsrc/tools.js';
import { readBounded, realDirBelow, Unreadable } from './read.js';

export interface Limits {
  /** Directory entries looked at in the whole walk. */
  maxEntries: number;
  /** Path components below the root a directory may have to be walked. */
  maxDepth: number;
  maxNpmPackages: number;
  maxPkgsrcPackages: number;
  /** One package.json, +BUILD_INFO, +COMMENT or node_version.h. */
  maxSmallFileBytes: number;
  /** One lockfile (package-lock.json and its kin). */
  maxLockfileBytes: number;
  /** Locations listed per npm package (the same name@version in many trees). */
  maxPathsPerPackage: number;
  /** Warnings shown; the rest are counted in one line. */
  maxWarnings: number;
}

export const LIMITS: Limits = {
  maxEntries: 500_000,
  maxDepth: 128,
  maxNpmPackages: 20_000,
  maxPkgsrcPackages: 10_000,
  maxSmallFileBytes: 1024 * 1024,
  maxLockfileBytes: 32 * 1024 * 1024,
  maxPathsPerPackage: 16,
  maxWarnings: 20,
};

export interface PkgsrcPackage {
  name: string;
  version: string;
  pkgpath?: string;
  /** pkgsrc's license name(s), as in +BUILD_INFO (`mit`, `gnu-gpl-v2 OR modified-bsd`). */
  license?: string;
  homepage?: string;
  comment?: string;
}

export interface NpmPackage {
  name: string;
  version: string;
  /** package.json's license (an SPDX expression if the author followed npm's advice; not checked here). */
  license?: string;
  /** The lockfile's subresource integrity (`sha512-…`) when its entry has this version. */
  integrity?: string;
  /** The lockfile's `resolved` URL, without credentials. */
  resolved?: string;
  /** Where it is in the image (absolute in the zone), sorted; at most maxPathsPerPackage. */
  paths: string[];
}

export interface NodeBinary {
  /** Absolute in the zone. */
  path: string;
  /** From `<prefix>/include/node/node_version.h` beside `<prefix>/bin/node`; undefined when there is none. */
  version?: string;
}

export interface Inventory {
  pkgsrc: PkgsrcPackage[];
  npm: NpmPackage[];
  node: NodeBinary[];
  /** Each bound reached or part not read, one phrase each: the SBOM says it is incomplete. */
  incomplete: string[];
}

const PKGNAME_RE = /^([A-Za-z0-9\-_.+]+)-([A-Za-z0-9._+~]+)$/;
/** npm's own rules are looser than this (old packages have capitals), but no space, control character or stray slash gets in. */
const NPM_NAME_RE = /^(?:@[^\s/@]{1,214}\/)?[^\s/@][^\s/]{0,213}$/;
const NPM_VERSION_RE = /^\S{1,256}$/;
const hasControl = (s: string) => [...s].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f);
const LOCKFILES = ['npm-shrinkwrap.json', 'package-lock.json'];
const HIDDEN_LOCKFILE = '.package-lock.json';

class Warnings {
  private shown = 0;
  private hidden = 0;
  constructor(private readonly max: number) {}
  warn(msg: string): void {
    if (this.shown < this.max) {
      this.shown++;
      log.warn(`SBOM: ${msg}`);
    } else this.hidden++;
  }
  done(): void {
    if (this.hidden) log.warn(`SBOM: ${this.hidden} more warning${this.hidden === 1 ? '' : 's'} like these not shown`);
  }
}

/** A path below the root as the zone sees it, quoted for a message (file names may hold anything). */
const shown = (rel: string) => JSON.stringify(`/${rel}`);

function why(err: unknown): string {
  if (err instanceof Unreadable) return err.message;
  return `cannot be read (${(err as NodeJS.ErrnoException).code ?? oneLine(err)})`;
}

/** A bounded string field of a parsed file, else undefined. */
function str(v: unknown, max = 1024): string | undefined {
  return typeof v === 'string' && v.length > 0 && v.length <= max ? v : undefined;
}

export async function takeInventory(root: string, limits: Limits = LIMITS): Promise<Inventory> {
  const w = new Warnings(limits.maxWarnings);
  const incomplete: string[] = [];
  try {
    const pkgsrc = await readPkgdb(root, limits, w, incomplete);
    const walked = await walkRoot(root, limits, w, incomplete);
    const npm = await withLockfiles(root, walked, limits, w);
    const node: NodeBinary[] = walked.nodeBins
      .map((rel) => {
        const version = walked.nodeVersions.get(parentOf(parentOf(rel)));
        return { path: `/${rel}`, ...(version ? { version } : {}) };
      })
      .sort((a, b) => cmp(a.path, b.path));
    for (const n of node) if (!n.version) log.info(`SBOM: node binary ${JSON.stringify(n.path)} has no include/node/node_version.h beside it: listed without a version`);
    return { pkgsrc, npm, node, incomplete: [...new Set(incomplete)].sort(cmp) };
  } finally {
    w.done();
  }
}

/** The parent of a path relative to the root ('' for the root). */
function parentOf(rel: string): string {
  const d = posix.dirname(rel);
  return d === '.' ? '' : d;
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

// ---- pkgsrc

async function readPkgdb(root: string, limits: Limits, w: Warnings, incomplete: string[]): Promise<PkgsrcPackage[]> {
  const rel = PKG_DBDIR.slice(1);
  const dir = await realDirBelow(root, rel);
  if (!dir.path) {
    if (dir.why === 'does not exist') log.info(`SBOM: no pkgdb at ${PKG_DBDIR}: no pkgsrc packages listed`);
    else {
      w.warn(`not reading the pkgdb ${PKG_DBDIR}: ${dir.why}`);
      incomplete.push(`pkgdb ${PKG_DBDIR} not read`);
    }
    return [];
  }
  const out: PkgsrcPackage[] = [];
  try {
    await listPkgdb(dir.path, rel, out, limits, w, incomplete);
  } catch (err) {
    w.warn(`the pkgdb ${PKG_DBDIR} ${why(err)}: the pkgsrc packages listed may be incomplete`);
    incomplete.push(`pkgdb ${PKG_DBDIR} not read whole`);
  }
  return out.sort((a, b) => cmp(a.name, b.name) || cmp(a.version, b.version));
}

async function listPkgdb(path: string, rel: string, out: PkgsrcPackage[], limits: Limits, w: Warnings, incomplete: string[]): Promise<void> {
  for await (const e of await opendir(path)) {
    // The pkgdb's own files (pkgdb.byfile.db, pkg-vulnerabilities) are not directories; links are not followed.
    if (!e.isDirectory()) continue;
    if (out.length >= limits.maxPkgsrcPackages) {
      w.warn(`more than ${limits.maxPkgsrcPackages} packages in ${PKG_DBDIR}: the rest are not listed`);
      incomplete.push(`more than ${limits.maxPkgsrcPackages} pkgsrc packages`);
      break;
    }
    const m = e.name.length <= 255 ? PKGNAME_RE.exec(e.name) : null;
    if (!m) {
      w.warn(`${shown(`${rel}/${e.name}`)} is not named as a package (name-version): skipped`);
      continue;
    }
    const pdir = join(path, e.name);
    const contents = await lstat(join(pdir, '+CONTENTS')).catch(() => undefined);
    // Half installed or half removed: pkg_info does not list it either.
    if (!contents?.isFile()) continue;
    const pkg: PkgsrcPackage = { name: m[1], version: m[2] };
    const info = await readBounded(join(pdir, '+BUILD_INFO'), limits.maxSmallFileBytes).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') w.warn(`${shown(`${rel}/${e.name}/+BUILD_INFO`)} ${why(err)}: ${e.name} listed without its license, homepage and PKGPATH`);
      return '';
    });
    const vars = buildInfoVars(info);
    if (vars.PKGPATH) pkg.pkgpath = vars.PKGPATH;
    if (vars.LICENSE) pkg.license = vars.LICENSE;
    if (vars.HOMEPAGE) pkg.homepage = vars.HOMEPAGE;
    const comment = await readBounded(join(pdir, '+COMMENT'), limits.maxSmallFileBytes).catch(() => '');
    const first = str(comment.split('\n')[0]?.trim(), 512);
    if (first) pkg.comment = first;
    out.push(pkg);
  }
}

/** +BUILD_INFO's KEY=VALUE lines: the first value of each key, bounded. */
export function buildInfoVars(text: string): Record<string, string> {
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (eq <= 0) continue;
    const key = line.slice(0, eq);
    const value = str(line.slice(eq + 1).trim());
    if (/^[A-Z_]+$/.test(key) && value && !(key in out)) out[key] = value;
  }
  return out;
}

// ---- the walk: npm packages, lockfiles, node binaries and headers

interface Found {
  version: string;
  name: string;
  license?: string;
  /** Relative to the root, the package's directory. */
  paths: string[];
}

interface Walked {
  packages: Map<string, Found>;
  /** Project dir (relative) → lockfiles seen there, relative paths. */
  lockfiles: Map<string, string[]>;
  nodeBins: string[];
  /** Prefix (relative, the dir holding include/) → version. */
  nodeVersions: Map<string, string>;
}

/** A package's directory: a child of node_modules, or of an @scope in it. */
function isPackageDir(rel: string): boolean {
  const parts = rel.split('/');
  const n = parts.length;
  if (n >= 2 && parts[n - 2] === 'node_modules') return !parts[n - 1].startsWith('.') && !parts[n - 1].startsWith('@');
  return n >= 3 && parts[n - 3] === 'node_modules' && parts[n - 2].startsWith('@') && !parts[n - 1].startsWith('.');
}

/** Directories read at once, and files: the walk waits on the disk, not on one syscall after another. */
const WALKERS = 8;
const READERS = 16;

/** Runs `fn` over `items`, `n` at a time. */
async function inPool<T>(items: T[], n: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]);
    }),
  );
}

async function walkRoot(root: string, limits: Limits, w: Warnings, incomplete: string[]): Promise<Walked> {
  const out: Walked = { packages: new Map(), lockfiles: new Map(), nodeBins: [], nodeVersions: new Map() };
  const rootDev = (await lstat(root)).dev;
  const manifests: string[] = [];
  const headers: string[] = [];
  let entries = 0;
  let stopped = false;
  let tooDeep = false;
  const addLock = (project: string, file: string) => out.lockfiles.set(project, [...(out.lockfiles.get(project) ?? []), file]);

  const visit = async (rel: string, push: (child: string) => void) => {
    const abs = rel ? join(root, rel) : root;
    let dir;
    try {
      if (rel && (await lstat(abs)).dev !== rootDev) return; // a mount inside the root is not the image's
      dir = await opendir(abs, { bufferSize: 256 });
    } catch (err) {
      w.warn(`${shown(rel)} ${why(err)}: not looked into`);
      return;
    }
    try {
      await entriesOf(dir, rel, push);
    } catch (err) {
      w.warn(`${shown(rel)} ${why(err)}: not looked into whole`);
    }
  };
  const entriesOf = async (dir: AsyncIterable<Dirent>, rel: string, push: (child: string) => void) => {
    const base = posix.basename(rel);
    for await (const e of dir) {
      if (stopped) break;
      if (++entries > limits.maxEntries) {
        stopped = true;
        w.warn(`more than ${limits.maxEntries} entries in the image: the rest is not looked into for npm packages and node binaries`);
        incomplete.push(`more than ${limits.maxEntries} entries in the image root`);
        break;
      }
      const child = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) {
        if (child.split('/').length <= limits.maxDepth) push(child);
        else if (!tooDeep) {
          tooDeep = true;
          w.warn(`${shown(child)} is more than ${limits.maxDepth} levels deep: not looked into (nor anything as deep)`);
          incomplete.push(`directories deeper than ${limits.maxDepth} levels`);
        }
      } else if (e.name === 'package.json' && isPackageDir(rel)) manifests.push(child);
      else if (LOCKFILES.includes(e.name)) addLock(rel, child);
      else if (e.name === HIDDEN_LOCKFILE && base === 'node_modules') addLock(parentOf(rel), child);
      else if (e.name === 'node' && base === 'bin' && e.isFile()) out.nodeBins.push(child);
      else if (e.name === 'node_version.h' && (rel === 'include/node' || rel.endsWith('/include/node'))) headers.push(child);
    }
  };

  // Depth first, WALKERS directories at a time; the stack holds no more than the entries counted.
  const stack: string[] = [''];
  let active = 0;
  await new Promise<void>((resolve, reject) => {
    const pump = () => {
      while (!stopped && active < WALKERS && stack.length) {
        active++;
        visit(stack.pop()!, (c) => stack.push(c)).then(() => {
          active--;
          pump();
        }, reject);
      }
      if (active === 0 && (stopped || !stack.length)) resolve();
    };
    pump();
  });

  // Sorted before the bound: the same tree lists the same packages.
  manifests.sort(cmp);
  if (manifests.length > limits.maxNpmPackages) {
    w.warn(`more than ${limits.maxNpmPackages} npm packages in the image (${manifests.length}): the rest are not listed`);
    incomplete.push(`more than ${limits.maxNpmPackages} npm packages`);
    manifests.length = limits.maxNpmPackages;
  }
  const read = new Map<string, Omit<Found, 'paths'> | undefined>();
  await inPool(manifests, READERS, async (rel) => void read.set(rel, await readPackageJson(root, rel, limits, w)));
  for (const rel of manifests) {
    const pkg = read.get(rel);
    if (!pkg) continue;
    const key = `${pkg.name}@${pkg.version}`;
    const dir = parentOf(rel);
    const have = out.packages.get(key);
    if (have) have.paths.push(dir);
    else out.packages.set(key, { ...pkg, paths: [dir] });
  }
  for (const rel of headers.sort(cmp)) {
    const version = await readNodeVersion(root, rel, limits, w);
    if (version) out.nodeVersions.set(parentOf(parentOf(parentOf(rel))), version);
  }
  return out;
}

async function readPackageJson(root: string, rel: string, limits: Limits, w: Warnings): Promise<Omit<Found, 'paths'> | undefined> {
  let json: unknown;
  try {
    json = JSON.parse(await readBounded(join(root, rel), limits.maxSmallFileBytes));
  } catch (err) {
    w.warn(`${shown(rel)} ${err instanceof SyntaxError ? 'is not JSON' : why(err)}: that npm package is not listed`);
    return undefined;
  }
  const o = (json && typeof json === 'object' ? json : {}) as Record<string, unknown>;
  const name = str(o.name, 214 + 215);
  const version = str(o.version, 256);
  if (!name || !NPM_NAME_RE.test(name) || !version || !NPM_VERSION_RE.test(version) || hasControl(name + version)) {
    w.warn(`${shown(rel)} has no usable name and version: that npm package is not listed`);
    return undefined;
  }
  const license = npmLicense(o);
  return { name, version, ...(license ? { license } : {}) };
}

/** `license` (a string, or the old `{ type }`), else the older `licenses: [{ type }]` joined with OR. */
function npmLicense(o: Record<string, unknown>): string | undefined {
  const one = (v: unknown) => str(v, 256) ?? (v && typeof v === 'object' ? str((v as Record<string, unknown>).type, 256) : undefined);
  const l = one(o.license);
  if (l) return l;
  if (Array.isArray(o.licenses)) {
    const all = o.licenses.slice(0, 16).map(one).filter((x): x is string => !!x);
    if (all.length) return all.length === 1 ? all[0] : all.map((x) => `(${x})`).join(' OR ');
  }
  return undefined;
}

async function readNodeVersion(root: string, rel: string, limits: Limits, w: Warnings): Promise<string | undefined> {
  let text: string;
  try {
    text = await readBounded(join(root, rel), Math.min(limits.maxSmallFileBytes, 256 * 1024));
  } catch (err) {
    w.warn(`${shown(rel)} ${why(err)}: node's version not read from it`);
    return undefined;
  }
  const n = (what: string) => new RegExp(`^#define\\s+NODE_${what}_VERSION\\s+(\\d{1,6})\\b`, 'm').exec(text)?.[1];
  const [major, minor, patch] = [n('MAJOR'), n('MINOR'), n('PATCH')];
  return major && minor && patch ? `${major}.${minor}.${patch}` : undefined;
}

// ---- lockfiles

interface LockEntry {
  version?: string;
  integrity?: string;
  resolved?: string;
}

/** The project a package belongs to (the dir above its outermost node_modules) and its key in that project's lockfile. */
function projectOf(rel: string): { project: string; key: string } {
  const parts = rel.split('/');
  const i = parts.indexOf('node_modules');
  return { project: parts.slice(0, i).join('/'), key: parts.slice(i).join('/') };
}

async function withLockfiles(root: string, walked: Walked, limits: Limits, w: Warnings): Promise<NpmPackage[]> {
  const locks = new Map<string, Map<string, LockEntry> | undefined>();
  const lockOf = async (project: string) => {
    if (!locks.has(project)) locks.set(project, await readLock(root, walked.lockfiles.get(project) ?? [], limits, w));
    return locks.get(project);
  };
  const out: NpmPackage[] = [];
  for (const f of walked.packages.values()) {
    const pkg: NpmPackage = { name: f.name, version: f.version, ...(f.license ? { license: f.license } : {}), paths: [] };
    for (const rel of f.paths) {
      const { project, key } = projectOf(rel);
      const entry = (await lockOf(project))?.get(key);
      // A lockfile older than the tree says nothing about this version.
      if (entry?.version !== f.version) continue;
      if (!pkg.integrity && entry.integrity) pkg.integrity = entry.integrity;
      if (!pkg.resolved && entry.resolved) pkg.resolved = recordedUrl(entry.resolved);
    }
    pkg.paths = f.paths.map((p) => `/${p}`).sort(cmp).slice(0, limits.maxPathsPerPackage);
    out.push(pkg);
  }
  return out.sort((a, b) => cmp(a.name, b.name) || cmp(a.version, b.version));
}

/** The first of a project's lockfiles that reads, as key (`node_modules/a/node_modules/b`) → entry. */
async function readLock(root: string, files: string[], limits: Limits, w: Warnings): Promise<Map<string, LockEntry> | undefined> {
  const rank = (f: string) => [...LOCKFILES, HIDDEN_LOCKFILE].indexOf(posix.basename(f));
  for (const rel of [...files].sort((a, b) => rank(a) - rank(b))) {
    let json: unknown;
    try {
      json = JSON.parse(await readBounded(join(root, rel), limits.maxLockfileBytes));
    } catch (err) {
      w.warn(`${shown(rel)} ${err instanceof SyntaxError ? 'is not JSON' : why(err)}: no integrity taken from it`);
      continue;
    }
    if (!json || typeof json !== 'object') continue;
    const o = json as Record<string, unknown>;
    const out = new Map<string, LockEntry>();
    const entry = (v: unknown): LockEntry | undefined => {
      if (!v || typeof v !== 'object') return undefined;
      const e = v as Record<string, unknown>;
      const version = str(e.version, 256);
      const integrity = str(e.integrity, 1024);
      const resolved = str(e.resolved, 2048);
      return { ...(version ? { version } : {}), ...(integrity ? { integrity } : {}), ...(resolved ? { resolved } : {}) };
    };
    const cap = limits.maxNpmPackages * 4;
    if (o.packages && typeof o.packages === 'object') {
      // lockfileVersion 2 and 3: keys are paths from the project.
      for (const [k, v] of Object.entries(o.packages as Record<string, unknown>)) {
        if (out.size >= cap) break;
        const e = k.startsWith('node_modules/') ? entry(v) : undefined;
        if (e) out.set(k, e);
      }
    } else if (o.dependencies && typeof o.dependencies === 'object') {
      // lockfileVersion 1: nested dependencies.
      const todo: Array<[string, unknown, number]> = [['node_modules', o.dependencies, 1]];
      while (todo.length && out.size < cap) {
        const [prefix, deps, depth] = todo.pop()!;
        if (!deps || typeof deps !== 'object' || depth > limits.maxDepth) continue;
        for (const [name, v] of Object.entries(deps as Record<string, unknown>)) {
          const e = entry(v);
          if (!e) continue;
          const key = `${prefix}/${name}`;
          out.set(key, e);
          const nested = (v as Record<string, unknown>).dependencies;
          if (nested) todo.push([`${key}/node_modules`, nested, depth + 1]);
        }
      }
    }
    return out;
  }
  return undefined;
}
