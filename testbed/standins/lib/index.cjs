'use strict';
/*
 * Shared implementation of the pkgsrc stand-ins (pkg_add, pkg_info,
 * pkg_admin, pkgin) installed into buildimage's sample zone images.
 *
 * The real tools cannot run on Linux, so these reproduce the parts of their
 * behaviour that an image builder relies on: package location and version
 * ordering, archive validation, the pkgdb layout, vulnerability files and
 * pkgin's update/upgrade cycle, with the real messages and exit codes.
 * Node built-ins only, because they run inside a chroot that has nothing
 * but the host's /usr, /lib and /sbin.
 *
 * PKGSRC_STANDIN_ROOT=/dir prefixes every absolute path the tools touch
 * (config, pkgdb, extraction, caches, file:// URLs), so tests and image
 * creation can run them without a chroot.
 *
 * This folder is installed whole as /opt/local/lib/pkgsrc-standins in a
 * zone; the launcher scripts load this file. The modules, each requiring
 * only the ones it names:
 *   output.cjs           tool name, ToolError/die, warn/say, getopt, usage
 *   files.cjs            PKGSRC_STANDIN_ROOT path mapping, errno texts, file helpers
 *   config.cjs           the pretended host, pkg_install.conf
 *   dewey.cjs            version ordering and package patterns
 *   archive.cjs          tar/ar reading and decompression
 *   plist.cjs            metadata members, +CONTENTS, key=value files
 *   pkgdb.cjs            the package database and its file index
 *   fetch.cjs            http/https/file fetching, proxies
 *   vulnerabilities.cjs  pkg-vulnerabilities parsing and audit
 *   repository.cjs       directory indexes and pkg_summary
 *   pkgin-db.cjs         pkgin's own database
 *   pkg_add.cjs, pkg_info.cjs, pkg_admin.cjs, pkgin.cjs   each tool's main
 *
 * CommonJS with .cjs names so they load the same way whether or not a
 * package.json with "type": "module" sits above them.
 */

const { setTool, ToolError, warn } = require('./output.cjs');
const { HOST, PKGTOOLS_VERSION } = require('./config.cjs');
const { pkgMatch, versionCompare, bestMatch } = require('./dewey.cjs');
const { parseTar } = require('./archive.cjs');
const { parsePlist } = require('./plist.cjs');
const { parseVulnerabilities, vulnHash } = require('./vulnerabilities.cjs');

const MAINS = {
  pkg_add: () => require('./pkg_add.cjs').main,
  pkg_info: () => require('./pkg_info.cjs').main,
  pkg_admin: () => require('./pkg_admin.cjs').main,
  pkgin: () => require('./pkgin.cjs').main,
};

/** Entry point for the launcher scripts: runs TOOL and exits with its status. */
async function main(tool, argv) {
  setTool(tool);
  let code;
  try {
    code = await MAINS[tool]()(argv);
  } catch (e) {
    if (e instanceof ToolError) {
      if (e.message) warn(e.message);
      code = e.exitCode;
    } else {
      // Stand-ins never show stack traces; one line and a failure status.
      warn(e && e.message ? e.message : String(e));
      if (process.env.PKGSRC_STANDIN_DEBUG) process.stderr.write(`${e && e.stack}\n`);
      code = 1;
    }
  }
  process.exit(Math.min(Number(code) || 0, 255));
}

module.exports = {
  main,
  // Exposed for tests of the matching rules.
  pkgMatch,
  versionCompare,
  bestMatch,
  parseVulnerabilities,
  vulnHash,
  parseTar,
  parsePlist,
  HOST,
  PKGTOOLS_VERSION,
};
