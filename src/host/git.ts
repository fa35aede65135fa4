/**
 * What git says of a checkout: commit, branch, dirty, remote. Read-only:
 * for build-info and for init's source-repo default.
 *
 * buildimage runs as root on shared agents, and git runs commands a
 * repository's config names (core.fsmonitor, hooks, filters). So git is
 * only asked about a checkout whose top is exactly the directory given
 * (no upward search: a `.git` in a parent, e.g. /tmp/.git, is never read)
 * and whose `.git` belongs to root or to the invoking user (SUDO_UID, else
 * our uid) and is writable by no one else; and even then with fsmonitor,
 * hooks, the system and global config and the pager off.
 */
import { lstat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { z } from 'zod';
import { recordedUrl } from '../core/redact.js';
import { log } from '../core/log.js';
import { run } from './exec.js';
import { trustedUids } from './trusted.js';

export const GitInfoSchema = z.object({
  dir: z.string(),
  commit: z.string(),
  branch: z.string().optional(),
  dirty: z.boolean(),
  remote: z.string().optional(),
});
export type GitInfo = z.infer<typeof GitInfoSchema>;

/**
 * Why git must not be run in `top` (undefined: it may): its `.git` must be
 * a real directory there, owned by a trusted uid, and neither it nor its
 * config writable by group or others.
 */
export async function untrustedCheckout(top: string, env: NodeJS.ProcessEnv = process.env): Promise<string | undefined> {
  const gitDir = join(top, '.git');
  const st = await lstat(gitDir).catch(() => undefined);
  if (!st) return 'no .git';
  if (!st.isDirectory()) return `${gitDir} is not a directory (a link, or a gitfile)`;
  const trusted = trustedUids(env);
  for (const path of [gitDir, join(gitDir, 'config')]) {
    const s = path === gitDir ? st : await lstat(path).catch(() => undefined);
    if (!s) continue;
    if (!s.isDirectory() && !s.isFile()) return `${path} is not a regular file`;
    if (!trusted.includes(s.uid)) return `${path} is owned by uid ${s.uid}, not root or the invoking user`;
    if (s.mode & 0o022) return `${path} is writable by group or others`;
  }
  return undefined;
}

/** `git ARGS` on the checkout at `top` only, nothing from its config run; output, or undefined when git fails. */
async function git(top: string, ...args: string[]): Promise<string | undefined> {
  const r = await run(
    'git',
    [
      '--no-pager',
      // Protected config (command line): trust this one checkout, ours or the invoking user's, checked above.
      '-c', `safe.directory=${top}`,
      '-c', 'core.fsmonitor=false',
      '-c', 'core.hooksPath=/dev/null',
      '-c', 'core.untrackedCache=false',
      ...args,
    ],
    {
      cwd: top,
      env: {
        GIT_DIR: join(top, '.git'),
        GIT_WORK_TREE: top,
        GIT_CEILING_DIRECTORIES: dirname(top),
        GIT_CONFIG_NOSYSTEM: '1',
        GIT_CONFIG_GLOBAL: '/dev/null',
        GIT_OPTIONAL_LOCKS: '0',
        GIT_TERMINAL_PROMPT: '0',
        GIT_PAGER: 'cat',
        GIT_EXTERNAL_DIFF: undefined,
        GIT_CONFIG_PARAMETERS: undefined,
        GIT_CONFIG_COUNT: undefined,
      },
      okExitCodes: [0, 1, 2, 128, 129],
      timeoutMs: 30_000,
    },
  );
  return r.exitCode === 0 ? r.stdout.trim() : undefined;
}

/** The checkout at exactly `dir` when git may be run there, else undefined (with a debug line saying why). */
async function trustedTop(dir: string, env: NodeJS.ProcessEnv): Promise<string | undefined> {
  const top = resolve(dir);
  const why = await untrustedCheckout(top, env);
  if (why === undefined) return top;
  // A foreign or loose .git is worth a warning; a gitfile (a worktree, a submodule) is just not read.
  if (/owned by|writable/.test(why)) log.warn(`not reading git information from ${top}: ${why}`);
  else if (why !== 'no .git') log.debug(`not reading git information from ${top}: ${why}`);
  return undefined;
}

/** The `origin` remote's URL without credentials, if `dir` is a trusted checkout that has one. */
export async function gitRemote(dir: string, env: NodeJS.ProcessEnv = process.env): Promise<string | undefined> {
  const top = await trustedTop(dir, env);
  if (!top) return undefined;
  const url = await git(top, 'remote', 'get-url', 'origin').catch(() => undefined);
  return url ? recordedUrl(url) : undefined;
}

/** The git checkout whose top is exactly `dir`, if any and if trusted (git missing, not a repo, untrusted: undefined). */
export async function gitInfo(dir: string, env: NodeJS.ProcessEnv = process.env): Promise<GitInfo | undefined> {
  try {
    const top = await trustedTop(dir, env);
    if (!top) return undefined;
    const commit = await git(top, 'rev-parse', '--verify', 'HEAD');
    if (!commit) return undefined;
    const branch = await git(top, 'rev-parse', '--abbrev-ref', 'HEAD');
    const status = await git(top, 'status', '--porcelain', '--untracked-files=no');
    const url = await git(top, 'remote', 'get-url', 'origin');
    const remote = url ? recordedUrl(url) : undefined;
    return {
      dir: top,
      commit,
      ...(branch && branch !== 'HEAD' ? { branch } : {}),
      dirty: !!status,
      ...(remote ? { remote } : {}),
    };
  } catch {
    return undefined;
  }
}
