/**
 * Links and `..` inside an image root (issue 18 item 2): host/rootfs
 * resolves `..` where it stands in a path (after a real directory, after
 * a link, after a missing component), never leaving the root; host/copy
 * follows an image's directory links inside the image, so an absolute
 * link to a directory of the image stays a link and its target is filled.
 */
import assert from 'node:assert/strict';
import { lstat, mkdir, mkdtemp, readFile, readdir, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { copyTree } from '../../src/host/copy.js';
import { isUnder, realDirIn, resolveInRoot, writeFileInRoot } from '../../src/host/rootfs.js';

describe('links and .. inside an image root (unit)', () => {
  let top: string;
  let root: string;
  beforeEach(async () => {
    top = await mkdtemp(join(tmpdir(), 'bi-image-links-'));
    root = join(top, 'root');
    await mkdir(join(root, 'usr/bin'), { recursive: true });
    await mkdir(join(root, 'etc'));
    await symlink('./usr/bin', join(root, 'bin'));
  });
  afterEach(() => rm(top, { recursive: true, force: true }));

  describe('rootfs: .. in the middle of a path', () => {
    it('goes up from a real directory', async () => {
      assert.equal(await resolveInRoot(root, 'usr/../etc/passwd'), join(root, 'etc/passwd'));
      assert.equal(await resolveInRoot(root, 'usr/bin/../../etc'), join(root, 'etc'));
      assert.equal(await resolveInRoot(root, 'usr/./bin/..'), join(root, 'usr'));
    });

    it('goes up from where a link led, as the zone sees it (bin/.. is /usr, not /)', async () => {
      assert.equal(await resolveInRoot(root, 'bin/../etc'), join(root, 'usr/etc'));
      await symlink('/usr/bin', join(root, 'abs'));
      assert.equal(await resolveInRoot(root, 'abs/../../etc/x'), join(root, 'etc/x'));
    });

    it('goes up from a missing component, and links after it are still followed inside the root', async () => {
      assert.equal(await resolveInRoot(root, 'nope/../etc/passwd'), join(root, 'etc/passwd'));
      assert.equal(await resolveInRoot(root, 'nope/deeper/../../bin/sh'), join(root, 'usr/bin/sh'));
      // An absolute link met after the `..` is re-rooted, not followed on the host.
      await symlink('/', join(root, 'etc/up'));
      await symlink('/usr', join(root, 'etc/host-usr'));
      assert.equal(await resolveInRoot(root, 'nope/../etc/host-usr/bin'), join(root, 'usr/bin'));
      assert.equal(await resolveInRoot(root, 'nope/../../../../etc'), join(root, 'etc'), 'clamped at the root');
      for (const p of ['nope/../../..', 'a/b/../../../../../x', 'nope/../etc/up/../../..']) assert.ok(isUnder(root, await resolveInRoot(root, p)), p);
    });

    it('a file written at a path with .. lands where the path leads', async () => {
      assert.equal(await writeFileInRoot(root, 'usr/bin/../motd', 'm'), join(root, 'usr/motd'));
      assert.equal(await readFile(join(root, 'usr/motd'), 'utf8'), 'm');
      assert.equal(await writeFileInRoot(root, 'opt/new/../motd', 'n'), join(root, 'opt/motd'));
      assert.equal(await readFile(join(root, 'opt/motd'), 'utf8'), 'n');
    });

    it('realDirIn refuses .. anywhere in the path, even where it would stay inside', async () => {
      await mkdir(join(root, 'a/b'), { recursive: true });
      for (const p of ['a/../etc', 'a/b/..', 'a/./../a/b', '../root/a']) await assert.rejects(realDirIn(root, p), /refusing a path with "\.\."/, p);
      assert.equal(await realDirIn(root, 'a/./b'), join(root, 'a/b'));
    });
  });

  describe('copy: directory links of the image', () => {
    let src: string;
    beforeEach(async () => {
      src = join(top, 'proto');
      await mkdir(join(src, 'opt/smartdc/svc'), { recursive: true });
      await writeFile(join(src, 'opt/smartdc/svc/app.js'), 'app');
      await mkdir(join(root, 'data/opt'), { recursive: true });
    });

    it('an absolute link to a directory in the image stays a link, and the directory it names in the image is filled', async () => {
      await symlink('/data/opt', join(root, 'opt'));
      await copyTree(src, root);
      assert.ok((await lstat(join(root, 'opt'))).isSymbolicLink(), 'opt is still a link');
      assert.equal(await readlink(join(root, 'opt')), '/data/opt');
      assert.equal(await readFile(join(root, 'data/opt/smartdc/svc/app.js'), 'utf8'), 'app');
    });

    it('so do a relative link with .., a link to a link, and a link below another', async () => {
      await mkdir(join(root, 'data/svc'), { recursive: true });
      await mkdir(join(root, 'real-smartdc'));
      await symlink('/data/opt', join(root, 'opt-chain'));
      await symlink('/opt-chain', join(root, 'opt'));
      await mkdir(join(root, 'data/opt/smartdc'));
      await symlink('../../../data/svc', join(root, 'data/opt/smartdc/svc'));
      await copyTree(src, root);
      for (const l of ['opt', 'opt-chain', 'data/opt/smartdc/svc']) assert.ok((await lstat(join(root, l))).isSymbolicLink(), l);
      assert.equal(await readFile(join(root, 'data/svc/app.js'), 'utf8'), 'app');
      assert.deepEqual(await readdir(join(root, 'real-smartdc')), []);
    });

    it('a link whose target is missing in the image, or not a directory, is replaced by the proto\'s directory', async () => {
      await symlink('/data/nothing', join(root, 'opt'));
      await copyTree(src, root);
      assert.ok((await lstat(join(root, 'opt'))).isDirectory());
      assert.equal(await readFile(join(root, 'opt/smartdc/svc/app.js'), 'utf8'), 'app');
      await rm(join(root, 'opt'), { recursive: true });
      await writeFile(join(root, 'data/file'), 'f');
      await symlink('/data/file', join(root, 'opt'));
      await copyTree(src, root);
      assert.ok((await lstat(join(root, 'opt'))).isDirectory());
      assert.equal(await readFile(join(root, 'data/file'), 'utf8'), 'f');
    });
  });
});
