/**
 * What git says of a checkout: commit, branch, dirty, remote. Read-only:
 * for build-info and for init's source-repo default.
 */
import { z } from 'zod';
import { run } from './exec.js';

export const GitInfoSchema = z.object({
  dir: z.string(),
  commit: z.string(),
  branch: z.string().optional(),
  dirty: z.boolean(),
  remote: z.string().optional(),
});
export type GitInfo = z.infer<typeof GitInfoSchema>;

/** `git -C dir ARGS` output, or undefined when git fails (not a repo, no such remote...). */
async function git(dir: string, ...args: string[]): Promise<string | undefined> {
  // safe.directory: a root build reads a checkout owned by the Jenkins user.
  const r = await run('git', ['-c', 'safe.directory=*', '-C', dir, ...args], { okExitCodes: [0, 1, 2, 128, 129], timeoutMs: 30_000 });
  return r.exitCode === 0 ? r.stdout.trim() : undefined;
}

/** The `origin` remote's URL without credentials, if any. */
export async function gitRemote(dir: string): Promise<string | undefined> {
  const url = await git(dir, 'remote', 'get-url', 'origin').catch(() => undefined);
  return url?.replace(/\/\/[^/@]*@/, '//') || undefined;
}

/** The git checkout `dir` is in, if any (git missing or not a repo: undefined). */
export async function gitInfo(dir: string): Promise<GitInfo | undefined> {
  try {
    const top = await git(dir, 'rev-parse', '--show-toplevel');
    const commit = top && (await git(dir, 'rev-parse', 'HEAD'));
    if (!top || !commit) return undefined;
    const branch = await git(dir, 'rev-parse', '--abbrev-ref', 'HEAD');
    const status = await git(dir, 'status', '--porcelain', '--untracked-files=no');
    const remote = await gitRemote(dir);
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
