/**
 * The build chroot: host directories mounted read-only into the image root
 * (lofs on SmartOS, read-only bind mounts on Linux), commands run with
 * chroot(8), and teardown that always unmounts and removes only the
 * mountpoint directories it had to create.
 */
import { readFile, readdir, readlink, realpath, lstat, mkdir, rmdir, symlink } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { BuildError } from '../core/errors.js';
import { log } from '../core/log.js';
import { checkExit, run, spawn, type RunOptions } from './exec.js';
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

/** The private /dev a script gets (platform scriptNamespaces): these character devices, and links to /proc/self/fd. */
export const SCRIPT_DEV_NODES: ReadonlyArray<readonly [name: string, major: number, minor: number]> = [
  ['null', 1, 3],
  ['zero', 1, 5],
  ['full', 1, 7],
  ['random', 1, 8],
  ['urandom', 1, 9],
];
const SCRIPT_DEV_LINKS: ReadonlyArray<readonly [name: string, target: string]> = [
  ['fd', '/proc/self/fd'],
  ['stdin', '/proc/self/fd/0'],
  ['stdout', '/proc/self/fd/1'],
  ['stderr', '/proc/self/fd/2'],
];

/**
 * Taken from a script's capability bounding set (Linux): no mount or
 * remount (a read-only host mount made writable), no device nodes, no
 * modules, raw I/O, reboot, clock, tracing, kernel log or network setup.
 * What a build step needs (chown, file modes, users) stays.
 */
export const SCRIPT_DROPPED_CAPS = [
  'sys_admin',
  'sys_module',
  'sys_rawio',
  'sys_boot',
  'sys_time',
  'mknod',
  'sys_ptrace',
  'net_admin',
  'syslog',
  'audit_control',
  'mac_admin',
  'mac_override',
  'sys_pacct',
  'bpf',
  'perfmon',
  'wake_alarm',
  'block_suspend',
] as const;

export interface ScriptRunOptions {
  env: Record<string, string>;
  timeoutMs: number;
  /** Each line the script writes, on stdout or stderr, as it comes. */
  onLine: (line: string) => void;
}

export interface ScriptResult {
  exitCode?: number;
  signal?: string;
  timedOut: boolean;
}

/** The pid 1 of the namespaces `unshare` (pid `u`) made, once it has entered the chroot. */
async function namespaceInit(u: number, root: string, exited: () => boolean): Promise<number> {
  const realRoot = await realpath(root);
  for (let i = 0; i < 200 && !exited(); i++) {
    const kids = (await readFile(`/proc/${u}/task/${u}/children`, 'utf8').catch(() => '')).trim().split(/\s+/).filter(Boolean);
    for (const k of kids) {
      if ((await readlink(`/proc/${k}/root`).catch(() => '')) === realRoot) return Number(k);
    }
    await sleep(25);
  }
  throw new BuildError(`the script's namespaces did not start in ${root}`);
}

/** Calls onLine for each line of a stream; the last one even without a newline. */
function eachLine(stream: NodeJS.ReadableStream | null | undefined, onLine: (line: string) => void): void {
  let pending = '';
  // A character split between two chunks stays whole.
  const decoder = new StringDecoder('utf8');
  stream?.on('data', (chunk: Buffer) => {
    const lines = (pending + decoder.write(chunk)).split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) onLine(line);
  });
  stream?.on('end', () => {
    pending += decoder.end();
    if (pending) onLine(pending);
    pending = '';
  });
}

/**
 * Runs `pathInRoot` (a file in the image) in the chroot that setupChroot
 * made. On Linux in namespaces of its own: a PID namespace, so that
 * /proc/1/root is the image root and everything the script starts (its
 * background children too) is killed with it; a mount namespace in which
 * /dev is a small tmpfs (null, zero, full, random, urandom; no host device)
 * and /proc is that PID namespace's, read-only (no sysctl, no
 * sysrq-trigger). Both go away with the namespace: nothing to unmount.
 * It starts without SCRIPT_DROPPED_CAPS (no remount, no mknod).
 * Elsewhere, as runInChroot runs pkgadd's commands. Either way every
 * process left in the image root is stopped when the script has exited.
 */
export async function runScriptInChroot(root: string, pathInRoot: string, o: ScriptRunOptions): Promise<ScriptResult> {
  const p = platform();
  const ns = p.scriptNamespaces;
  if (!ns) return runScriptChild(root, p.commands.chroot, [root, pathInRoot], o, () => killProcessesIn(root));
  const { unshare, nsenter, mknod, waiter, setpriv } = ns;
  // pid 1: a program of the host's read-only /usr, chrooted; --kill-child: it dies with unshare, and the namespace with it.
  const init = spawn(unshare, ['--mount', '--propagation', 'slave', '--pid', '--fork', '--kill-child', '--', p.commands.chroot, root, ...waiter], {
    env: {},
    cleanEnv: true,
    stdin: 'ignore',
    stdout: 'ignore',
  });
  let initExited = false;
  const initDone = init.then(() => {
    initExited = true;
  });
  const stopNamespace = async () => {
    try {
      init.kill('SIGKILL');
    } catch {
      /* gone */
    }
    await initDone;
    // The kernel kills the rest of the namespace with its pid 1; wait until they are gone.
    await killProcessesIn(root);
  };
  try {
    const w = String(
      await namespaceInit(init.pid!, root, () => initExited).catch(async (err: unknown) => {
        if (!initExited) throw err;
        const r = await init;
        throw new BuildError(`cannot start the script's namespaces: ${String(r.stderr ?? '').trim().split('\n').pop() || `${unshare} exited ${r.exitCode}`}`, {
          hint: 'scripts need unshare(1), nsenter(1) and setpriv(1) (util-linux) and a kernel with PID and mount namespaces',
        });
      }),
    );
    const inNs = (argv: string[], pid = false) => run(nsenter, ['-t', w, '-m', ...(pid ? ['-p'] : []), '--', ...argv]);
    await inNs([p.commands.mount, '-t', 'proc', '-o', 'ro,nosuid,nodev,noexec', 'proc', join(root, 'proc')], true);
    await inNs([p.commands.mount, '-t', 'tmpfs', '-o', 'nosuid,noexec,mode=0755,size=1m', 'tmpfs', join(root, 'dev')]);
    for (const [name, major, minor] of SCRIPT_DEV_NODES) await inNs([mknod, '-m', '0666', join(root, 'dev', name), 'c', String(major), String(minor)]);
    // Through the namespace's root (pid 1's /proc link): /dev there is the tmpfs just mounted.
    for (const [name, target] of SCRIPT_DEV_LINKS) await symlink(target, `/proc/${w}/root/dev/${name}`);
    const dropCaps = SCRIPT_DROPPED_CAPS.map((c) => `-${c}`).join(',');
    return await runScriptChild(root, nsenter, ['-t', w, '-m', '-p', '-r', '-w', '--', setpriv, '--bounding-set', dropCaps, '--', pathInRoot], o, stopNamespace);
  } finally {
    await stopNamespace();
  }
}

async function runScriptChild(root: string, cmd: string, args: string[], o: ScriptRunOptions, onExit: () => Promise<unknown>): Promise<ScriptResult> {
  const child = spawn(cmd, args, { env: o.env, cleanEnv: true, stdin: 'ignore', timeoutMs: o.timeoutMs });
  // Its background children hold its output open: stop them when it has exited, so that the output ends.
  const afterExit = new Promise<void>((resolve) => {
    const warn = (err: unknown) => log.warn(`after the script in ${root}: ${(err as Error).message}`);
    child.on('exit', () => resolve(onExit().then(() => undefined, (err: unknown) => void warn(err))));
  });
  eachLine(child.stdout, o.onLine);
  eachLine(child.stderr, o.onLine);
  const r = await child;
  await afterExit;
  // An interruption (SIGINT, SIGTERM) is reported as such; everything else is the caller's to say.
  if (r.isCanceled) checkExit(cmd, args, r);
  return { exitCode: r.exitCode, signal: r.signal ?? undefined, timedOut: !!r.timedOut };
}
