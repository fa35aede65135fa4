/**
 * build/owned: what a build owns, and a state file checked against it before
 * anything it names is touched. ZFS is a stand-in here (two answers: does the
 * analog exist, what do its properties say); the integration and hostile
 * suites run the same checks against real datasets.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { BuildError, StateError } from '../../src/core/errors.js';
import { checkedOutputs, checkOwned, isKeptPhase, makeWorkDir, outputPaths, PHASE_PROPERTY, sealTempPath, workDirParts } from '../../src/build/owned.js';
import { newState, type BuildState } from '../../src/build/state.js';
import { BUILD_PROPERTY, type Zfs } from '../../src/host/zfs.js';
import { sampleDefinition } from './state.test.js';

const ID = '0b5e4f7c-1111-4222-8333-944455556666';

/** The two questions checkOwned asks ZFS, answered from a table. */
function zfsSaying(datasets: Record<string, Record<string, string>>): Zfs {
  return {
    exists: (ds: string) => Promise.resolve(ds in datasets),
    getOne: (ds: string, prop: string) => Promise.resolve(datasets[ds]?.[prop] ?? '-'),
  } as unknown as Zfs;
}

async function refusal(p: Promise<unknown>, kind: typeof StateError | typeof BuildError = StateError): Promise<string> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof kind, String(err));
    assert.ok(!err.message.includes('\n'));
    return err.message;
  }
  assert.fail('expected a StateError');
}

describe('build/owned', () => {
  it('kept phases: waiting and kept, not running or anything else', () => {
    // Kept builds on an agent carry this property from earlier versions: a new name would orphan them for clean --all.
    assert.equal(PHASE_PROPERTY, 'com.tritondatacenter.buildimage:phase');
    assert.equal(isKeptPhase('waiting'), true);
    assert.equal(isKeptPhase('kept'), true);
    for (const v of ['running', '', '-', 'Kept']) assert.equal(isKeptPhase(v), false, v);
  });

  it('outputs: seal names every one from the prefix and version, the audit ones only with --audit', () => {
    const def = { ...sampleDefinition, outputDir: '/out', prefix: 'svc-zfs', manifest: { name: 'svc', version: '2.0' } };
    assert.deepEqual(outputPaths(def), {
      image: '/out/svc-zfs-2.0.zfs.gz',
      manifest: '/out/svc-zfs-2.0.imgmanifest',
      packages: '/out/svc-zfs-2.0.packages.json',
      buildInfo: '/out/svc-zfs-2.0.build-info.json',
      provenance: '/out/svc-zfs-2.0.provenance.dsse.json',
      contents: '/out/svc-zfs-2.0.contents.json.gz',
      sbomCyclonedx: '/out/svc-zfs-2.0.cdx.json',
      sbomSpdx: '/out/svc-zfs-2.0.spdx.json',
    });
    const audited = outputPaths({ ...def, audit: true, compression: 'xz' });
    assert.equal(audited.image, '/out/svc-zfs-2.0.zfs.xz');
    assert.equal(audited.audit, '/out/svc-zfs-2.0.pkgaudit');
    assert.equal(audited.auditJunit, '/out/svc-zfs-2.0.audit.junit.xml');
  });

  it('a seal temp name is hidden, beside its output, tagged with the build and 12 random hex digits', () => {
    const a = sealTempPath('/out/x-1.zfs.gz', ID);
    const b = sealTempPath('/out/x-1.zfs.gz', ID);
    assert.equal(dirname(a), '/out');
    assert.match(basename(a), /^\.x-1\.zfs\.gz\.partial-0b5e4f7c-[0-9a-f]{12}$/);
    assert.notEqual(a, b);
  });

  it('the work dir parts: locks, builds, states, and the build\'s own dir when named', () => {
    assert.deepEqual(workDirParts(), ['locks', 'builds', 'states']);
    assert.deepEqual(workDirParts(ID), ['locks', 'builds', 'states', `builds/${ID}`]);
  });

  describe('makeWorkDir', () => {
    let top: string;
    beforeEach(() => (top = mkdtempSync(join(tmpdir(), 'bi-owned-'))));
    afterEach(() => rmSync(top, { recursive: true, force: true }));

    it('makes the dir and its parts 0755 whatever the umask', async () => {
      const old = process.umask(0o002);
      try {
        await makeWorkDir(join(top, 'w'));
      } finally {
        process.umask(old);
      }
      for (const part of ['', 'locks', 'builds', 'states']) assert.equal(statSync(join(top, 'w', part)).mode & 0o777, 0o755, part || 'work dir');
      assert.deepEqual(readdirSync(join(top, 'w')).sort(), ['builds', 'locks', 'states']);
    });

    it('refuses a work dir others could write, and makes nothing in it', async () => {
      mkdirSync(join(top, 'w'));
      chmodSync(join(top, 'w'), 0o777);
      assert.equal(
        await refusal(makeWorkDir(join(top, 'w')), BuildError),
        `work dir ${join(top, 'w')} is writable by others (mode 0777); another user could change what buildimage does as root`,
      );
      assert.throws(() => statSync(join(top, 'w', 'locks')));
      await assert.rejects(makeWorkDir(join(top, 'w')), (e: BuildError) => e.hint === 'use a directory only root can write: remove it, or pass another --work-dir');
    });

    it('a file where a part goes is named with the flag', async () => {
      mkdirSync(join(top, 'w'));
      writeFileSync(join(top, 'w', 'states'), '');
      await assert.rejects(makeWorkDir(join(top, 'w')), (e: Error) => {
        assert.match(e.message, new RegExp(`^cannot create work directory ${join(top, 'w', 'states')} \\(--work-dir\\): exists and is not a directory`));
        return true;
      });
    });
  });

  describe('checkOwned', () => {
    let top: string;
    let state: BuildState;
    let root: string;
    const analog = 'pool/images/' + ID;
    const mountpoint = () => join(top, 'work', 'builds', ID, 'zone');
    const ours = () => zfsSaying({ [analog]: { [BUILD_PROPERTY]: ID, mountpoint: mountpoint() } });

    beforeEach(async () => {
      top = mkdtempSync(join(tmpdir(), 'bi-owned-'));
      await makeWorkDir(join(top, 'work'));
      mkdirSync(join(top, 'out'));
      state = newState({ ...sampleDefinition, workDir: join(top, 'work'), outputDir: join(top, 'out'), datasetRoot: 'pool/images' }, ID);
      root = join(mountpoint(), 'root');
      mkdirSync(join(root, 'dev'), { recursive: true });
    });
    afterEach(() => rmSync(top, { recursive: true, force: true }));

    it('a state that names nothing: the build dir and image root, nothing else', async () => {
      const o = await checkOwned(ours(), state);
      assert.deepEqual(o, { analog: undefined, root, chroot: { mounts: [], createdDirs: [] }, tempFiles: [], buildDir: join(top, 'work', 'builds', ID) });
    });

    it('the analog: only <dataset root>/<build id>, carrying this build\'s property, mounted where ZFS says', async () => {
      state.analog = { dataset: analog, mountpoint: mountpoint() };
      assert.deepEqual((await checkOwned(ours(), state)).analog, { dataset: analog, mountpoint: mountpoint() });
      // Not there (yet, or any more): nothing to act on.
      assert.equal((await checkOwned(zfsSaying({}), state)).analog, undefined);

      state.analog = { dataset: 'pool/other', mountpoint: mountpoint() };
      assert.equal(
        await refusal(checkOwned(ours(), state)),
        `state file of build ${ID} names zone analog pool/other, which this build does not own (its analog is ${analog}); nothing was done`,
      );
      state.analog = { dataset: analog, mountpoint: '/' };
      assert.equal(
        await refusal(checkOwned(ours(), state)),
        `state file of build ${ID} names analog mountpoint /, which this build does not own (its analog is mounted at ${mountpoint()}); nothing was done`,
      );
      state.analog = { dataset: analog, mountpoint: mountpoint() };
      assert.match(
        await refusal(checkOwned(zfsSaying({ [analog]: { [BUILD_PROPERTY]: 'another-build', mountpoint: mountpoint() } }), state)),
        new RegExp(`names zone analog ${analog}, which this build does not own \\(it does not carry build ${ID}'s ZFS property\\)`),
      );
      assert.match(
        await refusal(checkOwned(zfsSaying({ [analog]: { [BUILD_PROPERTY]: ID, mountpoint: '/etc' } }), state)),
        new RegExp(`names analog mountpoint ${mountpoint()}, which this build does not own \\(ZFS mounts ${analog} at /etc\\)`),
      );
    });

    it('the origin clone: only the analog\'s child, mounted in the build dir', async () => {
      state.originView = { dataset: `${analog}/origin`, mountpoint: join(top, 'work', 'builds', ID, 'origin') };
      await checkOwned(ours(), state);
      state.originView = { dataset: 'pool/images/x', mountpoint: join(top, 'work', 'builds', ID, 'origin') };
      assert.match(await refusal(checkOwned(ours(), state)), new RegExp(`names origin clone pool/images/x, which this build does not own \\(its origin clone is ${analog}/origin\\)`));
      state.originView = { dataset: `${analog}/origin`, mountpoint: '/mnt' };
      assert.match(await refusal(checkOwned(ours(), state)), /names origin clone mountpoint \/mnt, which this build does not own \(its origin clone is mounted at .*\/origin\)/);
    });

    it('chroot mounts and their dirs: inside the image root, resolved', async () => {
      state.chroot = { mounts: [join(root, 'dev')], createdDirs: [join(root, 'dev')] };
      assert.deepEqual((await checkOwned(ours(), state)).chroot, { mounts: [join(root, 'dev')], createdDirs: [join(root, 'dev')] });
      state.chroot = { mounts: ['/dev'], createdDirs: [] };
      await assert.rejects(checkOwned(ours(), state), (e: StateError) => e.hint === 'a state file changed by hand or by someone else is not acted on: clean up with `buildimage clean --all`');
      assert.equal(
        await refusal(checkOwned(ours(), state)),
        `state file of build ${ID} names chroot mount /dev, which this build does not own (not inside the image root ${root}); nothing was done`,
      );
      state.chroot = { mounts: [], createdDirs: [join(root, '..', 'x')] };
      assert.match(await refusal(checkOwned(ours(), state)), /names chroot mountpoint dir .*, which this build does not own \(not inside the image root/);
    });

    it('temp files: directly in the output dir, under the names seal gives them', async () => {
      const out = join(top, 'out');
      const image = outputPaths(state.definition).image;
      const temp = sealTempPath(image, ID);
      state.tempFiles = [temp, `${join(out, '.')}/.${basename(image)}.partial-${ID.slice(0, 8)}`];
      assert.deepEqual((await checkOwned(ours(), state)).tempFiles, [temp, join(out, `.${basename(image)}.partial-${ID.slice(0, 8)}`)]);
      const refusedTemp = async (t: string) => {
        state.tempFiles = [t];
        return refusal(checkOwned(ours(), state));
      };
      mkdirSync(join(out, 'sub'));
      assert.match(await refusedTemp(join(out, 'sub', basename(temp))), /names temp file .*, which this build does not own \(not directly in the output dir /);
      assert.match(await refusedTemp('/etc/passwd'), /not directly in the output dir/);
      for (const name of [
        'x-1.zfs.gz',
        `.${basename(image)}.partial-ffffffff-0123456789ab`, // another build's
        `.${basename(image)}.partial-${ID.slice(0, 8)}-0123456789`, // random part too short
        `.${basename(image)}.partial-${ID.slice(0, 8)}-0123456789abx`,
        `.${basename(image)}.partial-${ID.slice(0, 8)}-0123456789AB`,
        `.${basename(image)}.partial-${ID.slice(0, 8)}-zz0123456789ab`, // 12 hex digits at the end only
        `.${basename(image)}.partial-${ID.slice(0, 8)}x0123456789ab`,
        `.other.zfs.gz.partial-${ID.slice(0, 8)}-0123456789ab`,
      ]) {
        assert.match(await refusedTemp(join(out, name)), /names temp file .*, which this build does not own \(not a name seal gives its temp files\)/, name);
      }
    });
  });

  it('a build whose output dir is gone can still be cleaned and published from: its names are checked as written', async () => {
    const top = mkdtempSync(join(tmpdir(), 'bi-owned-'));
    try {
      await makeWorkDir(join(top, 'work'));
      const gone = join(top, 'gone');
      const s = newState({ ...sampleDefinition, workDir: join(top, 'work'), outputDir: gone, datasetRoot: 'pool/images' }, ID);
      const temp = sealTempPath(outputPaths(s.definition).image, ID);
      s.tempFiles = [temp];
      assert.deepEqual((await checkOwned(zfsSaying({}), s)).tempFiles, [temp]);
      const want = outputPaths(s.definition);
      s.outputs = { image: want.image, manifest: want.manifest };
      assert.deepEqual(await checkedOutputs(s), [want.image, want.manifest]);
    } finally {
      rmSync(top, { recursive: true, force: true });
    }
  });

  describe('checkedOutputs', () => {
    let top: string;
    let state: BuildState;
    beforeEach(() => {
      top = mkdtempSync(join(tmpdir(), 'bi-owned-'));
      state = newState({ ...sampleDefinition, outputDir: top }, ID);
    });
    afterEach(() => rmSync(top, { recursive: true, force: true }));

    it('each output exactly where seal writes it, a regular file (or not there)', async () => {
      const want = outputPaths(state.definition);
      writeFileSync(want.image, 'image');
      state.outputs = { image: want.image, manifest: want.manifest };
      assert.deepEqual(await checkedOutputs(state), [want.image, want.manifest]);
      state.outputs = undefined;
      assert.deepEqual(await checkedOutputs(state), []);
    });

    it('refuses another path, a link and a directory in one line', async () => {
      const want = outputPaths(state.definition);
      state.outputs = { image: '/etc/shadow', manifest: want.manifest };
      assert.equal(
        await refusal(checkedOutputs(state)),
        `state file of build ${ID} names output (image) /etc/shadow, which this build does not own (seal writes it as ${want.image}); nothing was done`,
      );
      state.outputs = { image: want.image, manifest: want.manifest, bogus: '/x' } as BuildState['outputs'];
      assert.match(await refusal(checkedOutputs(state)), /names output \(bogus\) \/x, which this build does not own \(seal writes it as nothing\)/);
      symlinkSync('/etc/passwd', want.image);
      state.outputs = { image: want.image, manifest: want.manifest };
      assert.match(await refusal(checkedOutputs(state)), /names output \(image\) .*\(it is a symlink\)/);
      rmSync(want.image);
      mkdirSync(want.image);
      assert.match(await refusal(checkedOutputs(state)), /names output \(image\) .*\(not a regular file\)/);
    });

    it('refuses an output dir that is a link leading elsewhere', async () => {
      const real = mkdtempSync(join(tmpdir(), 'bi-owned-real-'));
      try {
        const linked = join(top, 'out');
        symlinkSync(real, linked);
        const s = newState({ ...sampleDefinition, outputDir: linked }, ID);
        const want = outputPaths(s.definition);
        s.outputs = { image: want.image, manifest: want.manifest };
        // The link is the output dir itself: what seal wrote is inside it.
        assert.deepEqual(await checkedOutputs(s), [join(real, basename(want.image)), join(real, basename(want.manifest))]);
      } finally {
        rmSync(real, { recursive: true, force: true });
      }
    });
  });
});
