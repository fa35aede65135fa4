'use strict';
/*
 * The pretended host (SmartOS x86_64, pkg_install's version and directories)
 * and pkg_install.conf: loadConfig() reads it with the environment's
 * overrides, as every pkg_* tool and pkgin do at start.
 */

const { R, readText } = require('./files.cjs');

const PKGTOOLS_VERSION = '20211115';
// The stand-ins pretend to run on a SmartOS x86_64 zone.
const HOST = Object.freeze({ OPSYS: 'SunOS', OS_VERSION: '5.11', MACHINE_ARCH: 'x86_64' });
const SYSCONFDIR = '/opt/local/etc';
const SBINDIR = '/opt/local/sbin';
const DEFAULT_PKG_DBDIR = '/opt/local/pkg';
const TNF_VULN_BASE = 'http://cdn.NetBSD.org/pub/NetBSD/packages/vulns';

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

/** The configuration loadConfig() last returned (null before), e.g. for IGNORE_PROXY. */
function currentConfig() {
  return CONFIG;
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

module.exports = {
  PKGTOOLS_VERSION,
  HOST,
  SYSCONFDIR,
  SBINDIR,
  DEFAULT_PKG_DBDIR,
  TNF_VULN_BASE,
  loadConfig,
  currentConfig,
  configVar,
};
