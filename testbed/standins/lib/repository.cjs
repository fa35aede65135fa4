'use strict';
/*
 * What a package repository offers: the file names in its HTML directory
 * index (pkg_add's search) and pkg_summary(5), fetched and read by pkgin
 * and written by `pkg_info -X`.
 */

const { die } = require('./output.cjs');
const { whichTool } = require('./files.cjs');
const { decompress } = require('./archive.cjs');
const { fetchUrl } = require('./fetch.cjs');
const { parsePlist, plistAll, parseKeyValues } = require('./plist.cjs');

/** Names linked from an HTML directory index (Apache autoindex and similar). */
function parseIndexHtml(html) {
  const names = [];
  const re = /href\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))/gi;
  let m;
  while ((m = re.exec(html))) {
    let href = (m[1] ?? m[2] ?? m[3] ?? '').replace(/&amp;/g, '&').replace(/[?#].*$/, '');
    if (!href || href.endsWith('/')) continue;
    href = href.slice(href.lastIndexOf('/') + 1);
    try {
      href = decodeURIComponent(href);
    } catch {
      /* keep as is */
    }
    names.push(href);
  }
  return names;
}

const SUMMARY_BI_VARS = [
  'PKGPATH', 'CATEGORIES', 'PROVIDES', 'REQUIRES', 'PKG_OPTIONS', 'OPSYS', 'OS_VERSION', 'MACHINE_ARCH',
  'LICENSE', 'HOMEPAGE', 'PKGTOOLS_VERSION', 'BUILD_DATE', 'PREV_PKGPATH', 'SUPERSEDES',
];

/** A pkg_summary(5) block, as `pkg_info -X` prints it. */
function summaryBlock(pkgname, meta, file) {
  const lines = [`PKGNAME=${pkgname}`];
  const plist = parsePlist(meta['+CONTENTS']);
  for (const d of plistAll(plist, 'pkgdep')) lines.push(`DEPENDS=${d}`);
  for (const c of plistAll(plist, 'pkgcfl')) lines.push(`CONFLICTS=${c}`);
  lines.push(`COMMENT=${(meta['+COMMENT'] || '').split('\n')[0]}`);
  if (meta['+SIZE_PKG'] !== undefined) lines.push(`SIZE_PKG=${meta['+SIZE_PKG'].trim()}`);
  const bi = parseKeyValues(meta['+BUILD_INFO']);
  for (const k of SUMMARY_BI_VARS) for (const v of bi.get(k) || []) lines.push(`${k}=${v}`);
  if (file) {
    lines.push(`FILE_NAME=${file.name}`);
    lines.push(`FILE_SIZE=${file.size}`);
  }
  const desc = (meta['+DESC'] || '').replace(/\n$/, '');
  for (const l of desc.split('\n')) lines.push(`DESCRIPTION=${l}`);
  return `${lines.join('\n')}\n\n`;
}

function parseSummary(text) {
  const multi = new Set(['DEPENDS', 'CONFLICTS', 'PROVIDES', 'REQUIRES', 'SUPERSEDES', 'DESCRIPTION']);
  const pkgs = [];
  for (const block of text.split(/\n\s*\n/)) {
    const kv = parseKeyValues(block);
    if (!kv.has('PKGNAME')) continue;
    const e = {};
    for (const [k, vals] of kv) e[k] = multi.has(k) ? vals : vals[vals.length - 1];
    pkgs.push(e);
  }
  return pkgs;
}

/**
 * Fetch a repository's pkg_summary, trying .gz, then .xz and .bz2 when the
 * host can decompress them; conditional on the state pkgin recorded unless forced.
 */
async function fetchSummary(repo, state, force) {
  const names = ['pkg_summary.gz'];
  if (whichTool(['xz'])) names.push('pkg_summary.xz');
  if (whichTool(['bzip2'])) names.push('pkg_summary.bz2');
  let lastErr = null;
  for (const name of names) {
    const conditional = !force && state && state.summary === name && state.lastModified;
    let res;
    try {
      res = await fetchUrl(`${repo}/${name}`, conditional ? { ifModifiedSince: state.lastModified } : {});
    } catch (e) {
      die(`Could not fetch ${repo}/${name}: ${e.message}`);
    }
    if (res.status === 304 && conditional) return { upToDate: true };
    if (res.status === 404 || res.status === 410) {
      lastErr = lastErr || `Could not fetch ${repo}/${name}: ${res.statusText}`;
      continue;
    }
    if (res.status < 200 || res.status > 299) die(`Could not fetch ${repo}/${name}: ${res.statusText}`);
    let text;
    try {
      text = decompress(res.body).toString('utf8');
    } catch (e) {
      die(`Could not read ${repo}/${name}: ${e.message}`);
    }
    return { name, text, lastModified: res.lastModified };
  }
  die(lastErr);
}

module.exports = { parseIndexHtml, summaryBlock, parseSummary, fetchSummary };
