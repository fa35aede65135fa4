/**
 * The package lock end to end on real ZFS and the sample repository: a
 * build writes the versions it resolved beside its buildimage.json; the
 * repository then gains newer releases, and `build --locked` still
 * installs the locked (older) ones while a build without it takes the
 * newer; a locked version withdrawn from the repository fails the build in
 * one line naming it, with nothing left behind.
 */
import assert from 'node:assert/strict';
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cli, errorLines, type CliResult } from '../helpers/cli.js';
import { assertNoLeaks } from '../helpers/leaks.js';
import { world, type World } from '../helpers/world.js';
import { SAMPLE_NEWER_PACKAGES, SAMPLE_PACKAGES, pkgname, writeRepository } from '../../testbed/packages.js';
import { parseLock } from '../../src/pkgsrc/lock.js';

describe('package lock (build --write-lock, --locked, buildimage lock)', function () {
  this.timeout(15 * 60 * 1000);
  let w: World;
  let comp: string;
  let config: string;
  let lockfile: string;

  /** What a build put in the image: the packages report's names. */
  async function imagePackages(out: string, stem = 'locked-zfs-1.0.0'): Promise<string[]> {
    const report = JSON.parse(await readFile(join(out, `${stem}.packages.json`), 'utf8')) as { packages: Array<{ name: string }> };
    return report.packages.map((p) => p.name);
  }

  async function build(args: string[], out: string): Promise<CliResult> {
    return cli(['build', '--config', config, '--output-dir', out, ...args], { env: w.env });
  }

  before(async () => {
    w = await world();
    comp = join(w.dir, 'lock-component');
    await mkdir(join(comp, 'proto/opt/smartdc/locked'), { recursive: true });
    await writeFile(join(comp, 'proto/opt/smartdc/locked/server.js'), 'console.log("locked")\n');
    config = join(comp, 'buildimage.json');
    lockfile = join(comp, 'buildimage.lock.json');
    await writeFile(
      config,
      JSON.stringify({ image: w.origin.uuid, dir: 'proto', manifest: { name: 'locked', version: '1.0.0' }, packages: ['greeter', 'daemonkit'], prefix: 'locked-zfs' }, null, 2),
    );
  });

  after(() => {
    // The world's repository as every other test knows it.
    writeRepository(w.repoDir, SAMPLE_PACKAGES);
  });

  it('writes the resolved versions beside buildimage.json, sorted, with the repository', async () => {
    const out = await w.outDir();
    const r = await build(['--write-lock'], out);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout.trim().split('\n').pop()!, new RegExp(`; package lock: ${lockfile}$`));
    const text = await readFile(lockfile, 'utf8');
    const lock = parseLock(JSON.parse(text), 'lockfile');
    // greeter-1.0 and libgreet-1.0 are in the base: greeter was upgraded by pkg_add -U, libgreet left as it was.
    assert.deepEqual(lock, {
      lockfileVersion: 1,
      repository: `${w.repoUrl}/All`,
      origin: w.origin.uuid,
      upgrade: false,
      requested: ['daemonkit', 'greeter'],
      packages: [
        { name: 'daemonkit', version: '2.3' },
        { name: 'greeter', version: '1.1' },
      ],
    });
    assert.equal(text, `${JSON.stringify(lock, null, 2)}\n`, 'written as it reads, keys in order');
    assert.deepEqual((await imagePackages(out)).filter((p) => /^(greeter|daemonkit|libgreet)-/.test(p)), ['daemonkit-2.3', 'greeter-1.1', 'libgreet-1.0']);
  });

  it('--locked installs the locked versions after the repository gained newer ones; without it the newer', async () => {
    writeRepository(w.repoDir, [...SAMPLE_PACKAGES, ...SAMPLE_NEWER_PACKAGES]);
    const lockedOut = await w.outDir();
    const locked = await build(['--locked'], lockedOut);
    assert.equal(locked.code, 0, locked.stderr);
    assert.match(locked.stderr, /pkg_add -U daemonkit-2\.3 greeter-1\.1/);
    assert.doesNotMatch(locked.stderr, /pkgin/);
    assert.deepEqual((await imagePackages(lockedOut)).filter((p) => /^(greeter|daemonkit|libgreet)-/.test(p)), ['daemonkit-2.3', 'greeter-1.1', 'libgreet-1.0']);

    const freshOut = await w.outDir();
    const fresh = await build([], freshOut);
    assert.equal(fresh.code, 0, fresh.stderr);
    // greeter-1.2 needs libgreet>=1.1: resolving anew pulls that in too.
    assert.deepEqual((await imagePackages(freshOut)).filter((p) => /^(greeter|daemonkit|libgreet)-/.test(p)), ['daemonkit-2.4', 'greeter-1.2', 'libgreet-1.1']);
    await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir: w.workDir, outputDir: freshOut });
  });

  it('fails in one line naming a locked version gone from the repository, before pkg_add changes the image, leaving nothing', async () => {
    const withdrawn = SAMPLE_PACKAGES.filter((p) => pkgname(p) !== 'greeter-1.1' && pkgname(p) !== 'daemonkit-2.3');
    writeRepository(w.repoDir, [...withdrawn, ...SAMPLE_NEWER_PACKAGES]);
    const out = await w.outDir();
    const r = await build(['--locked'], out);
    assert.equal(r.code, 1, r.stderr);
    const lines = errorLines(r);
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0], new RegExp(`^buildimage: error: locked package versions are gone from the repository ${w.repoUrl}/All: daemonkit-2\\.3, greeter-1\\.1 \\(`));
    assert.doesNotMatch(r.stderr, /pkg_add -U /, 'no package was installed');
    assert.deepEqual(await readdir(out), []);
    await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir: w.workDir, outputDir: out, context: r.stderr });
  });

  it('refuses a lock that does not fit the package list, naming the package, before anything is made', async () => {
    writeRepository(w.repoDir, SAMPLE_PACKAGES);
    const out = await w.outDir();
    const added = await build(['--locked', '-p', 'greeter,daemonkit,webfetch'], out);
    assert.equal(added.code, 2, added.stderr);
    assert.deepEqual(errorLines(added).length, 1);
    assert.match(errorLines(added)[0], new RegExp(`the package list \\(-p\\) has webfetch, which lockfile ${lockfile} does not lock`));
    const removed = await build(['--locked', '-p', 'greeter'], out);
    assert.equal(removed.code, 2);
    assert.match(errorLines(removed)[0], /locks daemonkit, which the package list \(-p\) no longer has/);
    const upgrade = await build(['--locked', '-u'], out);
    assert.equal(upgrade.code, 2);
    assert.match(errorLines(upgrade)[0], /was made without -u/);
    assert.deepEqual(await readdir(out), []);
    await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir: w.workDir, outputDir: out });
  });

  it('a build without packages locks none, and --locked builds it again', async () => {
    const bare = join(comp, 'bare.json');
    await writeFile(bare, JSON.stringify({ image: w.origin.uuid, dir: 'proto', manifest: { name: 'bare', version: '1' } }));
    const out = await w.outDir();
    const r = await cli(['build', '--config', bare, '--output-dir', out, '--write-lock'], { env: w.env });
    assert.equal(r.code, 0, r.stderr);
    const lock = parseLock(JSON.parse(await readFile(join(comp, 'bare.lock.json'), 'utf8')), 'lockfile');
    assert.deepEqual([lock.requested, lock.packages], [[], []]);
    const again = await w.outDir();
    const locked = await cli(['build', '--config', bare, '--output-dir', again, '--locked'], { env: w.env });
    assert.equal(locked.code, 0, locked.stderr);
    assert.deepEqual(await imagePackages(again, 'bare-zfs-1'), await imagePackages(out, 'bare-zfs-1'));
  });

  it('`buildimage lock --state` writes what a discrete build resolved (with -u: the upgrades too), and --locked reproduces it', async () => {
    writeRepository(w.repoDir, SAMPLE_PACKAGES);
    const state = join(comp, '.buildimage/state.json');
    const other = join(comp, 'upgrade.lock.json');
    const out = await w.outDir();
    const def = ['--config', config, '--output-dir', out, '-p', 'webfetch', '-u', '--prefix', 'locked-zfs'];
    for (const argv of [['prepare', ...def, '--state', state], ['assemble', '--state', state], ['pkgadd', '--state', state]]) {
      const r = await cli(argv, { env: w.env });
      assert.equal(r.code, 0, `${argv[0]}: ${r.stderr}`);
    }
    const r = await cli(['lock', '--state', state, '--lock-file', other, '--json'], { env: w.env });
    assert.equal(r.code, 0, r.stderr);
    // pkgin full-upgrade took greeter-1.0 (base) and gsed-4.8 (origin) to their newest: locked too.
    assert.deepEqual(JSON.parse(r.stdout).packages, ['greeter-1.1', 'gsed-4.9', 'webfetch-7.65.1']);
    const lock = parseLock(JSON.parse(await readFile(other, 'utf8')), 'lockfile');
    assert.equal(lock.upgrade, true);
    assert.deepEqual(lock.requested, ['webfetch']);
    assert.equal((await cli(['clean', '--state', state], { env: w.env })).code, 0);

    writeRepository(w.repoDir, [...SAMPLE_PACKAGES, ...SAMPLE_NEWER_PACKAGES]);
    const again = await w.outDir();
    const locked = await cli(['build', '--config', config, '--output-dir', again, '-p', 'webfetch', '-u', '--locked', '--lock-file', other], { env: w.env });
    assert.equal(locked.code, 0, locked.stderr);
    assert.doesNotMatch(locked.stderr, /pkgin/, 'a locked upgrade installs the locked versions, it does not run pkgin');
    const pkgs = (await imagePackages(again)).filter((p) => /^(greeter|gsed|libgreet|webfetch)-/.test(p));
    assert.deepEqual(pkgs, ['greeter-1.1', 'gsed-4.9', 'libgreet-1.0', 'webfetch-7.65.1'], 'the locked upgrades, not greeter-1.2 and libgreet-1.1');
    await rm(join(comp, '.buildimage'), { recursive: true, force: true });
    await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir: w.workDir, outputDir: again });
  });

  it('`buildimage lock --config` on a definition of several images: one line asking which lockfile, none written', async () => {
    const multi = join(comp, 'services.json');
    await writeFile(multi, JSON.stringify({ image: w.origin.uuid, dir: 'proto', images: [{ name: 'api', manifest: { name: 'api', version: '1' } }, { name: 'worker', manifest: { name: 'worker', version: '1' } }] }));
    const r = await cli(['lock', '--state', join(comp, 'no-state.json'), '--config', multi], { env: w.env });
    assert.equal(r.code, 2, r.stderr);
    const lines = errorLines(r);
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0], /services\.json defines 2 images \(api, worker\), each with its own lockfile/);
    assert.match(r.stderr, /--lock-file .*services\.api\.lock\.json/);
    assert.deepEqual((await readdir(comp)).filter((f) => f.startsWith('services') && f.endsWith('.lock.json')), []);
  });
});
