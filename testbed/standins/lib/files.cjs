'use strict';
/*
 * Paths and files: R() maps a path as seen inside the zone to the real one
 * (PKGSRC_STANDIN_ROOT=/dir prefixes every absolute path), errno texts as
 * the C tools print them, and small file helpers.
 */

const fs = require('node:fs');
const path = require('node:path');

const STANDIN_ROOT = process.env.PKGSRC_STANDIN_ROOT ? path.resolve(process.env.PKGSRC_STANDIN_ROOT) : '';

/** Map a path as seen inside the zone to the real file system path. */
function R(p) {
  if (!STANDIN_ROOT || !path.isAbsolute(p)) return p;
  // Already inside the root: a relative argument resolved against a cwd in the zone.
  if (p === STANDIN_ROOT || p.startsWith(`${STANDIN_ROOT}/`)) return p;
  return path.join(STANDIN_ROOT, p);
}

const ERRNO_TEXT = {
  ENOENT: 'No such file or directory',
  EACCES: 'Permission denied',
  EPERM: 'Operation not permitted',
  EEXIST: 'File exists',
  ENOTDIR: 'Not a directory',
  EISDIR: 'Is a directory',
  ENOSPC: 'No space left on device',
  EROFS: 'Read-only file system',
  ENOTEMPTY: 'Directory not empty',
};

function errText(e) {
  if (e && e.code && ERRNO_TEXT[e.code]) return ERRNO_TEXT[e.code];
  return e && e.message ? e.message : String(e);
}

function readText(p) {
  try {
    return fs.readFileSync(p, 'utf8');
  } catch (e) {
    if (e.code === 'ENOENT' || e.code === 'ENOTDIR') return null;
    throw e;
  }
}

function isFile(p) {
  try {
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

function mkdirp(p, mode = 0o755) {
  fs.mkdirSync(p, { recursive: true, mode });
}

function writeAtomic(p, data, mode = 0o644) {
  const tmp = `${p}.tmp${process.pid}`;
  fs.writeFileSync(tmp, data, { mode });
  fs.renameSync(tmp, p);
}

function whichTool(names) {
  for (const dir of (process.env.PATH || '/usr/bin:/bin').split(':')) {
    for (const n of names) {
      if (dir && isFile(path.join(dir, n))) return path.join(dir, n);
    }
  }
  return null;
}

module.exports = { STANDIN_ROOT, R, errText, readText, isFile, mkdirp, writeAtomic, whichTool };
