import assert from 'node:assert/strict';
import { link, lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { copyTree } from '../../src/host/copy.js';
import { checkImageRoot, isUnder, realDirIn, removeInRoot, resolveInRoot, writeFileInRoot } from '../../src/host/rootfs.js';

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

  it('follows a chain of 40 links (the limit) and refuses 41', async () => {
    await mkdir(join(root, 'chain'));
    await mkdir(join(root, 'target'));
    // l0 -> l1 -> ... -> l40 -> /target: 41 links from l0, 40 from l1.
    await symlink('/target', join(root, 'chain/l40'));
    for (let i = 39; i >= 0; i--) await symlink(`l${i + 1}`, join(root, `chain/l${i}`));
    assert.equal(await resolveInRoot(root, 'chain/l1/x'), join(root, 'target/x'));
    await assert.rejects(resolveInRoot(root, 'chain/l0/x'), /too many symlinks resolving \/chain\/l0\/x/);
  });

  it('a relative link in a subdirectory goes from there, and "." in a target is no component ("./.." climbs one)', async () => {
    await mkdir(join(root, 'opt/app/lib'), { recursive: true });
    await symlink('lib', join(root, 'opt/app/current'));
    assert.equal(await resolveInRoot(root, 'opt/app/current/x'), join(root, 'opt/app/lib/x'));
    await symlink('./lib/./..', join(root, 'opt/app/up'));
    assert.equal(await resolveInRoot(root, 'opt/app/up/x'), join(root, 'opt/app/x'));
    assert.equal(await resolveInRoot(root, 'opt//app/./lib/y'), join(root, 'opt/app/lib/y'));
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

  it('writeFileInRoot replaces a file (not through its other hardlinks) or a directory, with the mode asked or 0644 whatever the umask', async () => {
    await mkdir(join(root, 'etc'));
    await writeFile(join(root, 'base'), 'base');
    await link(join(root, 'base'), join(root, 'etc/motd'));
    await mkdir(join(root, 'etc/profile/d'), { recursive: true });
    const old = process.umask(0o077);
    try {
      assert.equal(await writeFileInRoot(root, 'etc/motd', 'hello\n'), join(root, 'etc/motd'));
      await writeFileInRoot(root, 'etc/profile', 'p', 0o600);
    } finally {
      process.umask(old);
    }
    assert.equal(await readFile(join(root, 'base'), 'utf8'), 'base');
    assert.equal(await readFile(join(root, 'etc/motd'), 'utf8'), 'hello\n');
    assert.equal((await stat(join(root, 'etc/motd'))).mode & 0o7777, 0o644);
    assert.equal(await readFile(join(root, 'etc/profile'), 'utf8'), 'p');
    assert.equal((await stat(join(root, 'etc/profile'))).mode & 0o7777, 0o600);
  });

  it('a name that begins with ".." is inside the root; ".." and what is above or beside it are not', async () => {
    assert.equal(await writeFileInRoot(root, '..data', 'd'), join(root, '..data'));
    assert.equal(await readFile(join(root, '..data'), 'utf8'), 'd');
    assert.equal(isUnder(root, root), true);
    assert.equal(isUnder(root, join(root, '..data/x')), true);
    assert.equal(isUnder(root, top), false);
    assert.equal(isUnder(root, outside), false);
    assert.equal(isUnder(root, `${root}2`), false);
  });

  it('removeInRoot refuses the root itself and what is above it', async () => {
    await assert.rejects(removeInRoot(root, '/'), new RegExp(`refusing to remove outside the image root: ${root}$`));
    await assert.rejects(removeInRoot(root, '..'), new RegExp(`refusing to remove outside the image root: ${top}$`));
    await assert.rejects(removeInRoot(root, 'usr/../..'), /refusing to remove outside the image root/);
    assert.deepEqual((await readdir(top)).sort(), ['host', 'root']);
    assert.deepEqual((await readdir(root)).sort(), ['bin', 'usr']);
  });

  it('writeFileInRoot refuses a name that climbs out (..), and the directory above the root stays whole', async () => {
    for (const rel of ['..', 'usr/../..']) {
      await assert.rejects(writeFileInRoot(root, rel, 'x'), new RegExp(`refusing to write outside the image root: ${top}$`));
    }
    assert.deepEqual((await readdir(top)).sort(), ['host', 'root']);
    assert.deepEqual((await readdir(root)).sort(), ['bin', 'usr']);
  });

  it('removes a link, not its target', async () => {
    await mkdir(join(root, 'var/db'), { recursive: true });
    await writeFile(join(outside, 'keep'), 'k');
    await symlink(outside, join(root, 'var/db/pkgin'));
    assert.equal(await removeInRoot(root, 'var/db/pkgin'), true);
    assert.equal(await readFile(join(outside, 'keep'), 'utf8'), 'k');
    assert.equal(await removeInRoot(root, 'var/db/pkgin'), false);
    // A directory goes with what is in it.
    await writeFile(join(root, 'var/db/f'), 'f');
    assert.equal(await removeInRoot(root, 'var/db'), true);
    assert.deepEqual(await readdir(join(root, 'var')), []);
  });

  describe('the image root itself (issue 12, item 2)', () => {
    /** A dataset top whose root/ is a link to the "host". */
    async function linkedRoot(target: string): Promise<string> {
      const mnt = join(top, 'mnt');
      await mkdir(mnt);
      await symlink(target, join(mnt, 'root'));
      return join(mnt, 'root');
    }

    it('nothing is written, removed or copied through a root that is a symlink', async () => {
      await mkdir(join(outside, 'etc'));
      await mkdir(join(outside, 'var/db/pkgin'), { recursive: true });
      const proto = join(top, 'proto');
      await mkdir(join(proto, 'opt'), { recursive: true });
      await writeFile(join(proto, 'opt/x'), 'x');
      const linked = await linkedRoot(outside);
      await assert.rejects(writeFileInRoot(linked, 'etc/motd', 'pwned'), /root is a symlink \(to .*\), not a directory/);
      await assert.rejects(removeInRoot(linked, 'var/db/pkgin'), /root is a symlink/);
      await assert.rejects(copyTree(proto, linked), /root is a symlink/);
      assert.deepEqual((await readdir(outside)).sort(), ['etc', 'var']);
      assert.deepEqual(await readdir(join(outside, 'etc')), []);
      assert.deepEqual(await readdir(join(outside, 'var/db')), ['pkgin']);
    });

    it('checkImageRoot: root/, and etc/ and var/ when present, are real directories in the dataset', async () => {
      const mnt = join(top, 'ds');
      await mkdir(mnt);
      await assert.rejects(checkImageRoot(mnt), (e: Error) => e.message === `${join(mnt, 'root')} does not exist: not a zone dataset image`);
      await symlink('../host', join(mnt, 'root'));
      await assert.rejects(checkImageRoot(mnt), /ds\/root is a symlink \(to \.\.\/host\)/);
      await rm(join(mnt, 'root'));
      await mkdir(join(mnt, 'root'));
      assert.equal(await checkImageRoot(mnt), join(mnt, 'root'), 'etc and var may be missing');
      await symlink(outside, join(mnt, 'root/etc'));
      await assert.rejects(checkImageRoot(mnt), /root\/etc is a symlink/);
      await rm(join(mnt, 'root/etc'));
      await mkdir(join(mnt, 'root/etc'));
      await symlink('../../../../..', join(mnt, 'root/var'));
      await assert.rejects(checkImageRoot(mnt), /root\/var is a symlink \(to \.\.\/\.\.\/\.\.\/\.\.\/\.\.\)/);
      await rm(join(mnt, 'root/var'));
      await writeFile(join(mnt, 'root/var'), '');
      await assert.rejects(checkImageRoot(mnt), /root\/var is not a directory/);
    });

    it('realDirIn refuses a link at any component, "..", and another file system (a mount)', async () => {
      await mkdir(join(root, 'a/b'), { recursive: true });
      assert.equal(await realDirIn(root, 'a/b'), join(root, 'a/b'));
      assert.equal(await realDirIn(root, 'a/nope', { missingOk: true }), undefined);
      await assert.rejects(realDirIn(root, 'bin/x', { missingOk: true }), /root\/bin is a symlink \(to \.\/usr\/bin\)/);
      await assert.rejects(realDirIn(root, 'nope/x', { missingOk: true }), /root\/nope does not exist/);
      // missingOk is for the last component below the top: a missing top is still an error.
      await assert.rejects(realDirIn(join(top, 'gone'), '', { missingOk: true }), /gone does not exist/);
      await assert.rejects(realDirIn(root, 'a/../..'), /"\.\."/);
      await assert.rejects(realDirIn('/', 'proc'), /\/proc is on another file system/);
      await assert.rejects(resolveInRoot('/', 'proc/self'), /\/proc is on another file system/);
    });
  });
});
