import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StateError } from '../../src/core/errors.js';
import { moveInto } from '../../src/core/files.js';
import { newState, StateFile, type BuildDefinition } from '../../src/build/state.js';

export const sampleDefinition: BuildDefinition = {
  imageUuid: '41bd4100-eb86-409a-85b0-e649aadf6f62',
  protoDir: '/tmp/proto',
  manifest: { name: 'x', version: '1.0.0' },
  packages: [],
  prefix: 'x-zfs',
  motd: false,
  audit: false,
  upgrade: false,
  source: '/tmp/images',
  datasetRoot: 'pool/images',
  outputDir: '/tmp',
  compression: 'gzip',
  workDir: '/var/tmp/buildimage',
};

describe('state file', () => {
  let dir: string;
  beforeEach(async () => (dir = await mkdtemp(join(tmpdir(), 'bi-state-'))));
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('round-trips atomically', async () => {
    const sf = new StateFile(join(dir, 'a/state.json'), newState(sampleDefinition));
    await sf.save();
    const again = await StateFile.load(sf.path);
    assert.deepEqual(again.state.definition, sampleDefinition);
    assert.equal(again.state.buildId, sf.state.buildId);
  });

  it('enforces stage order', () => {
    const sf = new StateFile('x', newState(sampleDefinition));
    assert.throws(() => sf.checkCanRun('assemble'), /prepare has not run yet/);
    sf.checkCanRun('prepare');
    sf.state.completed.push('prepare');
    assert.throws(() => sf.checkCanRun('prepare'), /already ran/);
    assert.throws(() => sf.checkCanRun('seal'), /assemble, pkgadd has not run yet/);
    sf.checkCanRun('assemble');
    sf.state.failed = { stage: 'assemble', message: 'boom', kept: false };
    assert.throws(() => sf.checkCanRun('assemble'), (e: unknown) => e instanceof StateError && /failed in assemble: boom/.test(String(e)));
    sf.state.failed = undefined;
    sf.state.cleaned = true;
    assert.throws(() => sf.checkCanRun('assemble'), /cleaned up/);
  });

  it('a kept failure may run its failed stage again, and nothing else; a kept prepare only cleans', () => {
    const sf = new StateFile('/w/s.json', newState(sampleDefinition));
    sf.state.completed.push('prepare', 'assemble');
    sf.state.failed = { stage: 'pkgadd', message: 'pkg_add: no such package', kept: true };
    assert.equal(sf.isRerun('pkgadd'), true);
    sf.checkCanRun('pkgadd');
    for (const other of ['seal', 'assemble', 'prepare'] as const) {
      assert.throws(
        () => sf.checkCanRun(other),
        (e: unknown) =>
          e instanceof StateError &&
          /failed in pkgadd and was kept for inspection: pkg_add: no such package/.test(e.message) &&
          e.hint === 'after the fix, run it again with `buildimage pkgadd --state /w/s.json`; or remove it with `buildimage clean --state /w/s.json`',
      );
    }
    sf.state.failed = { stage: 'prepare', message: 'bad base', kept: true };
    assert.equal(sf.isRerun('prepare'), false, 'a new prepare is a new build');
    assert.throws(() => sf.checkCanRun('prepare'), (e: unknown) => e instanceof StateError && /^remove it with `buildimage clean --state \/w\/s.json`, then prepare again$/.test(e.hint ?? ''));
    sf.state.failed = { stage: 'pkgadd', message: 'x', kept: true };
    sf.state.cleaned = true;
    assert.throws(() => sf.checkCanRun('pkgadd'), /cleaned up/);
  });

  it('a state file naming a stage that does not exist as the failed one is refused', async () => {
    const sf = new StateFile(join(dir, 's.json'), newState(sampleDefinition));
    await sf.save();
    const json = JSON.parse(await readFile(sf.path, 'utf8'));
    json.failed = { stage: 'pkgadd; rm -rf /', message: 'x', kept: true };
    await writeFile(sf.path, JSON.stringify(json), { mode: 0o600 });
    await assert.rejects(StateFile.load(sf.path), /not a buildimage state file \(failed.stage: /);
  });

  it('explains missing, corrupt and foreign state files in one line', async () => {
    await assert.rejects(StateFile.load(join(dir, 'none.json')), /no state file at/);
    await writeFile(join(dir, 'bad.json'), '{"version": 1, ');
    await assert.rejects(StateFile.load(join(dir, 'bad.json')), /corrupt \(not JSON\)/);
    await writeFile(join(dir, 'other.json'), JSON.stringify({ name: 'package.json?' }));
    await assert.rejects(StateFile.load(join(dir, 'other.json')), /not a buildimage state file/);
  });

  it('leaves no temp file behind', async () => {
    const sf = new StateFile(join(dir, 's.json'), newState(sampleDefinition));
    await sf.save();
    await sf.save();
    const { readdir } = await import('node:fs/promises');
    assert.deepEqual(await readdir(dir), ['s.json']);
    assert.ok(JSON.parse(await readFile(sf.path, 'utf8')).buildId);
  });
});

describe('moveInto', () => {
  it('moves across filesystems (work dir to a tmpfs output dir) and leaves no temp file', async function () {
    const { stat, readdir: rd } = await import('node:fs/promises');
    if (!(await stat('/dev/shm').catch(() => undefined))) this.skip();
    const src = await mkdtemp(join('/var/tmp', 'bi-move-'));
    const dst = await mkdtemp(join('/dev/shm', 'bi-move-'));
    try {
      assert.notEqual((await stat(src)).dev, (await stat(dst)).dev, 'two filesystems');
      await writeFile(join(src, 'r.json'), '{"a":1}');
      await moveInto(join(src, 'r.json'), join(dst, 'out.json'));
      assert.equal(await readFile(join(dst, 'out.json'), 'utf8'), '{"a":1}');
      assert.deepEqual(await rd(src), []);
      assert.deepEqual(await rd(dst), ['out.json']);
    } finally {
      await rm(src, { recursive: true, force: true });
      await rm(dst, { recursive: true, force: true });
    }
  });
});
