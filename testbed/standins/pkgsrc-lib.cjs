'use strict';
/*
 * Shared implementation of the pkgsrc stand-ins (pkg_add, pkg_info,
 * pkg_admin, pkgin) installed into buildimage's sample zone images.
 *
 * The real tools cannot run on Linux, so these reproduce the parts of their
 * behaviour that an image builder relies on: package location and version
 * ordering, archive validation, the pkgdb layout, vulnerability files and
 * pkgin's update/upgrade cycle, with the real messages and exit codes.
 * Node built-ins only, because they run inside a chroot that has nothing
 * but the host's /usr, /lib and /sbin.
 *
 * PKGSRC_STANDIN_ROOT=/dir prefixes every absolute path the tools touch
 * (config, pkgdb, extraction, caches, file:// URLs), so tests and image
 * creation can run them without a chroot.
 *
 * CommonJS with a .cjs name so it loads the same way whether or not a
 * package.json with "type": "module" sits above it.
 */

const fs = require('node:fs');
const path = require('node:path');
const zlib = require('node:zlib');
const crypto = require('node:crypto');
const http = require('node:http');
const https = require('node:https');
const childProcess = require('node:child_process');

const PKGTOOLS_VERSION = '20211115';
const PKGIN_VERSION = '23.8.1';
// The stand-ins pretend to run on a SmartOS x86_64 zone.
const HOST = Object.freeze({ OPSYS: 'SunOS', OS_VERSION: '5.11', MACHINE_ARCH: 'x86_64' });
const SYSCONFDIR = '/opt/local/etc';
const SBINDIR = '/opt/local/sbin';
const DEFAULT_PKG_DBDIR = '/opt/local/pkg';
const DEFAULT_PKGIN_DBDIR = '/var/db/pkgin';
const TNF_VULN_BASE = 'http://cdn.NetBSD.org/pub/NetBSD/packages/vulns';
const BYFILE_DB = 'pkgdb.byfile.db';
const REPLACE_SUFFIX = '.xxxxxx';

// ---------------------------------------------------------------------------
// Errors, output, paths

let TOOL = 'pkgsrc';

class ToolError extends Error {
  constructor(message, exitCode = 1) {
    super(message);
    this.exitCode = exitCode;
  }
}

function die(message, exitCode = 1) {
  throw new ToolError(message, exitCode);
}

function warn(message) {
  process.stderr.write(`${TOOL}: ${message}\n`);
}

function say(text) {
  process.stdout.write(text);
}

const STANDIN_ROOT = process.env.PKGSRC_STANDIN_ROOT ? path.resolve(process.env.PKGSRC_STANDIN_ROOT) : '';

/** Map a path as seen inside the zone to the real file system path. */
function R(p) {
  if (!STANDIN_ROOT || !path.isAbsolute(p)) return p;
  // Already inside the root: a relative argument resolved against a cwd in the zone.
  if (p === STANDIN_ROOT || p.startsWith(`${STANDIN_ROOT}/`)) return p;
  return path.join(STANDIN_ROOT, p);
}

const ERRNO_TEXT = {
  ENOENT: 'No such file or directory',
  EACCES: 'Permission denied',
  EPERM: 'Operation not permitted',
  EEXIST: 'File exists',
  ENOTDIR: 'Not a directory',
  EISDIR: 'Is a directory',
  ENOSPC: 'No space left on device',
  EROFS: 'Read-only file system',
  ENOTEMPTY: 'Directory not empty',
};

function errText(e) {
  if (e && e.code && ERRNO_TEXT[e.code]) return ERRNO_TEXT[e.code];
  return e && e.message ? e.message : String(e);
}

function readText(p) {
  try {
    return fs.readFileSync(p, 'utf8');
  } catch (e) {
    if (e.code === 'ENOENT' || e.code === 'ENOTDIR') return null;
    throw e;
  }
}

function isFile(p) {
  try {
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

function mkdirp(p, mode = 0o755) {
  fs.mkdirSync(p, { recursive: true, mode });
}

function writeAtomic(p, data, mode = 0o644) {
  const tmp = `${p}.tmp${process.pid}`;
  fs.writeFileSync(tmp, data, { mode });
  fs.renameSync(tmp, p);
}

/** BSD getopt: flags may be bundled, option arguments attached or separate. */
function getopt(argv, spec, usage) {
  const opts = [];
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') {
      i++;
      break;
    }
    if (a.length < 2 || a[0] !== '-') break;
    for (let j = 1; j < a.length; j++) {
      const c = a[j];
      const k = spec.indexOf(c);
      if (c === ':' || k < 0) {
        warn(`illegal option -- ${c}`);
        usage();
      }
      if (spec[k + 1] === ':') {
        let val = a.slice(j + 1);
        if (val === '') {
          i++;
          if (i >= argv.length) {
            warn(`option requires an argument -- ${c}`);
            usage();
          }
          val = argv[i];
        }
        opts.push([c, val]);
        break;
      }
      opts.push([c, true]);
    }
  }
  return { opts, args: argv.slice(i) };
}

function usageFn(text) {
  return () => {
    process.stderr.write(`usage: ${text}\n`);
    throw new ToolError('', 1);
  };
}

// ---------------------------------------------------------------------------
// pkg_install.conf

function parseConfFile(file) {
  const text = readText(R(file));
  const vars = new Map();
  if (text === null) return vars;
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (!m) continue;
    // Repeating a variable continues it on a new line (multi-line values).
    vars.set(m[1], vars.has(m[1]) ? `${vars.get(m[1])}\n${m[2]}` : m[2]);
  }
  return vars;
}

let CONFIG = null;

function loadConfig({ configFile, dbdir } = {}) {
  const file = configFile || `${SYSCONFDIR}/pkg_install.conf`;
  const raw = parseConfFile(file);
  const get = (k, dflt) => (raw.has(k) ? raw.get(k) : dflt);
  const c = {
    file,
    raw,
    PKG_DBDIR: dbdir || process.env.PKG_DBDIR || get('PKG_DBDIR', DEFAULT_PKG_DBDIR),
    PKG_PATH: process.env.PKG_PATH !== undefined ? process.env.PKG_PATH : get('PKG_PATH', null),
    VERIFIED_INSTALLATION: get('VERIFIED_INSTALLATION', 'never'),
    CHECK_VULNERABILITIES: get('CHECK_VULNERABILITIES', 'never'),
    CHECK_LICENSE: get('CHECK_LICENSE', 'no'),
    CHECK_END_OF_LIFE: get('CHECK_END_OF_LIFE', 'yes'),
    CHECK_OS_VERSION: get('CHECK_OS_VERSION', 'yes'),
    CACHE_INDEX: get('CACHE_INDEX', 'yes'),
    IGNORE_PROXY: get('IGNORE_PROXY', ''),
    IGNORE_URL: get('IGNORE_URL', null),
  };
  c.PKG_REFCOUNT_DBDIR = process.env.PKG_REFCOUNT_DBDIR || get('PKG_REFCOUNT_DBDIR', `${c.PKG_DBDIR}.refcount`);
  c.PKGVULNDIR = get('PKGVULNDIR', c.PKG_DBDIR);
  c.PKGVULNURL = get('PKGVULNURL', `${TNF_VULN_BASE}/pkg-vulnerabilities.gz`);
  c.vulnFile = `${c.PKGVULNDIR}/pkg-vulnerabilities`;
  CONFIG = c;
  return c;
}

/** What `pkg_admin config-var` prints: the effective value, or the raw file value for unknown names. */
function configVar(c, name) {
  const known = [
    'PKG_DBDIR', 'PKG_PATH', 'VERIFIED_INSTALLATION', 'CHECK_VULNERABILITIES', 'CHECK_LICENSE',
    'CHECK_END_OF_LIFE', 'CHECK_OS_VERSION', 'CACHE_INDEX', 'PKG_REFCOUNT_DBDIR', 'PKGVULNDIR', 'PKGVULNURL',
  ];
  if (known.includes(name)) return c[name];
  return c.raw.has(name) ? c.raw.get(name) : null;
}

// ---------------------------------------------------------------------------
// Versions and patterns (dewey.c, opattern.c)

const DEWEY_MODIFIERS = [
  ['alpha', -3],
  ['beta', -2],
  ['pre', -1],
  ['rc', -1],
  ['pl', 0],
  ['_', 0],
  ['.', 0],
];

function mkversion(s) {
  const v = [];
  let nb = 0;
  let i = 0;
  while (i < s.length) {
    const ch = s[i];
    if (ch >= '0' && ch <= '9') {
      let j = i + 1;
      while (j < s.length && s[j] >= '0' && s[j] <= '9') j++;
      v.push(Number(s.slice(i, j)));
      i = j;
      continue;
    }
    if (s.startsWith('nb', i)) {
      let j = i + 2;
      while (j < s.length && s[j] >= '0' && s[j] <= '9') j++;
      nb = Number(s.slice(i + 2, j) || '0');
      i = j;
      continue;
    }
    const rest = s.slice(i).toLowerCase();
    const mod = DEWEY_MODIFIERS.find(([m]) => rest.startsWith(m));
    if (mod) {
      v.push(mod[1]);
      i += mod[0].length;
      continue;
    }
    if (/[A-Za-z]/.test(ch)) {
      // A lone letter counts as ".N" with a=1 ... z=26, so 1.2e == 1.2.5.
      v.push(0, ch.toLowerCase().charCodeAt(0) - 96);
    }
    i++;
  }
  return { v, nb };
}

function versionCompare(a, b) {
  const A = mkversion(a);
  const B = mkversion(b);
  const n = Math.max(A.v.length, B.v.length);
  for (let i = 0; i < n; i++) {
    const d = (A.v[i] || 0) - (B.v[i] || 0);
    if (d) return d < 0 ? -1 : 1;
  }
  return Math.sign(A.nb - B.nb);
}

function deweyTest(version, op, ref) {
  const c = versionCompare(version, ref);
  switch (op) {
    case '<': return c < 0;
    case '<=': return c <= 0;
    case '>': return c > 0;
    case '>=': return c >= 0;
    case '==': return c === 0;
    case '!=': return c !== 0;
    default: return false;
  }
}

function readOp(s) {
  if (s.startsWith('<=') || s.startsWith('>=') || s.startsWith('==') || s.startsWith('!=')) return s.slice(0, 2);
  if (s[0] === '<' || s[0] === '>') return s[0];
  return null;
}

function deweyMatch(pattern, pkg) {
  const dash = pkg.lastIndexOf('-');
  if (dash < 0) return false;
  const sep = pattern.search(/[<>]/);
  if (sep < 0) return false;
  if (pattern.slice(0, sep) !== pkg.slice(0, dash)) return false;
  const version = pkg.slice(dash + 1);
  const op = readOp(pattern.slice(sep));
  if (!op) return false;
  const rest = pattern.slice(sep + op.length);
  const sep2 = rest.search(/[<>]/);
  if (sep2 >= 0) {
    const op2 = readOp(rest.slice(sep2));
    if (!op2) return false;
    return deweyTest(version, op, rest.slice(0, sep2)) && deweyTest(version, op2, rest.slice(sep2 + op2.length));
  }
  return deweyTest(version, op, rest);
}

/** fnmatch(3) with FNM_PERIOD, as a regular expression. */
function globRegex(glob) {
  let re = '^';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === '*') re += (i === 0 ? '(?!\\.)' : '') + '.*';
    else if (c === '?') re += (i === 0 ? '(?!\\.)' : '') + '.';
    else if (c === '[') {
      let j = i + 1;
      let cls = '';
      if (glob[j] === '!' || glob[j] === '^') {
        cls = '^';
        j++;
      }
      if (glob[j] === ']') {
        cls += '\\]';
        j++;
      }
      while (j < glob.length && glob[j] !== ']') {
        const d = glob[j];
        cls += d === '\\' || d === '^' || d === '[' ? `\\${d}` : d;
        j++;
      }
      if (j >= glob.length) re += '\\[';
      else {
        re += `[${cls}]`;
        i = j;
      }
    } else if (c === '\\' && i + 1 < glob.length) {
      i++;
      re += glob[i].replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    } else re += c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  }
  return new RegExp(`${re}$`);
}

function globMatch(glob, name) {
  try {
    return globRegex(glob).test(name);
  } catch {
    return false;
  }
}

function quickPkgMatch(pattern, pkg) {
  const simple = (ch) => ch !== undefined && /[A-Za-z0-9-]/.test(ch);
  if (!simple(pattern[0])) return true;
  if (pattern[0] !== pkg[0]) return false;
  if (!simple(pattern[1])) return true;
  if (pattern[1] !== pkg[1]) return false;
  return true;
}

function alternateMatch(pattern, pkg) {
  const open = pattern.indexOf('{');
  let depth = 0;
  let close = -1;
  for (let i = open; i < pattern.length; i++) {
    if (pattern[i] === '{') depth++;
    else if (pattern[i] === '}' && --depth === 0) {
      close = i;
      break;
    }
  }
  if (close < 0) die(`Malformed alternate \`${pattern}'`);
  const head = pattern.slice(0, open);
  const tail = pattern.slice(close + 1);
  const alts = [];
  let cur = '';
  depth = 0;
  for (let i = open + 1; i < close; i++) {
    const c = pattern[i];
    if (c === '{') depth++;
    if (c === '}') depth--;
    if (c === ',' && depth === 0) {
      alts.push(cur);
      cur = '';
    } else cur += c;
  }
  alts.push(cur);
  return alts.some((alt) => pkgMatch(head + alt + tail, pkg));
}

/** pkg_match(): alternates, dewey, glob, exact, then "pattern-[0-9]*". */
function pkgMatch(pattern, pkg) {
  if (!quickPkgMatch(pattern, pkg)) return false;
  if (pattern.includes('{')) return alternateMatch(pattern, pkg);
  if (/[<>]/.test(pattern)) return deweyMatch(pattern, pkg);
  if (/[*?[\]]/.test(pattern) && globMatch(pattern, pkg)) return true;
  if (pattern === pkg) return true;
  return globMatch(`${pattern}-[0-9]*`, pkg);
}

function isPkgPattern(s) {
  return /[<>{}*?[\]]/.test(s);
}

/** pkg_order(): the higher version wins; equal versions fall back to string order. */
function betterOf(pattern, first, second) {
  if (first === null) return pkgMatch(pattern, second) ? second : null;
  if (!pkgMatch(pattern, second) || second.lastIndexOf('-') < 0) return first;
  const c = versionCompare(first.slice(first.lastIndexOf('-') + 1), second.slice(second.lastIndexOf('-') + 1));
  if (c > 0) return first;
  if (c < 0) return second;
  return first < second ? first : second;
}

function bestMatch(pattern, names) {
  let best = null;
  for (const n of names) best = betterOf(pattern, best, n);
  return best;
}

function splitPkgname(name) {
  const i = name.lastIndexOf('-');
  if (i <= 0) return null;
  return { base: name.slice(0, i), version: name.slice(i + 1) };
}

// ---------------------------------------------------------------------------
// Archives: tar (ustar/pax/GNU long names), compression filters, signed ar

function cstr(buf, start, len) {
  const b = buf.subarray(start, start + len);
  const z = b.indexOf(0);
  return (z < 0 ? b : b.subarray(0, z)).toString('utf8');
}

function octal(buf, start, len) {
  const s = cstr(buf, start, len).trim();
  return s ? parseInt(s, 8) : 0;
}

function parsePax(data) {
  const out = {};
  let off = 0;
  const text = data;
  while (off < text.length) {
    const sp = text.indexOf(0x20, off);
    if (sp < 0) break;
    const len = Number(text.subarray(off, sp).toString());
    if (!len) break;
    const rec = text.subarray(sp + 1, off + len - 1).toString('utf8');
    const eq = rec.indexOf('=');
    if (eq > 0) out[rec.slice(0, eq)] = rec.slice(eq + 1);
    off += len;
  }
  return out;
}

function parseTar(buf) {
  const entries = [];
  let off = 0;
  let pax = null;
  let longName = null;
  let longLink = null;
  while (off + 512 <= buf.length) {
    const h = buf.subarray(off, off + 512);
    let zero = true;
    for (let i = 0; i < 512; i++) {
      if (h[i] !== 0) {
        zero = false;
        break;
      }
    }
    if (zero) break;
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : h[i];
    if (sum !== octal(h, 148, 8)) throw new Error('Damaged tar archive');
    let name = cstr(h, 0, 100);
    const magic = cstr(h, 257, 6);
    if (magic.startsWith('ustar')) {
      const prefix = cstr(h, 345, 155);
      if (prefix) name = `${prefix}/${name}`;
    }
    const size = octal(h, 124, 12);
    const type = h[156] === 0 ? '0' : String.fromCharCode(h[156]);
    const dataStart = off + 512;
    if (dataStart + size > buf.length) throw new Error('Truncated tar archive');
    const data = buf.subarray(dataStart, dataStart + size);
    off = dataStart + Math.ceil(size / 512) * 512;
    if (type === 'x') {
      pax = parsePax(data);
      continue;
    }
    if (type === 'g') continue;
    if (type === 'L') {
      longName = cstr(data, 0, data.length);
      continue;
    }
    if (type === 'K') {
      longLink = cstr(data, 0, data.length);
      continue;
    }
    let linkname = cstr(h, 157, 100);
    if (pax && pax.path) name = pax.path;
    if (pax && pax.linkpath) linkname = pax.linkpath;
    if (longName) name = longName;
    if (longLink) linkname = longLink;
    pax = longName = longLink = null;
    entries.push({ name, mode: octal(h, 100, 8), mtime: octal(h, 136, 12), type, linkname, size, data });
  }
  return entries;
}

function whichTool(names) {
  for (const dir of (process.env.PATH || '/usr/bin:/bin').split(':')) {
    for (const n of names) {
      if (dir && isFile(path.join(dir, n))) return path.join(dir, n);
    }
  }
  return null;
}

function filterCommand(argv, input) {
  const tool = whichTool([argv[0]]);
  if (!tool) throw new Error(`${argv[0]} is not available to decompress`);
  return childProcess.execFileSync(tool, argv.slice(1), { input, maxBuffer: 1 << 30, stdio: ['pipe', 'pipe', 'ignore'] });
}

/** Undo gzip/bzip2/xz/zstd by magic number; anything else is returned as is. */
function decompress(buf) {
  if (buf.length >= 2 && buf[0] === 0x1f && buf[1] === 0x8b) return zlib.gunzipSync(buf);
  if (buf.length >= 3 && buf.subarray(0, 3).toString('latin1') === 'BZh') return filterCommand(['bzip2', '-dc'], buf);
  if (buf.length >= 6 && buf.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) {
    return filterCommand(['xz', '-dc'], buf);
  }
  if (buf.length >= 4 && buf.readUInt32LE(0) === 0xfd2fb528) return filterCommand(['zstd', '-dc'], buf);
  return buf;
}

function parseAr(buf) {
  const members = [];
  let off = 8;
  while (off + 60 <= buf.length) {
    const name = buf.subarray(off, off + 16).toString('latin1').trim().replace(/\/$/, '');
    const size = Number(buf.subarray(off + 48, off + 58).toString('latin1').trim());
    const start = off + 60;
    members.push({ name, data: buf.subarray(start, start + size) });
    off = start + size + (size % 2);
  }
  return members;
}

/** Open a binary package: returns its tar members and whether it was a signed (ar) package. */
function openPackage(buf) {
  let signed = false;
  if (buf.length >= 8 && buf.subarray(0, 8).toString('latin1') === '!<arch>\n') {
    // Signed packages wrap the tarball with +PKG_HASH and +PKG_GPG_SIGNATURE.
    const inner = parseAr(buf).find((m) => !m.name.startsWith('+PKG_'));
    if (!inner) throw new Error('Unrecognized archive format');
    buf = inner.data;
    signed = true;
  }
  let tar;
  try {
    tar = decompress(buf);
  } catch (e) {
    throw new Error(`Unrecognized archive format: ${e.message}`);
  }
  return { entries: parseTar(tar), signed };
}

// ---------------------------------------------------------------------------
// Metadata and packing lists

const META = [
  ['+CONTENTS', true, 0o644],
  ['+COMMENT', true, 0o444],
  ['+DESC', true, 0o444],
  ['+INSTALL', false, 0o555],
  ['+DEINSTALL', false, 0o555],
  ['+DISPLAY', false, 0o444],
  ['+MTREE_DIRS', false, 0o444],
  ['+BUILD_VERSION', false, 0o444],
  ['+BUILD_INFO', false, 0o444],
  ['+SIZE_PKG', false, 0o444],
  ['+SIZE_ALL', false, 0o444],
  ['+PRESERVE', false, 0o444],
  ['+REQUIRED_BY', false, 0o644],
  ['+INSTALLED_INFO', false, 0o644],
];
const META_INDEX = new Map(META.map((m, i) => [m[0], i]));

/**
 * Read the leading metadata members as pkg_add does. With `strict` a
 * duplicate or misordered member is fatal; pkg_info only warns.
 */
function readMetaData(entries, { strict = true } = {}) {
  const meta = {};
  let last = -1;
  let i = 0;
  for (; i < entries.length; i++) {
    const idx = META_INDEX.get(entries[i].name);
    if (idx === undefined) break;
    const name = entries[i].name;
    if (meta[name] !== undefined) {
      if (strict) return { error: 'duplicate entry, package corrupt' };
      warn('duplicate entry, package corrupt, continuing');
    }
    if (idx < last) {
      if (strict) return { error: 'misordered package' };
      warn('misordered package, continuing');
    }
    last = Math.max(last, idx);
    meta[name] = entries[i].data.toString('utf8');
  }
  const missing = META.filter(([n, req]) => req && meta[n] === undefined).map(([n]) => n);
  if (missing.length) return { error: `package lacks required meta data file ${missing.join(', ')}, package corrupt` };
  return { meta, payloadStart: i };
}

const PLIST_COMMANDS = {
  cwd: 'cwd', cd: 'cwd', name: 'name', pkgdep: 'pkgdep', blddep: 'blddep', pkgcfl: 'pkgcfl',
  comment: 'comment', exec: 'exec', unexec: 'unexec', mode: 'mode', owner: 'owner', group: 'group',
  option: 'option', ignore: 'ignore', display: 'display', pkgdir: 'pkgdir', dirrm: 'dirrm', src: 'src',
  mtree: 'mtree', ignore_inst: 'ignore_inst',
};

function parsePlist(text) {
  const list = [];
  for (const raw of (text || '').split('\n')) {
    const line = raw.replace(/\s+$/, '');
    if (line === '') continue;
    if (line[0] === '@') {
      const m = /^@(\S+)\s*(.*)$/.exec(line);
      const type = PLIST_COMMANDS[m[1]];
      if (!type) continue;
      list.push({ type, name: m[2] });
    } else list.push({ type: 'file', name: line });
  }
  return list;
}

function stringifyPlist(list) {
  return list.map((e) => (e.type === 'file' ? e.name : `@${e.type}${e.name ? ` ${e.name}` : ''}`)).join('\n') + '\n';
}

/** Plist entries with @ignore'd lines skipped. */
function plistItems(list) {
  const out = [];
  for (let i = 0; i < list.length; i++) {
    if (list[i].type === 'ignore') {
      i++;
      continue;
    }
    out.push(list[i]);
  }
  return out;
}

function plistFirst(list, type) {
  const e = list.find((x) => x.type === type);
  return e ? e.name : null;
}

function plistAll(list, type) {
  return plistItems(list).filter((x) => x.type === type).map((x) => x.name);
}

/** Installed files as absolute paths (prefix/name), following @cwd changes. */
function plistFiles(list) {
  let cwd = plistFirst(list, 'cwd') || '/';
  const files = [];
  const dirs = [];
  for (const e of plistItems(list)) {
    if (e.type === 'cwd') cwd = e.name;
    else if (e.type === 'file') files.push(path.posix.join(cwd, e.name));
    else if (e.type === 'pkgdir') dirs.push(path.posix.join(cwd, e.name));
  }
  return { files, dirs };
}

function parseKeyValues(text) {
  const out = new Map();
  for (const line of (text || '').split('\n')) {
    const eq = line.indexOf('=');
    if (eq <= 0) continue;
    const k = line.slice(0, eq);
    if (!out.has(k)) out.set(k, []);
    out.get(k).push(line.slice(eq + 1));
  }
  return out;
}

// ---------------------------------------------------------------------------
// The package database

class PkgDb {
  constructor(dir) {
    this.dir = dir;
    this.real = R(dir);
  }

  entry(name) {
    return path.join(this.real, name);
  }

  /** Installed package names in readdir order, skipping the database's own files. */
  names() {
    let list;
    try {
      list = fs.readdirSync(this.real, { withFileTypes: true });
    } catch (e) {
      if (e.code === 'ENOENT') return [];
      throw e;
    }
    const out = [];
    for (const d of list) {
      const n = d.name;
      if (n === BYFILE_DB || n === '.cookie' || n === 'pkg-vulnerabilities' || n.endsWith(REPLACE_SUFFIX)) continue;
      if (!d.isDirectory()) continue;
      if (!n.includes('-')) {
        warn(`Entry ${n} in pkgdb is not a valid package name`);
        continue;
      }
      out.push(n);
    }
    return out;
  }

  has(name) {
    return isFile(path.join(this.entry(name), '+CONTENTS'));
  }

  read(name, file) {
    return readText(path.join(this.entry(name), file));
  }

  plist(name) {
    return parsePlist(this.read(name, '+CONTENTS') || '');
  }

  isAutomatic(name) {
    const kv = parseKeyValues(this.read(name, '+INSTALLED_INFO'));
    return (kv.get('automatic') || []).some((v) => v.toLowerCase() === 'yes');
  }

  setAutomatic(name, value) {
    const p = path.join(this.entry(name), '+INSTALLED_INFO');
    const kept = (readText(p) || '').split('\n').filter((l) => l && !l.startsWith('automatic='));
    if (value) kept.push('automatic=yes');
    try {
      fs.unlinkSync(p);
    } catch {
      /* absent */
    }
    fs.writeFileSync(p, kept.length ? `${kept.join('\n')}\n` : '', { mode: 0o644 });
  }

  best(pattern) {
    return bestMatch(pattern, this.names());
  }

  matching(pattern) {
    return this.names().filter((n) => pkgMatch(pattern, n));
  }

  requiredBy(name) {
    return (this.read(name, '+REQUIRED_BY') || '').split('\n').filter(Boolean);
  }

  byfileLoad() {
    const text = readText(path.join(this.real, BYFILE_DB));
    if (text === null) return null;
    try {
      const j = JSON.parse(text);
      return j && typeof j.files === 'object' ? j : null;
    } catch {
      return null;
    }
  }

  byfileSave(db) {
    mkdirp(this.real);
    writeAtomic(path.join(this.real, BYFILE_DB), JSON.stringify(db) + '\n');
  }

  /** Recreate the file → package index from every +CONTENTS (pkg_admin rebuild). */
  rebuildByfile() {
    const db = { format: 'pkgsrc-standin-byfile 1', files: {}, dirs: {} };
    let filecnt = 0;
    let dircnt = 0;
    const names = this.names();
    for (const n of names) {
      const { files, dirs } = plistFiles(this.plist(n));
      for (const f of files) {
        db.files[f] = n;
        filecnt++;
      }
      for (const d of dirs) {
        (db.dirs[d] = db.dirs[d] || []).push(n);
        dircnt++;
      }
    }
    this.byfileSave(db);
    return { filecnt, dircnt, pkgcnt: names.length };
  }
}

// ---------------------------------------------------------------------------
// Fetching: http (direct or through http_proxy), https (direct), file

class FetchError extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

const NET_ERRORS = {
  ECONNREFUSED: 'Connection refused',
  ENOTFOUND: 'No address record',
  EAI_AGAIN: 'Temporary failure in name resolution',
  ETIMEDOUT: 'Operation timed out',
  ECONNRESET: 'Connection reset by peer',
  EHOSTUNREACH: 'No route to host',
  ENETUNREACH: 'Network is unreachable',
};

function bypassProxy(hostname, port) {
  const list = process.env.no_proxy ?? process.env.NO_PROXY ?? '';
  const host = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  for (let item of list.split(/[\s,]+/)) {
    item = item.trim().toLowerCase();
    if (!item) continue;
    if (item === '*') return true;
    let itemPort = null;
    const m = /^(.*?):(\d+)$/.exec(item);
    if (m && !item.includes(']') && m[1].indexOf(':') < 0) {
      item = m[1];
      itemPort = m[2];
    }
    item = item.replace(/^\[|\]$/g, '').replace(/^\*/, '');
    if (itemPort && itemPort !== String(port)) continue;
    if (host === item.replace(/^\./, '') || (item.startsWith('.') ? host.endsWith(item) : host.endsWith(`.${item}`))) {
      return true;
    }
  }
  return false;
}

function proxyFor(url) {
  if (url.protocol !== 'http:') return null;
  if (CONFIG && CONFIG.IGNORE_PROXY) return null;
  const p = process.env.http_proxy || process.env.HTTP_PROXY;
  if (!p) return null;
  if (bypassProxy(url.hostname, url.port || '80')) return null;
  try {
    return new URL(/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(p) ? p : `http://${p}`);
  } catch {
    return null;
  }
}

function httpOnce(url, opts) {
  return new Promise((resolve, reject) => {
    const proxy = proxyFor(url);
    const mod = url.protocol === 'https:' ? https : http;
    const headers = { 'User-Agent': `${TOOL}/${PKGTOOLS_VERSION} (pkgsrc stand-in)`, Connection: 'close' };
    if (opts.ifModifiedSince) headers['If-Modified-Since'] = new Date(opts.ifModifiedSince).toUTCString();
    const unbracket = (h) => h.replace(/^\[|\]$/g, '');
    let reqOpts;
    if (proxy) {
      // Plain HTTP proxying: the proxy gets the absolute URI.
      headers.Host = url.host;
      if (proxy.username) {
        const cred = `${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`;
        headers['Proxy-Authorization'] = `Basic ${Buffer.from(cred).toString('base64')}`;
      }
      reqOpts = {
        host: unbracket(proxy.hostname),
        port: proxy.port || 3128,
        path: `${url.protocol}//${url.host}${url.pathname}${url.search}`,
      };
    } else {
      reqOpts = { host: unbracket(url.hostname), port: url.port || (url.protocol === 'https:' ? 443 : 80), path: url.pathname + url.search };
    }
    const req = mod.request({ ...reqOpts, method: opts.method || 'GET', headers, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('error', (e) => reject(new FetchError(e.message === 'aborted' ? 'Truncated response' : NET_ERRORS[e.code] || e.message)));
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        const cl = res.headers['content-length'];
        if (cl !== undefined && opts.method !== 'HEAD' && res.statusCode === 200 && body.length < Number(cl)) {
          reject(new FetchError('Truncated response'));
          return;
        }
        const lm = Date.parse(res.headers['last-modified'] || '');
        resolve({
          status: res.statusCode,
          statusText: res.statusMessage || `HTTP ${res.statusCode}`,
          headers: res.headers,
          body,
          lastModified: Number.isNaN(lm) ? null : lm,
        });
      });
    });
    req.setTimeout(opts.timeoutMs || 120000, () => req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
    req.on('error', (e) => reject(new FetchError(NET_ERRORS[e.code] || e.message)));
    req.end();
  });
}

/** GET a URL; 3xx are followed, other statuses are returned to the caller. */
async function fetchUrl(urlStr, opts = {}) {
  let url;
  try {
    url = new URL(urlStr);
  } catch {
    throw new FetchError(`Invalid URL: ${urlStr}`);
  }
  for (let hop = 0; hop < 6; hop++) {
    if (url.protocol === 'file:') {
      const p = R(decodeURIComponent(url.pathname));
      let st;
      try {
        st = fs.statSync(p);
      } catch (e) {
        if (e.code === 'ENOENT') return { status: 404, statusText: 'File Not Found', body: Buffer.alloc(0), lastModified: null };
        throw new FetchError(errText(e));
      }
      const mtime = Math.floor(st.mtimeMs / 1000) * 1000;
      if (opts.ifModifiedSince && mtime <= opts.ifModifiedSince) return { status: 304, statusText: 'Not Modified', body: Buffer.alloc(0), lastModified: mtime };
      if (st.isDirectory()) {
        const html = fs.readdirSync(p).map((n) => `<a href="${encodeURIComponent(n)}">${n}</a>`).join('\n');
        return { status: 200, statusText: 'OK', body: Buffer.from(html), lastModified: mtime };
      }
      return { status: 200, statusText: 'OK', body: fs.readFileSync(p), lastModified: mtime };
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new FetchError(`URL scheme not supported: ${url.protocol}`);
    const res = await httpOnce(url, opts);
    if ([301, 302, 303, 307, 308].includes(res.status) && res.headers.location) {
      url = new URL(res.headers.location, url);
      continue;
    }
    return res;
  }
  throw new FetchError('Too many redirects');
}

async function fetchOk(urlStr, opts = {}) {
  const res = await fetchUrl(urlStr, opts);
  if (res.status === 304 && opts.ifModifiedSince) return res;
  if (res.status < 200 || res.status > 299) throw new FetchError(res.statusText, res.status);
  return res;
}

function isUrl(s) {
  return /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(s);
}

/** Names linked from an HTML directory index (Apache autoindex and similar). */
function parseIndexHtml(html) {
  const names = [];
  const re = /href\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))/gi;
  let m;
  while ((m = re.exec(html))) {
    let href = (m[1] ?? m[2] ?? m[3] ?? '').replace(/&amp;/g, '&').replace(/[?#].*$/, '');
    if (!href || href.endsWith('/')) continue;
    href = href.slice(href.lastIndexOf('/') + 1);
    try {
      href = decodeURIComponent(href);
    } catch {
      /* keep as is */
    }
    names.push(href);
  }
  return names;
}

// ---------------------------------------------------------------------------
// pkg-vulnerabilities (vulnerabilities-file.c, audit.c)

const PGP_START = '-----BEGIN PGP SIGNED MESSAGE-----\n';
const PGP_END = '-----BEGIN PGP SIGNATURE-----\n';
const PKCS7_BEGIN = '-----BEGIN PKCS7-----\n';

function vulnHash(input, algo) {
  let inPgp = false;
  if (input.startsWith(PGP_START)) {
    input = input.slice(PGP_START.length);
    inPgp = true;
  }
  const h = crypto.createHash(algo);
  let off = 0;
  while (off < input.length) {
    const nl = input.indexOf('\n', off);
    if (nl < 0) die('Missing newline in pkg-vulnerabilities');
    const line = input.slice(off, nl + 1);
    off = nl + 1;
    if (inPgp && line === PGP_END) break;
    if (!inPgp && line === PKCS7_BEGIN) break;
    if (line === '\n' || line.startsWith('Hash:') || line.startsWith('# $NetBSD') || line.startsWith('#CHECKSUM')) continue;
    h.update(line);
  }
  return h.digest('hex');
}

function verifyChecksumLine(input, rest) {
  const m = /^(\S+)/.exec(rest);
  const algo = m ? m[1] : '';
  const algos = { SHA512: 'sha512', SHA1: 'sha1' };
  if (!algos[algo]) {
    warn(`Unsupported hash algorithm: ${algo.replace(/[^A-Za-z0-9].*$/, '')}`);
    return;
  }
  const value = rest.slice(algo.length);
  if (!/^[ \t]+\S/.test(value)) die('Invalid #CHECKSUM');
  const hex = value.trim().split(/\s+/)[0];
  if (hex !== vulnHash(input, algos[algo])) die(`${algo} hash doesn't match`);
}

/** Parse and validate a pkg-vulnerabilities file (already decompressed). */
function parseVulnerabilities(input, { checkSignature = false } = {}) {
  if (input.includes('\0')) die('Invalid input (NUL character found)');
  let inPgp = false;
  let body = input;
  if (input.startsWith(PGP_START)) {
    inPgp = true;
    body = input.slice(PGP_START.length);
  }
  if (checkSignature) {
    // No GPG here: only the clear-sign structure can be checked.
    if (!inPgp || !input.includes(`\n${PGP_END}`)) die('Invalid PGP signature');
  }
  const lines = [];
  let off = 0;
  while (off < body.length) {
    const nl = body.indexOf('\n', off);
    if (nl < 0) die('Missing newline in pkg-vulnerabilities');
    lines.push(body.slice(off, nl));
    off = nl + 1;
  }
  let i = 0;
  let sawFormat = false;
  for (; i < lines.length; i++) {
    const l = lines[i];
    if (l === '' || l.startsWith('Hash:') || l.startsWith('# $NetBSD')) continue;
    if (l[0] === '#' && /\s/.test(l[1] || '\n')) {
      if (l.slice(1).trim() !== '') die('Invalid header');
      continue;
    }
    if (!l.startsWith('#FORMAT')) die('Input header is malformed');
    if (!/^#FORMAT\s1\.1\.0\s*$/.test(l)) {
      if (!/^#FORMAT\s/.test(l)) die('Invalid #FORMAT');
      die('Input #FORMAT');
    }
    sawFormat = true;
    i++;
    break;
  }
  if (!sawFormat || i >= lines.length) die('Missing #CHECKSUM or content');
  const entries = [];
  for (; i < lines.length; i++) {
    const l = lines[i];
    if (l === '') continue;
    if (inPgp && `${l}\n` === PGP_END) break;
    if (!inPgp && `${l}\n` === PKCS7_BEGIN) break;
    if (l[0] === '#' && (l.length === 1 || /\s/.test(l[1]))) continue;
    if (l.startsWith('#CHECKSUM')) {
      const rest = l.slice(9);
      if (!/^\s/.test(rest)) die('Invalid #CHECKSUM');
      verifyChecksumLine(input, rest.replace(/^\s+/, ''));
      continue;
    }
    if (l[0] === '#') continue;
    const f = l.split(/\s+/).filter(Boolean);
    if (f.length < 2) die('Input error: missing classification');
    if (f.length < 3) die('Input error: missing URL');
    entries.push({ pattern: f[0], type: f[1], url: f[2] });
  }
  return entries;
}

/** audit_package(): report entries matching PKGNAME; returns true if anything was reported. */
function auditPackage(cfg, entries, pkgname, { limitType = null, includeIgnored = false, quiet = false, toStderr = false } = {}) {
  const ignoreList = (cfg.IGNORE_URL || '').split('\n').filter(Boolean);
  const emit = (s) => (toStderr ? process.stderr : process.stdout).write(s);
  const doEol = String(cfg.CHECK_END_OF_LIFE).toLowerCase() === 'yes';
  let found = false;
  for (const v of entries) {
    const ignored = ignoreList.includes(v.url);
    if (ignored && !includeIgnored) continue;
    if (limitType !== null && limitType !== v.type) continue;
    if (!pkgMatch(v.pattern, pkgname)) continue;
    if (v.type === 'eol') {
      if (!doEol) continue;
      found = true;
      if (quiet) emit(`${pkgname}\n`);
      else emit(`Package ${pkgname} has reached end-of-life (eol), see ${TNF_VULN_BASE}/eol-packages\n`);
      continue;
    }
    found = true;
    if (quiet) emit(`${pkgname}${ignored ? ' (ignored)' : ''}\n`);
    else emit(`Package ${pkgname} has a${ignored ? 'n ignored' : ''} ${v.type} vulnerability, see ${v.url}\n`);
  }
  return found;
}

function readVulnFile(cfg, { checkSignature = false, ignoreMissing = false } = {}) {
  let buf;
  try {
    buf = fs.readFileSync(R(cfg.vulnFile));
  } catch (e) {
    if (e.code === 'ENOENT' && ignoreMissing) return null;
    die(`Cannot open ${cfg.vulnFile}: ${errText(e)}`);
  }
  let text;
  try {
    text = decompress(buf).toString('utf8');
  } catch (e) {
    die(`Cannot read pkg_vulnerabilities: ${e.message}`);
  }
  return parseVulnerabilities(text, { checkSignature });
}

// ---------------------------------------------------------------------------
// pkg_add

const PKG_ADD_USAGE = usageFn(
  'pkg_add [-ADfIkLnRUuVv] [-C config] [-K pkg_dbdir] [-m machine] [-P destdir] [-p prefix] [[ftp|http]://[user[:password]@]host[:port]][/path/]pkg-name ...',
);

function stripSuffix(name) {
  return name.replace(/\.(tgz|tbz)$/, '');
}

function promptYes(question) {
  process.stderr.write(question);
  const buf = Buffer.alloc(256);
  let n = 0;
  try {
    n = fs.readSync(0, buf, 0, buf.length, null);
  } catch {
    n = 0;
  }
  return n > 0 && 'YyTt1'.includes(String.fromCharCode(buf[0]));
}

class PkgAdd {
  constructor(flags, cfg) {
    this.f = flags;
    this.cfg = cfg;
    this.db = new PkgDb(flags.destdir ? path.posix.join(flags.destdir, cfg.PKG_DBDIR) : cfg.PKG_DBDIR);
    this.pkgPath = String(cfg.PKG_PATH || '')
      .split(/[;\n]/)
      .map((s) => s.trim())
      .filter(Boolean)
      .map((s) => (isUrl(s) || path.isAbsolute(s) ? s : path.resolve(s)));
    this.lastTopDir = null;
    this.listings = new Map();
    this.inProgress = new Set();
    this.vulns = undefined;
  }

  /** File names in a local directory or behind an HTTP index, cached per run. */
  async listDir(dir) {
    const cacheOk = String(this.cfg.CACHE_INDEX).toLowerCase() === 'yes';
    if (cacheOk && this.listings.has(dir)) return this.listings.get(dir);
    let names = [];
    if (isUrl(dir)) {
      try {
        const res = await fetchOk(dir.endsWith('/') ? dir : `${dir}/`);
        names = parseIndexHtml(res.body.toString('utf8'));
      } catch (e) {
        if (this.f.verbose) warn(`Cannot list ${dir}: ${e.message}`);
      }
    } else {
      try {
        names = fs.readdirSync(R(dir));
      } catch {
        names = [];
      }
    }
    if (cacheOk) this.listings.set(dir, names);
    return names;
  }

  /** Best package file for PATTERN in DIR, as {dir, pkgname, file}. */
  async searchDir(dir, pattern, current) {
    const lead = /^[A-Za-z0-9-]*/.exec(pattern)[0];
    let best = current ? current.pkgname : null;
    let bestEntry = current;
    for (const file of await this.listDir(dir)) {
      if (!/\.(tgz|tbz)$/.test(file) || !file.startsWith(lead)) continue;
      const name = stripSuffix(file);
      const b = betterOf(pattern, best, name);
      if (b !== best) {
        best = b;
        bestEntry = { dir, pkgname: name, file };
      }
    }
    return bestEntry;
  }

  async readLocation(loc) {
    if (isUrl(loc)) return (await fetchOk(loc)).body;
    return fs.readFileSync(path.isAbsolute(loc) ? R(loc) : loc);
  }

  joinLoc(dir, file) {
    return isUrl(dir) ? `${dir.replace(/\/+$/, '')}/${encodeURIComponent(file)}` : path.posix.join(dir, file);
  }

  dirOf(loc) {
    if (isUrl(loc)) return loc.slice(0, loc.lastIndexOf('/')) || loc;
    return path.posix.dirname(loc);
  }

  /** find_archive(): open directly, then search the directory part, then the last top-level dir and PKG_PATH. */
  async findArchive(arg, topLevel) {
    let full;
    let searchPath = false;
    if (isUrl(arg) || path.isAbsolute(arg)) full = arg;
    else {
      full = path.resolve(arg);
      if (!arg.includes('/')) searchPath = true;
    }
    try {
      const buf = await this.readLocation(full);
      if (topLevel) this.lastTopDir = this.dirOf(full);
      return { buf, loc: full };
    } catch {
      /* fall through to the pattern search */
    }
    const slash = full.lastIndexOf('/');
    const pattern = stripSuffix(full.slice(slash + 1));
    let found = await this.searchDir(full.slice(0, slash) || '/', pattern, null);
    if (!found && searchPath) {
      if (this.lastTopDir) found = await this.searchDir(this.lastTopDir, pattern, null);
      if (!found) {
        for (const dir of this.pkgPath) found = await this.searchDir(dir, pattern, found);
      }
    }
    if (!found) return null;
    const loc = this.joinLoc(found.dir, found.file);
    try {
      const buf = await this.readLocation(loc);
      if (topLevel) this.lastTopDir = found.dir;
      return { buf, loc };
    } catch (e) {
      warn(`${loc}: ${e.message}`);
      return null;
    }
  }

  checkSignature(pkgname, validSig) {
    const v = String(this.cfg.VERIFIED_INSTALLATION).toLowerCase();
    if (v === 'never') return true;
    if (v === 'always') {
      if (!validSig) warn('No valid signature found, rejected');
      return validSig;
    }
    if (v === 'trusted') {
      if (validSig) return true;
      process.stderr.write(`No valid signature found for ${pkgname}.\n`);
      if (!promptYes('Do you want to proceed with the installation [y/n]?\n')) {
        process.stderr.write('Cancelling installation\n');
        return false;
      }
      return true;
    }
    if (v === 'interactive') {
      if (!promptYes(`Do you want to proceed with the installation of ${pkgname} [y/n]?\n`)) {
        process.stderr.write('Cancelling installation\n');
        return false;
      }
      return true;
    }
    warn('Unknown value of configuration variable VERIFIED_INSTALLATION');
    return false;
  }

  checkVulnerable(pkgname) {
    const mode = String(this.cfg.CHECK_VULNERABILITIES).toLowerCase();
    if (mode === 'never') return true;
    if (mode !== 'always' && mode !== 'interactive') {
      warn('Unknown value of the configuration variable CHECK_VULNERABILITIES');
      return false;
    }
    if (this.vulns === undefined) this.vulns = readVulnFile(this.cfg, { ignoreMissing: mode === 'interactive' });
    if (!this.vulns) return mode !== 'always';
    if (!auditPackage(this.cfg, this.vulns, pkgname, { toStderr: true })) return true;
    if (mode === 'always') return false;
    if (!promptYes(`Do you want to proceed with the installation of ${pkgname} [y/n]?\n`)) {
      process.stderr.write('Cancelling installation\n');
      return false;
    }
    return true;
  }

  checkPlatform(pkgname, bi) {
    const arch = this.f.machine || HOST.MACHINE_ARCH;
    const fatal = bi.OPSYS !== HOST.OPSYS || bi.MACHINE_ARCH !== arch;
    const osOk = String(this.cfg.CHECK_OS_VERSION).toLowerCase() === 'no' || bi.OS_VERSION === HOST.OS_VERSION;
    if (fatal || !osOk) {
      warn(`Warning: package \`${pkgname}' was built for a platform:`);
      warn(`${bi.OPSYS}/${bi.MACHINE_ARCH} ${bi.OS_VERSION} (pkg) vs. ${HOST.OPSYS}/${arch} ${HOST.OS_VERSION} (this host)`);
      if (fatal && !this.f.force) return false;
    }
    return true;
  }

  checkOtherInstalled(t) {
    if (t.replaceSameDir) {
      t.other = t.pkgname;
    } else {
      const base = splitPkgname(t.pkgname);
      if (!base) {
        warn(`Invalid package name ${t.pkgname}`);
        return false;
      }
      t.other = this.db.best(base.base);
      if (!t.other) return true;
      if (!this.f.replace) {
        warn(`A different version of ${t.pkgname} is already installed: ${t.other}`);
        return false;
      }
    }
    let ok = true;
    for (const dependent of this.db.requiredBy(t.other)) {
      const contents = this.db.read(dependent, '+CONTENTS');
      if (contents === null) {
        warn(`Can't open +CONTENTS of depending package ${dependent}`);
        return false;
      }
      for (const pat of plistAll(parsePlist(contents), 'pkgdep')) {
        if (!pkgMatch(pat, t.other)) continue;
        if (pkgMatch(pat, t.pkgname)) break;
        if (!this.f.forceDepending) {
          warn(`Dependency of ${dependent} fulfilled by ${t.other}, but not by ${t.pkgname}`);
          ok = false;
        }
        break;
      }
    }
    return ok;
  }

  checkConflicts(t) {
    let ok = true;
    for (const pat of plistAll(t.plist, 'pkgcfl')) {
      for (const inst of this.db.matching(pat)) {
        if (inst === t.other) continue;
        warn(`Package \`${t.pkgname}' conflicts with \`${pat}', and \`${inst}' is installed.`);
        ok = false;
      }
    }
    for (const inst of this.db.names()) {
      if (inst === t.other) continue;
      const pat = plistAll(this.db.plist(inst), 'pkgcfl').find((p) => pkgMatch(p, t.pkgname));
      if (pat) {
        warn(`Installed package \`${inst}' conflicts with \`${pat}' when trying to install \`${t.pkgname}'.`);
        ok = false;
        break;
      }
    }
    if (!ok) return false;
    // Implicit conflicts need the file index; like the real tool, skip if there is none.
    const byfile = this.db.byfileLoad();
    if (!byfile) return true;
    for (const f of plistFiles(t.plist).files) {
      const owner = byfile.files[f];
      if (!owner || owner === t.other || !this.db.has(owner)) continue;
      warn(`Conflicting PLIST with ${owner}: ${path.posix.relative(t.prefix, f)}`);
      if (!this.f.force) return false;
    }
    return true;
  }

  writeMetaData(t, dir) {
    if (this.f.fake) return;
    mkdirp(dir);
    for (const [name, , mode] of META) {
      if (t.meta[name] === undefined) continue;
      const p = path.join(dir, name);
      try {
        fs.unlinkSync(p);
      } catch {
        /* absent */
      }
      fs.writeFileSync(p, t.meta[name], { mode });
      fs.chmodSync(p, mode);
    }
  }

  /** What pkg_delete does to the old version during an update. */
  deleteInstalled(name) {
    const plist = this.db.plist(name);
    const prefix = plistFirst(plist, 'cwd') || '/';
    const { files, dirs } = plistFiles(plist);
    const parents = new Set();
    for (const f of files) {
      try {
        fs.unlinkSync(R(f));
      } catch {
        /* already gone */
      }
      parents.add(path.posix.dirname(f));
    }
    // Prune directories the package emptied, but never above its prefix.
    const sorted = [...parents, ...dirs].sort((a, b) => b.length - a.length);
    for (let d of sorted) {
      while (d.startsWith(`${prefix}/`) && d !== prefix) {
        try {
          fs.rmdirSync(R(d));
        } catch {
          break;
        }
        d = path.posix.dirname(d);
      }
    }
    for (const pat of plistAll(plist, 'pkgdep')) {
      const dep = this.db.best(pat);
      if (!dep) continue;
      const rb = this.db.requiredBy(dep).filter((x) => x !== name);
      const p = path.join(this.db.entry(dep), '+REQUIRED_BY');
      if (rb.length) writeAtomic(p, `${rb.join('\n')}\n`);
      else {
        try {
          fs.unlinkSync(p);
        } catch {
          /* absent */
        }
      }
    }
    const byfile = this.db.byfileLoad();
    if (byfile) {
      for (const [f, owner] of Object.entries(byfile.files)) if (owner === name) delete byfile.files[f];
      for (const [d, owners] of Object.entries(byfile.dirs || {})) {
        byfile.dirs[d] = owners.filter((o) => o !== name);
        if (!byfile.dirs[d].length) delete byfile.dirs[d];
      }
      this.db.byfileSave(byfile);
    }
    fs.rmSync(this.db.entry(name), { recursive: true, force: true });
  }

  startReplacing(t) {
    for (const f of ['+REQUIRED_BY', '+PRESERVE', ...(t.meta['+INSTALLED_INFO'] === undefined ? ['+INSTALLED_INFO'] : [])]) {
      try {
        fs.renameSync(path.join(this.db.entry(t.other), f), path.join(t.logdir, f));
      } catch (e) {
        if (e.code !== 'ENOENT') {
          warn(`Can't move ${f} from ${t.other} to ${t.pkgname}: ${errText(e)}`);
          return false;
        }
      }
    }
    if (this.f.verbose) say(`${SBINDIR}/pkg_delete -K ${this.cfg.PKG_DBDIR} -p ${t.prefix} '${t.other}'\n`);
    try {
      this.deleteInstalled(t.other);
    } catch (e) {
      warn(`command failed: ${SBINDIR}/pkg_delete -K ${this.cfg.PKG_DBDIR} -p ${t.prefix} ${t.other}: ${errText(e)}`);
      return false;
    }
    return true;
  }

  async checkDependencies(t) {
    let ok = true;
    for (const pat of plistAll(t.plist, 'pkgdep')) {
      if (this.db.best(pat)) continue;
      if (this.f.fake) {
        warn(`Missing dependency ${pat}${this.f.force ? ', continuing' : ''}`);
        if (!this.f.force) {
          ok = false;
          break;
        }
        continue;
      }
      if (this.inProgress.has(pat)) {
        warn(`Can't install dependency ${pat}`);
        ok = false;
        break;
      }
      this.inProgress.add(pat);
      const installed = await this.pkgDo(pat, true, false);
      this.inProgress.delete(pat);
      if (!installed) {
        if (!this.f.forceDepends) {
          warn(`Can't install dependency ${pat}`);
          ok = false;
          break;
        }
        warn(`Can't install dependency ${pat}, continuing`);
      }
      if (!this.db.best(pat)) {
        if (!this.f.forceDepends) {
          warn(`Just installed dependency ${pat} disappeared`);
          ok = false;
          break;
        }
        warn(`Missing dependency ${pat} ignored`);
      }
    }
    t.deps = [];
    for (const pat of plistAll(t.plist, 'pkgdep')) {
      const best = this.db.best(pat);
      if (!best) {
        if (this.f.fake) continue;
        warn(`Expected dependency ${pat} still missing`);
        return false;
      }
      if (!t.deps.includes(best)) t.deps.push(best);
    }
    return ok;
  }

  checkRequires(t) {
    for (const lib of t.buildInfo.get('REQUIRES') || []) {
      if (!isFile(R(lib))) {
        warn(`Missing required library: ${lib}`);
        if (!this.f.force) return false;
      }
    }
    return true;
  }

  runInstallScript(t, stage) {
    if (t.meta['+INSTALL'] === undefined || this.f.noInstall) return true;
    if (this.f.verbose) say(`Running install with ${stage} for ${t.pkgname}.\n`);
    if (this.f.fake) return true;
    const env = { ...process.env, PKG_PREFIX: R(t.prefix), PKG_METADATA_DIR: R(`${this.cfg.PKG_DBDIR}/${t.pkgname}`), PKG_REFCOUNT_DBDIR: R(this.cfg.PKG_REFCOUNT_DBDIR) };
    const r = childProcess.spawnSync('/bin/sh', [path.join(t.logdir, '+INSTALL'), t.pkgname, stage], { cwd: t.logdir, env, stdio: ['ignore', 'inherit', 'inherit'] });
    if (r.error) {
      warn('exec of install script failed');
      return false;
    }
    if (r.status !== 0) {
      warn('install script returned error status');
      return false;
    }
    return true;
  }

  formatCmd(cmd, prefix, lastFile) {
    return cmd.replace(/%([FDBf%])/g, (_, c) => {
      if (c === '%') return '%';
      if (c === 'D') return prefix;
      if (!lastFile) return '';
      if (c === 'F') return lastFile;
      if (c === 'f') return path.posix.basename(lastFile);
      return path.posix.dirname(path.posix.join(prefix, lastFile));
    });
  }

  /** Unpack the payload in plist order; every mismatch between archive and plist is fatal. */
  extractFiles(t) {
    if (this.f.fake) return true;
    const root = R(t.installPrefix);
    mkdirp(root);
    // @exec sees the prefix as this process reaches it (root-prefixed under PKGSRC_STANDIN_ROOT).
    const cmdPrefix = R(t.installPrefix);
    const byfile = this.db.byfileLoad() || { format: 'pkgsrc-standin-byfile 1', files: {}, dirs: {} };
    let ei = t.payloadStart;
    let lastFile = null;
    let modeOverride = null;
    const list = t.plist;
    for (let k = 0; k < list.length; k++) {
      const e = list[k];
      if (e.type === 'ignore') {
        k++;
        continue;
      }
      if (e.type === 'mode') {
        modeOverride = /^[0-7]+$/.test(e.name) ? parseInt(e.name, 8) : null;
        continue;
      }
      if (e.type === 'pkgdir') {
        const full = path.posix.join(t.prefix, e.name);
        mkdirp(path.join(root, e.name));
        (byfile.dirs[full] = byfile.dirs[full] || []).push(t.pkgname);
        continue;
      }
      if (e.type === 'exec') {
        const cmd = this.formatCmd(e.name, cmdPrefix, lastFile);
        say(`Executing '${cmd}'\n`);
        const r = childProcess.spawnSync('/bin/sh', ['-c', cmd], { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });
        if (r.error || r.status !== 0) warn(`command '${cmd}' failed`);
        continue;
      }
      if (e.type !== 'file') continue;
      lastFile = e.name;
      const ent = t.entries[ei];
      if (!ent) {
        warn(`PLIST entry not in package (${e.name})`);
        return false;
      }
      if (ent.name !== e.name) {
        warn(`PLIST entry and package don't match (${e.name} vs ${ent.name})`);
        return false;
      }
      if (path.isAbsolute(ent.name) || ent.name.split('/').includes('..')) {
        warn(`Failed to write ${ent.name} for ${t.pkgname}: Path contains '..'`);
        return false;
      }
      const next = list[k + 1];
      if (ent.type === '0' || ent.type === '7') {
        if (next && next.type === 'comment' && next.name.startsWith('MD5:')) {
          const md5 = crypto.createHash('md5').update(ent.data).digest('hex');
          if (md5 !== next.name.slice(4).toLowerCase()) {
            warn(`MD5 checksum mismatch for ${ent.name} in ${t.pkgname}`);
            return false;
          }
        }
      }
      const target = path.join(root, ent.name);
      try {
        mkdirp(path.dirname(target));
        try {
          const st = fs.lstatSync(target);
          if (st.isDirectory() && ent.type !== '5') fs.rmdirSync(target);
          else if (!st.isDirectory()) fs.unlinkSync(target);
        } catch (err) {
          if (err.code !== 'ENOENT') throw err;
        }
        const mode = modeOverride !== null ? modeOverride : ent.mode & 0o7777;
        if (ent.type === '2') fs.symlinkSync(ent.linkname, target);
        else if (ent.type === '1') fs.linkSync(path.join(root, ent.linkname), target);
        else if (ent.type === '5') mkdirp(target);
        else if (ent.type === '0' || ent.type === '7') {
          fs.writeFileSync(target, ent.data, { mode });
          fs.chmodSync(target, mode);
          if (ent.mtime) fs.utimesSync(target, ent.mtime, ent.mtime);
        } else throw new Error(`unsupported tar entry type ${ent.type}`);
      } catch (err) {
        warn(`Failed to write ${ent.name} for ${t.pkgname}: ${errText(err)}`);
        return false;
      }
      byfile.files[path.posix.join(t.prefix, e.name)] = t.pkgname;
      if (this.f.verbose) say(`${e.name}\n`);
      ei++;
    }
    if (ei < t.entries.length) {
      warn(`Package contains entries not in PLIST: ${t.entries[ei].name}`);
      return false;
    }
    this.db.byfileSave(byfile);
    return true;
  }

  registerDepends(t) {
    if (this.f.fake) return;
    for (const dep of t.deps) {
      const p = path.join(this.db.entry(dep), '+REQUIRED_BY');
      try {
        fs.appendFileSync(p, `${t.pkgname}\n`, { mode: 0o644 });
      } catch (e) {
        warn(`can't open dependency file '${p}',registration is incomplete!`);
      }
    }
  }

  removePartial(t, withFiles) {
    if (this.f.fake) return;
    if (withFiles) {
      if (t.other) {
        warn(`Updating of ${t.other} to ${t.pkgname} failed.`);
        warn('Remember to run pkg_admin rebuild-tree after fixing this.');
      }
      for (const f of plistFiles(t.plist).files) {
        try {
          fs.unlinkSync(R(f));
        } catch {
          /* not extracted */
        }
      }
    }
    fs.rmSync(t.logdir, { recursive: true, force: true });
  }

  /** pkg_do(): install one package (and, recursively, its dependencies). */
  async pkgDo(arg, markAutomatic, topLevel) {
    const found = await this.findArchive(arg, topLevel);
    if (!found) {
      warn(`no pkg found for '${arg}', sorry.`);
      return false;
    }
    let entries;
    let signed;
    try {
      ({ entries, signed } = openPackage(found.buf));
    } catch (e) {
      warn(`${found.loc}: ${e.message}`);
      return false;
    }
    const md = readMetaData(entries);
    if (md.error) {
      warn(md.error);
      return false;
    }
    const t = { entries, payloadStart: md.payloadStart, meta: md.meta };
    t.plist = parsePlist(t.meta['+CONTENTS']);
    t.pkgname = plistFirst(t.plist, 'name');
    if (!t.pkgname) {
      warn('Invalid PLIST: missing @name');
      return false;
    }
    const cwd = plistFirst(t.plist, 'cwd');
    if (cwd === null) {
      warn('Invalid PLIST: missing @cwd');
      return false;
    }
    if (this.f.prefix && this.f.prefix !== cwd) {
      const i = t.plist.findIndex((e) => e.type === 'cwd');
      t.plist.splice(i, 1);
      t.plist.unshift({ type: 'cwd', name: this.f.prefix });
      t.meta['+CONTENTS'] = stringifyPlist(t.plist);
      t.prefix = this.f.prefix;
    } else t.prefix = cwd;
    t.installPrefix = this.f.destdir ? path.posix.join(this.f.destdir, t.prefix) : t.prefix;
    if (!this.checkSignature(t.pkgname, signed)) return false;

    t.buildInfo = parseKeyValues(t.meta['+BUILD_INFO']);
    const bi = {};
    for (const k of ['OPSYS', 'OS_VERSION', 'MACHINE_ARCH', 'PKGTOOLS_VERSION', 'USE_ABI_DEPENDS', 'IGNORE_RECOMMENDED']) {
      const v = t.buildInfo.get(k);
      if (v) bi[k] = v[v.length - 1];
    }
    if (!bi.OPSYS || !bi.OS_VERSION || !bi.MACHINE_ARCH) {
      warn('Not all required build information are present.');
      return false;
    }
    if ((bi.USE_ABI_DEPENDS && bi.USE_ABI_DEPENDS.toUpperCase() !== 'YES') || (bi.IGNORE_RECOMMENDED && bi.IGNORE_RECOMMENDED.toUpperCase() !== 'NO')) {
      warn(`${t.pkgname} was built to ignore ABI dependencies`);
    }
    if (!bi.PKGTOOLS_VERSION) warn(`Warning: package \`${t.pkgname}' lacks pkg_install version data`);
    else if (!/^[0-9]{8}$/.test(bi.PKGTOOLS_VERSION)) {
      warn(`Warning: package \`${t.pkgname}' contains an invalid pkg_install version`);
      if (!this.f.force) return false;
    } else if (Number(bi.PKGTOOLS_VERSION) > Number(PKGTOOLS_VERSION)) {
      warn(`${this.f.force ? 'Warning' : 'Error'}: package \`${t.pkgname}' was built with a newer pkg_install version`);
      if (!this.f.force) return false;
    }
    if (!this.checkVulnerable(t.pkgname)) return false;
    if (t.meta['+MTREE_DIRS'] !== undefined) warn(`mtree specification in pkg \`${t.pkgname}' ignored`);

    const dbLogical = this.f.destdir ? path.posix.join(this.f.destdir, this.cfg.PKG_DBDIR) : this.cfg.PKG_DBDIR;
    t.logdir = R(path.posix.join(dbLogical, t.pkgname));
    // check_already_installed()
    if (this.db.has(t.pkgname)) {
      if (this.f.replaceSame) {
        t.replaceSameDir = t.logdir;
        t.logdir = `${t.logdir}${REPLACE_SUFFIX}`;
        if (fs.existsSync(t.logdir)) {
          warn(`package \`${t.pkgname}' already has a temporary update directory \`${t.logdir}', remove it manually`);
          return false;
        }
      } else {
        if (!this.f.automatic && this.db.isAutomatic(t.pkgname)) {
          if (!this.f.fake) this.db.setAutomatic(t.pkgname, false);
          warn(`package \`${t.pkgname}' was already installed as dependency, now marked as installed manually`);
        } else warn(`package \`${t.pkgname}' already recorded as installed`);
        return true;
      }
    }
    if (!this.checkPlatform(t.pkgname, bi)) return false;
    if (!this.checkOtherInstalled(t)) return false;
    if (!this.checkConflicts(t)) return false;

    if (t.other) {
      // Replacing: record the new version, remove the old one, then dependencies and files.
      try {
        this.writeMetaData(t, t.logdir);
      } catch (e) {
        warn(`Can't create pkgdb entry: ${t.logdir}: ${errText(e)}`);
        this.removePartial(t, false);
        return false;
      }
      if (!this.f.fake && !this.startReplacing(t)) {
        this.removePartial(t, false);
        return false;
      }
      if (t.replaceSameDir && !this.f.fake) {
        fs.renameSync(t.logdir, t.replaceSameDir);
        t.logdir = t.replaceSameDir;
      }
      if (!(await this.checkDependencies(t))) {
        this.removePartial(t, false);
        return false;
      }
    } else {
      if (!(await this.checkDependencies(t))) return false;
      try {
        this.writeMetaData(t, t.logdir);
      } catch (e) {
        warn(`Can't create pkgdb entry: ${t.logdir}: ${errText(e)}`);
        this.removePartial(t, false);
        return false;
      }
    }
    if (!this.checkRequires(t)) {
      this.removePartial(t, false);
      return false;
    }
    if (!this.runInstallScript(t, 'PRE-INSTALL')) {
      this.removePartial(t, false);
      return false;
    }
    if (!this.extractFiles(t)) {
      this.removePartial(t, true);
      return false;
    }
    if (!this.runInstallScript(t, 'POST-INSTALL')) {
      this.removePartial(t, false);
      return false;
    }
    if (markAutomatic && !this.f.fake) this.db.setAutomatic(t.pkgname, true);
    this.registerDepends(t);
    if (this.f.verbose) say(`Package ${t.pkgname} registered in ${t.logdir}\n`);
    if (t.meta['+DISPLAY'] !== undefined) say(t.meta['+DISPLAY']);
    return true;
  }
}

async function pkgAddMain(argv) {
  const { opts, args } = getopt(argv, 'AC:DfIK:kLm:nP:p:RUuVvW:w:', PKG_ADD_USAGE);
  const f = { replace: false, replaceSame: false };
  let configFile;
  let dbdir;
  for (const [o, v] of opts) {
    switch (o) {
      case 'A': f.automatic = true; break;
      case 'C': configFile = v; break;
      case 'D': f.forceDepending = true; break;
      case 'f': f.force = true; f.forceDepending = true; f.forceDepends = true; break;
      case 'I': f.noInstall = true; break;
      case 'K': dbdir = v; break;
      case 'm': f.machine = v; break;
      case 'n': f.fake = true; f.verbose = true; break;
      case 'P': f.destdir = v; break;
      case 'p': f.prefix = v; break;
      case 'U': f.replace = true; f.replaceSame = true; break;
      case 'u': f.replace = true; break;
      case 'V': say(`${PKGTOOLS_VERSION}\n`); return 0;
      case 'v': f.verbose = true; break;
      default: break;
    }
  }
  const cfg = loadConfig({ configFile, dbdir });
  if (!args.length) {
    warn('missing package name(s)');
    PKG_ADD_USAGE();
  }
  const adder = new PkgAdd(f, cfg);
  let errors = 0;
  for (const a of args) {
    if (!(await adder.pkgDo(a, Boolean(f.automatic), true))) errors++;
  }
  if (errors) {
    warn(`${errors} package addition${errors === 1 ? '' : 's'} failed`);
    return 1;
  }
  return 0;
}

// ---------------------------------------------------------------------------
// pkg_info

const PKG_INFO_USAGE = usageFn(
  'pkg_info [-BbcDdFfhIikLmNnpqRrSsVvX] [-E pkg-name] [-e pkg-name] [-K pkg_dbdir] [-l prefix] [-Q variable] pkg-name ...\n       pkg_info [-a | -u] [flags]',
);

const SUMMARY_BI_VARS = [
  'PKGPATH', 'CATEGORIES', 'PROVIDES', 'REQUIRES', 'PKG_OPTIONS', 'OPSYS', 'OS_VERSION', 'MACHINE_ARCH',
  'LICENSE', 'HOMEPAGE', 'PKGTOOLS_VERSION', 'BUILD_DATE', 'PREV_PKGPATH', 'SUPERSEDES',
];

/** A pkg_summary(5) block, as `pkg_info -X` prints it. */
function summaryBlock(pkgname, meta, file) {
  const lines = [`PKGNAME=${pkgname}`];
  const plist = parsePlist(meta['+CONTENTS']);
  for (const d of plistAll(plist, 'pkgdep')) lines.push(`DEPENDS=${d}`);
  for (const c of plistAll(plist, 'pkgcfl')) lines.push(`CONFLICTS=${c}`);
  lines.push(`COMMENT=${(meta['+COMMENT'] || '').split('\n')[0]}`);
  if (meta['+SIZE_PKG'] !== undefined) lines.push(`SIZE_PKG=${meta['+SIZE_PKG'].trim()}`);
  const bi = parseKeyValues(meta['+BUILD_INFO']);
  for (const k of SUMMARY_BI_VARS) for (const v of bi.get(k) || []) lines.push(`${k}=${v}`);
  if (file) {
    lines.push(`FILE_NAME=${file.name}`);
    lines.push(`FILE_SIZE=${file.size}`);
  }
  const desc = (meta['+DESC'] || '').replace(/\n$/, '');
  for (const l of desc.split('\n')) lines.push(`DESCRIPTION=${l}`);
  return `${lines.join('\n')}\n\n`;
}

function indexLine(name, comment) {
  const first = (comment || '').split('\n')[0];
  return `${name.padEnd(19)} ${first}\n`;
}

async function pkgInfoMain(argv) {
  const { opts, args } = getopt(argv, 'aBbcDde:E:fFhIiK:kLl:mNnpQ:qrRsSuvVX', PKG_INFO_USAGE);
  const show = new Set();
  let all = false;
  let user = false;
  let quiet = false;
  let dbdir;
  let checkPkg = null;
  let checkBest = null;
  let queryVar = null;
  for (const [o, v] of opts) {
    switch (o) {
      case 'a': all = true; break;
      case 'u': user = true; break;
      case 'q': quiet = true; break;
      case 'K': dbdir = v; break;
      case 'e': checkPkg = v; break;
      case 'E': checkBest = v; break;
      case 'Q': queryVar = v; show.add('Q'); break;
      case 'V': say(`${PKGTOOLS_VERSION}\n`); return 0;
      case 'h': PKG_INFO_USAGE(); break;
      case 'v': break;
      default: show.add(o); break;
    }
  }
  const cfg = loadConfig({ dbdir });
  const db = new PkgDb(cfg.PKG_DBDIR);

  if (checkPkg !== null || checkBest !== null) {
    const pat = checkPkg !== null ? checkPkg : checkBest;
    let matches = db.matching(pat);
    if (!matches.length && !isPkgPattern(pat)) matches = db.matching(`${pat}-[0-9]*`);
    if (!matches.length) return 1;
    if (checkBest !== null) {
      if (!quiet) say(`${bestMatch(pat, matches) || matches[0]}\n`);
    } else if (!quiet) for (const m of matches) say(`${m}\n`);
    return 0;
  }

  if (!args.length && !all && !user) all = true;
  if (user && !args.length) all = true;
  if (!show.size) show.add(all ? 'I' : 'default');

  const targets = [];
  let errors = 0;
  if (all) {
    for (const n of db.names()) {
      if (user && db.isAutomatic(n)) continue;
      targets.push({ name: n, installed: true });
    }
  }
  for (const a of args) {
    if (/\.(tgz|tbz)$/.test(a) || isUrl(a)) {
      try {
        const buf = isUrl(a) ? (await fetchOk(a)).body : fs.readFileSync(path.isAbsolute(a) ? R(a) : a);
        const { entries } = openPackage(buf);
        const md = readMetaData(entries, { strict: false });
        if (md.error) die(md.error, 2);
        const name = plistFirst(parsePlist(md.meta['+CONTENTS']), 'name') || stripSuffix(path.basename(a));
        targets.push({ name, meta: md.meta, file: { name: path.basename(a), size: buf.length } });
      } catch (e) {
        if (e instanceof ToolError) throw e;
        warn(`can't find package file \`${a}'`);
        errors++;
      }
      continue;
    }
    let names = db.has(a) ? [a] : db.matching(a);
    if (!names.length && !isPkgPattern(a)) names = db.matching(`${a}-[0-9]*`);
    if (!names.length) {
      warn(`can't find package \`${a}'`);
      errors++;
      continue;
    }
    for (const n of names) targets.push({ name: n, installed: true });
  }

  const metaFile = (t, file, required) => {
    if (t.meta) return t.meta[file];
    const v = db.read(t.name, file);
    if (v === null && required) die(`cannot read meta data file ${file} of package ${t.name}`, 2);
    return v === null ? undefined : v;
  };
  const section = (title, text) => {
    if (!quiet) say(`${title}\n`);
    say(text && !text.endsWith('\n') ? `${text}\n` : text || '');
    if (!quiet) say('\n');
  };

  for (const t of targets) {
    if (show.has('I')) {
      say(indexLine(t.name, metaFile(t, '+COMMENT', true)));
      continue;
    }
    if (show.has('X')) {
      const meta = t.meta || Object.fromEntries(META.map(([n]) => [n, metaFile(t, n, n === '+CONTENTS' || n === '+COMMENT' || n === '+DESC')]));
      say(summaryBlock(t.name, meta, t.file));
      continue;
    }
    if (show.has('Q')) {
      const src = /[a-z]/.test(queryVar) ? metaFile(t, '+INSTALLED_INFO', false) : metaFile(t, '+BUILD_INFO', false);
      for (const v of parseKeyValues(src).get(queryVar) || []) say(`${v}\n`);
      continue;
    }
    if (!quiet) say(`Information for ${t.name}:\n\n`);
    const d = show.has('default');
    if (d || show.has('c')) section('Comment:', metaFile(t, '+COMMENT', true));
    if (show.has('n') || show.has('N')) {
      const pl = parsePlist(metaFile(t, '+CONTENTS', true));
      const deps = plistAll(pl, show.has('N') ? 'blddep' : 'pkgdep');
      if (deps.length) section(show.has('N') ? 'Built using the following packages:' : 'Requires:', deps.join('\n'));
    }
    if (d || show.has('R')) {
      const rb = t.installed ? db.requiredBy(t.name) : [];
      if (rb.length) section('Required by:', rb.join('\n'));
    }
    if (d || show.has('d')) section('Description:', metaFile(t, '+DESC', true));
    if (show.has('D') && metaFile(t, '+DISPLAY', false)) section('Install notice:', metaFile(t, '+DISPLAY', false));
    if (show.has('f')) section('Packing list:', metaFile(t, '+CONTENTS', true));
    if (show.has('L')) section('Files:', plistFiles(parsePlist(metaFile(t, '+CONTENTS', true))).files.join('\n'));
    if (show.has('B')) section('Build information:', metaFile(t, '+BUILD_INFO', false) || '');
    if (show.has('s')) section('Size of this package in bytes:', (metaFile(t, '+SIZE_PKG', false) || '0').trim());
    if (show.has('S')) section('Size in bytes including required pkgs:', (metaFile(t, '+SIZE_ALL', false) || '0').trim());
  }
  return errors;
}

// ---------------------------------------------------------------------------
// pkg_admin

const PKG_ADMIN_USAGE = usageFn('pkg_admin [-bqSVv] [-C config] [-d lsdir] [-K pkg_dbdir] [-s sfx_pattern] command [args ...]');

async function fetchVulnerabilities(cfg, args, verbose) {
  const { opts, args: rest } = getopt(args, 'su', PKG_ADMIN_USAGE);
  if (rest.length) PKG_ADMIN_USAGE();
  const checkSignature = opts.some(([o]) => o === 's');
  let update = opts.some(([o]) => o === 'u');
  if (verbose >= 2) process.stderr.write(`Fetching ${cfg.PKGVULNURL}\n`);
  let ims = null;
  if (update) {
    try {
      ims = Math.floor(fs.statSync(R(cfg.vulnFile)).mtimeMs / 1000) * 1000;
    } catch {
      update = false;
    }
  }
  let res;
  try {
    res = await fetchUrl(cfg.PKGVULNURL, update ? { ifModifiedSince: ims } : {});
  } catch (e) {
    die(`Could not fetch vulnerability file: ${e.message}`);
  }
  if (update && res.status === 304) {
    if (verbose >= 1) process.stderr.write(`${cfg.PKGVULNURL} is not newer\n`);
    return 0;
  }
  if (res.status < 200 || res.status > 299) die(`Could not fetch vulnerability file: ${res.statusText}`);
  let text;
  try {
    text = decompress(res.body).toString('utf8');
  } catch (e) {
    die(`Cannot read pkg_vulnerabilities: ${e.message}`);
  }
  parseVulnerabilities(text, { checkSignature });
  const dest = R(cfg.vulnFile);
  try {
    mkdirp(path.dirname(dest));
    fs.writeFileSync(dest, res.body, { mode: 0o644 });
  } catch (e) {
    die(`Cannot create pkg-vulnerability file ${cfg.vulnFile}: ${errText(e)}`);
  }
  return 0;
}

function audit(cfg, db, sub, args, { quiet, verbose }) {
  const { opts, args: rest } = getopt(args, 'eist:', PKG_ADMIN_USAGE);
  const o = { limitType: null, includeIgnored: false, quiet };
  let checkSignature = false;
  for (const [k, v] of opts) {
    if (k === 'e') cfg.CHECK_END_OF_LIFE = 'yes';
    if (k === 'i') o.includeIgnored = true;
    if (k === 's') checkSignature = true;
    if (k === 't') o.limitType = v;
  }
  if (verbose >= 1) {
    let st;
    try {
      st = fs.statSync(R(cfg.vulnFile));
    } catch (e) {
      if (e.code === 'ENOENT') die('pkg-vulnerabilities not found, run pkg_admin -d');
      die('pkg-vulnerabilities not readable');
    }
    const age = (Date.now() - st.mtimeMs) / 1000;
    if (age < 0) warn('pkg-vulnerabilities is from the future');
    else if (age > 86400 * 7) warn(`pkg-vulnerabilities is out of date (${Math.floor(age / 86400)} days old)`);
  }
  const entries = readVulnFile(cfg, { checkSignature });
  let found = false;
  if (sub === 'audit') {
    const pats = rest.length ? rest : ['*'];
    for (const p of pats) for (const n of db.matching(p)) found = auditPackage(cfg, entries, n, o) || found;
  } else if (sub === 'audit-pkg') {
    for (const n of rest) found = auditPackage(cfg, entries, n, o) || found;
  } else {
    for (const file of rest) {
      const text = file === '-' ? fs.readFileSync(0, 'utf8') : readText(R(file));
      if (text === null) die(`Failed to open input file ${file}: No such file or directory`);
      for (const line of text.split('\n')) if (line) found = auditPackage(cfg, entries, line, o) || found;
    }
  }
  if (!found && verbose >= 1) process.stderr.write('No vulnerabilities found\n');
  return found ? 1 : 0;
}

function rebuildTree(db) {
  const names = db.names();
  const req = new Map(names.map((n) => [n, []]));
  for (const n of names) {
    for (const pat of plistAll(db.plist(n), 'pkgdep')) {
      const dep = db.best(pat);
      if (dep && !req.get(dep).includes(n)) req.get(dep).push(n);
    }
  }
  for (const [n, list] of req) {
    const p = path.join(db.entry(n), '+REQUIRED_BY');
    if (list.length) writeAtomic(p, `${list.join('\n')}\n`);
    else fs.rmSync(p, { force: true });
  }
}

async function pkgAdminMain(argv) {
  const { opts, args } = getopt(argv, 'bC:d:K:qs:SVv', PKG_ADMIN_USAGE);
  let configFile;
  let dbdir;
  let quiet = false;
  let verbose = 0;
  for (const [o, v] of opts) {
    if (o === 'C') configFile = v;
    else if (o === 'K') dbdir = v;
    else if (o === 'q') quiet = true;
    else if (o === 'v') verbose++;
    else if (o === 'V') {
      say(`${PKGTOOLS_VERSION}\n`);
      return 0;
    }
  }
  if (!args.length) PKG_ADMIN_USAGE();
  const cfg = loadConfig({ configFile, dbdir });
  const db = new PkgDb(cfg.PKG_DBDIR);
  const [cmd, ...rest] = args;
  switch (cmd) {
    case 'fetch-pkg-vulnerabilities':
      return fetchVulnerabilities(cfg, rest, verbose);
    case 'audit':
    case 'audit-pkg':
    case 'audit-batch':
      return audit(cfg, db, cmd, rest, { quiet, verbose });
    case 'check-pkg-vulnerabilities': {
      const { opts: o2, args: files } = getopt(rest, 's', PKG_ADMIN_USAGE);
      if (files.length !== 1) PKG_ADMIN_USAGE();
      let buf;
      try {
        buf = fs.readFileSync(R(files[0]));
      } catch (e) {
        die(`Cannot open ${files[0]}: ${errText(e)}`);
      }
      parseVulnerabilities(decompress(buf).toString('utf8'), { checkSignature: o2.length > 0 });
      return 0;
    }
    case 'config-var': {
      if (rest.length !== 1) PKG_ADMIN_USAGE();
      const v = configVar(cfg, rest[0]);
      if (v !== null && v !== undefined) say(`${v}\n`);
      return 0;
    }
    case 'rebuild': {
      const { filecnt, dircnt, pkgcnt } = db.rebuildByfile();
      say(
        `Stored ${filecnt} file${filecnt === 1 ? '' : 's'} and ${dircnt} explicit director${dircnt === 1 ? 'y' : 'ies'}` +
          ` from ${pkgcnt} package${pkgcnt === 1 ? '' : 's'} in ${cfg.PKG_DBDIR}/${BYFILE_DB}.\nDone.\n`,
      );
      return 0;
    }
    case 'rebuild-tree':
      rebuildTree(db);
      return 0;
    case 'set':
    case 'unset': {
      if (rest.length < 2 || !/^automatic(=|$)/.test(rest[0])) PKG_ADMIN_USAGE();
      const value = cmd === 'set' ? rest[0].split('=')[1] === 'yes' : false;
      for (const pat of rest.slice(1)) {
        const names = db.has(pat) ? [pat] : db.matching(pat);
        if (!names.length) die(`No matching pkg for ${pat}.`);
        for (const n of names) db.setAutomatic(n, value);
      }
      return 0;
    }
    default:
      warn(`unknown command \`${cmd}'`);
      return PKG_ADMIN_USAGE();
  }
}

// ---------------------------------------------------------------------------
// pkgin

function humanSize(n) {
  const units = ['B', 'K', 'M', 'G', 'T'];
  let v = Number(n) || 0;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  if (u === 0) return `${v}B`;
  return `${v < 10 ? v.toFixed(1).replace(/\.0$/, '') : Math.round(v)}${units[u]}`;
}

function parseSummary(text) {
  const multi = new Set(['DEPENDS', 'CONFLICTS', 'PROVIDES', 'REQUIRES', 'SUPERSEDES', 'DESCRIPTION']);
  const pkgs = [];
  for (const block of text.split(/\n\s*\n/)) {
    const kv = parseKeyValues(block);
    if (!kv.has('PKGNAME')) continue;
    const e = {};
    for (const [k, vals] of kv) e[k] = multi.has(k) ? vals : vals[vals.length - 1];
    pkgs.push(e);
  }
  return pkgs;
}

class Pkgin {
  constructor(flags) {
    this.f = flags;
    this.cfg = loadConfig({});
    this.pkgdb = new PkgDb(this.cfg.PKG_DBDIR);
    this.dbdir = process.env.PKGIN_DBDIR || DEFAULT_PKGIN_DBDIR;
    this.dbfile = R(`${this.dbdir}/pkgin.db`);
    this.cache = `${this.dbdir}/cache`;
    this.confFile = `${SYSCONFDIR}/pkgin/repositories.conf`;
  }

  requireRights() {
    const real = R(this.dbdir);
    let probe = real;
    while (!fs.existsSync(probe) && path.dirname(probe) !== probe) probe = path.dirname(probe);
    try {
      fs.accessSync(probe, fs.constants.W_OK);
    } catch {
      die("You don't have enough rights for this operation.");
    }
    try {
      mkdirp(R(this.cache));
    } catch (e) {
      die(`${this.dbdir}: ${errText(e)}`);
    }
  }

  repos() {
    let list;
    if (process.env.PKG_REPOS) list = process.env.PKG_REPOS.split(/\s+/).filter(Boolean);
    else {
      list = [];
      for (const line of (readText(R(this.confFile)) || '').split('\n')) {
        const l = line.trim();
        if (/^(ftp|http|https|file):\/\//.test(l) && !list.includes(l)) list.push(l);
      }
    }
    list = list.map((r) => r.replace(/\$arch/g, HOST.MACHINE_ARCH).replace(/\$osrelease/g, HOST.OS_VERSION).replace(/\/+$/, ''));
    if (!list.length) die(`${this.confFile} has no repositories or does not exist.`);
    return list;
  }

  load() {
    const text = readText(this.dbfile);
    let db = null;
    if (text !== null) {
      try {
        db = JSON.parse(text);
      } catch {
        db = null;
      }
    }
    if (!db || db.format !== 'pkgin-standin 1') db = { format: 'pkgin-standin 1', localSignature: null, local: [], repos: {} };
    this.db = db;
    return db;
  }

  save() {
    mkdirp(path.dirname(this.dbfile));
    writeAtomic(this.dbfile, JSON.stringify(this.db) + '\n');
  }

  /** Re-read the pkgdb when it changed since the last run (or with -f). */
  refreshLocal(force) {
    const names = this.pkgdb.names();
    let mtime = 0;
    try {
      mtime = fs.statSync(this.pkgdb.real).mtimeMs;
    } catch {
      mtime = 0;
    }
    const sig = `${mtime}:${[...names].sort().join(',')}`;
    if (!force && this.db.localSignature === sig) return;
    say('reading local summary...\n');
    say('processing local summary...\n');
    this.db.local = names.map((n) => ({
      PKGNAME: n,
      COMMENT: (this.pkgdb.read(n, '+COMMENT') || '').split('\n')[0],
      DEPENDS: plistAll(this.pkgdb.plist(n), 'pkgdep'),
      automatic: this.pkgdb.isAutomatic(n),
    }));
    this.db.localSignature = sig;
  }

  async fetchSummary(repo, state, force) {
    const names = ['pkg_summary.gz'];
    if (whichTool(['xz'])) names.push('pkg_summary.xz');
    if (whichTool(['bzip2'])) names.push('pkg_summary.bz2');
    let lastErr = null;
    for (const name of names) {
      const conditional = !force && state && state.summary === name && state.lastModified;
      let res;
      try {
        res = await fetchUrl(`${repo}/${name}`, conditional ? { ifModifiedSince: state.lastModified } : {});
      } catch (e) {
        die(`Could not fetch ${repo}/${name}: ${e.message}`);
      }
      if (res.status === 304 && conditional) return { upToDate: true };
      if (res.status === 404 || res.status === 410) {
        lastErr = lastErr || `Could not fetch ${repo}/${name}: ${res.statusText}`;
        continue;
      }
      if (res.status < 200 || res.status > 299) die(`Could not fetch ${repo}/${name}: ${res.statusText}`);
      let text;
      try {
        text = decompress(res.body).toString('utf8');
      } catch (e) {
        die(`Could not read ${repo}/${name}: ${e.message}`);
      }
      return { name, text, lastModified: res.lastModified };
    }
    die(lastErr);
  }

  async updateRemote(force, { quietIfCurrent = false } = {}) {
    const repos = this.repos();
    for (const url of Object.keys(this.db.repos)) {
      if (!repos.includes(url)) {
        say(`cleaning database from ${url} entries...\n`);
        delete this.db.repos[url];
      }
    }
    for (const repo of repos) {
      const state = this.db.repos[repo];
      say(`processing remote summary (${repo})...\n`);
      const r = await this.fetchSummary(repo, state, force);
      if (r.upToDate) {
        if (!quietIfCurrent || this.f.verbose) say(`database for ${repo} is up-to-date\n`);
        continue;
      }
      say(`downloading ${r.name} done.\n`);
      const pkgs = parseSummary(r.text).map((e) => {
        const size = Number(e.FILE_SIZE);
        if (!e.FILE_SIZE || !Number.isFinite(size) || size < 0) {
          process.stderr.write(`warning: remote package ${e.PKGNAME} has an invalid or missing FILE_SIZE\n`);
        }
        return {
          PKGNAME: e.PKGNAME,
          COMMENT: e.COMMENT || '',
          DEPENDS: e.DEPENDS || [],
          CONFLICTS: e.CONFLICTS || [],
          FILE_NAME: e.FILE_NAME || `${e.PKGNAME}.tgz`,
          FILE_SIZE: Number.isFinite(size) ? size : 0,
          SIZE_PKG: Number(e.SIZE_PKG) || 0,
        };
      });
      this.db.repos[repo] = { summary: r.name, lastModified: r.lastModified, packages: pkgs };
    }
  }

  remotePackages() {
    const out = [];
    for (const repo of this.repos()) {
      const st = this.db.repos[repo];
      if (!st) continue;
      for (const p of st.packages) out.push({ ...p, repo });
    }
    return out;
  }

  /** Highest version of BASE across repositories; the first repository wins ties. */
  bestRemote(remote, pattern) {
    let best = null;
    for (const p of remote) {
      if (!pkgMatch(pattern, p.PKGNAME)) continue;
      if (!best) best = p;
      else if (versionCompare(splitPkgname(p.PKGNAME).version, splitPkgname(best.PKGNAME).version) > 0) best = p;
    }
    return best;
  }

  /**
   * What to do: `requests` null means every installed package with a newer
   * remote version (upgrade); otherwise the named patterns (install).
   */
  plan(requests) {
    const remote = this.remotePackages();
    const local = this.db.local;
    const state = new Map(local.map((l) => [splitPkgname(l.PKGNAME).base, { name: l.PKGNAME, automatic: l.automatic }]));
    const actions = new Map();
    const missing = [];
    const newer = (a, b) => versionCompare(splitPkgname(a).version, splitPkgname(b).version) > 0;
    if (requests === null) {
      for (const l of local) {
        const sp = splitPkgname(l.PKGNAME);
        const best = this.bestRemote(remote.filter((r) => splitPkgname(r.PKGNAME).base === sp.base), sp.base);
        if (best && newer(best.PKGNAME, l.PKGNAME)) {
          actions.set(sp.base, { kind: 'upgrade', pkg: best, old: l.PKGNAME, automatic: l.automatic });
          state.set(sp.base, { name: best.PKGNAME, automatic: l.automatic });
        }
      }
    } else {
      for (const pat of requests) {
        const best = this.bestRemote(remote, pat);
        if (!best) {
          missing.push(pat);
          continue;
        }
        const base = splitPkgname(best.PKGNAME).base;
        const prev = state.get(base);
        if (prev && !newer(best.PKGNAME, prev.name)) continue;
        actions.set(base, prev ? { kind: 'upgrade', pkg: best, old: prev.name, automatic: false } : { kind: 'install', pkg: best, automatic: false });
        state.set(base, { name: best.PKGNAME, automatic: false });
      }
    }
    // New versions may depend on packages that are not installed (or too old) yet.
    const satisfied = (pat) => [...state.values()].some((s) => pkgMatch(pat, s.name));
    const queue = [...actions.values()].map((a) => a.pkg);
    while (queue.length) {
      const p = queue.shift();
      for (const pat of p.DEPENDS) {
        if (satisfied(pat)) continue;
        const dep = this.bestRemote(remote, pat);
        if (!dep) {
          missing.push(pat);
          continue;
        }
        const base = splitPkgname(dep.PKGNAME).base;
        const prev = state.get(base);
        actions.set(base, prev
          ? { kind: 'upgrade', pkg: dep, old: prev.name, automatic: prev.automatic }
          : { kind: 'install', pkg: dep, automatic: true });
        state.set(base, { name: dep.PKGNAME, automatic: prev ? prev.automatic : true });
        queue.push(dep);
      }
    }
    // Dependencies first; otherwise by name, so the plan does not depend on readdir order.
    const list = [...actions.values()].sort((a, b) => (a.pkg.PKGNAME < b.pkg.PKGNAME ? -1 : 1));
    const ordered = [];
    const seen = new Set();
    const visit = (a, stack) => {
      if (seen.has(a) || stack.has(a)) return;
      stack.add(a);
      for (const pat of a.pkg.DEPENDS) {
        const dep = list.find((b) => pkgMatch(pat, b.pkg.PKGNAME));
        if (dep) visit(dep, stack);
      }
      stack.delete(a);
      seen.add(a);
      ordered.push(a);
    };
    for (const a of list) visit(a, new Set());
    return { ordered, missing };
  }

  async download(p) {
    const dest = R(`${this.cache}/${p.FILE_NAME}`);
    try {
      if (p.FILE_SIZE && fs.statSync(dest).size === p.FILE_SIZE) return;
    } catch {
      /* not cached yet */
    }
    const url = `${p.repo}/${encodeURIComponent(p.FILE_NAME)}`;
    let res;
    try {
      res = await fetchOk(url);
    } catch (e) {
      die(`${url}: ${e.message}`);
    }
    fs.writeFileSync(dest, res.body);
    say(`downloading ${p.FILE_NAME} done.\n`);
  }

  runPkgAdd(flagsArg, file, log) {
    const dir = process.env.PKG_INSTALL_DIR || SBINDIR;
    const tool = R(path.posix.join(dir, 'pkg_add'));
    const env = { ...process.env };
    delete env.PKG_PATH;
    let cmd = tool;
    let argv = [flagsArg, file];
    const head = (() => {
      try {
        const fd = fs.openSync(tool, 'r');
        const b = Buffer.alloc(128);
        const n = fs.readSync(fd, b, 0, 128, 0);
        fs.closeSync(fd);
        return b.subarray(0, n).toString('latin1').split('\n')[0];
      } catch {
        return '';
      }
    })();
    // Our own stand-ins run on this node, whatever PATH says.
    if (/^#!.*\bnode\b/.test(head)) {
      cmd = process.execPath;
      argv = [tool, ...argv];
    }
    const r = childProcess.spawnSync(cmd, argv, { env, stdio: ['ignore', 'inherit', 'pipe'], maxBuffer: 1 << 26 });
    const stderr = r.stderr ? r.stderr.toString() : r.error ? `pkg_add: ${r.error.message}\n` : '';
    if (stderr) fs.appendFileSync(log, stderr);
    const lines = stderr.split('\n').filter(Boolean);
    return { ok: !r.error && r.status === 0, warnings: lines.filter((l) => /warning/i.test(l)).length, errorLines: lines.length };
  }

  async fullUpgrade() {
    return this.apply(null);
  }

  async install(patterns) {
    if (!patterns.length) die('missing package name(s)');
    return this.apply(patterns);
  }

  async apply(requests) {
    this.requireRights();
    this.load();
    this.refreshLocal(this.f.force);
    if (requests === null && !this.db.local.length) {
      this.save();
      die('empty local package list.');
    }
    await this.updateRemote(this.f.force, { quietIfCurrent: false });
    this.save();
    if (!this.remotePackages().length) die('empty available packages list');
    const { ordered, missing } = this.plan(requests);
    say('calculating dependencies...done.\n');
    for (const m of missing) say(`${m} is not available in the repository\n`);
    if (!ordered.length) {
      say('nothing to do.\n');
      return missing.length ? 1 : 0;
    }
    const up = ordered.filter((a) => a.kind === 'upgrade');
    const inst = ordered.filter((a) => a.kind === 'install');
    say('\n');
    for (const [list, what] of [[up, 'upgrade'], [inst, 'install']]) {
      if (!list.length) continue;
      say(`${list.length} package${list.length === 1 ? '' : 's'} to ${what}:\n  ${list.map((a) => a.pkg.PKGNAME).join(' ')}\n\n`);
    }
    say(`0 to remove, 0 to refresh, ${up.length} to upgrade, ${inst.length} to install\n`);
    const dl = ordered.reduce((s, a) => s + a.pkg.FILE_SIZE, 0);
    const sz = ordered.reduce((s, a) => s + a.pkg.SIZE_PKG, 0);
    say(`${humanSize(dl)} to download, ${humanSize(sz)} to install\n\n`);
    if (this.f.no) return 0;
    if (!this.f.yes) {
      process.stdout.write('proceed ? [Y/n] ');
      const buf = Buffer.alloc(16);
      let n = 0;
      try {
        n = fs.readSync(0, buf, 0, 16, null);
      } catch {
        n = 0;
      }
      const ans = buf.subarray(0, n).toString().trim();
      if (ans && !/^y/i.test(ans)) return 0;
    }
    mkdirp(R(this.cache));
    for (const a of ordered) await this.download(a.pkg);
    if (this.f.downloadOnly) return 0;
    const log = R(`${this.dbdir}/pkg_install-err.log`);
    let warnings = 0;
    let errors = 0;
    let failed = 0;
    ordered.forEach((a, i) => {
      say(`[${i + 1}/${ordered.length}] ${a.kind === 'upgrade' ? 'upgrading' : 'installing'} ${a.pkg.PKGNAME}...\n`);
      const r = this.runPkgAdd(a.automatic ? '-ADU' : '-DU', `${this.cache}/${a.pkg.FILE_NAME}`, log);
      warnings += r.warnings;
      if (!r.ok) {
        failed++;
        errors += Math.max(1, r.errorLines - r.warnings);
      }
    });
    say(`pkg_install warnings: ${warnings}, errors: ${errors}\n`);
    if (errors) say(`pkg_install error log can be found in ${this.dbdir}/pkg_install-err.log\n`);
    this.refreshLocal(true);
    this.save();
    return failed ? 1 : 0;
  }

  async update() {
    this.requireRights();
    this.load();
    this.refreshLocal(this.f.force);
    await this.updateRemote(this.f.force);
    this.save();
    return 0;
  }

  list() {
    this.load();
    this.refreshLocal(false);
    this.save();
    for (const l of [...this.db.local].sort((a, b) => a.PKGNAME.localeCompare(b.PKGNAME))) say(`${l.PKGNAME.padEnd(20)} ${l.COMMENT}\n`);
    return 0;
  }

  avail() {
    this.load();
    const remote = this.remotePackages().sort((a, b) => a.PKGNAME.localeCompare(b.PKGNAME));
    if (!remote.length) die('empty available packages list');
    for (const p of remote) say(`${p.PKGNAME.padEnd(20)} ${p.COMMENT}\n`);
    return 0;
  }
}

const PKGIN_USAGE = usageFn('pkgin [-dfhnPtvVy] command [package ...]');

async function pkginMain(argv) {
  const { opts, args } = getopt(argv, 'c:dfFhlnPtvVy', PKGIN_USAGE);
  const f = {};
  for (const [o] of opts) {
    if (o === 'y') f.yes = true;
    else if (o === 'n') f.no = true;
    else if (o === 'f') f.force = true;
    else if (o === 'd') f.downloadOnly = true;
    else if (o === 'V') f.verbose = true;
    else if (o === 'v') {
      say(`pkgin ${PKGIN_VERSION} (pkgsrc stand-in)\n`);
      return 0;
    } else if (o === 'h') PKGIN_USAGE();
  }
  if (!args.length) PKGIN_USAGE();
  const p = new Pkgin(f);
  switch (args[0]) {
    case 'update':
    case 'up':
      return p.update();
    case 'full-upgrade':
    case 'fug':
    case 'upgrade':
    case 'ug':
      return p.fullUpgrade();
    case 'install':
    case 'in':
      return p.install(args.slice(1));
    case 'list':
    case 'ls':
      return p.list();
    case 'avail':
    case 'av':
      return p.avail();
    default:
      warn(`${args[0]}: unknown command`);
      return PKGIN_USAGE();
  }
}

// ---------------------------------------------------------------------------

const MAINS = { pkg_add: pkgAddMain, pkg_info: pkgInfoMain, pkg_admin: pkgAdminMain, pkgin: pkginMain };

/** Entry point for the launcher scripts: runs TOOL and exits with its status. */
async function main(tool, argv) {
  TOOL = tool;
  let code;
  try {
    code = await MAINS[tool](argv);
  } catch (e) {
    if (e instanceof ToolError) {
      if (e.message) warn(e.message);
      code = e.exitCode;
    } else {
      // Stand-ins never show stack traces; one line and a failure status.
      warn(e && e.message ? e.message : String(e));
      if (process.env.PKGSRC_STANDIN_DEBUG) process.stderr.write(`${e && e.stack}\n`);
      code = 1;
    }
  }
  process.exit(Math.min(Number(code) || 0, 255));
}

module.exports = {
  main,
  // Exposed for tests of the matching rules.
  pkgMatch,
  versionCompare,
  bestMatch,
  parseVulnerabilities,
  vulnHash,
  parseTar,
  parsePlist,
  HOST,
  PKGTOOLS_VERSION,
};
