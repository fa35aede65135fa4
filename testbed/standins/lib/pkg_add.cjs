'use strict';
/*
 * pkg_add: find a package (a file, a URL, or a pattern searched in the
 * directory given, the last one used and PKG_PATH), check its metadata,
 * signature, platform, vulnerabilities and conflicts, install its
 * dependencies, replace an older version (-u/-U), unpack it in packing-list
 * order and register it in the pkgdb.
 */

const fs = require('node:fs');
const path = require('node:path');
const crypto = require('node:crypto');
const childProcess = require('node:child_process');
const { warn, say, getopt, usageFn } = require('./output.cjs');
const { R, errText, isFile, mkdirp, writeAtomic } = require('./files.cjs');
const { PKGTOOLS_VERSION, HOST, SBINDIR, loadConfig } = require('./config.cjs');
const { pkgMatch, betterOf, splitPkgname } = require('./dewey.cjs');
const { openPackage, stripSuffix } = require('./archive.cjs');
const { META, readMetaData, parsePlist, stringifyPlist, plistFirst, plistAll, plistFiles, parseKeyValues } = require('./plist.cjs');
const { REPLACE_SUFFIX, PkgDb } = require('./pkgdb.cjs');
const { fetchOk, isUrl } = require('./fetch.cjs');
const { parseIndexHtml } = require('./repository.cjs');
const { auditPackage, readVulnFile } = require('./vulnerabilities.cjs');

const PKG_ADD_USAGE = usageFn(
  'pkg_add [-ADfIkLnRUuVv] [-C config] [-K pkg_dbdir] [-m machine] [-P destdir] [-p prefix] [[ftp|http]://[user[:password]@]host[:port]][/path/]pkg-name ...',
);

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

async function main(argv) {
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

module.exports = { main };
