/**
 * Trust in the build machine's own files: a directory buildimage keeps its
 * work in must be one no other user can change (it runs as root on shared
 * agents), and a path read from a file (the state file) is acted on only
 * once resolved inside the directory it must belong to.
 */
import { lstat, realpath } from 'node:fs/promises';
import { readFileSync, type Stats } from 'node:fs';
import { basename, dirname, isAbsolute, join, resolve, sep } from 'node:path';
import { BuildError } from '../core/errors.js';
import { isUnder } from './rootfs.js';

/** A user's uid from a passwd(4) file, or undefined. */
export function uidOf(name: string, passwd = '/etc/passwd'): number | undefined {
  let text: string;
  try {
    text = readFileSync(passwd, 'utf8');
  } catch {
    return undefined;
  }
  for (const line of text.split('\n')) {
    const [user, , uid] = line.split(':');
    if (user === name && uid && /^\d+$/.test(uid)) return Number(uid);
  }
  return undefined;
}

/**
 * The uids buildimage trusts as owners: root and whoever ran it. Through
 * sudo that is SUDO_UID; through pfexec (SmartOS: it sets no SUDO_UID and
 * runs as uid 0) it is the user LOGNAME names. Both come from the invoking
 * user's environment, and that user could run anything as root already, so
 * trusting their files gives nobody more than they had.
 */
export function trustedUids(env: NodeJS.ProcessEnv = process.env, passwd?: string): number[] {
  const uids = [0];
  const own = process.getuid?.();
  if (own !== undefined) uids.push(own);
  const sudo = env.SUDO_UID;
  if (sudo && /^\d+$/.test(sudo)) uids.push(Number(sudo));
  else if (env.LOGNAME && env.LOGNAME !== 'root') {
    const uid = uidOf(env.LOGNAME, passwd);
    if (uid !== undefined) uids.push(uid);
  }
  return [...new Set(uids)];
}

const octal = (mode: number) => (mode & 0o7777).toString(8).padStart(4, '0');

/** Why another user could change `st` (a directory, or a symlink), or undefined. */
function untrusted(st: Stats, ancestor: boolean, trusted: readonly number[]): string | undefined {
  if (!trusted.includes(st.uid)) return `is owned by uid ${st.uid}, not root or you`;
  // A link is judged by where it leads (the resolved chain); a file in the way is the mkdir's to report.
  if (st.isSymbolicLink() || !st.isDirectory()) return undefined;
  // A sticky ancestor (/tmp, /var/tmp) lets nobody else rename what is ours inside it.
  if (st.mode & 0o022 && !(ancestor && st.mode & 0o1000)) return `is writable by ${st.mode & 0o002 ? 'others' : 'its group'} (mode ${octal(st.mode)})`;
  return undefined;
}

/** Every existing prefix of `path`, from `/` down, with its lstat. */
async function chain(path: string): Promise<{ p: string; st: Stats }[]> {
  const out: { p: string; st: Stats }[] = [];
  let p: string = sep;
  for (const c of [''].concat(path.split(sep).filter(Boolean))) {
    p = c ? join(p, c) : p;
    const st = await lstat(p).catch(() => undefined);
    if (!st) break;
    out.push({ p, st });
  }
  return out;
}

/** The realpath of the deepest existing ancestor of `path`, joined with the rest. */
async function realpathOfExisting(path: string): Promise<string> {
  const rest: string[] = [];
  let p = path;
  for (;;) {
    const real = await realpath(p).catch(() => undefined);
    if (real !== undefined) return join(real, ...rest);
    if (dirname(p) === p) return path;
    rest.unshift(basename(p));
    p = dirname(p);
  }
}

/**
 * Refuses a directory (and every existing directory above it, as written
 * and as resolved) that a user other than root or the invoking one owns or
 * could write to, and any of `subdirs` that is a symlink or the same. A
 * missing part is fine: buildimage creates it.
 */
export async function checkPrivateDir(dir: string, o: { what: string; hint: string; subdirs?: string[] }): Promise<void> {
  const abs = resolve(dir);
  const trusted = trustedUids();
  const refuse = (p: string, why: string) =>
    new BuildError(`${o.what} ${abs}${p === abs ? '' : `: ${p}`} ${why}; another user could change what buildimage does as root`, { hint: o.hint });
  for (const path of new Set([abs, await realpathOfExisting(abs)])) {
    for (const { p, st } of await chain(path)) {
      const why = untrusted(st, p !== path, trusted);
      if (why) throw refuse(p, why);
    }
  }
  for (const s of o.subdirs ?? []) {
    const p = join(abs, s);
    const st = await lstat(p).catch(() => undefined);
    if (!st) continue;
    if (st.isSymbolicLink()) throw refuse(p, 'is a symlink');
    const why = untrusted(st, false, trusted);
    if (why) throw refuse(p, why);
  }
}

/**
 * `path` resolved inside `dir`, or undefined when it is not there: it must
 * be absolute with no `..`, and its parent, symlinks resolved, must lie
 * under `dir` resolved. The last component is not followed: what is
 * removed or read is then checked by lstat.
 */
export async function resolveInside(dir: string, path: string): Promise<string | undefined> {
  if (!isAbsolute(path) || path.split('/').includes('..')) return undefined;
  const root = await realpathOfExisting(resolve(dir));
  const parent = await realpathOfExisting(dirname(resolve(path)));
  const full = join(parent, basename(path));
  return isUnder(root, full) && full !== root ? full : undefined;
}

/**
 * Why a file buildimage reads its own records from (a state file) may have
 * been written by someone else, or undefined: it must be a regular file,
 * not a link, owned by root or you and not writable by others.
 */
export async function untrustedFile(path: string): Promise<string | undefined> {
  const st = await lstat(path);
  if (st.isSymbolicLink()) return 'is a symlink';
  if (!st.isFile()) return 'is not a regular file';
  if (!trustedUids().includes(st.uid)) return `is owned by uid ${st.uid}, not root or you`;
  if (st.mode & 0o002) return `is writable by others (mode ${octal(st.mode)})`;
  return undefined;
}
