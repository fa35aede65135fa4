/**
 * Hostile base images (issue 12, item 2): images whose root/, or a
 * directory the build writes or mounts through, is a link aimed at the
 * host (here: the bait). The build refuses them with one line naming the
 * path, before anything is written or mounted, and leaves nothing behind;
 * links the build only writes or removes through are kept inside the image.
 * The bait is untouched either way.
 */
import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../../src/host/exec.js';
import { makeVariantImage } from '../../testbed/images.js';
import { cli, errorLines, type CliResult } from '../helpers/cli.js';
import { layBait, type Bait } from '../helpers/hostile.js';
import { assertNoLeaks, mountsUnder } from '../helpers/leaks.js';
import { world, type World } from '../helpers/world.js';

/** A relative link target that climbs out of any image root (.. stops at /) and into `abs`. */
const climbTo = (abs: string) => '../'.repeat(24) + abs.slice(1);

describe('hostile base images', function () {
  this.timeout(10 * 60 * 1000);
  let w: World;
  let bait: Bait;
  let proto: string;
  let n = 0;
  const mf = JSON.stringify({ name: 'hostile-base', version: '1.0.0' });

  before(async () => {
    w = await world();
    bait = await layBait('bait-base');
    proto = join(w.dir, 'proto-hostile-base');
    await mkdir(join(proto, 'opt/svc'), { recursive: true });
    await writeFile(join(proto, 'opt/svc/app.js'), 'x\n');
    await mkdir(join(proto, 'etc'), { recursive: true });
    await writeFile(join(proto, 'etc/svc.conf'), 'x\n');
  });
  after(async () => {
    await bait.remove();
  });

  /** An image made from the sample base with `mutate` applied to its dataset top. */
  async function image(mutate: (top: string) => Promise<void>): Promise<{ uuid: string; dir: string }> {
    const dir = join(w.dir, `hostile-image-${++n}`);
    const m = await makeVariantImage({ zfs: w.zfs, datasetRoot: w.datasetRoot, sampleDir: w.sampleDir, outDir: dir, tmpDir: w.dir, mutate });
    return { uuid: m.uuid, dir };
  }

  async function build(img: { uuid: string; dir: string }, extra: string[] = []): Promise<{ r: CliResult; out: string }> {
    const out = await w.outDir();
    const r = await cli(['-i', img.uuid, '-d', proto, '-m', mf, '--output-dir', out, '--source', img.dir, ...extra], { env: w.env });
    return { r, out };
  }

  async function expectRefused(img: { uuid: string; dir: string }, path: RegExp): Promise<void> {
    const { r, out } = await build(img);
    assert.equal(r.code, 1, `exit 1 (stderr: ${r.stderr})`);
    const lines = errorLines(r);
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0], new RegExp(`base image ${img.uuid}: .*${path.source}`));
    assert.doesNotMatch(r.stderr, /copying /, 'refused before anything was copied');
    assert.deepEqual(await readdir(out), [], 'no outputs');
    assert.deepEqual(await mountsUnder(bait.dir), [], 'nothing mounted on the bait');
    await bait.assertUntouched(r.stderr);
    await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir: w.workDir, outputDir: out, context: r.stderr });
  }

  it('root/ is an absolute link to the host: refused at prepare, naming it', async () => {
    const img = await image(async (top) => {
      await rm(join(top, 'root'), { recursive: true, force: true });
      await symlink(bait.dir, join(top, 'root'));
    });
    await expectRefused(img, new RegExp(`/root is a symlink \\(to ${bait.dir}\\), not a directory`));
  });

  it('root/ is a relative link climbing out of the dataset', async () => {
    const img = await image(async (top) => {
      await rm(join(top, 'root'), { recursive: true, force: true });
      await symlink(climbTo(bait.dir), join(top, 'root'));
    });
    await expectRefused(img, /\/root is a symlink \(to (\.\.\/)+/);
  });

  it('root/etc is a link to the host (where the motd and the proto\'s etc/ go)', async () => {
    const img = await image(async (top) => {
      await rm(join(top, 'root/etc'), { recursive: true, force: true });
      await symlink(join(bait.dir, 'etc'), join(top, 'root/etc'));
    });
    await expectRefused(img, /\/root\/etc is a symlink/);
  });

  it('root/var is a relative link out of the dataset', async () => {
    const img = await image(async (top) => {
      await rm(join(top, 'root/var'), { recursive: true, force: true });
      await symlink(climbTo(bait.dir), join(top, 'root/var'));
    });
    await expectRefused(img, /\/root\/var is a symlink/);
  });

  it('root/usr -> /usr and root/proc -> ../../..: the chroot\'s mountpoints are refused before any mount', async () => {
    const usr = await image(async (top) => {
      await rm(join(top, 'root/usr'), { recursive: true, force: true });
      await symlink('/usr', join(top, 'root/usr'));
    });
    await expectRefused(usr, /\/root\/usr is a symlink \(to \/usr\)/);
    const proc = await image(async (top) => {
      await rm(join(top, 'root/proc'), { recursive: true, force: true });
      await symlink('../../..', join(top, 'root/proc'));
    });
    await expectRefused(proc, /\/root\/proc is a symlink \(to \.\.\/\.\.\/\.\.\)/);
  });

  it('links the build writes or removes through stay inside the image: a safe success', async () => {
    const img = await image(async (top) => {
      // pkgadd removes var/db/pkgin and config/; assemble writes etc/motd and fills opt/svc/.
      await rm(join(top, 'root/var/db/pkgin'), { recursive: true, force: true });
      await symlink(bait.dir, join(top, 'root/var/db/pkgin'));
      await rm(join(top, 'config'), { recursive: true, force: true });
      await symlink(climbTo(bait.dir), join(top, 'config'));
      await rm(join(top, 'root/etc/motd'), { force: true });
      await symlink(bait.secret, join(top, 'root/etc/motd'));
      await symlink(bait.dir, join(top, 'root/opt/svc'));
    });
    const { r, out } = await build(img, ['-M']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await mountsUnder(bait.dir), []);
    await bait.assertUntouched(r.stderr);
    await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir: w.workDir, outputDir: out, context: r.stderr });
  });

  it('root/var/db/pkg (written by the package tools in the chroot) aimed at the host: the bait is untouched', async () => {
    const img = await image(async (top) => {
      await rm(join(top, 'root/var/db/pkg'), { recursive: true, force: true });
      await symlink(climbTo(bait.dir), join(top, 'root/var/db/pkg'));
    });
    const { r, out } = await build(img, ['-p', 'libsigc++']);
    // A safe success, or one clear line: never a write to the host.
    if (r.code !== 0) assert.equal(errorLines(r).length, 1, r.stderr);
    assert.deepEqual(await mountsUnder(bait.dir), []);
    await bait.assertUntouched(r.stderr);
    await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir: w.workDir, outputDir: out, context: r.stderr });
  });

  it('a mountpoint turned into a link between stages is refused by the chroot itself, before any mount', async () => {
    const out = await w.outDir();
    const state = join(w.dir, `hostile-stages-${++n}.json`);
    const common = { env: w.env };
    let r = await cli(['prepare', '-i', w.base.uuid, '-d', proto, '-m', mf, '--output-dir', out, '--state', state, '--json'], common);
    assert.equal(r.code, 0, r.stderr);
    const root = join(JSON.parse(r.stdout).analog.mountpoint, 'root');
    r = await cli(['assemble', '--state', state], common);
    assert.equal(r.code, 0, r.stderr);
    await rm(join(root, 'proc'), { recursive: true, force: true });
    await symlink(climbTo(bait.dir), join(root, 'proc'));
    r = await cli(['pkgadd', '--state', state], common);
    assert.equal(r.code, 1, r.stderr);
    const lines = errorLines(r);
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0], /\/root\/proc is a symlink \(to (\.\.\/)+.*\), not a directory/);
    assert.deepEqual(await mountsUnder(root), [], 'nothing mounted in the image');
    assert.deepEqual(await mountsUnder(bait.dir), []);
    r = await cli(['clean', '--state', state], common);
    assert.equal(r.code, 0, r.stderr);
    await bait.assertUntouched();
    await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir: w.workDir, outputDir: out });
  });

  it('a work dir reached through a symlink: the chroot is still torn down (mounts are listed by their real paths)', async () => {
    const real = join(w.dir, `work-real-${++n}`);
    const via = join(w.dir, `work-via-${n}`);
    await mkdir(real);
    await symlink(real, via);
    const out = await w.outDir();
    const r = await cli(['-i', w.base.uuid, '-d', proto, '-m', mf, '--output-dir', out], { env: { ...w.env, BUILDIMAGE_WORK_DIR: via } });
    const left = await mountsUnder(real);
    for (const m of left.reverse()) await run('umount', ['-l', m]).catch(() => undefined);
    assert.deepEqual(left, [], 'no mount left');
    assert.equal(r.code, 0, r.stderr);
    await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir: real, outputDir: out, context: r.stderr });
  });

  it('device nodes and setuid files of the image do not work where the analog is mounted on the host (devices=off, setuid=off)', async () => {
    const img = await image(async (top) => {
      // A world-writable device node and a setuid-root shell: on the host, under the work dir, either would hand root to any user.
      await run('mknod', ['-m', '0666', join(top, 'root/hostdisk'), 'b', '7', '0']);
      await run('cp', ['/bin/sh', join(top, 'root/rootsh')]);
      await run('chmod', ['4755', join(top, 'root/rootsh')]);
    });
    const state = join(w.dir, `devices-${process.pid}.json`);
    const r = await cli(['prepare', '-i', img.uuid, '-d', proto, '-m', mf, '--output-dir', await w.outDir(), '--source', img.dir, '--state', state], { env: w.env });
    try {
      assert.equal(r.code, 0, r.stderr);
      const analog = (JSON.parse(await readFile(state, 'utf8')) as { analog: { dataset: string } }).analog.dataset;
      assert.deepEqual(await w.zfs.get(analog, ['devices', 'setuid']), { devices: 'off', setuid: 'off' });
    } finally {
      const c = await cli(['clean', '--state', state], { env: w.env });
      assert.equal(c.code, 0, c.stderr);
      await rm(state, { force: true });
    }
    await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir: w.workDir });
  });
});
