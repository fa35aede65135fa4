'use strict';
/*
 * pkgin: update (fetch every repository's pkg_summary into pkgin's
 * database), install and full-upgrade (plan with dependencies, download to
 * the cache, run pkg_add on each package), list and avail.
 */

const fs = require('node:fs');
const path = require('node:path');
const childProcess = require('node:child_process');
const { die, warn, say, getopt, usageFn } = require('./output.cjs');
const { R, readText, mkdirp } = require('./files.cjs');
const { HOST, SYSCONFDIR, SBINDIR, loadConfig } = require('./config.cjs');
const { pkgMatch, versionCompare, splitPkgname } = require('./dewey.cjs');
const { PkgDb } = require('./pkgdb.cjs');
const { fetchOk } = require('./fetch.cjs');
const { parseSummary, fetchSummary } = require('./repository.cjs');
const { PkginDb } = require('./pkgin-db.cjs');

const PKGIN_VERSION = '23.8.1';

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

class Pkgin {
  constructor(flags) {
    this.f = flags;
    this.cfg = loadConfig({});
    this.pkgdb = new PkgDb(this.cfg.PKG_DBDIR);
    this.store = new PkginDb();
    this.dbdir = this.store.dbdir;
    this.cache = this.store.cache;
    this.confFile = `${SYSCONFDIR}/pkgin/repositories.conf`;
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

  /** this.db is pkgin's database object (see pkgin-db.cjs), changed in place and saved. */
  load() {
    this.db = this.store.load();
    return this.db;
  }

  save() {
    this.store.save();
  }

  refreshLocal(force) {
    this.store.refreshLocal(this.pkgdb, force);
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
      const r = await fetchSummary(repo, state, force);
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
    this.store.requireRights();
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
    this.store.requireRights();
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

async function main(argv) {
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

module.exports = { main };
