/**
 * `clean` after a build was killed: mounts, analog, build dir and temp files
 * go; datasets that are not ours stay, even when they look like ours.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setupChroot } from '../../src/host/chroot.js';
import { run } from '../../src/host/exec.js';
import { withRetry } from '../../src/core/retry.js';
import { isBusyError, OWNER_PROPERTY } from '../../src/host/zfs.js';
import { PHASE_PROPERTY } from '../../src/build/owned.js';
import { StateFile } from '../../src/build/state.js';
import { cli, errorLines } from '../helpers/cli.js';
import { assertNoLeaks, mountsUnder } from '../helpers/leaks.js';
import { world, type World } from '../helpers/world.js';

describe('clean', function () {
  this.timeout(5 * 60 * 1000);
  let w: World;
  let proto: string;
  before(async () => {
    w = await world();
    proto = join(w.dir, 'proto-clean');
    await mkdir(join(proto, 'opt'), { recursive: true });
    await writeFile(join(proto, 'opt/f'), 'f');
  });

  /** A build stopped after prepare+assemble with the chroot mounted, as a kill -9 in pkgadd leaves it. */
  async function killedBuild(statePath: string, out: string): Promise<StateFile> {
    const mf = JSON.stringify({ name: 'killed', version: '1' });
    let r = await cli(['prepare', '-i', w.origin.uuid, '-d', proto, '-m', mf, '--state', statePath, '--output-dir', out], { env: w.env });
    assert.equal(r.code, 0, r.stderr);
    r = await cli(['assemble', '--state', statePath], { env: w.env });
    assert.equal(r.code, 0, r.stderr);
    const sf = await StateFile.load(statePath);
    // What pkgadd's start marks before a kill -9 (else the analog says it waits for its next stage).
    await w.zfs.set(sf.state.analog!.dataset, { [PHASE_PROPERTY]: 'running' });
    await setupChroot(join(sf.state.analog!.mountpoint, 'root'), sf.state.chroot, () => sf.save());
    const temp = join(out, `.killed-zfs-1.zfs.gz.partial-${sf.state.buildId.slice(0, 8)}`);
    await writeFile(temp, 'half an image');
    sf.state.tempFiles.push(temp);
    await sf.save();
    assert.ok((await mountsUnder(sf.state.analog!.mountpoint)).length >= 5, 'chroot mounted');
    return sf;
  }

  it('--state undoes a build killed with the chroot mounted, and is safe to run twice', async () => {
    const out = await w.outDir();
    const statePath = join(w.dir, `clean-${randomUUID().slice(0, 8)}.json`);
    const sf = await killedBuild(statePath, out);
    let r = await cli(['clean', '--state', statePath, '--json'], { env: w.env });
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout);
    assert.deepEqual(report.destroyed, [sf.state.analog!.dataset]);
    assert.ok(report.unmounted.length >= 5);
    await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir: w.workDir, outputDir: out, images: [w.base.uuid, w.origin.uuid] });
    assert.equal(JSON.parse(await readFile(statePath, 'utf8')).cleaned, true);
    r = await cli(['clean', '--state', statePath], { env: w.env });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /0 datasets destroyed/);
  });

  it('--all removes leftovers of dead builds and never a dataset that is not ours', async () => {
    const out = await w.outDir();
    await killedBuild(join(w.dir, `all-${randomUUID().slice(0, 8)}.json`), out);
    // Look-alikes: an analog-shaped name and a -partial with no ownership property.
    const lookalike = `${w.datasetRoot}/${randomUUID()}`;
    const partialNotOurs = `${w.datasetRoot}/${randomUUID()}-partial`;
    await w.zfs.create(lookalike);
    await w.zfs.create(partialNotOurs);
    await w.zfs.set(lookalike, { 'com.example:note': 'someone else' });
    // Ours: a -partial left by an import killed after receive.
    const partialOurs = `${w.datasetRoot}/${randomUUID()}-partial`;
    await w.zfs.create(partialOurs);
    await w.zfs.markOwned(partialOurs, 'image');

    const r = await cli(['clean', '--all', '--json'], { env: w.env });
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout);
    assert.ok(report.destroyed.includes(partialOurs));
    assert.equal(await w.zfs.exists(partialOurs), false);
    assert.equal(await w.zfs.exists(lookalike), true, 'a dataset without our property survives');
    assert.equal(await w.zfs.exists(partialNotOurs), true);
    for (const img of [w.base.uuid, w.origin.uuid]) assert.ok(await w.zfs.exists(`${w.datasetRoot}/${img}@final`), 'cached images stay');
    assert.deepEqual(await mountsUnder(w.workDir), []);
    await assert.rejects(w.zfs.destroyOwned(lookalike), /not created by buildimage/);
    assert.equal(await w.zfs.exists(lookalike), true, 'destroyOwned refused it');
    // The look-alikes are the test's own: remove them with plain zfs.
    for (const ds of [lookalike, partialNotOurs]) {
      await withRetry(() => run('zfs', ['destroy', ds]), { attempts: 10, firstDelayMs: 200, retryable: isBusyError });
    }
    await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir: w.workDir, images: [w.base.uuid, w.origin.uuid] });
  });

  it('--all never destroys a dataset whose ownership is only inherited from a parent, nor does destroyOwned', async () => {
    // Someone set our property on the dataset root: every dataset below inherits it, ours or not.
    const stranger = `${w.datasetRoot}/${randomUUID()}`;
    const strangerPartial = `${w.datasetRoot}/${randomUUID()}-partial`;
    await w.zfs.create(stranger);
    await w.zfs.create(strangerPartial);
    await w.zfs.snapshot(`${stranger}@final`);
    try {
      for (const role of ['analog', 'image']) {
        await w.zfs.set(w.datasetRoot, { [OWNER_PROPERTY]: role });
        const r = await cli(['clean', '--all', '--json'], { env: w.env });
        assert.equal(r.code, 0, r.stderr);
        assert.deepEqual(JSON.parse(r.stdout).destroyed, [], `inherited ${role}`);
        for (const ds of [stranger, strangerPartial, `${stranger}@final`]) assert.equal(await w.zfs.exists(ds), true, `${ds} (inherited ${role})`);
        await assert.rejects(w.zfs.destroyOwned(stranger), /not created by buildimage/);
        await assert.rejects(w.zfs.destroyOwned(`${stranger}@final`), /not created by buildimage/);
      }
    } finally {
      await run('zfs', ['inherit', OWNER_PROPERTY, w.datasetRoot]);
      for (const ds of [stranger, strangerPartial]) {
        if (await w.zfs.exists(ds)) await withRetry(() => run('zfs', ['destroy', '-r', ds]), { attempts: 10, firstDelayMs: 200, retryable: isBusyError });
      }
    }
    await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir: w.workDir, images: [w.base.uuid, w.origin.uuid] });
  });

  it('never destroys a dataset someone else made below one of ours: the clean refuses in one line and leaves both; without it, it goes', async () => {
    const statePath = join(w.dir, `child-${randomUUID().slice(0, 8)}.json`);
    const out = await w.outDir();
    const sf = await killedBuild(statePath, out);
    const analog = sf.state.analog!.dataset;
    const stranger = `${analog}/theirs`;
    await w.zfs.create(stranger, { mountpoint: 'none' });
    let r = await cli(['clean', '--state', statePath], { env: w.env });
    assert.notEqual(r.code, 0, r.stderr);
    assert.ok(errorLines(r).some((l) => l.includes(`refusing to destroy ${analog}: ${stranger} below it was not created by buildimage`)), r.stderr);
    assert.equal(await w.zfs.exists(stranger), true);
    assert.equal(await w.zfs.exists(analog), true);
    // A child that is ours (the seal's origin view is one) goes with its parent.
    await withRetry(() => run('zfs', ['destroy', stranger]), { attempts: 10, firstDelayMs: 200, retryable: isBusyError });
    await w.zfs.create(stranger, { mountpoint: 'none', [OWNER_PROPERTY]: 'origin-view' });
    r = await cli(['clean', '--state', statePath], { env: w.env });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await w.zfs.exists(analog), false);
    await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir: w.workDir, images: [w.base.uuid, w.origin.uuid] });
  });

  it('refuses to clean a build whose process is running', async () => {
    const statePath = join(w.dir, `busy-${randomUUID().slice(0, 8)}.json`);
    const out = await w.outDir();
    const sf = await killedBuild(statePath, out);
    const { acquireLock } = await import('../../src/host/lock.js');
    const { Layout } = await import('../../src/core/layout.js');
    const lock = await acquireLock(new Layout(w.datasetRoot, w.workDir).buildLock(sf.state.buildId));
    try {
      const r = await cli(['clean', '--state', statePath], { env: w.env });
      assert.equal(r.code, 1);
      assert.match(r.stderr, /is running right now/);
      const all = await cli(['clean', '--all', '--json'], { env: w.env });
      assert.equal(all.code, 0, all.stderr);
      assert.ok(JSON.parse(all.stdout).skipped.includes(sf.state.analog!.dataset), '--all skips a running build');
      assert.ok(await w.zfs.exists(sf.state.analog!.dataset));
    } finally {
      await lock.release();
    }
    const r = await cli(['clean', '--state', statePath], { env: w.env });
    assert.equal(r.code, 0, r.stderr);
    await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir: w.workDir, outputDir: out, images: [w.base.uuid, w.origin.uuid] });
  });
});
