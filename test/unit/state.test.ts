import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StateError } from '../../src/core/errors.js';
import { moveInto } from '../../src/core/files.js';
import { hostname } from 'node:os';
import { layoutOf, newState, stateHolder, stateLockPath, StateFile, STAGES, type BuildDefinition, type BuildState } from '../../src/build/state.js';
import { LOCKFILE_VERSION } from '../../src/pkgsrc/lock.js';

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

describe('state file: every field it records, and what it refuses', () => {
  let dir: string;
  beforeEach(async () => (dir = await mkdtemp(join(tmpdir(), 'bi-state-'))));
  afterEach(() => rm(dir, { recursive: true, force: true }));

  /** A state with every field a build may record. */
  function fullState(): BuildState {
    const s = newState(sampleDefinition, '8e0cbf0e-aaaa-4bbb-8ccc-9dddeeeeffff');
    return {
      ...s,
      completed: ['prepare', 'assemble', 'pkgadd'],
      failed: { stage: 'seal', message: 'disk full', kept: true },
      cleaned: false,
      keepOnFailure: true,
      base: { uuid: 'b', name: 'base', version: '1', dataset: 'pool/images/b', imported: ['pool/images/b'], manifest: { uuid: 'b', v: 2 } },
      analog: { dataset: 'pool/images/x', mountpoint: '/w/builds/x/zone' },
      originView: { dataset: 'pool/images/x/origin', mountpoint: '/w/builds/x/origin' },
      contents: { digest: 'sha256:00', added: 1, changed: 2, deleted: 3 },
      chroot: { mounts: ['/w/builds/x/zone/root/dev'], createdDirs: ['/w/builds/x/zone/root/proc'] },
      tempFiles: ['/tmp/.x.partial-8e0cbf0e'],
      packagesInstalled: [{ name: 'curl-8.0', comment: 'a client' }],
      packagesResolved: { lockfileVersion: LOCKFILE_VERSION, upgrade: false, requested: ['curl'], packages: [{ name: 'curl', version: '8.0' }] },
      outputs: {
        image: '/o/x.zfs.gz',
        manifest: '/o/x.imgmanifest',
        packages: '/o/x.packages.json',
        audit: '/o/x.pkgaudit',
        auditJunit: '/o/x.audit.junit.xml',
        buildInfo: '/o/x.build-info.json',
        provenance: '/o/x.provenance.dsse.json',
        contents: '/o/x.contents.json.gz',
        sbomCyclonedx: '/o/x.cdx.json',
        sbomSpdx: '/o/x.spdx.json',
      },
      manifestUuid: 'm',
      timings: { prepare: 1.5, seal: 2 },
    };
  }

  it('a state with every field round-trips whole', async () => {
    const sf = new StateFile(join(dir, 's.json'), fullState());
    await sf.save();
    const again = await StateFile.load(sf.path);
    assert.deepEqual(again.state, sf.state);
    assert.equal(again.path, sf.path);
  });

  it('a minimal state file gets the defaults: not cleaned, not kept, no mounts, temp files or timings', async () => {
    const s = newState(sampleDefinition);
    const minimal = { version: 1, buildId: s.buildId, createdAt: s.createdAt, updatedAt: s.updatedAt, definition: s.definition, completed: [], failed: { stage: 'assemble', message: 'm' } };
    await writeFile(join(dir, 's.json'), JSON.stringify(minimal), { mode: 0o600 });
    const { state } = await StateFile.load(join(dir, 's.json'));
    assert.deepEqual(
      { cleaned: state.cleaned, keepOnFailure: state.keepOnFailure, chroot: state.chroot, tempFiles: state.tempFiles, timings: state.timings, failed: state.failed },
      { cleaned: false, keepOnFailure: false, chroot: { mounts: [], createdDirs: [] }, tempFiles: [], timings: {}, failed: { stage: 'assemble', message: 'm', kept: false } },
    );
    assert.deepEqual(newState(sampleDefinition).completed, []);
    assert.equal(newState(sampleDefinition).cleaned, false);
    assert.equal(newState(sampleDefinition).keepOnFailure, false);
  });

  it('the stages, in order', () => {
    assert.deepEqual([...STAGES], ['prepare', 'assemble', 'pkgadd', 'seal']);
  });

  it('refuses another version, a build id that is not a uuid, an unknown stage, and a file that is not an object, naming the field', async () => {
    const s = JSON.parse(JSON.stringify(newState(sampleDefinition))) as Record<string, unknown>;
    const refusal = async (json: unknown) => {
      await writeFile(join(dir, 's.json'), JSON.stringify(json), { mode: 0o600 });
      try {
        await StateFile.load(join(dir, 's.json'));
      } catch (err) {
        assert.ok(err instanceof StateError);
        return err.message;
      }
      assert.fail('expected a refusal');
    };
    const prefix = `state file ${join(dir, 's.json')} is not a buildimage state file`;
    assert.match(await refusal({ ...s, version: 2 }), new RegExp(`^${prefix} \\(version: `));
    assert.match(await refusal({ ...s, buildId: '../../etc' }), new RegExp(`^${prefix} \\(buildId: Invalid uuid\\)$`));
    assert.match(await refusal({ ...s, completed: ['prepare', 'deploy'] }), new RegExp(`^${prefix} \\(completed\\.1: `));
    assert.equal(await refusal([1]), `${prefix} (top: Expected object, received array)`);
  });

  it('a path it cannot read says why, with the hint to prepare first', async () => {
    await writeFile(join(dir, 'file'), 'x');
    const path = join(dir, 'file', 's.json');
    await assert.rejects(StateFile.load(path), (e: unknown) => {
      assert.ok(e instanceof StateError);
      assert.match(e.message, new RegExp(`^cannot read state file ${path}: ENOTDIR`));
      assert.equal(e.hint, 'run `buildimage prepare` first, or pass --state or set BUILDIMAGE_STATE');
      return true;
    });
    await assert.rejects(StateFile.load(join(dir, 'none.json')), (e: unknown) => e instanceof StateError && e.message === `no state file at ${join(dir, 'none.json')}`);
    await writeFile(join(dir, 'bad.json'), '{', { mode: 0o600 });
    await assert.rejects(
      StateFile.load(join(dir, 'bad.json')),
      (e: unknown) => e instanceof StateError && e.message === `state file ${join(dir, 'bad.json')} is corrupt (not JSON)` && e.hint === 'remove it and start again with `buildimage prepare`',
    );
  });

  it('a directory or a file others may write is refused with a hint to pass the right one; what save writes ends with a newline', async () => {
    const { mkdir, chmod } = await import('node:fs/promises');
    await mkdir(join(dir, 'd.json'));
    await assert.rejects(StateFile.load(join(dir, 'd.json')), (e: unknown) => e instanceof StateError && e.hint === 'pass the state file, not a directory');
    const sf = new StateFile(join(dir, 's.json'), newState(sampleDefinition));
    await sf.save();
    assert.ok((await readFile(sf.path, 'utf8')).endsWith('}\n'));
    await chmod(sf.path, 0o666);
    await assert.rejects(StateFile.load(sf.path), (e: unknown) => e instanceof StateError && e.hint === 'use a state file only buildimage (root or you) wrote');
  });

  it('save stamps updatedAt', async () => {
    const sf = new StateFile(join(dir, 's.json'), newState(sampleDefinition));
    sf.state.updatedAt = '2000-01-01T00:00:00.000Z';
    await sf.save();
    assert.notEqual(sf.state.updatedAt, '2000-01-01T00:00:00.000Z');
    assert.equal((await StateFile.load(sf.path)).state.updatedAt, sf.state.updatedAt);
  });

  it('the lock beside a state file, and who holds it', async () => {
    const path = join(dir, 's.json');
    assert.equal(stateLockPath(path), `${path}.lock`);
    assert.equal(await stateHolder(path), undefined);
    await writeFile(`${path}.lock`, JSON.stringify({ pid: process.pid, host: hostname(), since: new Date().toISOString() }));
    assert.equal(await stateHolder(path), process.pid);
    await writeFile(`${path}.lock`, JSON.stringify({ pid: process.pid, host: `not-${hostname()}`, since: new Date().toISOString() }));
    assert.equal(await stateHolder(path), undefined);
  });

  it('the layout of a build: its dataset root and work dir', () => {
    const l = layoutOf(newState({ ...sampleDefinition, datasetRoot: 'tank/bi', workDir: '/w' }));
    assert.equal(l.analogDataset('x'), 'tank/bi/x');
    assert.equal(l.buildDir('x'), '/w/builds/x');
  });

  it('a stage that failed without being kept is no rerun, and what a kept build says to do', () => {
    const sf = new StateFile('/w/s.json', newState(sampleDefinition));
    sf.state.completed.push('prepare');
    sf.state.failed = { stage: 'assemble', message: 'x', kept: false };
    assert.equal(sf.isRerun('assemble'), false);
    assert.equal(sf.keptHint(), 'after the fix, run it again with `buildimage assemble --state /w/s.json`; or remove it with `buildimage clean --state /w/s.json`');
    sf.state.failed = undefined;
    assert.equal(sf.isRerun('assemble'), false);
    assert.equal(sf.keptHint(), 'remove it with `buildimage clean --state /w/s.json`, then prepare again');
    assert.throws(() => sf.checkCanRun('pkgadd'), (e: unknown) => e instanceof StateError && e.message === `cannot run pkgadd: assemble has not run yet for build ${sf.state.buildId}` && e.hint === 'run `buildimage assemble` first');
    sf.state.failed = { stage: 'assemble', message: 'boom', kept: false };
    assert.throws(() => sf.checkCanRun('assemble'), (e: unknown) => e instanceof StateError && e.message === `build ${sf.state.buildId} failed in assemble: boom` && e.hint === 'run `buildimage clean` and start again');
    sf.state.failed = undefined;
    sf.state.completed.push('assemble');
    assert.throws(() => sf.checkCanRun('assemble'), (e: unknown) => e instanceof StateError && e.message === `stage assemble already ran for build ${sf.state.buildId}`);
    sf.state.cleaned = true;
    assert.throws(() => sf.checkCanRun('pkgadd'), (e: unknown) => e instanceof StateError && e.message === `build ${sf.state.buildId} was cleaned up; start a new one with \`buildimage prepare\``);
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
