/**
 * Hostile repo files and report paths (issue 14, items 7 and 9), through
 * the real CLI as root:
 * - `init` appends to a component repo's .gitignore: one that is a link
 *   (to a host file, or dangling into the host), a hard link to a host
 *   file or a FIFO is left alone and named, never written through or
 *   waited on;
 * - `doctor --junit FILE` with a link planted at FILE replaces the link,
 *   never writes the host file; text from the machine (a source dir named
 *   with `<`, `&`, `]]>` and a control character) leaves the report
 *   well-formed.
 */
import assert from 'node:assert/strict';
import { link, lstat, mkdir, readFile, readlink, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../../src/host/exec.js';
import { cli } from '../helpers/cli.js';
import { layBait, type Bait } from '../helpers/hostile.js';
import { findAll, parseXml } from '../helpers/xml.js';
import { world, type World } from '../helpers/world.js';

describe('hostile: repo files and report paths', function () {
  this.timeout(5 * 60 * 1000);
  let w: World;
  let bait: Bait;
  let n = 0;
  before(async () => {
    w = await world();
    bait = await layBait('repo-files');
  });
  after(async () => {
    await bait?.remove();
  });

  async function repoWith(gitignore: (path: string) => Promise<void>): Promise<{ repo: string; path: string }> {
    const repo = join(w.dir, `hostile-repo-${++n}`);
    await mkdir(repo, { recursive: true });
    const path = join(repo, '.gitignore');
    await gitignore(path);
    return { repo, path };
  }

  const cases: Array<[string, (path: string) => Promise<void>, RegExp]> = [
    ['a symlink to a host file', (p) => symlink(join(bait.dir, 'etc/passwd'), p), /it is a symlink/],
    ['a dangling symlink into the host', (p) => symlink(join(bait.dir, 'etc/new-file'), p), /it is a symlink/],
    ['a hard link to a host file', (p) => link(join(bait.dir, 'etc/passwd'), p), /it has other hard links/],
    ['a FIFO', async (p) => void (await run('mkfifo', [p])), /it is not a regular file/],
  ];
  for (const [what, make, why] of cases) {
    it(`init: a .gitignore that is ${what} is left alone and named; init still writes its files`, async () => {
      const { repo, path } = await repoWith(make);
      const before = await lstat(path);
      const r = await cli(['init', repo, '-n', 'hostile', '-i', w.origin.uuid], { env: w.env, timeoutMs: 60_000 });
      assert.equal(r.code, 0, r.stderr);
      const line = r.stdout.split('\n').find((l) => l.includes(`left ${path} alone`));
      assert.ok(line, r.stdout);
      assert.match(line, why);
      assert.match(line, /add \.buildimage\/ and bits\/ to it yourself/);
      const after = await lstat(path);
      assert.deepEqual([after.ino, after.mode, after.size], [before.ino, before.mode, before.size], 'the .gitignore itself unchanged');
      if (after.isSymbolicLink()) assert.match(await readlink(path), new RegExp(bait.dir));
      await lstat(join(repo, 'buildimage.json'));
      await bait.assertUntouched(what);
    });
  }

  it('doctor --junit: a link planted at FILE is replaced, not written through; machine text keeps the XML well-formed', async () => {
    const dir = join(w.dir, 'hostile-junit');
    await mkdir(dir, { recursive: true });
    const report = join(dir, 'doctor.xml');
    await symlink(join(bait.dir, 'etc/passwd'), report);
    const source = join(dir, 'src<&]]>"\'\x1b[31m');
    await mkdir(source, { recursive: true });
    await writeFile(join(source, 'README'), 'no manifests here\n');
    const r = await cli(['doctor', '--source', source, '--output-dir', join(dir, 'out'), '--junit', report], { env: w.env, timeoutMs: 60_000 });
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.ok((await lstat(report)).isFile(), 'the report replaced the link');
    const root = parseXml(await readFile(report, 'utf8'));
    const failure = findAll(findAll(root, 'testcase').find((c) => c.attrs.name === 'source')!, 'failure')[0];
    assert.ok(failure.attrs.message.includes('src<&]]>"\'\\u001b[31m'), failure.attrs.message);
    await bait.assertUntouched('doctor --junit');
  });
});
