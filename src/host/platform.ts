/**
 * Facts about the host, and the one place where illumos (SmartOS) and
 * Linux differ: which command does a thing, with which argv, where the
 * mount table and a process's root are read, how free space is measured.
 * Every module with side effects asks `platform()`; tests (and nothing
 * else) choose another with `usePlatform`. docs/smartos.md lists each
 * fact with how it is verified.
 */
import { access, constants, statfs } from 'node:fs/promises';
import { delimiter, isAbsolute, join } from 'node:path';
import { BuildError, UsageError } from '../core/errors.js';
import { run } from './exec.js';

export type HostOs = 'illumos' | 'linux';

/** A command and its argv, run through host/exec (never a shell). */
export type Argv = readonly [cmd: string, args: readonly string[]];

export interface Platform {
  os: HostOs;
  /**
   * The tools, by path where the platform fixes it. On illumos they are
   * the platform's own in the read-only /usr (as the original tool ran
   * them): no PATH lookup, which a root process must not trust.
   */
  commands: {
    zfs: string;
    mount: string;
    umount: string;
    chroot: string;
    uname: string;
    /** illumos only: the zone this runs in. */
    zonename?: string;
    /** illumos only: free space, which statfs cannot say there (see freeBytes). */
    df?: string;
    /** GNU tar: gtar on SmartOS (eng's Makefile.targ says so), tar on Linux. */
    tar: string;
  };
  /** The kernel's table of mounts, and its format: Linux's fstab-like lines or mnttab(4). */
  mountTable: { path: string; format: 'linux' | 'mnttab' };
  /** How a host dir is mounted read-only: a bind mount remounted ro, or a lofs mount with -o ro. */
  readOnlyMount: 'bind-remount' | 'lofs';
  /** A mount still busy after the retries: detach it lazily (Linux), or give up (illumos: lofs has no forced unmount). */
  busyUnmount: 'lazy' | 'fail';
  /** Host dirs mounted into the build chroot when present, besides the original's five. */
  optionalHostDirs: readonly string[];
  /** Where /proc is, and the links under /proc/<pid>/ that name a process's root and cwd. */
  proc: { dir: string; links: readonly string[] };
  /** How free space is measured: statfs(2), or `df -k` where Node's statfs is wrong (illumos). */
  freeSpace: 'statfs' | 'df';
  /**
   * How a script (--run) runs in the chroot: in PID and mount namespaces of
   * its own, with a private minimal /dev and a read-only /proc of that PID
   * namespace (Linux: `unshare`, `nsenter`; `waiter` is the namespace's
   * pid 1, a program of the read-only host /usr as the chroot sees it), or,
   * without them (illumos), as pkgadd's commands run (host/chroot).
   * `setpriv` (also the host's /usr, in the chroot) starts the script
   * without the capabilities host/chroot SCRIPT_DROPPED_CAPS names.
   */
  scriptNamespaces?: { unshare: string; nsenter: string; mknod: string; waiter: readonly string[]; setpriv: string };
}

/**
 * /proc/self/mounts escapes space, tab, newline and backslash in octal
 * (\040 \011 \012 \134); every other byte is as is.
 */
export function unescapeLinuxMountField(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** Linux /proc/self/mounts (fstab(5) form): fields split on spaces, the 2nd is the mount point. */
export function parseLinuxMounts(text: string): string[] {
  return text
    .split('\n')
    .map((line) => line.split(' ')[1])
    .filter((m): m is string => !!m)
    .map(unescapeLinuxMountField);
}

/** illumos /etc/mnttab (mnttab(4)): fields split on tabs, no escapes; the 2nd is the mount point. */
export function parseMnttab(text: string): string[] {
  return text
    .split('\n')
    .map((line) => line.split('\t')[1])
    .filter((m): m is string => !!m);
}

/**
 * `df -k DIR` on illumos: a header, then filesystem, kbytes, used, avail,
 * capacity, mount point; a long filesystem name goes on a line of its own,
 * so the numbers are read as the words after the header.
 */
export function parseDfK(text: string): number {
  const lines = text.split('\n');
  const words = lines.slice(1).join(' ').split(/\s+/).filter(Boolean);
  const avail = words[3];
  if (!/^Filesystem\s/.test(lines[0] ?? '') || avail === undefined || !/^\d+$/.test(avail)) {
    throw new BuildError(`df -k said something unexpected: ${JSON.stringify(text.slice(0, 200))}`);
  }
  return Number(avail) * 1024;
}

const LINUX: Platform = {
  os: 'linux',
  commands: { zfs: 'zfs', mount: 'mount', umount: 'umount', chroot: '/usr/sbin/chroot', uname: 'uname', tar: 'tar' },
  mountTable: { path: '/proc/self/mounts', format: 'linux' },
  readOnlyMount: 'bind-remount',
  busyUnmount: 'lazy',
  // Linux binaries in /usr need the loader in /lib64 on most distributions.
  optionalHostDirs: ['/lib64'],
  proc: { dir: '/proc', links: ['root', 'cwd'] },
  freeSpace: 'statfs',
  scriptNamespaces: { unshare: '/usr/bin/unshare', nsenter: '/usr/bin/nsenter', mknod: 'mknod', waiter: ['/usr/bin/sleep', 'infinity'], setpriv: '/usr/bin/setpriv' },
};

const ILLUMOS: Platform = {
  os: 'illumos',
  commands: {
    zfs: '/usr/sbin/zfs',
    mount: '/usr/sbin/mount',
    umount: '/usr/sbin/umount',
    chroot: '/usr/sbin/chroot',
    uname: '/usr/bin/uname',
    zonename: '/usr/bin/zonename',
    df: '/usr/bin/df',
    tar: 'gtar',
  },
  mountTable: { path: '/etc/mnttab', format: 'mnttab' },
  readOnlyMount: 'lofs',
  // umount -f (MS_FORCE) is for nfs, ufs, pcfs and zfs only: lofs answers ENOTSUP; there is no lazy unmount.
  busyUnmount: 'fail',
  optionalHostDirs: [],
  // /proc/<pid>/root and cwd are no readable links on illumos; path/root and path/cwd are.
  proc: { dir: '/proc', links: ['path/root', 'path/cwd'] },
  // statvfs there counts f_bavail in f_frsize units (512 bytes on ZFS) while Node's statfs
  // multiplies it by f_bsize (the recordsize, 128K): 256 times too much. df does the sum right.
  freeSpace: 'df',
};

/** The facts of one OS. */
export function platformFor(os: HostOs): Platform {
  return os === 'illumos' ? ILLUMOS : LINUX;
}

/** Node's name for the OS → ours; SmartOS, OmniOS and every illumos report "sunos". */
export function detectOs(nodePlatform: NodeJS.Platform = process.platform): HostOs {
  return nodePlatform === 'sunos' ? 'illumos' : 'linux';
}

let current: Platform | undefined;

/** This host's facts (or the ones a test chose). */
export function platform(): Platform {
  return (current ??= platformFor(detectOs()));
}

/** Tests: act as another platform (or this one with some facts replaced); returns the undo. */
export function usePlatform(p: Platform | HostOs): () => void {
  const before = current;
  current = typeof p === 'string' ? platformFor(p) : p;
  return () => {
    current = before;
  };
}

export function isSmartOS(): boolean {
  return platform().os === 'illumos';
}

/** Mount points listed in the mount table's text, in its order. */
export function parseMountTable(text: string, p: Platform = platform()): string[] {
  return p.mountTable.format === 'mnttab' ? parseMnttab(text) : parseLinuxMounts(text);
}

/** The steps that mount `src` read-only at `target`, in order. */
export function readOnlyMountSteps(src: string, target: string, p: Platform = platform()): Argv[] {
  const { mount } = p.commands;
  if (p.readOnlyMount === 'lofs') return [[mount, ['-F', 'lofs', '-o', 'ro', src, target]]];
  // A bind mount takes "ro" only on a remount.
  return [
    [mount, ['--bind', src, target]],
    [mount, ['-o', 'remount,bind,ro', target]],
  ];
}

export function unmountArgv(target: string, p: Platform = platform()): Argv {
  return [p.commands.umount, [target]];
}

/** What is tried on a mount still busy after the retries, if anything. */
export function busyUnmountArgv(target: string, p: Platform = platform()): Argv | undefined {
  return p.busyUnmount === 'lazy' ? [p.commands.umount, ['-l', target]] : undefined;
}

/** Bytes an unprivileged writer may still use on the file system holding `dir`. */
export async function freeBytes(dir: string, p: Platform = platform()): Promise<number> {
  if (p.freeSpace === 'df') {
    if (!p.commands.df) throw new BuildError('no df command known on this platform');
    return parseDfK((await run(p.commands.df, ['-k', dir], { timeoutMs: 30_000 })).stdout);
  }
  const st = await statfs(dir);
  // Linux: f_bavail counts f_bsize blocks.
  return st.bavail * st.bsize;
}

export async function findInPath(cmd: string): Promise<string | undefined> {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const p = join(dir, cmd);
    try {
      await access(p, constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return undefined;
}

/** Where a platform command is: its fixed path when executable, or found on PATH; undefined when missing. */
export async function locate(cmd: string): Promise<string | undefined> {
  if (!isAbsolute(cmd)) return findInPath(cmd);
  return access(cmd, constants.X_OK).then(() => cmd, () => undefined);
}

/** `uname -v`: on SmartOS the platform stamp (joyent_20240501T000000Z) that min_platform is made of. */
export async function unameV(p: Platform = platform()): Promise<string> {
  return (await run(p.commands.uname, ['-v'])).stdout.trim();
}

/**
 * The delegated dataset of the zone named `zonename`, where the original
 * buildimage (its imgadm) keeps images: zones/<zonename>/data. The global
 * zone has none: the original refused to run there; here the dataset root
 * must then be given.
 */
export function delegatedDatasetOf(zonenameOutput: string): string {
  const zone = zonenameOutput.trim();
  if (zone === 'global') {
    throw new UsageError('this is the global zone, which has no delegated dataset to default to', 'pass --dataset-root POOL/DATASET');
  }
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(zone)) {
    throw new BuildError(`zonename said ${JSON.stringify(zonenameOutput.slice(0, 80))}, not a zone name`, { hint: 'pass --dataset-root POOL/DATASET' });
  }
  return `zones/${zone}/data`;
}

/** The delegated dataset of this zone (SmartOS): see delegatedDatasetOf. */
export async function delegatedDataset(p: Platform = platform()): Promise<string> {
  if (!p.commands.zonename) throw new UsageError('no zones on this host, so no delegated dataset to default to', 'pass --dataset-root POOL/DATASET');
  return delegatedDatasetOf((await run(p.commands.zonename, [])).stdout);
}
