/**
 * Real pkgsrc-format binary packages for the sample world: gzip'd tar
 * archives whose metadata members come first in pkg_create's order,
 * followed by the payload in +CONTENTS order, plus a repository index
 * (pkg_summary.gz) and a checksummed pkg-vulnerabilities file.
 *
 * Everything is deterministic (fixed mtimes, sorted summaries) so two runs
 * produce byte-identical repositories.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

export interface PackageFile {
  /** Path relative to the package prefix (normally /opt/local), e.g. `bin/greeter`. */
  path: string;
  content?: string | Buffer;
  /** Permission bits; default 0644 (0755 under bin/ and sbin/). */
  mode?: number;
  /** Make this entry a symlink to the given target instead of a file. */
  symlink?: string;
}

export interface PackageSpec {
  /** PKGBASE, e.g. `greeter`. Names may contain `+` and `.`. */
  name: string;
  /** PKGVERSION, e.g. `1.1nb2`. */
  version: string;
  comment: string;
  description: string;
  files: PackageFile[];
  /** Run-time dependency patterns (`@pkgdep`), e.g. `libgreet>=1.0`. */
  depends?: string[];
  /** Exact packages built against (`@blddep`); writeRepository fills these in. */
  buildDepends?: string[];
  /** `@pkgcfl` patterns. */
  conflicts?: string[];
  /** `@exec` commands (run after the files, `%D` is the prefix). */
  exec?: string[];
  /** `@unexec` commands. */
  unexec?: string[];
  /** `@pkgdir` directories, relative to the prefix. */
  pkgdirs?: string[];
  /** +DISPLAY text shown after installation. */
  display?: string;
  /** +INSTALL script. */
  install?: string;
  prefix?: string;
  homepage?: string;
  categories?: string;
  pkgpath?: string;
  license?: string;
  /** `%Y-%m-%d %H:%M:%S %z`. */
  buildDate?: string;
  /** Extra or overriding +BUILD_INFO variables (multi-valued with arrays). */
  buildInfo?: Record<string, string | string[]>;
  /** Platform the package claims to be built for; wrong values exercise pkg_add's checks. */
  opsys?: string;
  osVersion?: string;
  arch?: string;
  pkgtoolsVersion?: string;
}

export interface CreatePackageOptions {
  /** Emit the metadata members in this order instead of pkg_create's (for negative tests). */
  metaOrder?: string[];
  /** Leave these metadata members out of the archive. */
  omitMeta?: string[];
  /** +SIZE_ALL value; defaults to +SIZE_PKG. */
  sizeAll?: number;
  /** Archive file name; default `<PKGNAME>.tgz`. */
  fileName?: string;
  /** Write a wrong MD5 for this payload path (for negative tests). */
  badMd5For?: string;
}

export interface BuiltPackage {
  pkgname: string;
  fileName: string;
  file: string;
  /** Archive size in bytes (FILE_SIZE). */
  size: number;
  sizePkg: number;
  spec: PackageSpec;
  /** Metadata members as written, by name. */
  meta: Record<string, string>;
}

export interface Vulnerability {
  /** Package pattern, e.g. `webfetch<7.65.0`. */
  pattern: string;
  /** Classification, e.g. `remote-code-execution`, or `eol`. */
  type: string;
  url: string;
}

/** Fixed build time: 2024-12-20 10:00:00 UTC. */
export const SAMPLE_EPOCH = 1734688800;
const DEFAULT_BUILD_DATE = '2024-12-20 10:00:00 +0000';
const DEFAULT_PREFIX = '/opt/local';
const DEFAULT_PKGTOOLS_VERSION = '20091115';

/** pkg_create's member order; +REQUIRED_BY and +INSTALLED_INFO never appear in archives. */
export const META_ORDER = [
  '+CONTENTS',
  '+COMMENT',
  '+DESC',
  '+INSTALL',
  '+DEINSTALL',
  '+DISPLAY',
  '+MTREE_DIRS',
  '+BUILD_VERSION',
  '+BUILD_INFO',
  '+SIZE_PKG',
  '+SIZE_ALL',
  '+PRESERVE',
] as const;

const NAME_RE = /^[A-Za-z0-9\-_.+,]+$/;

export function pkgname(spec: Pick<PackageSpec, 'name' | 'version'>): string {
  return `${spec.name}-${spec.version}`;
}

function fileBytes(f: PackageFile): Buffer {
  if (f.symlink !== undefined) return Buffer.alloc(0);
  if (f.content === undefined) return Buffer.alloc(0);
  return Buffer.isBuffer(f.content) ? f.content : Buffer.from(f.content, 'utf8');
}

function fileMode(f: PackageFile): number {
  if (f.mode !== undefined) return f.mode;
  return /^(s?bin|libexec)\//.test(f.path) ? 0o755 : 0o644;
}

/** +SIZE_PKG: bytes of regular files (symlinks count their target string). */
export function sizeOf(spec: PackageSpec): number {
  return spec.files.reduce((n, f) => n + (f.symlink !== undefined ? Buffer.byteLength(f.symlink) : fileBytes(f).length), 0);
}

function validate(spec: PackageSpec): void {
  if (!NAME_RE.test(spec.name)) throw new Error(`invalid package name: ${spec.name}`);
  if (!/^[0-9]/.test(spec.version) || spec.version.includes('-')) throw new Error(`invalid package version: ${spec.version}`);
  const seen = new Set<string>();
  for (const f of spec.files) {
    if (!f.path || f.path.startsWith('/') || f.path.split('/').includes('..') || f.path.startsWith('+')) {
      throw new Error(`invalid file path in ${pkgname(spec)}: ${f.path}`);
    }
    if (seen.has(f.path)) throw new Error(`duplicate file in ${pkgname(spec)}: ${f.path}`);
    seen.add(f.path);
  }
}

function md5(data: Buffer): string {
  return createHash('md5').update(data).digest('hex');
}

/** The +BUILD_INFO text: sorted KEY=VALUE lines, as pkgsrc writes it. */
export function buildInfoText(spec: PackageSpec): string {
  const vars: Record<string, string | string[]> = {
    BUILD_DATE: spec.buildDate ?? DEFAULT_BUILD_DATE,
    BUILD_HOST: 'SunOS pkgsrc-build 5.11 joyent_20240701T205528Z i86pc i386 i86pc',
    CATEGORIES: spec.categories ?? 'misc',
    LICENSE: spec.license ?? 'mit',
    MACHINE_ARCH: spec.arch ?? 'x86_64',
    MAINTAINER: 'pkgsrc-users@NetBSD.org',
    OPSYS: spec.opsys ?? 'SunOS',
    OS_VERSION: spec.osVersion ?? '5.11',
    PKGPATH: spec.pkgpath ?? `${(spec.categories ?? 'misc').split(' ')[0]}/${spec.name}`,
    PKGTOOLS_VERSION: spec.pkgtoolsVersion ?? DEFAULT_PKGTOOLS_VERSION,
  };
  if (spec.homepage) vars.HOMEPAGE = spec.homepage;
  Object.assign(vars, spec.buildInfo ?? {});
  const lines: string[] = [];
  for (const [k, v] of Object.entries(vars)) {
    for (const one of Array.isArray(v) ? v : [v]) lines.push(`${k}=${one}`);
  }
  return `${lines.sort().join('\n')}\n`;
}

/** The metadata member texts for a spec, keyed by name, only those present. */
function metaTexts(spec: PackageSpec, opts: CreatePackageOptions): Record<string, string> {
  const meta: Record<string, string> = {};
  meta['+COMMENT'] = `${spec.comment}\n`;
  meta['+DESC'] = `${spec.description.replace(/\n*$/, '')}\n${spec.homepage ? `\nHomepage:\n${spec.homepage}\n` : ''}`;
  if (spec.install !== undefined) meta['+INSTALL'] = spec.install;
  if (spec.display !== undefined) meta['+DISPLAY'] = spec.display.endsWith('\n') ? spec.display : `${spec.display}\n`;
  meta['+BUILD_INFO'] = buildInfoText(spec);
  const sizePkg = sizeOf(spec);
  meta['+SIZE_PKG'] = `${sizePkg}\n`;
  meta['+SIZE_ALL'] = `${opts.sizeAll ?? sizePkg}\n`;
  meta['+CONTENTS'] = contentsText(spec, Object.keys(meta), opts);
  return meta;
}

/**
 * The packing list: @cwd PREFIX, @name, @blddep/@pkgdep pairs, @pkgcfl,
 * files with their MD5 or Symlink comments, @exec/@unexec, @pkgdir, then
 * `@cwd .` and an @ignore pair for every other metadata member.
 */
export function contentsText(spec: PackageSpec, metaNames: string[], opts: CreatePackageOptions = {}): string {
  const lines: string[] = [`@cwd ${spec.prefix ?? DEFAULT_PREFIX}`, `@name ${pkgname(spec)}`];
  const deps = spec.depends ?? [];
  deps.forEach((pattern, i) => {
    const bld = spec.buildDepends?.[i];
    if (bld) lines.push(`@blddep ${bld}`);
    lines.push(`@pkgdep ${pattern}`);
  });
  for (const extra of (spec.buildDepends ?? []).slice(deps.length)) lines.push(`@blddep ${extra}`);
  for (const c of spec.conflicts ?? []) lines.push(`@pkgcfl ${c}`);
  for (const f of spec.files) {
    lines.push(f.path);
    if (f.symlink !== undefined) lines.push(`@comment Symlink:${f.symlink}`);
    else {
      const sum = opts.badMd5For === f.path ? '0'.repeat(32) : md5(fileBytes(f));
      lines.push(`@comment MD5:${sum}`);
    }
  }
  for (const e of spec.exec ?? []) lines.push(`@exec ${e}`);
  for (const e of spec.unexec ?? []) lines.push(`@unexec ${e}`);
  for (const d of spec.pkgdirs ?? []) lines.push(`@pkgdir ${d}`);
  if (metaNames.includes('+DISPLAY')) lines.push('@display +DISPLAY');
  lines.push('@cwd .');
  for (const name of META_ORDER) {
    if (name === '+CONTENTS' || !metaNames.includes(name)) continue;
    lines.push('@ignore', name);
  }
  return `${lines.join('\n')}\n`;
}

// --- tar (ustar, with a pax header for long names) ---------------------------

interface TarMember {
  name: string;
  data: Buffer;
  mode: number;
  type: '0' | '2';
  linkname?: string;
}

function octalField(value: number, len: number): string {
  return `${value.toString(8).padStart(len - 1, '0')}\0`;
}

function tarHeader(name: string, size: number, mode: number, type: string, linkname: string): Buffer {
  const h = Buffer.alloc(512);
  let prefix = '';
  let base = name;
  if (Buffer.byteLength(name) > 100) {
    const cut = name.lastIndexOf('/', 155);
    if (cut > 0 && Buffer.byteLength(name.slice(cut + 1)) <= 100) {
      prefix = name.slice(0, cut);
      base = name.slice(cut + 1);
    }
  }
  h.write(base, 0, 100, 'utf8');
  h.write(octalField(mode & 0o7777, 8), 100, 'ascii');
  h.write(octalField(0, 8), 108, 'ascii');
  h.write(octalField(0, 8), 116, 'ascii');
  h.write(octalField(size, 12), 124, 'ascii');
  h.write(octalField(SAMPLE_EPOCH, 12), 136, 'ascii');
  h.fill(' ', 148, 156);
  h.write(type, 156, 'ascii');
  h.write(linkname, 157, 100, 'utf8');
  h.write('ustar\0', 257, 'ascii');
  h.write('00', 263, 'ascii');
  h.write('root', 265, 'ascii');
  h.write('root', 297, 'ascii');
  h.write(prefix, 345, 155, 'utf8');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'ascii');
  return h;
}

function pad512(n: number): Buffer {
  return Buffer.alloc((512 - (n % 512)) % 512);
}

function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  let len = Buffer.byteLength(body) + 1;
  while (Buffer.byteLength(`${len}${body}`) !== len) len++;
  return `${len}${body}`;
}

/** A pax-restricted tar stream of the members, in the given order. */
export function writeTar(members: TarMember[]): Buffer {
  const parts: Buffer[] = [];
  for (const m of members) {
    const link = m.linkname ?? '';
    const tooLong = Buffer.byteLength(m.name) > 100 || Buffer.byteLength(link) > 100;
    if (tooLong) {
      const pax = Buffer.from(paxRecord('path', m.name) + (link ? paxRecord('linkpath', link) : ''));
      parts.push(tarHeader(`PaxHeader/${m.name.slice(-80)}`, pax.length, 0o644, 'x', ''), pax, pad512(pax.length));
    }
    const size = m.type === '0' ? m.data.length : 0;
    parts.push(tarHeader(m.name, size, m.mode, m.type, link.slice(0, 100)));
    if (size) parts.push(m.data, pad512(size));
  }
  parts.push(Buffer.alloc(1024));
  const body = Buffer.concat(parts);
  // Round up to a full 10240-byte record, as tar(1) does.
  return Buffer.concat([body, Buffer.alloc((10240 - (body.length % 10240)) % 10240)]);
}

/** Write `<PKGNAME>.tgz` into outDir. */
export function createPackage(outDir: string, spec: PackageSpec, opts: CreatePackageOptions = {}): BuiltPackage {
  validate(spec);
  const meta = metaTexts(spec, opts);
  const order = (opts.metaOrder ?? META_ORDER.filter((n) => meta[n] !== undefined)).filter(
    (n) => meta[n] !== undefined && !(opts.omitMeta ?? []).includes(n),
  );
  const members: TarMember[] = order.map((n) => ({
    name: n,
    data: Buffer.from(meta[n], 'utf8'),
    mode: n === '+INSTALL' || n === '+DEINSTALL' ? 0o755 : 0o644,
    type: '0',
  }));
  for (const f of spec.files) {
    if (f.symlink !== undefined) members.push({ name: f.path, data: Buffer.alloc(0), mode: 0o777, type: '2', linkname: f.symlink });
    else members.push({ name: f.path, data: fileBytes(f), mode: fileMode(f), type: '0' });
  }
  const archive = gzipSync(writeTar(members), { level: 9 });
  const name = pkgname(spec);
  const fileName = opts.fileName ?? `${name}.tgz`;
  mkdirSync(outDir, { recursive: true });
  const file = join(outDir, fileName);
  writeFileSync(file, archive);
  return { pkgname: name, fileName, file, size: archive.length, sizePkg: sizeOf(spec), spec, meta };
}

// --- repository ---------------------------------------------------------------

const SUMMARY_BI_VARS = [
  'PKGPATH', 'CATEGORIES', 'PROVIDES', 'REQUIRES', 'PKG_OPTIONS', 'OPSYS', 'OS_VERSION', 'MACHINE_ARCH',
  'LICENSE', 'HOMEPAGE', 'PKGTOOLS_VERSION', 'BUILD_DATE', 'PREV_PKGPATH', 'SUPERSEDES',
];

/** The pkg_summary(5) block `pkg_info -X <file>` would print for a built package. */
export function summaryBlock(pkg: BuiltPackage): string {
  const { spec } = pkg;
  const lines = [`PKGNAME=${pkg.pkgname}`];
  for (const d of spec.depends ?? []) lines.push(`DEPENDS=${d}`);
  for (const c of spec.conflicts ?? []) lines.push(`CONFLICTS=${c}`);
  lines.push(`COMMENT=${spec.comment}`);
  lines.push(`SIZE_PKG=${pkg.sizePkg}`);
  const bi = new Map<string, string[]>();
  for (const line of pkg.meta['+BUILD_INFO'].split('\n')) {
    const eq = line.indexOf('=');
    if (eq <= 0) continue;
    const k = line.slice(0, eq);
    bi.set(k, [...(bi.get(k) ?? []), line.slice(eq + 1)]);
  }
  for (const k of SUMMARY_BI_VARS) for (const v of bi.get(k) ?? []) lines.push(`${k}=${v}`);
  lines.push(`FILE_NAME=${pkg.fileName}`, `FILE_SIZE=${pkg.size}`);
  for (const l of pkg.meta['+DESC'].replace(/\n$/, '').split('\n')) lines.push(`DESCRIPTION=${l}`);
  return `${lines.join('\n')}\n\n`;
}

/** SHA512 over the file as pkg_admin hashes it (blank, Hash:, `# $NetBSD` and #CHECKSUM lines excluded). */
function vulnChecksum(body: string): string {
  const h = createHash('sha512');
  for (const line of body.split(/(?<=\n)/)) {
    if (line === '\n' || line.startsWith('Hash:') || line.startsWith('# $NetBSD') || line.startsWith('#CHECKSUM')) continue;
    h.update(line);
  }
  return h.digest('hex');
}

export interface VulnerabilitiesFileOptions {
  /** Wrap in a PGP clear-sign envelope (the signature block is a placeholder). */
  pgpWrap?: boolean;
  /** Write a wrong checksum (for negative tests). */
  badChecksum?: boolean;
}

/** A pkg-vulnerabilities file in #FORMAT 1.1.0 with a `#CHECKSUM SHA512` line. */
export function vulnerabilitiesFile(entries: Vulnerability[], opts: VulnerabilitiesFileOptions = {}): string {
  const head = [
    '# $NetBSD: pkg-vulnerabilities,v 1.1 2024/12/20 10:00:00 buildimage Exp $',
    '#',
    '#FORMAT 1.1.0',
    '#',
    '# Sample vulnerability list for the buildimage test repository.',
    '# Columns: package pattern, type of exploit, advisory URL.',
    '#',
  ];
  const body = entries.map((e) => `${e.pattern}\t${e.type}\t${e.url}`);
  const withoutSum = `${[...head, ...body].join('\n')}\n`;
  const sum = opts.badChecksum ? '0'.repeat(128) : vulnChecksum(withoutSum);
  const text = `${[...head, `#CHECKSUM SHA512 ${sum}`, ...body].join('\n')}\n`;
  if (!opts.pgpWrap) return text;
  const sig = createHash('sha512').update(text).digest('base64');
  return (
    '-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\n' +
    text +
    `-----BEGIN PGP SIGNATURE-----\n\n${sig.match(/.{1,64}/g)!.join('\n')}\n-----END PGP SIGNATURE-----\n`
  );
}

export interface RepositoryOptions {
  /** Entries for pkg-vulnerabilities; default SAMPLE_VULNERABILITIES. */
  vulnerabilities?: Vulnerability[];
  vulnerabilitiesOptions?: VulnerabilitiesFileOptions;
  /** Package directory under `dir`; default `All`, as pkgsrc repositories are laid out. */
  subdir?: string;
}

export interface Repository {
  dir: string;
  /** Directory holding the .tgz files and pkg_summary.gz (PKG_PATH / repositories.conf). */
  packagesDir: string;
  packages: BuiltPackage[];
  summaryFile: string;
  /** gzip'd pkg-vulnerabilities (PKGVULNURL), at the top of `dir`. */
  vulnerabilitiesFile: string;
  /** Relative URL paths, to append to the server URL. */
  paths: { packages: string; summary: string; vulnerabilities: string };
}

/** Best (highest-version) spec among `specs` for a simple dependency pattern. */
export function resolveDependency(pattern: string, specs: PackageSpec[]): PackageSpec | undefined {
  const m = /^([^<>]+?)(?:(>=|>|<=|<)([^<>]+?))?(?:(<=|<)([^<>]+))?$/.exec(pattern);
  if (!m) return undefined;
  const [, base, op1, v1, op2, v2] = m;
  const test = (v: string, op?: string, ref?: string): boolean => {
    if (!op || ref === undefined) return true;
    const c = compareVersions(v, ref);
    return op === '>=' ? c >= 0 : op === '>' ? c > 0 : op === '<=' ? c <= 0 : c < 0;
  };
  let best: PackageSpec | undefined;
  for (const s of specs) {
    const exact = `${s.name}-${s.version}` === pattern;
    if (!exact && (s.name !== base || !test(s.version, op1, v1) || !test(s.version, op2, v2))) continue;
    if (!best || compareVersions(s.version, best.version) > 0) best = s;
  }
  return best;
}

/** pkgsrc dewey order (dewey.c): alpha < beta < pre/rc < release < pl; nbN last. */
export function compareVersions(a: string, b: string): number {
  const parse = (s: string): { v: number[]; nb: number } => {
    const v: number[] = [];
    let nb = 0;
    let i = 0;
    const mods: Array<[string, number]> = [
      ['alpha', -3], ['beta', -2], ['pre', -1], ['rc', -1], ['pl', 0], ['_', 0], ['.', 0],
    ];
    while (i < s.length) {
      const rest = s.slice(i);
      const num = /^\d+/.exec(rest);
      if (num) {
        v.push(Number(num[0]));
        i += num[0].length;
        continue;
      }
      const nbm = /^nb(\d*)/.exec(rest);
      if (nbm) {
        nb = Number(nbm[1] || '0');
        i += nbm[0].length;
        continue;
      }
      const mod = mods.find(([m]) => rest.toLowerCase().startsWith(m));
      if (mod) {
        v.push(mod[1]);
        i += mod[0].length;
        continue;
      }
      if (/[A-Za-z]/.test(s[i])) v.push(0, s[i].toLowerCase().charCodeAt(0) - 96);
      i++;
    }
    return { v, nb };
  };
  const A = parse(a);
  const B = parse(b);
  for (let i = 0; i < Math.max(A.v.length, B.v.length); i++) {
    const d = (A.v[i] ?? 0) - (B.v[i] ?? 0);
    if (d) return Math.sign(d);
  }
  return Math.sign(A.nb - B.nb);
}

/** Fill in @blddep from the set and compute +SIZE_ALL over the dependency closure. */
function prepareSpecs(specs: PackageSpec[]): Array<{ spec: PackageSpec; sizeAll: number }> {
  return specs.map((spec) => {
    const deps = (spec.depends ?? []).map((p) => resolveDependency(p, specs));
    const buildDepends = spec.buildDepends ?? deps.map((d) => (d ? pkgname(d) : ''));
    const closure = new Map<string, PackageSpec>();
    const walk = (s: PackageSpec): void => {
      for (const p of s.depends ?? []) {
        const d = resolveDependency(p, specs);
        if (d && !closure.has(pkgname(d))) {
          closure.set(pkgname(d), d);
          walk(d);
        }
      }
    };
    walk(spec);
    const sizeAll = sizeOf(spec) + [...closure.values()].reduce((n, d) => n + sizeOf(d), 0);
    return { spec: { ...spec, buildDepends }, sizeAll };
  });
}

/**
 * Write a repository: `<dir>/<subdir>/*.tgz`, `<dir>/<subdir>/pkg_summary.gz`
 * and `<dir>/pkg-vulnerabilities.gz`. Written again over a served
 * directory, it is the repository the next request sees: packages added
 * (a newer version released) or gone (a version withdrawn), as the
 * directory index and pkg_summary list them.
 */
export function writeRepository(dir: string, specs: PackageSpec[], opts: RepositoryOptions = {}): Repository {
  const subdir = opts.subdir ?? 'All';
  const packagesDir = join(dir, subdir);
  mkdirSync(packagesDir, { recursive: true });
  const names = new Set<string>();
  for (const s of specs) {
    if (names.has(pkgname(s))) throw new Error(`duplicate package in repository: ${pkgname(s)}`);
    names.add(pkgname(s));
  }
  const packages = prepareSpecs(specs).map(({ spec, sizeAll }) => createPackage(packagesDir, spec, { sizeAll }));
  // Packages of an earlier writing that this one does not have are withdrawn.
  const files = new Set(packages.map((p) => p.fileName));
  for (const f of readdirSync(packagesDir)) if (/\.(tgz|tbz)$/.test(f) && !files.has(f)) rmSync(join(packagesDir, f), { force: true });
  const summary = [...packages]
    .sort((a, b) => (a.pkgname < b.pkgname ? -1 : a.pkgname > b.pkgname ? 1 : 0))
    .map(summaryBlock)
    .join('');
  const summaryFile = join(packagesDir, 'pkg_summary.gz');
  writeFileSync(summaryFile, gzipSync(summary, { level: 9 }));
  const vulnerabilitiesPath = join(dir, 'pkg-vulnerabilities.gz');
  const vulnText = vulnerabilitiesFile(opts.vulnerabilities ?? SAMPLE_VULNERABILITIES, opts.vulnerabilitiesOptions);
  writeFileSync(vulnerabilitiesPath, gzipSync(vulnText, { level: 9 }));
  return {
    dir,
    packagesDir,
    packages,
    summaryFile,
    vulnerabilitiesFile: vulnerabilitiesPath,
    paths: { packages: `/${subdir}`, summary: `/${subdir}/pkg_summary.gz`, vulnerabilities: '/pkg-vulnerabilities.gz' },
  };
}

// --- the sample package set ------------------------------------------------------

function script(body: string): string {
  return `#!/bin/sh\n${body}\n`;
}

function manPage(name: string, text: string): string {
  return `.TH ${name.toUpperCase()} 1\n.SH NAME\n${name} \\- ${text}\n`;
}

const libgreet10: PackageSpec = {
  name: 'libgreet',
  version: '1.0',
  comment: 'Tiny greeting library',
  description: 'libgreet formats greetings for the sample greeter tool.\nIt exists to be a dependency.',
  categories: 'devel',
  homepage: 'https://example.org/libgreet',
  files: [
    { path: 'include/greet.h', content: '#define GREETING "hello"\nconst char *greet(const char *);\n' },
    { path: 'lib/libgreet.so', symlink: 'libgreet.so.1' },
    { path: 'lib/libgreet.so.1', content: 'ELF-stand-in libgreet 1.0\n', mode: 0o755 },
  ],
  buildInfo: { PROVIDES: '/opt/local/lib/libgreet.so.1' },
};

function greeter(version: string, greeting: string): PackageSpec {
  return {
    name: 'greeter',
    version,
    comment: 'Prints a friendly greeting',
    description: `greeter prints "${greeting}".\nA small command-line tool linked against libgreet.`,
    categories: 'misc',
    homepage: 'https://example.org/greeter',
    depends: ['libgreet>=1.0'],
    files: [
      { path: 'bin/greeter', content: script(`echo "${greeting}"`) },
      { path: 'man/man1/greeter.1', content: manPage('greeter', 'print a greeting') },
      ...(version === '1.0' ? [] : [{ path: 'share/doc/greeter/NEWS', content: `greeter ${version}: friendlier wording\n` }]),
    ],
    buildInfo: { REQUIRES: '/opt/local/lib/libgreet.so.1' },
  };
}

function webfetch(version: string): PackageSpec {
  return {
    name: 'webfetch',
    version,
    comment: 'Command-line URL fetcher',
    description: 'webfetch transfers data from URLs.\nOlder releases have a known remote code execution flaw.',
    categories: 'www',
    homepage: 'https://example.org/webfetch',
    files: [
      { path: 'bin/webfetch', content: script(`echo "webfetch ${version}"`) },
      { path: 'man/man1/webfetch.1', content: manPage('webfetch', 'fetch URLs') },
    ],
  };
}

const daemonkit = (version: string): PackageSpec => ({
  name: 'daemonkit',
  version,
  comment: 'Helpers for writing service daemons',
  description: 'daemonkit sets up its spool directory from an @exec line at install time.',
  categories: 'sysutils',
  files: [
    { path: 'etc/daemonkit.conf.example', content: 'spool=/opt/local/var/spool/daemonkit\n' },
    { path: 'sbin/daemonkitd', content: script('echo "daemonkitd running"') },
  ],
  exec: ['mkdir -p %D/var/spool/daemonkit', 'touch %D/var/spool/daemonkit/.installed'],
  pkgdirs: ['var/spool/daemonkit'],
  display: '===========================================================================\n' +
    'daemonkit: copy /opt/local/etc/daemonkit.conf.example to daemonkit.conf\n' +
    '===========================================================================\n',
});

const libsigcxx: PackageSpec = {
  name: 'libsigc++',
  version: '2.10.8',
  comment: 'Typesafe callback system for standard C++',
  description: 'libsigc++ implements a typesafe callback system for standard C++.\nIts name exercises "+" in package names.',
  categories: 'devel',
  homepage: 'https://example.org/libsigc++',
  files: [
    { path: 'include/sigc++-2.0/sigc++/sigc++.h', content: '// sample header\n' },
    { path: 'lib/libsigc-2.0.so.0', content: 'ELF-stand-in libsigc++\n', mode: 0o755 },
  ],
};

function gsed(version: string): PackageSpec {
  return {
    name: 'gsed',
    version,
    comment: 'GNU implementation of sed, the POSIX stream editor',
    description: 'The sample gsed package (installed by the triton-origin layer).',
    categories: 'textproc',
    files: [{ path: 'bin/gsed', content: script(`echo "gsed ${version}"`) }],
  };
}

const sudo: PackageSpec = {
  name: 'sudo',
  version: '1.9.15p5',
  comment: 'Allow others to run commands as root',
  description: 'The sample sudo package; its version exercises letter components (p5).',
  categories: 'security',
  files: [{ path: 'bin/sudo', content: script('exec "$@"'), mode: 0o4755 }],
};

/**
 * The sample repository:
 * - libgreet-1.0: a library (file + .so symlink, PROVIDES)
 * - greeter-1.0, greeter-1.1: a tool depending on `libgreet>=1.0` (REQUIRES); 1.0 is in the base image
 * - webfetch-7.64.0 (vulnerable per SAMPLE_VULNERABILITIES) and webfetch-7.65.1
 * - daemonkit-2.3: @exec, @pkgdir and +DISPLAY
 * - libsigc++-2.10.8: a `+` in the name
 * - gsed-4.8 (in the origin layer), gsed-4.9, sudo-1.9.15p5 (in the origin layer)
 */
export const SAMPLE_PACKAGES: PackageSpec[] = [
  libgreet10,
  greeter('1.0', 'hello'),
  greeter('1.1', 'hello, world'),
  webfetch('7.64.0'),
  webfetch('7.65.1'),
  daemonkit('2.3'),
  libsigcxx,
  gsed('4.8'),
  gsed('4.9'),
  sudo,
];

/**
 * Releases the sample repository gains later (a test writes the repository
 * again with these added): newer than every version in SAMPLE_PACKAGES, so
 * a build that resolves anew picks them and a --locked one must not.
 * - greeter-1.2 (depends on libgreet>=1.1), libgreet-1.1: a new dependency version
 * - daemonkit-2.4
 */
export const SAMPLE_NEWER_PACKAGES: PackageSpec[] = [
  { ...greeter('1.2', 'hello, world!'), depends: ['libgreet>=1.1'] },
  { ...libgreet10, version: '1.1', files: libgreet10.files.map((f) => (f.path === 'lib/libgreet.so.1' ? { ...f, content: 'ELF-stand-in libgreet 1.1\n' } : f)) },
  daemonkit('2.4'),
];

export const SAMPLE_VULNERABILITIES: Vulnerability[] = [
  { pattern: 'webfetch<7.65.0', type: 'remote-code-execution', url: 'https://security.example.org/advisories/webfetch-2019-5436' },
  { pattern: 'sudo<1.9.5p2', type: 'local-root-shell', url: 'https://security.example.org/advisories/sudo-2021-3156' },
  { pattern: 'oldtool-[0-9]*', type: 'eol', url: 'https://security.example.org/eol' },
];

/** Installed explicitly in the base (minimal-64-lts analog); libgreet-1.0 comes in as a dependency. */
export const SAMPLE_BASE_PREINSTALLED = ['greeter-1.0'];
/** Installed by the origin layer (triton-origin analog) on top of the base. */
export const SAMPLE_ORIGIN_PACKAGES = ['gsed-4.8', 'sudo-1.9.15p5'];

export function sampleSpec(name: string, specs: PackageSpec[] = SAMPLE_PACKAGES): PackageSpec {
  const s = specs.find((p) => pkgname(p) === name);
  if (!s) throw new Error(`no sample package ${name}`);
  return s;
}
