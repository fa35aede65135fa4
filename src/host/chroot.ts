/**
 * The build chroot: host directories mounted read-only into the image root
 * (lofs on SmartOS, read-only bind mounts on Linux), commands run with
 * chroot(8), and teardown that always unmounts and removes only the
 * mountpoint directories it had to create.
 */
import { readFile, readdir, readlink, realpath, lstat, mkdir, rmdir } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import { BuildError } from '../core/errors.js';
import { log } from '../core/log.js';
import { run, type RunOptions } from './exec.js';
import { busyUnmountArgv, parseMountTable, platform, readOnlyMountSteps, unmountArgv, type Platform } from './platform.js';
import { retryLine, withRetry } from '../core/retry.js';
import { realDirIn } from './rootfs.js';

/** What the original mounts: the platform parts a zone gets from the global zone. */
export const HOST_DIRS = ['/dev', '/lib', '/proc', '/sbin', '/usr'];

/** HOST_DIRS, and those of the platform's optional host dirs (Linux /lib64) that exist. */
export async function hostDirsToMount(p: Platform = platform()): Promise<string[]> {
  const dirs = [...HOST_DIRS];
  for (const d of p.optionalHostDirs) if (await lstat(d).catch(() => undefined)) dirs.push(d);
  return dirs;
}

export interface ChrootRecord {
  /** Mount targets, in the order they were mounted. */
  mounts: string[];
  /** Mountpoint directories created in the image (removed again at teardown). */
  createdDirs: string[];
}

/** The platform's read-only mount (host/platform); a step failing after the first undoes the mount. */
async function mountReadOnly(src: string, target: string): Promise<void> {
  const [first, ...rest] = readOnlyMountSteps(src, target);
  await run(...first);
  try {
    for (const step of rest) await run(...step);
  } catch (err) {
    await run(...unmountArgv(target), { uninterruptible: true }).catch(() => undefined);
    throw err;
  }
}

/**
 * Mounts the host dirs into `root`. `record` is filled as it goes (the
 * caller persists it) so that a crash midway leaves a list to undo.
 */
export async function setupChroot(root: string, record: ChrootRecord, onChange?: () => Promise<void>): Promise<void> {
  for (const src of await hostDirsToMount()) {
    const target = join(root, src);
    // The root and the mountpoint must be real directories in the image: a
    // link (usr -> /usr, proc -> ../../..) would aim the mount at the host.
    if (!(await realDirIn(root, src, { missingOk: true }))) {
      await mkdir(target);
      record.createdDirs.push(target);
    }
    record.mounts.push(target);
    await onChange?.();
    await realDirIn(root, src);
    await mountReadOnly(src, target);
  }
}

/**
 * Mount targets currently mounted at or below `dir`, deepest first, named
 * below `dir` as given. The mount table has real paths: with a link on the
 * way to `dir` (a work dir under a linked /var/tmp) they are matched by
 * dir's real path, else the chroot's mounts would be missed and left on.
 */
export async function mountsUnder(dir: string, p: Platform = platform()): Promise<string[]> {
  const table = await readFile(p.mountTable.path, 'utf8').catch(() => '');
  const real = await realpath(dir).catch(() => dir);
  const found = new Set<string>();
  for (const mnt of parseMountTable(table, p)) {
    for (const d of new Set([dir, real])) {
      if (mnt === d || mnt.startsWith(d + '/')) found.add(dir + mnt.slice(d.length));
    }
  }
  return [...found].sort((a, b) => b.length - a.length);
}

export async function unmount(target: string): Promise<void> {
  await withRetry(() => run(...unmountArgv(target), { uninterruptible: true, timeoutMs: 60_000 }), {
    attempts: 6,
    firstDelayMs: 250,
    retryable: (err) => /busy/i.test((err as Error).message),
    onRetry: (err, n, wait) => log.debug(retryLine(err, n, 6, wait)),
  }).catch(async (err) => {
    const lastResort = busyUnmountArgv(target);
    if (!lastResort) throw err;
    log.warn(`umount ${target} failed (${(err as Error).message}); detaching lazily`);
    await run(...lastResort, { uninterruptible: true });
  });
}

/**
 * Pids of processes whose root or cwd is at or below `dir`, read from the
 * platform's /proc links (Linux /proc/<pid>/{root,cwd}, illumos
 * /proc/<pid>/path/{root,cwd}).
 */
export async function processesIn(dir: string, p: Platform = platform()): Promise<number[]> {
  const { dir: procDir, links } = p.proc;
  // The kernel answers real paths: compare with dir's too.
  const dirs = [...new Set([dir, await realpath(dir).catch(() => dir)])];
  const inside = (t: string) => dirs.some((d) => t === d || t.startsWith(d + '/'));
  const pids: number[] = [];
  for (const name of await readdir(procDir).catch(() => [] as string[])) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    for (const link of links) {
      const target = await readlink(`${procDir}/${name}/${link}`).catch(() => '');
      if (target && inside(target)) {
        pids.push(Number(name));
        break;
      }
    }
  }
  return pids;
}

/**
 * Stops what still runs in the chroot (a package's @exec child survives
 * its killed parent): TERM, then KILL. Its mounts and the analog stay busy
 * otherwise.
 */
export async function killProcessesIn(dir: string): Promise<number> {
  let pids = await processesIn(dir);
  if (!pids.length) return 0;
  log.warn(`stopping ${pids.length} process(es) still running in ${dir}: ${pids.join(' ')}`);
  const signal = (sig: NodeJS.Signals) => pids.forEach((p) => { try { process.kill(p, sig); } catch { /* gone */ } });
  signal('SIGTERM');
  for (let i = 0; i < 20 && pids.length; i++) {
    await sleep(100);
    pids = await processesIn(dir);
  }
  if (pids.length) signal('SIGKILL');
  await sleep(100);
  return pids.length;
}

/** Unmounts everything recorded (and anything else still mounted under root), removes created dirs. */
export async function teardownChroot(root: string, record: ChrootRecord): Promise<void> {
  await killProcessesIn(root);
  const still = new Set(await mountsUnder(root));
  const order = [...record.mounts].reverse();
  for (const m of [...still].sort((a, b) => b.length - a.length)) if (!order.includes(m)) order.unshift(m);
  for (const target of order) {
    if (still.has(target)) await unmount(target);
  }
  record.mounts = [];
  for (const dir of [...record.createdDirs].reverse()) {
    await rmdir(dir).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw new BuildError(`cannot remove mountpoint ${dir}: ${err.message}`);
    });
  }
  record.createdDirs = [];
}

export interface ChrootRunOptions extends Pick<RunOptions, 'timeoutMs' | 'okExitCodes' | 'echo'> {
  env: Record<string, string>;
}

/** Runs argv inside the chroot with a clean environment, stdin closed (as the original). */
export function runInChroot(root: string, argv: string[], opts: ChrootRunOptions) {
  // Absolute: the clean environment has no PATH to search.
  // Nothing may keep running in the image once its step is over.
  return run(platform().commands.chroot, [root, ...argv], { ...opts, env: opts.env, cleanEnv: true, onChildExit: () => killProcessesIn(root) });
}
