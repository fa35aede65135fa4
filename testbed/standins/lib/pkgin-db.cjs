'use strict';
/*
 * pkgin's own database (PKGIN_DBDIR, default /var/db/pkgin): pkgin.db keeps,
 * as JSON, the local package list with a signature of the pkgdb it was read
 * from, and each repository's packages as its pkg_summary listed them;
 * cache/ keeps the downloaded package files.
 *
 * The database is the plain object load() returns:
 *   { format, localSignature, local: [{ PKGNAME, COMMENT, DEPENDS, automatic }],
 *     repos: { url: { summary, lastModified, packages: [...] } } }
 * pkgin changes it in place and calls save().
 */

const fs = require('node:fs');
const path = require('node:path');
const { die, say } = require('./output.cjs');
const { R, errText, readText, mkdirp, writeAtomic } = require('./files.cjs');
const { plistAll } = require('./plist.cjs');

const DEFAULT_PKGIN_DBDIR = '/var/db/pkgin';
const FORMAT = 'pkgin-standin 1';

class PkginDb {
  constructor(dbdir = process.env.PKGIN_DBDIR || DEFAULT_PKGIN_DBDIR) {
    /** As seen inside the zone. */
    this.dbdir = dbdir;
    this.dbfile = R(`${dbdir}/pkgin.db`);
    /** Downloaded packages, as seen inside the zone. */
    this.cache = `${dbdir}/cache`;
    this.db = null;
  }

  /** Operations that change the database need write access (and the cache directory). */
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

  /** The stored database, or an empty one when there is none (or it is unreadable). */
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
    if (!db || db.format !== FORMAT) db = { format: FORMAT, localSignature: null, local: [], repos: {} };
    this.db = db;
    return db;
  }

  save() {
    mkdirp(path.dirname(this.dbfile));
    writeAtomic(this.dbfile, JSON.stringify(this.db) + '\n');
  }

  /** Re-read the pkgdb (a PkgDb) when it changed since the last run (or with -f). */
  refreshLocal(pkgdb, force) {
    const names = pkgdb.names();
    let mtime = 0;
    try {
      mtime = fs.statSync(pkgdb.real).mtimeMs;
    } catch {
      mtime = 0;
    }
    const sig = `${mtime}:${[...names].sort().join(',')}`;
    if (!force && this.db.localSignature === sig) return;
    say('reading local summary...\n');
    say('processing local summary...\n');
    this.db.local = names.map((n) => ({
      PKGNAME: n,
      COMMENT: (pkgdb.read(n, '+COMMENT') || '').split('\n')[0],
      DEPENDS: plistAll(pkgdb.plist(n), 'pkgdep'),
      automatic: pkgdb.isAutomatic(n),
    }));
    this.db.localSignature = sig;
  }
}

module.exports = { PkginDb };
