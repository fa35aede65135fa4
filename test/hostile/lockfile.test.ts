/**
 * Hostile package lockfiles (issue 15, item 5), through the real CLI as
 * root. The lockfile sits in a component's workspace beside
 * buildimage.json, and its names become pkg_add arguments in the image's
 * chroot: a link, a FIFO, a huge file, names that are options or paths,
 * versions that are not versions, a lock for another package list: each is
 * one error line and exit 2 before anything is made, and the host (bait)
 * is untouched and never echoed. A lock in a forged state file
 * (`pkgadd`, `buildimage lock`) is checked the same way, and --write-lock
 * or `lock` replace a link planted at the lockfile, never write through it.
 */
import assert from 'node:assert/strict';
import { lstat, mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../../src/host/exec.js';
import { MAX_LOCKED_PACKAGES, MAX_LOCKFILE_BYTES } from '../../src/pkgsrc/lock.js';
import { cli, errorLines, type CliResult } from '../helpers/cli.js';
import { layBait, type Bait } from '../helpers/hostile.js';
import { assertNoLeaks } from '../helpers/leaks.js';
import { world, type World } from '../helpers/world.js';

/** One error line, the exit code, and the line says why. */
function assertRefused(r: CliResult, code: number, why: RegExp): void {
  assert.equal(r.code, code, `exit ${code}\n${r.stderr}`);
  const lines = errorLines(r);
  assert.equal(lines.length, 1, `one error line\n${r.stderr}`);
  assert.match(lines[0], why, r.stderr);
}

const good = {
  lockfileVersion: 1,
  upgrade: false,
  requested: ['daemonkit'],
  packages: [{ name: 'daemonkit', version: '2.3' }],
};

describe('hostile: package lockfiles', function () {
  this.timeout(10 * 60 * 1000);
  let w: World;
  let bait: Bait;
  let comp: string;
  let config: string;
  let lockfile: string;
  let out: string;

  before(async () => {
    w = await world();
    bait = await layBait('lockfile-bait');
    comp = join(w.dir, 'hostile-lock-component');
    await mkdir(join(comp, 'proto/opt'), { recursive: true });
    await writeFile(join(comp, 'proto/opt/f'), 'f\n');
    config = join(comp, 'buildimage.json');
    lockfile = join(comp, 'buildimage.lock.json');
    await writeFile(config, JSON.stringify({ image: w.origin.uuid, dir: 'proto', manifest: { name: 'hlock', version: '1' }, packages: ['daemonkit'] }));
    out = await w.outDir();
  });
  after(async () => {
    await bait?.assertUntouched();
    await bait?.remove();
  });

  async function lockedBuild(): Promise<CliResult> {
    return cli(['build', '--config', config, '--locked', '--output-dir', out], { env: w.env, timeoutMs: 120_000 });
  }

  async function plant(content: string | ((path: string) => Promise<void>)): Promise<void> {
    await rm(lockfile, { force: true, recursive: true });
    if (typeof content === 'string') await writeFile(lockfile, content);
    else await content(lockfile);
  }

  const entry = (over: Record<string, unknown>) => JSON.stringify({ ...good, packages: [{ name: 'daemonkit', version: '2.3', ...over }] });
  const cases: Array<[string, string | ((p: string) => Promise<void>), RegExp]> = [
    ['a symlink to a host secret', (p) => symlink(bait.secret, p), /cannot read lockfile .*: it is a symbolic link/],
    ['a symlink to a valid lock', async (p) => {
      await writeFile(join(comp, 'elsewhere.lock.json'), JSON.stringify(good));
      await symlink(join(comp, 'elsewhere.lock.json'), p);
    }, /it is a symbolic link/],
    ['a FIFO', async (p) => void (await run('mkfifo', [p])), /cannot read lockfile .*: not a regular file/],
    ['a directory', (p) => mkdir(p), /cannot read lockfile .*: not a regular file/],
    ['missing', async () => undefined, /cannot read lockfile .*: no such file \(write one with `buildimage build --write-lock`/],
    ['larger than the limit', 'x'.repeat(MAX_LOCKFILE_BYTES + 1), /lockfile .* is larger than 1048576 bytes/],
    ['not JSON (with a secret in it: never echoed)', '{"lockfileVersion": 1, "x"', /lockfile .* is not valid JSON( \(line 1, column \d+\))?$/],
    ['an unknown key', JSON.stringify({ ...good, scripts: { postinstall: 'rm -rf /' } }), /not a buildimage lockfile \(top: Unrecognized key\(s\) in object: 'scripts'\)/],
    ['another lockfileVersion', JSON.stringify({ ...good, lockfileVersion: 2 }), /has lockfileVersion 2; this buildimage reads version 1/],
    ['a name that is a pkg_add option', entry({ name: '-K/tmp' }), /invalid package name "-K\/tmp" in lockfile .*: only letters/],
    ['a name starting with "-"', entry({ name: '-f' }), /invalid package name "-f" in lockfile .*: it must not start with "-"/],
    ['a name with shell characters', entry({ name: 'daemonkit;touch /x' }), /invalid package name "daemonkit;touch \/x" in lockfile/],
    ['a name that is a path', entry({ name: '..' }), /invalid package name "\.\." in lockfile/],
    ['a version that is a path', entry({ version: '2.3/../../../etc/passwd' }), /invalid version "2\.3\/\.\.\/\.\.\/\.\.\/etc\/passwd" of daemonkit in lockfile/],
    ['a version with a "-" (another package)', entry({ version: '2-3' }), /invalid version "2-3" of daemonkit/],
    ['a version with a newline', entry({ version: '2.3\n-f' }), /invalid version "2\.3\\n-f" of daemonkit/],
    ['a name of 10000 characters', entry({ name: 'a'.repeat(10_000) }), /not a buildimage lockfile \(packages\.0\.name: String must contain at most 255 character/],
    ['too many packages', JSON.stringify({ ...good, packages: Array.from({ length: MAX_LOCKED_PACKAGES + 1 }, (_, i) => ({ name: `p${i}`, version: '1' })) }), /not a buildimage lockfile \(packages: Array must contain at most 5000/],
    ['a package locked twice', JSON.stringify({ ...good, packages: [...good.packages, { name: 'daemonkit', version: '2.4' }] }), /locks daemonkit twice/],
    ['a dependency it does not lock', entry({ depends: ['../../x'] }), /daemonkit depends on "\.\.\/\.\.\/x", which it does not lock/],
    ['a request it locks no version of', JSON.stringify({ ...good, requested: ['daemonkit', 'greeter'] }), /asks for greeter but locks no version of it/],
    ['another package list than -p', JSON.stringify({ ...good, requested: ['webfetch'], packages: [{ name: 'webfetch', version: '7.64.0' }] }), /the package list \(-p\) has daemonkit, which lockfile .* does not lock/],
    ['not an object', '[]', /not a buildimage lockfile \(top: Expected object, received array\)/],
  ];
  for (const [what, content, why] of cases) {
    it(`build --locked: a lockfile that is ${what} is refused in one line before anything is made`, async () => {
      await plant(typeof content === 'string' && content.includes('"x"') ? content.replace('"x"', JSON.stringify(bait.secretText)) : content);
      const r = await lockedBuild();
      assertRefused(r, 2, why);
      assert.ok(!r.stderr.includes(bait.secretText.trim()) && !r.stdout.includes(bait.secretText.trim()), 'the secret is never echoed');
      await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir: w.workDir, outputDir: out, context: r.stderr });
      await bait.assertUntouched(what);
    });
  }

  it('pkgadd: a lock forged into the state file is checked as a lockfile before its names reach pkg_add', async () => {
    await plant(JSON.stringify(good));
    const state = join(comp, 'forged-state.json');
    let r = await cli(['prepare', '--config', config, '--locked', '--output-dir', out, '--state', state], { env: w.env });
    assert.equal(r.code, 0, r.stderr);
    r = await cli(['assemble', '--state', state], { env: w.env });
    assert.equal(r.code, 0, r.stderr);
    const s = JSON.parse(await readFile(state, 'utf8'));
    s.definition.packageLock.packages[0].name = '-K/tmp';
    await writeFile(state, JSON.stringify(s), { mode: 0o600 });
    r = await cli(['pkgadd', '--state', state], { env: w.env });
    assertRefused(r, 2, /invalid package name "-K\/tmp" in the package lock in the state file: only letters/);
    assert.doesNotMatch(r.stderr, /pkg_add /);
    assert.equal((await cli(['clean', '--state', state], { env: w.env })).code, 0);
    await rm(state, { force: true });
    await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir: w.workDir, outputDir: out });
  });

  it('buildimage lock: a forged resolved lock is refused; a link planted at the lockfile is replaced, not written through', async () => {
    const state = join(comp, 'lock-state.json');
    let r = await cli(['prepare', '--config', config, '--output-dir', out, '--state', state], { env: w.env });
    assert.equal(r.code, 0, r.stderr);
    for (const stage of ['assemble', 'pkgadd']) {
      r = await cli([stage, '--state', state], { env: w.env });
      assert.equal(r.code, 0, r.stderr);
    }
    const genuine = await readFile(state, 'utf8');
    const s = JSON.parse(genuine);
    s.packagesResolved.packages[0].version = '2.3 ../../etc';
    await writeFile(state, JSON.stringify(s), { mode: 0o600 });
    const target = join(comp, 'written.lock.json');
    r = await cli(['lock', '--state', state, '--lock-file', target], { env: w.env });
    assertRefused(r, 2, /invalid version "2\.3 \.\.\/\.\.\/etc" of daemonkit in the package lock in state file/);
    await assert.rejects(lstat(target), 'nothing written');

    await writeFile(state, genuine, { mode: 0o600 });
    await symlink(join(bait.dir, 'etc/passwd'), target);
    r = await cli(['lock', '--state', state, '--lock-file', target], { env: w.env });
    assert.equal(r.code, 0, r.stderr);
    assert.ok((await lstat(target)).isFile(), 'the lockfile replaced the link');
    assert.match(await readFile(target, 'utf8'), /"name": "daemonkit"/);
    await bait.assertUntouched('lock --lock-file through a link');
    assert.equal((await cli(['clean', '--state', state], { env: w.env })).code, 0);
    await rm(state, { force: true });
    await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir: w.workDir, outputDir: out });
  });

  it('build --write-lock: a link planted at the lockfile is replaced, not written through', async () => {
    await plant((p) => symlink(join(bait.dir, 'etc/passwd'), p));
    const own = await w.outDir();
    const r = await cli(['build', '--config', config, '--write-lock', '--output-dir', own], { env: w.env });
    assert.equal(r.code, 0, r.stderr);
    assert.ok((await lstat(lockfile)).isFile());
    assert.match(await readFile(lockfile, 'utf8'), /"requested": \[\n {4}"daemonkit"\n {2}\]/);
    await bait.assertUntouched('--write-lock through a link');
    await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir: w.workDir, outputDir: own });
  });
});
