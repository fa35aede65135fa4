/**
 * The package cache as hostile input (issue 16, item 3), through the real
 * CLI as root. The cache under the work dir is shared by every build on
 * the agent, so anything may have been planted in it: a link to a host
 * secret under a cache entry's name, a hard link to a host file, a FIFO, a
 * repository directory that is a link to the host, the cache directory
 * itself a link. And a repository may answer with a package that is not
 * the one its pkg_summary describes. Each build either succeeds safely
 * (the planted thing removed, never followed, never read into an image,
 * the package fetched again) or fails in one line; the host (bait) is
 * untouched and nothing is left behind.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { link, lstat, mkdir, readFile, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { run } from '../../src/host/exec.js';
import { Layout } from '../../src/core/layout.js';
import { repositoryKey } from '../../src/pkgsrc/cache.js';
import { cli, errorLines, type CliResult } from '../helpers/cli.js';
import { layBait, type Bait } from '../helpers/hostile.js';
import { assertNoLeaks } from '../helpers/leaks.js';
import { world, type World } from '../helpers/world.js';
import { SAMPLE_PACKAGES, writeRepository, type Repository } from '../../testbed/packages.js';
import { startRepoServer, type RepoServer } from '../../testbed/repo-server.js';
import { setRepoUrl } from '../../testbed/zoneroot.js';

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

describe('hostile: the package cache', function () {
  this.timeout(15 * 60 * 1000);
  let w: World;
  let bait: Bait;
  let repo: Repository;
  let server: RepoServer;
  const gets: string[] = [];
  let proto: string;
  let workDir: string;
  let cacheDir: string;
  let keyDir: string;

  before(async () => {
    w = await world();
    bait = await layBait('pkgcache-bait');
    const repoDir = join(w.dir, 'hostile-pc-repo');
    repo = writeRepository(repoDir, SAMPLE_PACKAGES);
    server = await startRepoServer({ dir: repoDir, onRequest: (m, p) => m === 'GET' && p.endsWith('.tgz') && gets.push(decodeURIComponent(p.slice(p.lastIndexOf('/') + 1))) });
    proto = join(w.dir, 'hostile-pc-proto');
    await mkdir(proto, { recursive: true });
    setRepoUrl(proto, server.url);
    // The world's (a work dir of our own would install the sample chain there, not in the world's).
    workDir = w.workDir;
    cacheDir = new Layout(w.datasetRoot, workDir).packageCacheDir;
    keyDir = join(cacheDir, repositoryKey(`${server.url}/All`));
  });
  after(async () => {
    await server?.close();
    await bait?.assertUntouched();
    await bait?.remove();
  });

  async function build(): Promise<CliResult & { out: string }> {
    const out = await w.outDir();
    const r = await cli(['build', '-i', w.origin.uuid, '-d', proto, '-m', JSON.stringify({ name: 'hpc', version: '1' }), '-p', 'greeter,daemonkit', '--output-dir', out], {
      env: { ...w.env, BUILDIMAGE_WORK_DIR: workDir },
    });
    return { ...r, out };
  }

  /** Succeeded, the bait untouched and its secret in no output, nothing left behind. */
  async function assertSafe(r: CliResult & { out: string }): Promise<void> {
    assert.equal(r.code, 0, r.stderr);
    await bait.assertUntouched(r.stderr);
    for (const f of await readdir(r.out)) {
      const data = await readFile(join(r.out, f));
      assert.ok(!(f.endsWith('.gz') ? gunzipSync(data) : data).includes(bait.secretText.trim()), `${f} holds no host secret`);
    }
    await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir, outputDir: r.out, context: r.stderr });
  }

  /** A build that fills the cache, and the name greeter-1.1's entry has. */
  async function filled(): Promise<string> {
    const r = await build();
    assert.equal(r.code, 0, r.stderr);
    const name = (await readdir(keyDir)).find((n) => n.endsWith('-greeter-1.1.tgz'));
    assert.ok(name);
    return join(keyDir, name);
  }

  it('a symlink to a host secret under a cache entry\'s name is removed, never followed, and the package fetched again', async () => {
    const entry = await filled();
    await rm(entry);
    // Named as the secret's own digest would be: the size check alone must not let it through either.
    const planted = join(keyDir, `${sha256(bait.secretText)}-greeter-1.1.tgz`);
    await symlink(bait.secret, planted);
    await symlink(bait.secret, entry);
    const from = gets.length;
    const r = await build();
    await assertSafe(r);
    assert.deepEqual(gets.slice(from), ['greeter-1.1.tgz'], 'fetched again');
    for (const p of [planted, entry]) assert.ok(!(await lstat(p).catch(() => undefined))?.isSymbolicLink(), `${p}: the link is gone`);
  });

  it('a hard link to a host file and a FIFO are removed without being read, touched or blocked on', async () => {
    const entry = await filled();
    const hostCopy = join(bait.dir, 'greeter-copy.tgz');
    await writeFile(hostCopy, await readFile(entry));
    const before = await stat(hostCopy);
    await rm(entry);
    await link(hostCopy, entry);
    const fifo = join(keyDir, `${'f'.repeat(64)}-daemonkit-2.3.tgz`);
    await run('mkfifo', [fifo]);
    const r = await build();
    const after = await stat(hostCopy);
    await rm(hostCopy); // laid by this test, not part of the bait's first picture
    assert.equal(r.code, 0, r.stderr);
    assert.equal(after.mtimeMs, before.mtimeMs, 'the host file was not marked used');
    assert.equal(after.nlink, 1, 'the link in the cache is gone, the host file stays');
    assert.ok(!(await lstat(fifo).catch(() => undefined)), 'the FIFO is gone');
    await assertSafe(r);
  });

  it("a repository directory in the cache that is a link to the host is removed, not written through", async () => {
    await rm(keyDir, { recursive: true, force: true });
    await symlink(bait.dir, keyDir);
    const r = await build();
    await assertSafe(r);
    const st = await lstat(keyDir);
    assert.ok(st.isDirectory() && !st.isSymbolicLink(), 'a real directory of the cache now');
  });

  it('the cache directory itself a link to the host: the build goes on without the cache, writing nothing there', async () => {
    await rm(cacheDir, { recursive: true, force: true });
    await symlink(bait.dir, cacheDir);
    const from = gets.length;
    try {
      const r = await build();
      assert.match(r.stderr, /package cache not used: .* is a symlink/);
      assert.ok(gets.length > from, 'the packages came from the repository');
      await assertSafe(r);
    } finally {
      await rm(cacheDir);
    }
  });

  it("a repository whose package is not the one its pkg_summary describes: one error line, nothing cached, nothing left", async () => {
    await rm(cacheDir, { recursive: true, force: true });
    const summary = gunzipSync(await readFile(repo.summaryFile)).toString();
    await writeFile(repo.summaryFile, gzipSync(summary.replace(/(PKGNAME=daemonkit-2\.3\n[\s\S]*?FILE_SIZE=)\d+/, '$1' + '12')));
    try {
      const r = await build();
      assert.equal(r.code, 1, r.stderr);
      const lines = errorLines(r);
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0], /pkg_add .* failed/);
      assert.match(r.stderr, /daemonkit-2\.3\.tgz is larger than the 12 bytes its pkg_summary says \(FILE_SIZE\)/);
      assert.ok(!(await readdir(keyDir).catch(() => [] as string[])).some((n) => n.endsWith('-daemonkit-2.3.tgz')), 'not kept');
      await bait.assertUntouched();
      await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir, outputDir: r.out, context: r.stderr });
    } finally {
      writeRepository(join(w.dir, 'hostile-pc-repo'), SAMPLE_PACKAGES);
    }
  });
});
