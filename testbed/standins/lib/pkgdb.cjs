'use strict';
/*
 * The package database (PKG_DBDIR): one directory of metadata files per
 * installed package, +REQUIRED_BY links, automatic marks, and the
 * file -> package index that `pkg_admin rebuild` writes.
 */

const fs = require('node:fs');
const path = require('node:path');
const { warn } = require('./output.cjs');
const { R, readText, isFile, mkdirp, writeAtomic } = require('./files.cjs');
const { parsePlist, plistFiles, parseKeyValues } = require('./plist.cjs');
const { pkgMatch, bestMatch } = require('./dewey.cjs');

const BYFILE_DB = 'pkgdb.byfile.db';
const REPLACE_SUFFIX = '.xxxxxx';

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

module.exports = { BYFILE_DB, REPLACE_SUFFIX, PkgDb };
