'use strict';
/*
 * pkg_admin: fetch-pkg-vulnerabilities, audit, audit-pkg, audit-batch,
 * check-pkg-vulnerabilities, config-var, rebuild (the file index),
 * rebuild-tree (+REQUIRED_BY) and set/unset automatic.
 */

const fs = require('node:fs');
const path = require('node:path');
const { die, warn, say, getopt, usageFn } = require('./output.cjs');
const { R, errText, readText, mkdirp, writeAtomic } = require('./files.cjs');
const { PKGTOOLS_VERSION, loadConfig, configVar } = require('./config.cjs');
const { decompress } = require('./archive.cjs');
const { plistAll } = require('./plist.cjs');
const { BYFILE_DB, PkgDb } = require('./pkgdb.cjs');
const { fetchUrl } = require('./fetch.cjs');
const { parseVulnerabilities, auditPackage, readVulnFile } = require('./vulnerabilities.cjs');

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

async function main(argv) {
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

module.exports = { main };
