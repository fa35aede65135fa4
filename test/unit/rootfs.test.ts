import assert from 'node:assert/strict';
import { lstat, mkdir, mkdtemp, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isUnder, removeInRoot, resolveInRoot, writeFileInRoot } from '../../src/host/rootfs.js';

describe('rootfs: paths inside an image root', () => {
  let top: string;
  let root: string;
  let outside: string;
  beforeEach(async () => {
    top = await mkdtemp(join(tmpdir(), 'bi-rootfs-'));
    root = join(top, 'root');
    outside = join(top, 'host');
    await mkdir(join(root, 'usr/bin'), { recursive: true });
    await mkdir(outside);
    await symlink('./usr/bin', join(root, 'bin'));
  });
  afterEach(() => rm(top, { recursive: true, force: true }));

  it('follows relative links inside the root', async () => {
    assert.equal(await resolveInRoot(root, 'bin/sh'), join(root, 'usr/bin/sh'));
  });

  it('re-roots absolute links instead of following them on the host', async () => {
    await mkdir(join(root, 'etc'));
    await symlink(outside, join(root, 'etc/evil'));
    const p = await resolveInRoot(root, 'etc/evil/x');
    assert.equal(p, join(root, outside.slice(1), 'x'));
    assert.ok(isUnder(root, p));
  });

  it('clamps .. at the root', async () => {
    await symlink('../../../..', join(root, 'up'));
    assert.equal(await resolveInRoot(root, 'up/etc/passwd'), join(root, 'etc/passwd'));
  });

  it('stops symlink loops', async () => {
    await symlink('b', join(root, 'a'));
    await symlink('a', join(root, 'b'));
    await assert.rejects(resolveInRoot(root, 'a/x'), /too many symlinks/);
  });

  it('writes a file in place of a symlink, never through it', async () => {
    await mkdir(join(root, 'etc'));
    const victim = join(outside, 'passwd');
    await writeFile(victim, 'host secret\n');
    await symlink(victim, join(root, 'etc/motd'));
    await writeFileInRoot(root, 'etc/motd', 'hello\n');
    assert.equal(await readFile(victim, 'utf8'), 'host secret\n');
    assert.ok((await lstat(join(root, 'etc/motd'))).isFile());
    assert.equal(await readFile(join(root, 'etc/motd'), 'utf8'), 'hello\n');
  });

  it('writes through a directory link that stays in the root', async () => {
    await mkdir(join(root, 'real-etc'));
    await symlink('/real-etc', join(root, 'etc'));
    await writeFileInRoot(root, 'etc/motd', 'x');
    assert.equal(await readFile(join(root, 'real-etc/motd'), 'utf8'), 'x');
    assert.equal(await readlink(join(root, 'etc')), '/real-etc');
  });

  it('removes a link, not its target', async () => {
    await mkdir(join(root, 'var/db'), { recursive: true });
    await writeFile(join(outside, 'keep'), 'k');
    await symlink(outside, join(root, 'var/db/pkgin'));
    assert.equal(await removeInRoot(root, 'var/db/pkgin'), true);
    assert.equal(await readFile(join(outside, 'keep'), 'utf8'), 'k');
    assert.equal(await removeInRoot(root, 'var/db/pkgin'), false);
  });
});
