'use strict';
/*
 * Reading binary packages: tar (ustar, pax and GNU long names), gzip/bzip2/
 * xz/zstd by magic number, and the ar wrapper of signed packages.
 */

const zlib = require('node:zlib');
const childProcess = require('node:child_process');
const { whichTool } = require('./files.cjs');

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

/** A package file's name without its .tgz/.tbz suffix: the package name it claims. */
function stripSuffix(name) {
  return name.replace(/\.(tgz|tbz)$/, '');
}

module.exports = { parseTar, decompress, openPackage, stripSuffix };
