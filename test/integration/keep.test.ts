/**
 * --keep-on-failure: a failed stage leaves the zone analog and the state
 * for inspection, runs again once the cause is fixed, and `clean` removes
 * it later; `clean --all` tells kept builds and builds waiting between
 * discrete stages from dead ones.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdir, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PHASE_PROPERTY } from '../../src/build/owned.js';
import { StateFile } from '../../src/build/state.js';
import { Layout } from '../../src/core/layout.js';
import { run } from '../../src/host/exec.js';
import { createPackage } from '../../testbed/packages.js';
import { cli, errorLines, startCli, type CliResult } from '../helpers/cli.js';
import { assertNoLeaks, mountsUnder } from '../helpers/leaks.js';
import { world, type World } from '../helpers/world.js';

describe('--keep-on-failure', function () {
  this.timeout(10 * 60 * 1000);
  let w: World;
  let proto: string;
  let layout: Layout;
  const mf = JSON.stringify({ name: 'keep', version: '1.0.0' });
  const images = () => [w.base.uuid, w.origin.uuid];
  const ok = (r: CliResult) => assert.equal(r.code, 0, r.stderr);

  before(async () => {
    w = await world();
    layout = new Layout(w.datasetRoot, w.workDir);
    proto = join(w.dir, 'proto-keep');
    await mkdir(join(proto, 'opt/keep'), { recursive: true });
    await writeFile(join(proto, 'opt/keep/app.js'), 'console.log(1)\n');
  });

  // A failed test leaves its kept builds: not the next test's leaks.
  afterEach(async function () {
    if (this.currentTest?.state === 'failed') await cli(['clean', '--all', '--include-kept'], { env: w.env });
  });

  /** A package name no repository has yet. */
  const newPackage = () => `keeppkg${randomUUID().slice(0, 6)}`;
  const addPackage = (name: string) =>
    createPackage(join(w.repoDir, 'All'), { name, version: '1.0', comment: 'late', description: 'Added after the first pkgadd failed.', files: [{ path: `share/${name}/README`, content: 'here now\n' }] });

  async function prepareAndAssemble(state: string, out: string, extra: string[] = []): Promise<StateFile> {
    ok(await cli(['prepare', '-i', w.origin.uuid, '-d', proto, '-m', mf, '--state', state, '--output-dir', out, ...extra], { env: w.env }));
    ok(await cli(['assemble', '--state', state], { env: w.env }));
    return StateFile.load(state);
  }

  it('a pkgadd missing a package is kept (analog, copied tree, state); pkgadd runs again once the package is there, and the image seals', async () => {
    const out = await w.outDir();
    const state = join(w.dir, `keep-${randomUUID().slice(0, 8)}.json`);
    const pkg = newPackage();
    // Given to prepare only: the build's later stages keep too.
    const sf = await prepareAndAssemble(state, out, ['-p', pkg, '--keep-on-failure']);
    const analog = sf.state.analog!;
    let r = await cli(['pkgadd', '--state', state], { env: w.env });
    assert.equal(r.code, 1, r.stderr);
    const lines = errorLines(r);
    assert.equal(lines.length, 1, r.stderr);
    assert.ok(lines[0].includes(`pkg_add -U ${pkg} failed (exit 1): pkg_add: no pkg found for '${pkg}', sorry.`), lines[0]);
    assert.ok(
      lines[0].endsWith(`(kept for inspection; after the fix, run it again with \`buildimage pkgadd --state ${state}\`; or remove it with \`buildimage clean --state ${state}\`)`),
      lines[0],
    );
    const kept = (await StateFile.load(state)).state;
    assert.deepEqual(kept.failed && { stage: kept.failed.stage, kept: kept.failed.kept }, { stage: 'pkgadd', kept: true });
    assert.equal(kept.cleaned, false);
    assert.equal(await w.zfs.getOne(analog.dataset, PHASE_PROPERTY), 'kept');
    assert.equal(await readFile(join(analog.mountpoint, 'root/opt/keep/app.js'), 'utf8'), 'console.log(1)\n', 'the copied tree is there');
    assert.deepEqual(await mountsUnder(analog.mountpoint), [analog.mountpoint], 'no chroot mount of the host stays');
    assert.deepEqual(kept.chroot.mounts, []);

    // Only the failed stage may run; a new prepare does not bury the kept build.
    r = await cli(['seal', '--state', state], { env: w.env });
    assert.equal(r.code, 2);
    assert.match(errorLines(r)[0], /failed in pkgadd and was kept for inspection/);
    r = await cli(['prepare', '-i', w.origin.uuid, '-d', proto, '-m', mf, '--state', state, '--output-dir', out], { env: w.env });
    assert.equal(r.code, 2);
    assert.match(errorLines(r)[0], /holds build .*, kept for inspection after pkgadd failed/);
    assert.ok(await w.zfs.exists(analog.dataset));

    // The mirror has it now.
    addPackage(pkg);
    r = await cli(['pkgadd', '--state', state], { env: w.env });
    ok(r);
    assert.match(r.stderr, /== pkgadd again \(kept after: .*pkg_add -U/);
    assert.match(r.stderr, /rolled .* back to .*@before-pkgadd/);
    r = await cli(['seal', '--state', state], { env: w.env });
    ok(r);
    const done = (await StateFile.load(state)).state;
    assert.deepEqual(done.completed, ['prepare', 'assemble', 'pkgadd', 'seal']);
    assert.equal(done.failed, undefined);
    const packages = JSON.parse(await readFile(done.outputs!.packages!, 'utf8')).packages.map((p: { name: string }) => p.name);
    assert.ok(packages.includes(`${pkg}-1.0`), packages.join(' '));
    assert.ok((await stat(done.outputs!.image)).size > 0);
    await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir: w.workDir, outputDir: out, images: images() });
  });

  it('`build --keep-on-failure` (no --state) keeps its state file in the work dir; `clean --state` removes the kept build', async () => {
    const out = await w.outDir();
    const pkg = newPackage();
    // The environment switch, read as every switch is.
    const r = await cli(['-i', w.origin.uuid, '-d', proto, '-m', mf, '-p', pkg, '--output-dir', out], { env: { ...w.env, BUILDIMAGE_KEEP_ON_FAILURE: 'yes' } });
    assert.equal(r.code, 1, r.stderr);
    const m = /run it again with `buildimage pkgadd --state ([^`]+)`/.exec(errorLines(r)[0]);
    assert.ok(m, r.stderr);
    const state = m[1];
    assert.ok(state.startsWith(join(w.workDir, 'states') + '/'), state);
    const { analog } = (await StateFile.load(state)).state;
    assert.ok(await w.zfs.exists(analog!.dataset));
    const c = await cli(['clean', '--state', state, '--json'], { env: w.env });
    ok(c);
    assert.deepEqual(JSON.parse(c.stdout).destroyed, [analog!.dataset]);
    await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir: w.workDir, outputDir: out, images: images() });
    assert.equal((await cli(['-i', w.origin.uuid, '-d', proto, '-m', mf, '--output-dir', out], { env: { ...w.env, BUILDIMAGE_KEEP_ON_FAILURE: 'maybe' } })).code, 2, 'a bad switch value is refused');
  });

  it('a kept seal (full output dir) runs again from before its @final once there is room', async () => {
    const out = join(w.dir, `tiny-${randomUUID().slice(0, 8)}`);
    await mkdir(out);
    await run('mount', ['-t', 'tmpfs', '-o', 'size=8k', 'tmpfs', out]);
    try {
      const state = join(w.dir, `seal-${randomUUID().slice(0, 8)}.json`);
      let r = await cli(['build', '--keep-on-failure', '--state', state, '-i', w.origin.uuid, '-d', proto, '-m', mf, '-p', 'webfetch', '--output-dir', out, '--compression', 'none'], { env: w.env });
      assert.equal(r.code, 1, r.stderr);
      const kept = (await StateFile.load(state)).state;
      assert.equal(kept.failed?.stage, 'seal');
      assert.deepEqual(kept.tempFiles, []);
      assert.deepEqual((await readdir(out)).filter((n) => n.includes('.partial-')), [], "seal's temp files are gone");
      assert.ok(await w.zfs.exists(layout.stageSnapshot(kept.buildId, 'seal')));
      await run('mount', ['-o', 'remount,size=256m', out]);
      r = await cli(['seal', '--state', state], { env: w.env });
      ok(r);
      assert.ok((await readdir(out)).some((n) => n.endsWith('.imgmanifest')));
      await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir: w.workDir, outputDir: out, images: images() });
    } finally {
      await run('umount', [out]);
      await rm(out, { recursive: true, force: true });
    }
  });

  it('`clean --all` removes a dead build but leaves kept ones and one waiting for its next stage; --include-kept removes those too', async () => {
    const out = await w.outDir();
    // Kept after a failed pkgadd.
    const keptState = join(w.dir, `all-kept-${randomUUID().slice(0, 8)}.json`);
    const kept = await prepareAndAssemble(keptState, out, ['-p', newPackage(), '--keep-on-failure']);
    assert.equal((await cli(['pkgadd', '--state', keptState], { env: w.env })).code, 1);
    // Waiting between discrete stages: its Jenkins job is about to run pkgadd.
    const waiting = await prepareAndAssemble(join(w.dir, `all-wait-${randomUUID().slice(0, 8)}.json`), out);
    // Dead: its pkgadd was killed (-9) mid-stage; nobody will continue it.
    const deadState = join(w.dir, `all-dead-${randomUUID().slice(0, 8)}.json`);
    const dead = await prepareAndAssemble(deadState, out, ['-p', 'greeter']);
    const b = startCli(['pkgadd', '--state', deadState], w.env, /== pkgadd/);
    await b.ready;
    b.child.kill('SIGKILL');
    await b.child;
    await new Promise((res) => setTimeout(res, 1000));

    let r = await cli(['clean', '--all', '--json'], { env: w.env });
    ok(r);
    let report = JSON.parse(r.stdout);
    assert.deepEqual(report.destroyed, [dead.state.analog!.dataset]);
    assert.deepEqual([...report.kept].sort(), [kept.state.analog!.dataset, waiting.state.analog!.dataset].sort());
    for (const sf of [kept, waiting]) {
      assert.ok(await w.zfs.exists(sf.state.analog!.dataset));
      assert.ok((await stat(join(sf.state.analog!.mountpoint, 'root/opt/keep/app.js'))).isFile(), 'build dir and analog stay');
    }
    r = await cli(['clean', '--all'], { env: w.env });
    assert.match(r.stdout, /2 kept \(kept or waiting for a stage, --include-kept removes them/);

    r = await cli(['clean', '--all', '--include-kept', '--json'], { env: w.env });
    ok(r);
    report = JSON.parse(r.stdout);
    assert.deepEqual([...report.destroyed].sort(), [kept.state.analog!.dataset, waiting.state.analog!.dataset].sort());
    await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir: w.workDir, outputDir: out, images: images() });
    assert.equal((await cli(['clean', '--include-kept', '--state', keptState], { env: w.env })).code, 2, '--include-kept goes with --all');
  });
});
