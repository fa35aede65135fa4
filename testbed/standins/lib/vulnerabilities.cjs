'use strict';
/*
 * pkg-vulnerabilities (vulnerabilities-file.c, audit.c): parsing and
 * checksum validation of the file, reading the installed copy, and
 * auditing a package name against it.
 */

const fs = require('node:fs');
const crypto = require('node:crypto');
const { die, warn } = require('./output.cjs');
const { R, errText } = require('./files.cjs');
const { TNF_VULN_BASE } = require('./config.cjs');
const { decompress } = require('./archive.cjs');
const { pkgMatch } = require('./dewey.cjs');

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

module.exports = { vulnHash, parseVulnerabilities, auditPackage, readVulnFile };
