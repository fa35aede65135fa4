/**
 * The package lock: the exact versions a build resolved (every package
 * pkgadd installed or changed against the origin image, and the version of
 * each -p package), as `buildimage.lock.json` keeps them beside the build
 * definition, and what `--locked` installs instead of resolving again
 * (`pkg_add -U name-version`, dependencies first). A lockfile is untrusted
 * input: bounded (settings reads it), schema-checked, every name by the -p
 * rules plus a version, the repository without credentials.
 */
import { z } from 'zod';
import { BuildError, UsageError } from '../core/errors.js';
import { recordedUrl } from '../core/redact.js';
import { checkPackageName, MAX_PACKAGE_NAME_LENGTH, MAX_PACKAGES } from './names.js';

export const LOCKFILE_VERSION = 1;
/** The lockfile's name beside `buildimage.json` (`<stem>.lock.json` beside another definition file). */
export const DEFAULT_LOCKFILE = 'buildimage.lock.json';
export const MAX_LOCKFILE_BYTES = 1024 * 1024;
/** Packages a lock may hold: -p's own and what they pull in, or a whole upgraded base. */
export const MAX_LOCKED_PACKAGES = 5000;

/** PKGVERSION: starts with a digit, no "-" (PKGNAME is split at the last one). */
const VERSION_RE = /^[0-9][A-Za-z0-9_.+]*$/;

const Name = z.string().max(MAX_PACKAGE_NAME_LENGTH);

const EntrySchema = z
  .object({
    name: Name,
    version: Name,
    /** Installed as a dependency (pkg_add -A), not asked for. */
    automatic: z.boolean().optional(),
    /** Locked packages it depends on: installed before it. */
    depends: z.array(Name).max(MAX_LOCKED_PACKAGES).optional(),
  })
  .strict();

export const PackageLockSchema = z
  .object({
    lockfileVersion: z.literal(LOCKFILE_VERSION),
    /** PKG_PATH as the image's pkg_add saw it, without credentials: where the versions came from. */
    repository: z.string().max(4096).optional(),
    /** The origin image the lock was resolved on. */
    origin: z.string().max(64).optional(),
    /** Made by a build that ran `pkgin full-upgrade` (-u): the upgraded versions are locked too. */
    upgrade: z.boolean(),
    /** The -p list it was made for. */
    requested: z.array(Name).max(MAX_PACKAGES),
    packages: z.array(EntrySchema).max(MAX_LOCKED_PACKAGES),
  })
  .strict();
export type PackageLock = z.infer<typeof PackageLockSchema>;
export type LockedPackage = z.infer<typeof EntrySchema>;

export const pkgnameOf = (p: Pick<LockedPackage, 'name' | 'version'>): string => `${p.name}-${p.version}`;

/** PKGNAME split at the last "-", as pkg_install does. */
export function splitPkgname(pkgname: string): { name: string; version: string } | undefined {
  const i = pkgname.lastIndexOf('-');
  return i > 0 && i < pkgname.length - 1 ? { name: pkgname.slice(0, i), version: pkgname.slice(i + 1) } : undefined;
}

/** pkg_match for a -p name (no pattern characters): the name itself, or `name-[0-9]*`. */
export function namesPackage(item: string, pkgname: string): boolean {
  return pkgname === item || (pkgname.startsWith(`${item}-`) && /^[0-9]/.test(pkgname.slice(item.length + 1)));
}

/** Every rule a lock must keep, beyond its schema; `what` names it ("lockfile buildimage.lock.json"). */
export function checkLock(lock: PackageLock, what: string): PackageLock {
  const names = new Set<string>();
  for (const p of lock.packages) {
    checkPackageName(p.name, what);
    if (!VERSION_RE.test(p.version)) throw new UsageError(`invalid version ${JSON.stringify(p.version.slice(0, 80))} of ${p.name} in ${what}: a pkgsrc version starts with a digit and has only letters, digits and _ . +`);
    checkPackageName(pkgnameOf(p), what);
    if (names.has(p.name)) throw new UsageError(`${what} locks ${p.name} twice`);
    names.add(p.name);
  }
  for (const p of lock.packages) {
    for (const d of p.depends ?? []) if (!names.has(d)) throw new UsageError(`${what}: ${p.name} depends on ${JSON.stringify(d.slice(0, 80))}, which it does not lock`);
  }
  for (const r of lock.requested) {
    checkPackageName(r, what);
    if (!lock.packages.some((p) => namesPackage(r, pkgnameOf(p)))) throw new UsageError(`${what} asks for ${r} but locks no version of it`);
  }
  return { ...lock, ...(lock.repository === undefined ? {} : { repository: recordedPath(lock.repository) }) };
}

/** A lockfile's JSON, checked; `what` names it in every message. */
export function parseLock(json: unknown, what: string): PackageLock {
  if (json && typeof json === 'object' && 'lockfileVersion' in json && json.lockfileVersion !== LOCKFILE_VERSION) {
    throw new UsageError(`${what} has lockfileVersion ${JSON.stringify(json.lockfileVersion)}; this buildimage reads version ${LOCKFILE_VERSION}`, 'write the lock again with this buildimage (build --write-lock)');
  }
  const r = PackageLockSchema.safeParse(json);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new UsageError(`${what} is not a buildimage lockfile (${issue?.path.join('.') || 'top'}: ${issue?.message})`);
  }
  return checkLock(r.data, what);
}

/** The file's text: sorted, so that a changed version is a one-line diff. */
export function lockText(lock: PackageLock): string {
  const sorted: PackageLock = {
    lockfileVersion: LOCKFILE_VERSION,
    ...(lock.repository === undefined ? {} : { repository: recordedPath(lock.repository) }),
    ...(lock.origin === undefined ? {} : { origin: lock.origin }),
    upgrade: lock.upgrade,
    requested: [...lock.requested].sort(),
    packages: [...lock.packages]
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
      .map((p) => ({
        name: p.name,
        version: p.version,
        ...(p.automatic ? { automatic: true } : {}),
        ...(p.depends?.length ? { depends: [...p.depends].sort() } : {}),
      })),
  };
  return `${JSON.stringify(sorted, null, 2)}\n`;
}

/** PKG_PATH (";"-separated) without the credentials of any of its URLs. */
export function recordedPath(pkgPath: string): string {
  return pkgPath
    .split(';')
    .map((p) => recordedUrl(p.trim()))
    .join(';');
}

/**
 * The base names a dependency pattern may name (`libgreet>=1.0`,
 * `libgreet-[0-9]*`, `{a,b}>=1`), for the install order only: what was
 * really installed is checked after.
 */
export function patternBases(pattern: string): string[] {
  const open = pattern.indexOf('{');
  const close = pattern.indexOf('}', open);
  if (open >= 0 && close > open) {
    const head = pattern.slice(0, open);
    const tail = pattern.slice(close + 1);
    return [...new Set(pattern.slice(open + 1, close).split(',').flatMap((alt) => patternBases(head + alt + tail)))];
  }
  const dewey = pattern.search(/[<>]/);
  if (dewey > 0) return [pattern.slice(0, dewey)];
  const m = /^(.+?)-[0-9[*?]/.exec(pattern);
  return [m ? m[1] : pattern];
}

export interface ResolvedPackages {
  /** PKGNAMEs before pkgadd changed anything (`pkg_info -a`). */
  before: string[];
  /** After. */
  after: string[];
  /** Installed by request, not as a dependency (`pkg_info -u`). */
  user: string[];
  /** The definition's -p list. */
  requested: string[];
  /** DEPENDS patterns of installed packages, by PKGNAME (`pkg_info -Xa`). */
  depends: Map<string, string[]>;
  repository?: string;
  origin?: string;
  upgrade: boolean;
}

/** What a build resolved, as a lock: every package it added or changed, and each -p package's version. */
export function resolvedLock(r: ResolvedPackages): PackageLock {
  const before = new Set(r.before);
  const locked = new Set(r.after.filter((n) => !before.has(n)));
  for (const item of r.requested) {
    const match = r.after.find((n) => n === item) ?? r.after.find((n) => namesPackage(item, n));
    if (!match) throw new BuildError(`package ${item} (-p) is not installed after pkg_add`);
    locked.add(match);
  }
  const entries = [...locked].map((pkgname) => {
    const split = splitPkgname(pkgname);
    if (!split) throw new BuildError(`pkg_info names an installed package without a version: ${JSON.stringify(pkgname.slice(0, 80))}`);
    return { pkgname, ...split };
  });
  const bases = new Set(entries.map((e) => e.name));
  const user = new Set(r.user);
  const lock: PackageLock = {
    lockfileVersion: LOCKFILE_VERSION,
    ...(r.repository ? { repository: recordedPath(r.repository) } : {}),
    ...(r.origin ? { origin: r.origin } : {}),
    upgrade: r.upgrade,
    requested: [...r.requested],
    packages: entries.map((e) => {
      const deps = [...new Set((r.depends.get(e.pkgname) ?? []).flatMap(patternBases))].filter((b) => b !== e.name && bases.has(b));
      return { name: e.name, version: e.version, ...(user.has(e.pkgname) ? {} : { automatic: true }), ...(deps.length ? { depends: deps } : {}) };
    }),
  };
  // What the image's tools said is checked as a lockfile is: a lock written is a lock that reads back.
  return checkLock(PackageLockSchema.parse(JSON.parse(lockText(lock))), 'the resolved package lock');
}

/** A lock made for another package list is stale: named, never silently installed. */
export function checkLockFits(lock: PackageLock, def: { packages: string[]; upgrade: boolean }, what: string): void {
  const hint = 'write the lock again: build without --locked and with --write-lock';
  const added = def.packages.filter((p) => !lock.requested.includes(p));
  if (added.length) throw new UsageError(`the package list (-p) has ${added.join(', ')}, which ${what} does not lock`, hint);
  const removed = lock.requested.filter((p) => !def.packages.includes(p));
  if (removed.length) throw new UsageError(`${what} locks ${removed.join(', ')}, which the package list (-p) no longer has`, hint);
  if (lock.upgrade !== def.upgrade) {
    throw new UsageError(`${what} was made ${lock.upgrade ? 'with' : 'without'} -u (pkgin full-upgrade) and this build is ${def.upgrade ? 'with' : 'without'} it`, hint);
  }
}

/**
 * pkg_add invocations that install the lock: every package after the
 * locked packages it depends on (so pkg_add never resolves a dependency to
 * a newer version), consecutive ones with the same -A in one call.
 */
export function installSteps(lock: PackageLock): Array<{ automatic: boolean; pkgnames: string[] }> {
  const byName = new Map(lock.packages.map((p) => [p.name, p]));
  const done = new Set<string>();
  const order: LockedPackage[] = [];
  const names = [...byName.keys()].sort();
  while (order.length < names.length) {
    const ready = names.filter((n) => !done.has(n) && (byName.get(n)!.depends ?? []).every((d) => done.has(d)));
    // A cycle: the first left, by name (pkg_add installs the rest of it as dependencies).
    const next = ready.length ? ready : [names.find((n) => !done.has(n))!];
    for (const n of next) {
      done.add(n);
      order.push(byName.get(n)!);
    }
  }
  const steps: Array<{ automatic: boolean; pkgnames: string[] }> = [];
  for (const p of order) {
    const automatic = !!p.automatic;
    const last = steps[steps.length - 1];
    if (last && last.automatic === automatic) last.pkgnames.push(pkgnameOf(p));
    else steps.push({ automatic, pkgnames: [pkgnameOf(p)] });
  }
  return steps;
}

/** Locked PKGNAMEs that `pkg_add -n` could not find (`no pkg found for 'X', sorry.`), in lock order. */
export function goneFromRepository(lock: PackageLock, pkgAddStderr: string): string[] {
  const missing = new Set<string>();
  for (const m of pkgAddStderr.matchAll(/no pkg found for '([^'\n]*)', sorry\./g)) missing.add(m[1]);
  return lock.packages.map(pkgnameOf).filter((n) => missing.has(n));
}

/** How the image's packages after a locked install differ from the lock (empty: they match). */
export function lockDifferences(lock: PackageLock, before: string[], after: string[]): string[] {
  const installed = new Set(after);
  const locked = new Set(lock.packages.map(pkgnameOf));
  const was = new Set(before);
  const out: string[] = [];
  for (const p of lock.packages) {
    if (installed.has(pkgnameOf(p))) continue;
    const other = after.find((n) => splitPkgname(n)?.name === p.name);
    out.push(other ? `${other} instead of ${pkgnameOf(p)}` : `${pkgnameOf(p)} missing`);
  }
  for (const n of after) if (!was.has(n) && !locked.has(n) && !lock.packages.some((p) => splitPkgname(n)?.name === p.name)) out.push(`${n} not locked`);
  return out;
}
