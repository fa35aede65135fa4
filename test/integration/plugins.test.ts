/**
 * oclif plugins (issue 17 item 3): the example plugin in
 * examples/plugin-size-report is linked with the real CLI (`plugins link
 * --no-install`, oclif's data, config and cache dirs in temp dirs through
 * XDG_*), a real build fires its hooks (`stage:before` for seal measures the
 * image root, `build:done` writes the report), and `plugins uninstall`
 * unlinks it. A plugin whose hook throws: in stage:before it fails the
 * build in one line naming the plugin (with the normal cleanup); in
 * build:done it is a warning.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { cli, errorLines, REPO } from '../helpers/cli.js';
import { assertNoLeaks } from '../helpers/leaks.js';
import { world, type World } from '../helpers/world.js';

describe('oclif plugins', function () {
  this.timeout(10 * 60 * 1000);
  let w: World;
  let proto: string;
  let xdg: string;
  let env: Record<string, string>;
  const mf = JSON.stringify({ name: 'sized', version: '2.0.0' });

  before(async () => {
    w = await world();
    proto = join(w.dir, 'proto-plugins');
    await mkdir(join(proto, 'opt/app/lib'), { recursive: true });
    await writeFile(join(proto, 'opt/app/lib/big.bin'), Buffer.alloc(512 * 1024, 7));
    await writeFile(join(proto, 'opt/app/small'), 'x');
  });
  // Each test its own oclif dirs: a plugin one test leaves linked (it failed
  // before its unlink) must not run in the next.
  beforeEach(async () => {
    xdg = await mkdtemp(join(tmpdir(), 'buildimage-xdg-'));
    env = { ...w.env, XDG_DATA_HOME: join(xdg, 'data'), XDG_CONFIG_HOME: join(xdg, 'config'), XDG_CACHE_HOME: join(xdg, 'cache') };
  });
  afterEach(async () => {
    await rm(xdg, { recursive: true, force: true });
  });

  it('links the example plugin, whose hooks see a real build and write its size report; then unlinks it', async () => {
    let r = await cli(['plugins', 'link', '--no-install', join(REPO, 'examples/plugin-size-report')], { env });
    assert.equal(r.code, 0, r.stderr);
    r = await cli(['plugins'], { env });
    assert.match(r.stdout, /buildimage-plugin-size-report 1\.0\.0 \(link\)/);
    // Where oclif keeps what it linked: the data dir XDG_DATA_HOME names, never the repository.
    assert.match(await readFile(join(xdg, 'data/buildimage/package.json'), 'utf8'), /plugin-size-report/);

    const out = await w.outDir();
    const reports = join(w.dir, 'size-reports');
    await mkdir(reports, { recursive: true });
    r = await cli(['build', '-i', w.origin.uuid, '-d', proto, '-m', mf, '--output-dir', out, '--json'], { env: { ...env, SIZE_REPORT_DIR: reports } });
    assert.equal(r.code, 0, r.stderr);
    // stdout stays the build's JSON: the plugin says where its report went on stderr.
    assert.equal((JSON.parse(r.stdout) as { image: { outputs: { image: string } } }).image.outputs.image, join(out, 'sized-zfs-2.0.0.zfs.gz'));
    assert.match(r.stderr, new RegExp(`size report: ${reports}/sized-zfs-2\\.0\\.0\\.sizes\\.txt`));
    const report = await readFile(join(reports, 'sized-zfs-2.0.0.sizes.txt'), 'utf8');
    const lines = report.split('\n');
    assert.match(lines[0], /^# sized-zfs-2\.0\.0 \(image [0-9a-f-]{36}\): largest directories/);
    const size = (dir: string) => Number(new RegExp(`^\\s*(\\d+)  ${dir.replace(/\//g, '\\/')}$`, 'm').exec(report)?.[1]);
    // Real numbers: the proto's 512 KiB file and the one-byte one, under /opt/app.
    assert.ok(size('/opt/app/lib') >= 512 * 1024, report);
    assert.ok(size('/opt/app') >= size('/opt/app/lib') + 1, report);
    assert.ok(size('/opt') >= size('/opt/app'), report);
    assert.ok(Number(/^\s*(\d+) {2}\/ \(/m.exec(report)?.[1]) >= size('/opt'), report);
    // The plugin's file is not one of the build's outputs.
    assert.ok(!(await readdir(out)).some((f) => f.endsWith('.sizes.txt')));
    await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir: w.workDir, outputDir: out, context: r.stderr });

    r = await cli(['plugins', 'uninstall', 'buildimage-plugin-size-report'], { env });
    assert.equal(r.code, 0, r.stderr);
    r = await cli(['plugins'], { env });
    assert.match(r.stdout, /No plugins installed/);
  });

  it('a plugin whose stage:before hook throws fails the build in one line naming it, and cleans up; one whose build:done throws is a warning', async () => {
    const dir = join(w.dir, 'plugin-thrower');
    await mkdir(dir, { recursive: true });
    await writeFile(
      join(dir, 'package.json'),
      JSON.stringify({ name: 'buildimage-plugin-thrower', version: '0.0.1', type: 'module', oclif: { hooks: { 'stage:before': './before.js', 'build:done': './done.js' } } }),
    );
    await writeFile(join(dir, 'before.js'), "export default async function (o) { if (o.stage === process.env.THROW_AT) throw new Error('no ' + o.stage + ' today'); }\n");
    await writeFile(join(dir, 'done.js'), "export default async function (o) { try { o.outputs.image = '/etc/passwd'; } catch {} throw new Error('done went wrong'); }\n");
    let r = await cli(['plugins', 'link', '--no-install', dir], { env });
    assert.equal(r.code, 0, r.stderr);
    try {
      let out = await w.outDir();
      r = await cli(['build', '-i', w.origin.uuid, '-d', proto, '-m', mf, '--output-dir', out], { env: { ...env, THROW_AT: 'pkgadd' } });
      assert.equal(r.code, 1, r.stderr);
      assert.deepEqual(errorLines(r), [
        "buildimage: error: plugin buildimage-plugin-thrower's stage:before hook (pkgadd) failed: no pkgadd today (fix or remove the plugin (`buildimage plugins uninstall buildimage-plugin-thrower`))",
      ]);
      assert.deepEqual(await readdir(out), []);
      await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir: w.workDir, outputDir: out, context: r.stderr });

      out = await w.outDir();
      r = await cli(['build', '-i', w.origin.uuid, '-d', proto, '-m', mf, '--output-dir', out, '--json'], { env: { ...env, THROW_AT: 'none' } });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /plugin buildimage-plugin-thrower's build:done hook \(ok\) failed: done went wrong/);
      // The payload is the plugin's copy: changing it changes nothing of the build's.
      const result = JSON.parse(r.stdout) as { image: { outputs: { image: string } } };
      assert.equal(result.image.outputs.image, join(out, 'sized-zfs-2.0.0.zfs.gz'));
      await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir: w.workDir, outputDir: out, context: r.stderr });
    } finally {
      await cli(['plugins', 'uninstall', 'buildimage-plugin-thrower'], { env });
    }
  });
});
