/**
 * The eng conventions publishing follows (bits-upload.sh, Makefile.defs):
 * which branch names the pointers, which channel a build goes to, what a
 * stamp may look like, where things land in Manta, and content types.
 */
import { join, posix } from 'node:path';
import { UsageError } from '../core/errors.js';
import { NotRegularFile, readSmallFile } from '../core/files.js';

/** Branch, stamp and name become path segments: no slashes, nothing odd. */
const SEGMENT_RE = /^[A-Za-z0-9][A-Za-z0-9._+-]*$/;
/** IMGAPI channel names. */
export const CHANNEL_RE = /^[a-z][a-z0-9_-]*$/;
/** Triton's release branches: release-YYYYMMDD. */
const RELEASE_RE = /^release-\d{8}$/;

export function checkSegment(what: string, flag: string, v: string): string {
  if (!SEGMENT_RE.test(v)) {
    throw new UsageError(`${what} ${JSON.stringify(v)} is not usable in a path (letters, digits, . _ + - only)`, `check ${flag}`);
  }
  return v;
}

/** TRY_BRANCH wins for pointer names and channel; STAMP is not affected. */
export function uploadBranch(branch: string, tryBranch?: string): string {
  return tryBranch || branch;
}

/**
 * One rule for "release build", used for both latest-release and the
 * staging channel. bits-upload.sh moved latest-release for any `^release-`
 * branch but sent only `release-` + 8 digits to staging; a feature branch
 * named release-foo should do neither.
 */
export function isReleaseBuild(branch: string, tryBranch?: string): boolean {
  return !tryBranch && RELEASE_RE.test(branch);
}

/** bits-upload.sh's channel: staging for release builds, dev for master/mantav1, else experimental. */
export function channelFor(branch: string, tryBranch?: string): string {
  if (isReleaseBuild(branch, tryBranch)) return 'staging';
  const b = uploadBranch(branch, tryBranch);
  return b === 'master' || b === 'mantav1' ? 'dev' : 'experimental';
}

export function checkChannel(c: string): string {
  if (!CHANNEL_RE.test(c)) throw new UsageError(`channel ${JSON.stringify(c)} is not a valid IMGAPI channel name`, 'lowercase letters, digits, _ and -');
  return c;
}

/** STAMPs from a dirty workspace cannot be traced to a commit (TOOLS-2165). */
export function isDirtyStamp(stamp: string): boolean {
  return stamp.endsWith('-dirty');
}

/**
 * bits-upload.sh's -d rule: a path starting with / is under /<user>
 * (e.g. /public/builds/x), anything else under /<user>/stor.
 */
export function mantaBaseDir(user: string, base: string): string {
  const rel = base.startsWith('/') ? base : `/stor/${base}`;
  return posix.normalize(`/${user}${rel}`).replace(/\/+$/, '');
}

/** The pointer objects (Manta) or symlinks (-L) a finished upload moves. */
export function pointerNames(branch: string, tryBranch?: string): string[] {
  const names = [`${uploadBranch(branch, tryBranch)}-latest`];
  if (isReleaseBuild(branch, tryBranch)) names.push('latest-release');
  return names;
}

/** Content-Type by file name, as bits-upload.sh sets it (eng PR #62), plus image manifests. */
export function contentTypeFor(name: string): string {
  if (/\.(tgz|gz)$/.test(name)) return 'application/gzip';
  if (/\.(bz2)$/.test(name)) return 'application/x-bzip2';
  if (/\.(xz)$/.test(name)) return 'application/x-xz';
  if (/\.(txt|log|pkgaudit)$/.test(name) || ['latest-build-stamp', 'build-environment', 'SHA256SUMS'].includes(name)) return 'text/plain';
  // A DSSE envelope (the provenance) is JSON; DSSE registers no media type of its own.
  if (/\.html$/.test(name)) return 'text/html';
  // The SBOMs' registered media types (CycloneDX, SPDX 2.3 annex).
  if (name.endsWith('.cdx.json')) return 'application/vnd.cyclonedx+json';
  if (name.endsWith('.spdx.json')) return 'application/spdx+json';
  if (/\.(json|imgmanifest|manifest)$/.test(name)) return 'application/json';
  if (/\.xml$/.test(name)) return 'application/xml';
  return 'application/octet-stream';
}

/** `<bits>/<name>/latest-build-stamp`, written by eng's prepublish target. */
export async function readLatestStamp(bitsDir: string, name: string): Promise<string | undefined> {
  const path = join(bitsDir, name, 'latest-build-stamp');
  // Anyone's make writes the bits dir: a link to a key, a FIFO or a key itself must not reach the console.
  const text = await readSmallFile(path, 1024).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw new UsageError(err instanceof NotRegularFile ? `${err.message}: not reading a stamp from it` : `cannot read ${path}: ${err.code ?? err.message}`, 'pass -t');
  });
  const stamp = text?.trim();
  if (stamp && !SEGMENT_RE.test(stamp)) throw new UsageError(`${path} does not hold a stamp (letters, digits, . _ + - only); its content is not shown`, 'pass -t');
  return stamp ? stamp : undefined;
}
