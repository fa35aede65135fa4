'use strict';
/*
 * pkg_info: installed packages (or package files and URLs) in the index
 * format, their metadata sections, pkg_summary blocks (-X), build variables
 * (-Q) and the -e/-E existence checks with their exit codes.
 */

const fs = require('node:fs');
const path = require('node:path');
const { ToolError, die, warn, say, getopt, usageFn } = require('./output.cjs');
const { R } = require('./files.cjs');
const { PKGTOOLS_VERSION, loadConfig } = require('./config.cjs');
const { isPkgPattern, bestMatch } = require('./dewey.cjs');
const { openPackage, stripSuffix } = require('./archive.cjs');
const { META, readMetaData, parsePlist, plistFirst, plistAll, plistFiles, parseKeyValues } = require('./plist.cjs');
const { PkgDb } = require('./pkgdb.cjs');
const { fetchOk, isUrl } = require('./fetch.cjs');
const { summaryBlock } = require('./repository.cjs');

const PKG_INFO_USAGE = usageFn(
  'pkg_info [-BbcDdFfhIikLmNnpqRrSsVvX] [-E pkg-name] [-e pkg-name] [-K pkg_dbdir] [-l prefix] [-Q variable] pkg-name ...\n       pkg_info [-a | -u] [flags]',
);

function indexLine(name, comment) {
  const first = (comment || '').split('\n')[0];
  return `${name.padEnd(19)} ${first}\n`;
}

async function main(argv) {
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

module.exports = { main };
