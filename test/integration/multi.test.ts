/**
 * A definition with several images (issue 16, items 1 and 2), on real ZFS:
 * three images built by one command two at a time, each base received
 * once however many images need it, every image's outputs, timings and
 * --json; a failing image that stops nothing else (and, with --fail-fast,
 * stops the others, each cleaned up); `plan --json` for a Jenkinsfile.
 */
import assert from 'node:assert/strict';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ManyBuildFailureSchema, ManyBuildResultSchema, PlanResultSchema } from '../../src/cli/schemas.js';
import { cli, errorLines, startCli } from '../helpers/cli.js';
import { assertNoLeaks } from '../helpers/leaks.js';
import { forgetImports, world, type World } from '../helpers/world.js';

async function proto(dir: string, name: string): Promise<string> {
  await mkdir(join(dir, 'opt/smartdc', name), { recursive: true });
  await writeFile(join(dir, 'opt/smartdc', name, 'server.js'), `// ${name}\n`);
  return dir;
}

describe('several images from one definition (integration)', function () {
  this.timeout(20 * 60 * 1000);
  let w: World;
  let dir: string;

  before(async () => {
    w = await world();
    dir = join(w.dir, 'multi');
    await mkdir(dir, { recursive: true });
  });

  /** A definition of `images` over shared defaults, written to a file of its own. */
  async function definition(file: string, images: Array<Record<string, unknown>>, shared: Record<string, unknown> = {}): Promise<string> {
    const path = join(dir, file);
    await writeFile(
      path,
      JSON.stringify({ image: w.origin.uuid, manifest: { version: '1.0.0', description: 'shared', tags: { smartdc_service: true } }, motd: true, ...shared, images }, null, 2),
    );
    return path;
  }

  it('builds 3 images in one command, 2 at a time: each base received once, each image its own outputs, log lines named, every image in the table and --json', async () => {
    await forgetImports(w);
    const out = await w.outDir();
    const def = await definition('three.json', [
      { name: 'api', dir: await proto(join(dir, 'p-api'), 'api'), manifest: { name: 'api', description: 'the api' } },
      { name: 'web', dir: await proto(join(dir, 'p-web'), 'web'), manifest: { name: 'web' }, packages: ['greeter'] },
      { name: 'plain', dir: await proto(join(dir, 'p-plain'), 'plain'), manifest: { name: 'plain' }, image: w.base.uuid, motd: false, prefix: 'plain-img' },
    ]);
    const r = await cli(['build', '--config', def, '--jobs', '2', '--output-dir', out, '--json'], { env: w.env });
    assert.equal(r.code, 0, r.stderr);
    const res = ManyBuildResultSchema.parse(JSON.parse(r.stdout));
    assert.deepEqual(res.images.map((i) => [i.name, i.status]), [['api', 'built'], ['web', 'built'], ['plain', 'built']]);
    assert.equal(res.jobs, 2);
    // One receive per base: the chain's two images are imported by exactly one of the three builds.
    const imported = res.images.flatMap((i) => i.result?.base?.imported ?? []);
    assert.deepEqual([...imported].sort(), [w.base.uuid, w.origin.uuid].sort(), `imported: ${JSON.stringify(imported)}`);
    assert.deepEqual(
      (await readdir(out)).filter((f) => f.endsWith('.imgmanifest')).sort(),
      ['api-zfs-1.0.0.imgmanifest', 'plain-img-1.0.0.imgmanifest', 'web-zfs-1.0.0.imgmanifest'],
    );
    // The manifest merged key by key: the image's description over the shared one, the shared tags kept.
    const api = JSON.parse(await readFile(join(out, 'api-zfs-1.0.0.imgmanifest'), 'utf8')) as Record<string, unknown>;
    const web = JSON.parse(await readFile(join(out, 'web-zfs-1.0.0.imgmanifest'), 'utf8')) as Record<string, unknown>;
    const plain = JSON.parse(await readFile(join(out, 'plain-img-1.0.0.imgmanifest'), 'utf8')) as Record<string, unknown>;
    assert.equal(api.description, 'the api');
    assert.equal(web.description, 'shared');
    assert.deepEqual(api.tags, { smartdc_service: true });
    assert.equal(plain.origin, w.base.uuid, 'its own base');
    assert.equal(api.origin, w.origin.uuid, 'the shared base');
    const webPkgs = JSON.parse(await readFile(join(out, 'web-zfs-1.0.0.packages.json'), 'utf8')) as unknown[];
    assert.ok(JSON.stringify(webPkgs).includes('greeter'), 'its own package list');
    // Log lines say whose they are; the table has a row per image.
    for (const n of ['api', 'web', 'plain']) {
      assert.match(r.stderr, new RegExp(`\\] ${n}: == seal`), `${n}'s stage lines are prefixed`);
      assert.match(r.stderr, new RegExp(`\\] ${n} +[\\d. -]+ +built$`, 'm'), `${n}'s row in the table`);
    }
    assert.match(r.stderr, /wall clock .* 2 at a time/);
    await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir: w.workDir, outputDir: out, context: r.stderr });
  });

  it('one failing image stops nothing else: the others build, one line names it, exit non-zero, --json has every image, nothing left', async () => {
    const out = await w.outDir();
    const def = await definition('one-fails.json', [
      { name: 'good', dir: await proto(join(dir, 'p-good'), 'good'), manifest: { name: 'good' } },
      { name: 'bad', dir: await proto(join(dir, 'p-bad'), 'bad'), manifest: { name: 'bad' }, packages: ['no-such-package'] },
      { name: 'also', dir: await proto(join(dir, 'p-also'), 'also'), manifest: { name: 'also' } },
    ]);
    const r = await cli(['build', '--config', def, '--jobs', '2', '--output-dir', out, '--json'], { env: w.env });
    assert.equal(r.code, 1, r.stderr);
    const res = ManyBuildFailureSchema.parse(JSON.parse(r.stdout));
    assert.deepEqual(res.images.map((i) => [i.name, i.status]), [['good', 'built'], ['bad', 'failed'], ['also', 'built']]);
    assert.equal(res.images[1].failedStage?.stage, 'pkgadd');
    assert.match(res.error.message, /^1 of 3 images failed: bad$/);
    const lines = r.stderr.split('\n').filter((l) => /ERROR: image \S+ (failed|stopped)/.test(l));
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0], /image bad failed: .*no-such-package/);
    assert.ok((await readdir(out)).includes('good-zfs-1.0.0.zfs.gz'));
    assert.ok(!(await readdir(out)).some((f) => f.startsWith('bad-')));
    await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir: w.workDir, outputDir: out, context: r.stderr });

    // Without --json: the one error line names it.
    const again = await cli(['build', '--config', def, '--only', 'bad', '--output-dir', out], { env: w.env });
    assert.equal(again.code, 1);
    assert.deepEqual(errorLines(again).length, 1);
    assert.match(errorLines(again)[0], /1 of 1 image failed: bad/);
  });

  it('--fail-fast: the first failure stops the running images (cleaned up) and starts no more', async () => {
    const out = await w.outDir();
    const def = await definition('fail-fast.json', [
      { name: 'slow1', dir: await proto(join(dir, 'p-s1'), 's1'), manifest: { name: 'slow1' }, packages: ['greeter'] },
      { name: 'fails', dir: await proto(join(dir, 'p-f'), 'f'), manifest: { name: 'fails' }, image: '00000000-0000-4000-8000-000000000000' },
      { name: 'queued', dir: await proto(join(dir, 'p-q'), 'q'), manifest: { name: 'queued' } },
    ]);
    const r = await cli(['build', '--config', def, '--jobs', '2', '--fail-fast', '--output-dir', out, '--json'], { env: w.env });
    assert.notEqual(r.code, 0, r.stderr);
    const res = ManyBuildFailureSchema.parse(JSON.parse(r.stdout));
    const status = Object.fromEntries(res.images.map((i) => [i.name, i.status]));
    assert.equal(status.fails, 'failed');
    assert.equal(status.queued, 'not started');
    assert.equal(status.slow1, 'stopped', r.stderr);
    assert.match(res.images[0].error?.message ?? '', /stopped: image fails failed \(--fail-fast\)/);
    assert.deepEqual(await readdir(out), []);
    await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir: w.workDir, outputDir: out, context: r.stderr });
  });

  it('one SIGTERM stops every running image (one handler, not a second signal), each cleaned up; exit 143, no leftovers', async () => {
    const out = await w.outDir();
    const def = await definition('signal.json', [
      { name: 's1', dir: await proto(join(dir, 'p-sig1'), 's1'), manifest: { name: 's1' }, packages: ['greeter'] },
      { name: 's2', dir: await proto(join(dir, 'p-sig2'), 's2'), manifest: { name: 's2' }, packages: ['greeter'] },
      { name: 's3', dir: await proto(join(dir, 'p-sig3'), 's3'), manifest: { name: 's3' } },
    ]);
    const run = startCli(['build', '--config', def, '--jobs', '2', '--output-dir', out], { BUILDIMAGE_LOG_LEVEL: 'info', ...w.env }, /s[12]: == pkgadd/);
    await run.ready;
    run.child.kill('SIGTERM');
    const r = await run.child;
    const err = run.stderr();
    assert.equal(r.exitCode, 143, err);
    assert.doesNotMatch(err, /received again|exiting without finishing cleanup/, 'one signal, answered once');
    assert.equal(err.split('\n').filter((l) => /SIGTERM received/.test(l)).length, 1, err);
    assert.match(err, /image s3 (not started|stopped)/);
    // No stage starts after the signal (the one running ends, or is stopped).
    assert.doesNotMatch(err.slice(err.indexOf('SIGTERM received')), /: == (assemble|pkgadd|seal)$/m, err);
    assert.deepEqual((await readdir(out)).filter((f) => f.endsWith('.imgmanifest')), []);
    await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir: w.workDir, outputDir: out, context: err });
  });

  it('the discrete stages take one image: prepare --only NAME, then assemble … seal on its state file', async () => {
    const out = await w.outDir();
    const def = await definition('stages.json', [
      { name: 'one', dir: await proto(join(dir, 'p-one'), 'one'), manifest: { name: 'one' } },
      { name: 'two', dir: await proto(join(dir, 'p-two'), 'two'), manifest: { name: 'two' } },
    ]);
    const state = join(dir, 'stages-state.json');
    const p = await cli(['prepare', '--config', def, '--only', 'two', '--state', state, '--output-dir', out], { env: w.env });
    assert.equal(p.code, 0, p.stderr);
    for (const stage of ['assemble', 'pkgadd', 'seal']) {
      const r = await cli([stage, '--state', state], { env: w.env });
      assert.equal(r.code, 0, r.stderr);
    }
    assert.deepEqual((await readdir(out)).filter((f) => f.endsWith('.imgmanifest')), ['two-zfs-1.0.0.imgmanifest']);
    await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir: w.workDir, outputDir: out });
  });

  it('plan --json lists each image (after --only) with its base, packages, proto, stem and estimated size', async () => {
    const def = await definition('plan.json', [
      { name: 'api', dir: await proto(join(dir, 'p-plan-api'), 'api'), manifest: { name: 'api' }, packages: ['greeter', 'daemonkit'] },
      { name: 'web', dir: join(dir, 'not-made-yet'), manifest: { name: 'web' } },
      { name: 'other', dir: join(dir, 'p-x'), manifest: { name: 'other' }, image: '00000000-0000-4000-8000-000000000000' },
    ]);
    const r = await cli(['plan', '--config', def, '--json'], { env: w.env });
    assert.equal(r.code, 0, r.stderr);
    const plan = PlanResultSchema.parse(JSON.parse(r.stdout));
    assert.deepEqual(plan.images.map((i) => i.name), ['api', 'web', 'other']);
    const [api, web, other] = plan.images;
    assert.equal(api.base.uuid, w.origin.uuid);
    assert.equal(api.base.installed, true);
    assert.equal(api.base.name, w.origin.name);
    assert.equal(api.base.version, w.origin.version);
    assert.deepEqual(api.packages, ['greeter', 'daemonkit']);
    assert.equal(api.stem, 'api-zfs-1.0.0');
    assert.equal(api.protoBytes, '// api\n'.length);
    assert.equal(api.estimatedBytes, api.protoBytes + api.base.bytes!);
    assert.equal(web.protoBytes, undefined, 'a proto not made yet has no size');
    assert.equal(other.base.installed, false);
    assert.equal(other.base.name, undefined);
    const only = await cli(['plan', '--config', def, '--only', 'web', '--image-version', 'master-1'], { env: w.env });
    assert.equal(only.code, 0, only.stderr);
    const rows = only.stdout.trim().split('\n');
    assert.equal(rows.length, 2, only.stdout);
    assert.match(rows[1], /^web +[0-9a-f-]{36} .*no packages +web-zfs-master-1 +\?$/);
  });
});
