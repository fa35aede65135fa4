/**
 * The platform facts (src/host/platform.ts) and each module that asks
 * them, on illumos as well as Linux. Nothing here runs illumos: the
 * illumos side is driven by outputs in test/fixtures/illumos (see its
 * README for where each comes from) and by stand-in commands, tiny
 * scripts that print a fixture or record their argv, put where the
 * platform says the command is.
 */
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { processesIn, setupChroot, teardownChroot, mountsUnder, hostDirsToMount, type ChrootRecord } from '../../src/host/chroot.js';
import {
  busyUnmountArgv,
  delegatedDataset,
  delegatedDatasetOf,
  detectOs,
  freeBytes,
  parseDfK,
  parseLinuxMounts,
  parseMnttab,
  platform,
  platformFor,
  readOnlyMountSteps,
  unameV,
  usePlatform,
  type Platform,
} from '../../src/host/platform.js';
import { Zfs } from '../../src/host/zfs.js';
import { parseMinPlatformFromUname } from '../../src/image/manifest/create.js';
import { checkDir, checkScriptTools } from '../../src/setup/doctor.js';
import { UsageError } from '../../src/core/errors.js';

const FIXTURES = fileURLToPath(new URL('../../../test/fixtures/illumos/', import.meta.url));
const fixture = (name: string) => join(FIXTURES, name);
const ZONE = '8d2b4a3e-6f0c-4d51-9a27-3c1f5e7b9d20';
const BUILD_ROOT = '/var/tmp/buildimage/builds/1b2c/zone/root';

/** The illumos facts with some commands replaced by stand-ins. */
function illumosWith(commands: Partial<Platform['commands']>, more: Partial<Platform> = {}): Platform {
  const base = platformFor('illumos');
  return { ...base, ...more, commands: { ...base.commands, ...commands } };
}

describe('platform: the facts, chosen by OS in one place', () => {
  let top: string;
  beforeEach(async () => {
    top = await mkdtemp(join(tmpdir(), 'bi-platform-'));
  });
  afterEach(() => rm(top, { recursive: true, force: true }));

  /** A stand-in command: prints `stdout` (a fixture's text), appends its argv to `log`, exits `code`. */
  async function standIn(name: string, o: { stdout?: string; code?: number; stderr?: string } = {}): Promise<{ path: string; log: string }> {
    const path = join(top, name);
    const log = join(top, `${name}.log`);
    const out = join(top, `${name}.out`);
    await writeFile(out, o.stdout ?? '');
    await writeFile(
      path,
      `#!/bin/sh\nprintf '%s\\n' "$*" >> '${log}'\ncat '${out}'\n${o.stderr ? `echo '${o.stderr}' >&2\n` : ''}exit ${o.code ?? 0}\n`,
    );
    await chmod(path, 0o755);
    return { path, log };
  }
  const argvLog = async (log: string) => (await readFile(log, 'utf8').catch(() => '')).split('\n').filter(Boolean);

  describe('choosing', () => {
    it('Node\'s "sunos" (SmartOS, OmniOS, any illumos) is illumos; linux is linux', () => {
      assert.equal(detectOs('sunos'), 'illumos');
      assert.equal(detectOs('linux'), 'linux');
    });

    it('this host (Linux, zfs-fuse) gets the Linux facts unchanged', () => {
      const p = platform();
      assert.equal(p.os, 'linux');
      assert.deepEqual(p.commands, { zfs: 'zfs', mount: 'mount', umount: 'umount', chroot: '/usr/sbin/chroot', uname: 'uname', tar: 'tar' });
      assert.deepEqual(p.mountTable, { path: '/proc/self/mounts', format: 'linux' });
      assert.deepEqual(p.proc.links, ['root', 'cwd']);
      assert.deepEqual(readOnlyMountSteps('/usr', '/r/usr'), [
        ['mount', ['--bind', '/usr', '/r/usr']],
        ['mount', ['-o', 'remount,bind,ro', '/r/usr']],
      ]);
      assert.deepEqual(busyUnmountArgv('/r/usr'), ['umount', ['-l', '/r/usr']]);
    });

    it('usePlatform switches every module over and back', () => {
      const undo = usePlatform('illumos');
      try {
        assert.equal(platform().os, 'illumos');
      } finally {
        undo();
      }
      assert.equal(platform().os, 'linux');
    });

    it('illumos runs the platform\'s own tools by their fixed paths, not from PATH (as the original tool)', () => {
      const c = platformFor('illumos').commands;
      assert.deepEqual(
        [c.zfs, c.mount, c.umount, c.chroot, c.uname, c.zonename, c.df],
        ['/usr/sbin/zfs', '/usr/sbin/mount', '/usr/sbin/umount', '/usr/sbin/chroot', '/usr/bin/uname', '/usr/bin/zonename', '/usr/bin/df'],
      );
      assert.equal(c.tar, 'gtar', "GNU tar is gtar on SmartOS (eng's Makefile.targ)");
    });

    it('illumos mounts a host dir read-only with one lofs mount; a busy one is not forced (lofs has no MS_FORCE)', () => {
      const p = platformFor('illumos');
      assert.deepEqual(readOnlyMountSteps('/usr', '/r/usr', p), [['/usr/sbin/mount', ['-F', 'lofs', '-o', 'ro', '/usr', '/r/usr']]]);
      assert.equal(busyUnmountArgv('/r/usr', p), undefined);
    });
  });

  describe('mount tables', () => {
    it('illumos /etc/mnttab (recorded form): tab-separated, a mount point with a space as is', async () => {
      const mounts = parseMnttab(await readFile(fixture('mnttab'), 'utf8'));
      assert.equal(mounts[0], '/');
      assert.ok(mounts.includes(`/zones/${ZONE}/data`));
      assert.ok(mounts.includes('/var/tmp/with space/mnt'), 'no \\040 escapes in mnttab');
      assert.equal(mounts.length, 20);
    });

    it('mountsUnder reads the platform\'s table: the chroot\'s lofs mounts from mnttab, deepest first', async () => {
      const p = illumosWith({}, { mountTable: { path: fixture('mnttab'), format: 'mnttab' } });
      const zone = '/var/tmp/buildimage/builds/1b2c/zone';
      const found = await mountsUnder(zone, p);
      assert.equal(found.length, 6);
      assert.equal(found.at(-1), zone);
      assert.deepEqual(found.slice(0, 5).sort(), ['dev', 'lib', 'proc', 'sbin', 'usr'].map((d) => `${BUILD_ROOT}/${d}`));
      assert.deepEqual(await mountsUnder('/var/tmp/with space', p), ['/var/tmp/with space/mnt']);
    });

    it('Linux /proc/self/mounts: every octal escape is undone (space, tab, newline, backslash)', () => {
      const text = [
        'zfs-fuse /var/tmp/a\\040b fuse rw 0 0',
        'tmpfs /var/tmp/tab\\011here tmpfs rw 0 0',
        '/dev/sda1 /var/tmp/back\\134slash/root/usr ext4 ro 0 0',
      ].join('\n');
      assert.deepEqual(parseLinuxMounts(text), ['/var/tmp/a b', '/var/tmp/tab\there', '/var/tmp/back\\slash/root/usr']);
    });

    it('a bind mount under a work dir with a backslash in its name is found for teardown (Linux)', async () => {
      const table = join(top, 'mounts');
      await writeFile(table, 'sysfs /sys sysfs rw 0 0\n/dev/sda1 /w\\134x/zone/root/usr ext4 ro 0 0\n');
      const p: Platform = { ...platformFor('linux'), mountTable: { path: table, format: 'linux' } };
      assert.deepEqual(await mountsUnder('/w\\x/zone', p), ['/w\\x/zone/root/usr']);
    });
  });

  describe('the chroot on illumos, with recording stand-ins for mount and umount', () => {
    it('mounts the five host dirs with lofs -o ro (no /lib64), unmounts them all, in reverse order', async () => {
      const mount = await standIn('mount');
      const umount = await standIn('umount');
      const root = join(top, 'root');
      await mkdir(root);
      const mnttab = join(top, 'mnttab');
      const p = illumosWith({ mount: mount.path, umount: umount.path }, { mountTable: { path: mnttab, format: 'mnttab' }, proc: { dir: join(top, 'proc'), links: ['path/root', 'path/cwd'] } });
      const undo = usePlatform(p);
      try {
        const record: ChrootRecord = { mounts: [], createdDirs: [] };
        await setupChroot(root, record);
        assert.deepEqual(await argvLog(mount.log), ['/dev', '/lib', '/proc', '/sbin', '/usr'].map((d) => `-F lofs -o ro ${d} ${root}${d}`));
        // The kernel's table as mnttab(4) has it, listing what was mounted.
        await writeFile(mnttab, record.mounts.map((m) => `${m.slice(root.length)}\t${m}\tlofs\tro,zone=${ZONE},dev=2d90002\t1714557601\n`).join(''));
        await teardownChroot(root, record);
        assert.deepEqual(await argvLog(umount.log), ['/usr', '/sbin', '/proc', '/lib', '/dev'].map((d) => `${root}${d}`));
        assert.deepEqual(record, { mounts: [], createdDirs: [] });
      } finally {
        undo();
      }
    });

    it('hostDirsToMount: Linux adds /lib64 when present, illumos never', async () => {
      assert.ok(!(await hostDirsToMount(platformFor('illumos'))).includes('/lib64'));
      assert.deepEqual((await hostDirsToMount(platformFor('illumos'))).slice(0, 5), ['/dev', '/lib', '/proc', '/sbin', '/usr']);
    });
  });

  describe('processes in a build root, from /proc/<pid>/path (recorded layout)', () => {
    /** Lays out a /proc from proc-path.txt: links under <pid>/path/, and <pid>/root and cwd as the non-links illumos has. */
    async function illumosProc(): Promise<string> {
      const proc = join(top, 'proc');
      for (const line of (await readFile(fixture('proc-path.txt'), 'utf8')).split('\n')) {
        const m = /^(\d+) (\S+) -> (.+)$/.exec(line);
        if (!m) continue;
        const [, pid, name, target] = m;
        await mkdir(join(proc, pid, 'path'), { recursive: true });
        await symlink(target, join(proc, pid, 'path', name));
        if (name === 'root' || name === 'cwd') await mkdir(join(proc, pid, name), { recursive: true });
      }
      return proc;
    }

    it('illumos reads path/root and path/cwd', async () => {
      const proc = await illumosProc();
      const p = illumosWith({}, { proc: { dir: proc, links: platformFor('illumos').proc.links } });
      assert.deepEqual((await processesIn(BUILD_ROOT, p)).sort(), [4242, 4243]);
    });

    it('the Linux facts read root and cwd, which illumos does not offer as links: nothing found there', async () => {
      const proc = await illumosProc();
      const p: Platform = { ...platformFor('linux'), proc: { dir: proc, links: platformFor('linux').proc.links } };
      assert.deepEqual(await processesIn(BUILD_ROOT, p), []);
    });
  });

  describe('zonename, uname -v, zfs get -Hp: recorded outputs through stand-ins', () => {
    it('a zone\'s delegated dataset is zones/<zonename>/data', async () => {
      const zonename = await standIn('zonename', { stdout: await readFile(fixture('zonename.txt'), 'utf8') });
      assert.equal(await delegatedDataset(illumosWith({ zonename: zonename.path })), `zones/${ZONE}/data`);
    });

    it('the global zone has no delegated dataset: one line asking for --dataset-root, not zones/global/data', async () => {
      const zonename = await standIn('zonename', { stdout: await readFile(fixture('zonename-global.txt'), 'utf8') });
      await assert.rejects(delegatedDataset(illumosWith({ zonename: zonename.path })), (err: Error) => {
        assert.ok(err instanceof UsageError);
        assert.match(err.message, /global zone/);
        return true;
      });
    });

    it('zonename saying something that is no zone name is refused', () => {
      assert.throws(() => delegatedDatasetOf('zones/../x\n'), /not a zone name/);
      assert.throws(() => delegatedDatasetOf(''), /not a zone name/);
    });

    it('Linux has no zonename: no default dataset root', async () => {
      await assert.rejects(delegatedDataset(platformFor('linux')), /no zones on this host/);
    });

    it('uname -v (joyent_20240501T000000Z) gives min_platform {"7.0": "20240501T000000Z"}', async () => {
      const uname = await standIn('uname', { stdout: await readFile(fixture('uname-v.txt'), 'utf8') });
      const text = await unameV(illumosWith({ uname: uname.path }));
      assert.equal(text, 'joyent_20240501T000000Z');
      assert.deepEqual(await argvLog(uname.log), ['-v']);
      assert.deepEqual(parseMinPlatformFromUname(text), { '7.0': '20240501T000000Z' });
    });

    it('Zfs runs the platform\'s zfs and reads illumos zfs get -Hp and zfs list output', async () => {
      const zfs = await standIn('zfs', { stdout: await readFile(fixture('zfs-get-Hp.txt'), 'utf8') });
      const undo = usePlatform(illumosWith({ zfs: zfs.path }));
      try {
        const ds = `zones/${ZONE}/data`;
        const props = await new Zfs().get(ds, ['mounted', 'available', 'readonly', 'com.tritondatacenter.buildimage:created']);
        assert.deepEqual(props, { mounted: 'yes', available: '53687091200', readonly: 'off', 'com.tritondatacenter.buildimage:created': '-' });
        assert.deepEqual(await argvLog(zfs.log), [`get -H -p -o property,value mounted,available,readonly,com.tritondatacenter.buildimage:created ${ds}`]);
      } finally {
        undo();
      }
      const list = await standIn('zfs-list', { stdout: await readFile(fixture('zfs-list-children.txt'), 'utf8') });
      assert.deepEqual(await new Zfs(list.path).listChildren(`zones/${ZONE}/data`), [
        `zones/${ZONE}/data/5417ab20-3156-11ea-8b19-2b66f5e7a439`,
        `zones/${ZONE}/data/buildimage-zone-1b2c`,
      ]);
    });
  });

  describe('free space', () => {
    it('df -k (recorded, also with the long dataset name on a line of its own) is read in KiB', async () => {
      assert.equal(parseDfK(await readFile(fixture('df-k.txt'), 'utf8')), 4194184 * 1024);
      assert.equal(parseDfK(await readFile(fixture('df-k-wrapped.txt'), 'utf8')), 52428800 * 1024);
      assert.throws(() => parseDfK('df: cannot statvfs /x: No such file or directory\n'), /unexpected/);
    });

    it('illumos measures free space with df, not statfs (whose f_bavail is in 512-byte units there)', async () => {
      const df = await standIn('df', { stdout: await readFile(fixture('df-k-wrapped.txt'), 'utf8') });
      const p = illumosWith({ df: df.path });
      assert.equal(await freeBytes(top, p), 52428800 * 1024);
      assert.deepEqual(await argvLog(df.log), [`-k ${top}`]);
    });

    it('doctor reports the free space the platform measures (50.0 GiB from df on illumos)', async () => {
      const df = await standIn('df', { stdout: await readFile(fixture('df-k-wrapped.txt'), 'utf8') });
      const undo = usePlatform(illumosWith({ df: df.path }));
      try {
        const c = await checkDir('output-dir', 'output dir', join(top, 'out'), '--output-dir');
        assert.equal(c.status, 'ok');
        assert.match(c.detail, /50\.0 GiB free/);
      } finally {
        undo();
      }
    });

    it('Linux keeps statfs', async () => {
      assert.equal(platformFor('linux').freeSpace, 'statfs');
      assert.ok((await freeBytes(top, platformFor('linux'))) > 0);
    });
  });

  describe("doctor: the scripts' namespace tools", () => {
    it('Linux: all present on this host is ok; one missing is a warning naming it, with the package that has it', async () => {
      const linux = platformFor('linux').scriptNamespaces;
      assert.ok(linux);
      const here = await checkScriptTools(linux);
      assert.equal(here.status, 'ok', here.detail);
      const c = await checkScriptTools({ ...linux, setpriv: join(top, 'no-setpriv') });
      assert.equal(c.status, 'warn');
      assert.equal(c.detail, `missing: ${join(top, 'no-setpriv')}; builds with --run or "scripts" fail`);
      assert.match(c.fix ?? '', /util-linux/);
    });

    it('a platform without namespaces (illumos) has nothing to check', async () => {
      assert.equal(platformFor('illumos').scriptNamespaces, undefined);
      assert.equal((await checkScriptTools(undefined)).status, 'ok');
    });
  });
});
