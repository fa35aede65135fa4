/**
 * The chroot's stray-process finder reads /proc in both layouts: Linux's
 * /proc/<pid>/{root,cwd} and illumos's /proc/<pid>/path/{root,cwd} (issue
 * 12, item 17). Fixture dirs stand for /proc.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { processesIn } from '../../src/host/chroot.js';
import { platformFor, type HostOs, type Platform } from '../../src/host/platform.js';

/** The facts of `os`, with /proc at `dir`. */
const procAt = (os: HostOs, dir: string): Platform => ({ ...platformFor(os), proc: { ...platformFor(os).proc, dir } });

describe('chroot: processes still in an image root, from /proc', () => {
  let top: string;
  const root = '/var/tmp/buildimage/builds/b1/zone/root';
  beforeEach(async () => {
    top = await mkdtemp(join(tmpdir(), 'bi-proc-'));
  });
  afterEach(() => rm(top, { recursive: true, force: true }));

  /** A /proc fixture: pid → { link: target } with links at `prefix` (''  on Linux, 'path/' on illumos). */
  async function procFixture(name: string, prefix: string, procs: Record<number, Record<string, string>>): Promise<string> {
    const proc = join(top, name);
    for (const [pid, links] of Object.entries(procs)) {
      await mkdir(join(proc, pid, prefix), { recursive: true });
      for (const [link, target] of Object.entries(links)) await symlink(target, join(proc, pid, prefix, link));
    }
    await mkdir(join(proc, 'self'), { recursive: true });
    await writeFile(join(proc, 'uptime'), '1 1\n');
    return proc;
  }

  const procs = {
    101: { root: root, cwd: `${root}/opt/local` },
    102: { root: '/', cwd: `${root}/var/tmp` },
    103: { root: '/', cwd: '/home/jenkins' },
    104: { root: '/', cwd: `${root}-other` },
  };

  it('Linux layout: /proc/<pid>/{root,cwd}', async () => {
    const proc = await procFixture('linux', '', procs);
    assert.deepEqual((await processesIn(root, procAt('linux', proc))).sort(), [101, 102]);
  });

  it('illumos layout: /proc/<pid>/path/{root,cwd} (root and cwd themselves are no readable links)', async () => {
    const proc = await procFixture('illumos', 'path', procs);
    // On illumos /proc/<pid>/root and cwd exist but readlink fails on them: stand-ins that are directories.
    for (const pid of Object.keys(procs)) {
      await mkdir(join(proc, pid, 'root'));
      await mkdir(join(proc, pid, 'cwd'));
    }
    assert.deepEqual((await processesIn(root, procAt('illumos', proc))).sort(), [101, 102]);
  });

  it('finds nothing in an empty or missing /proc', async () => {
    assert.deepEqual(await processesIn(root, procAt('linux', join(top, 'none'))), []);
    assert.deepEqual(await processesIn(root, procAt('illumos', join(top, 'none'))), []);
  });
});
