'use strict';
/*
 * A package's metadata files: the +* members in pkg_create order, packing
 * lists (+CONTENTS) and key=value files (+BUILD_INFO, +INSTALLED_INFO, and
 * the blocks of pkg_summary).
 */

const path = require('node:path');
const { warn } = require('./output.cjs');

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

module.exports = { META, readMetaData, parsePlist, stringifyPlist, plistFirst, plistAll, plistFiles, parseKeyValues };
