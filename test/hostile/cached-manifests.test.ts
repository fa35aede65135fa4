/**
 * Hostile kept manifests (issue 13, item 1): the manifest buildimage keeps
 * beside an installed image (`<work>/images/<uuid>.imgmanifest`) is read
 * instead of asking the source, so it is an input too. Tampered (another
 * image's uuid, not JSON, a link or hard link to the host's secret, a FIFO,
 * the whole directory a link to the host), it is ignored with a warning
 * that names the file and never its content; the source is asked, the
 * build succeeds on the right base, the kept manifest is replaced by the
 * right one (never written through a link), and the host (bait) is as it
 * was.
 */
import assert from 'node:assert/strict';
import { link, lstat, mkdir, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Layout } from '../../src/core/layout.js';
import { run } from '../../src/host/exec.js';
import { cli, type CliResult } from '../helpers/cli.js';
import { layBait, type Bait } from '../helpers/hostile.js';
import { assertNoLeaks } from '../helpers/leaks.js';
import { world, type World } from '../helpers/world.js';

describe('hostile: kept manifests of installed images', function () {
  this.timeout(10 * 60 * 1000);
  let w: World;
  let bait: Bait;
  let layout: Layout;
  let proto: string;
  let kept: string;
  const mf = JSON.stringify({ name: 'hostile-kept', version: '1.0.0' });

  before(async () => {
    w = await world();
    bait = await layBait('bait-kept');
    layout = new Layout(w.datasetRoot, w.workDir);
    kept = layout.installedManifest(w.origin.uuid);
    proto = join(w.dir, 'proto-hostile-kept');
    await mkdir(join(proto, 'opt/svc'), { recursive: true });
    await writeFile(join(proto, 'opt/svc/app.js'), 'x\n');
    // The sample chain installed (and its manifests kept) by a build.
    const { r } = await build();
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(await readFile(kept, 'utf8')).uuid, w.origin.uuid);
  });
  after(async () => {
    await rm(layout.manifestDir, { force: true }).catch(() => undefined);
    await bait.remove();
  });

  async function build(): Promise<{ r: CliResult; out: string }> {
    const out = await w.outDir();
    const r = await cli(['-i', w.origin.uuid, '-d', proto, '-m', mf, '--output-dir', out, '--source', w.sampleDir], { env: w.env });
    return { r, out };
  }

  /** The build succeeds on the right base, having warned `why` about `what` and asked the source. */
  async function expectIgnored(what: string, why: RegExp): Promise<void> {
    const { r, out } = await build();
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, new RegExp(`WARN: ignoring ${what}: ${why.source}`), r.stderr);
    assert.match(r.stderr, new RegExp(`image ${w.origin.uuid} \\(triton-origin-sample@[^)]+\\) already imported`), 'the source was asked');
    assert.doesNotMatch(r.stderr, /no source asked/);
    // Not even the start of it (JSON.parse's own message would quote "-----BEGIN"...).
    assert.doesNotMatch(r.stderr, /-----BEGIN|OPENSSH/, 'the secret is never echoed');
    for (const name of await readdir(out)) {
      const text = await readFile(join(out, name), 'latin1');
      assert.ok(!text.includes(bait.secretText.trim()), `${name} holds the secret`);
    }
    const m = JSON.parse(await readFile(join(out, 'hostile-kept-zfs-1.0.0.imgmanifest'), 'utf8'));
    assert.equal(m.origin, w.origin.uuid, 'built on the right base');
    await bait.assertUntouched(r.stderr);
    await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir: w.workDir, outputDir: out, context: r.stderr });
  }

  /** The kept manifest is the right one again, a regular file of its own. */
  async function expectRestored(): Promise<void> {
    const st = await lstat(kept);
    assert.ok(st.isFile() && st.nlink === 1, 'a regular file of its own');
    assert.equal(JSON.parse(await readFile(kept, 'utf8')).uuid, w.origin.uuid);
    const { r } = await build();
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /no source asked/);
  }

  const tamper = async (make: () => Promise<unknown>) => {
    await rm(kept, { recursive: true, force: true });
    await make();
  };

  it('another image\'s manifest', async () => {
    await tamper(async () => writeFile(kept, await readFile(layout.installedManifest(w.base.uuid))));
    await expectIgnored(kept, new RegExp(`names image ${w.base.uuid}, not ${w.origin.uuid}`));
    await expectRestored();
  });

  it('not JSON: the host\'s secret copied in', async () => {
    // From "OPENSSH": JSON.parse's own message would quote the start of it.
    await tamper(() => writeFile(kept, bait.secretText.slice(bait.secretText.indexOf('OPENSSH'))));
    await expectIgnored(kept, /is not JSON/);
    await expectRestored();
  });

  it('a symlink to the host\'s secret: not followed, replaced, the secret untouched', async () => {
    await tamper(() => symlink(bait.secret, kept));
    await expectIgnored(kept, /is a symlink/);
    await expectRestored();
  });

  it('a hard link to the host\'s secret: read as not JSON, replaced by rename (the secret keeps its content)', async () => {
    await tamper(() => link(bait.secret, kept));
    await expectIgnored(kept, /is not JSON/);
    await expectRestored();
  });

  it('a FIFO: no hang', async () => {
    await tamper(() => run('mkfifo', [kept]));
    await expectIgnored(kept, /is not a regular file/);
    await expectRestored();
  });

  it('the manifest directory a link to the host: neither read nor written through', async () => {
    const real = `${layout.manifestDir}.real`;
    await rm(real, { recursive: true, force: true });
    await run('mv', [layout.manifestDir, real]);
    // The host holds a valid-looking manifest for the image: it must not be used, nor anything written there.
    await writeFile(join(bait.dir, `${w.origin.uuid}.imgmanifest`), await readFile(join(real, `${w.origin.uuid}.imgmanifest`)));
    const before = await readFile(join(bait.dir, `${w.origin.uuid}.imgmanifest`), 'utf8');
    await symlink(bait.dir, layout.manifestDir);
    try {
      const { r } = await build();
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, new RegExp(`WARN: ignoring ${layout.manifestDir}: it is a symlink`));
      assert.match(r.stderr, /WARN: cannot keep the manifest of image .* is a symlink/);
      assert.doesNotMatch(r.stderr, /no source asked/);
      assert.equal(await readFile(join(bait.dir, `${w.origin.uuid}.imgmanifest`), 'utf8'), before);
      assert.deepEqual((await readdir(bait.dir)).sort(), ['etc', 'id_rsa', `${w.origin.uuid}.imgmanifest`, 'usr'].sort(), 'nothing new on the host');
    } finally {
      await rm(layout.manifestDir, { force: true });
      await rm(join(bait.dir, `${w.origin.uuid}.imgmanifest`), { force: true });
      await run('mv', [real, layout.manifestDir]);
    }
    await bait.assertUntouched();
    await expectRestored();
  });
});
