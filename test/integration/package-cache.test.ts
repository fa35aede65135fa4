/**
 * The package cache end to end on real ZFS, the real CLI and a sample
 * repository served on 127.0.0.1 whose request log is the oracle: a cold
 * build fills the cache, a warm rebuild with the same packages (plain,
 * --locked, with -u's pkgin) asks the repository for no package file (its
 * pkg_summary.gz and directory index are still fetched, for freshness);
 * the image is the same tree as without the cache, its pkg_install.conf
 * and repositories.conf byte for byte; a corrupted, truncated or replaced
 * cached file is found and fetched again; eviction keeps the bound; two
 * builds at once share the cache; size 0 is the build as it was.
 *
 * Each test has its own repository server (its log), and a proto that
 * points the image's pkg_install.conf and repositories.conf at it.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, readFile, readdir, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { cli, type CliResult } from '../helpers/cli.js';
import { assertNoLeaks } from '../helpers/leaks.js';
import { world, type World } from '../helpers/world.js';
import { Layout } from '../../src/core/layout.js';
import { repositoryKey } from '../../src/pkgsrc/cache.js';
import { SAMPLE_PACKAGES, writeRepository, type Repository } from '../../testbed/packages.js';
import { startRepoServer, type RepoServer } from '../../testbed/repo-server.js';
import { setRepoUrl } from '../../testbed/zoneroot.js';

interface Served {
  repo: Repository;
  server: RepoServer;
  requests: Array<{ method: string; path: string }>;
  /** Package files (.tgz) GET from the repository since `from`. */
  packageGets(from?: number): string[];
  close(): Promise<void>;
}

export async function serveRepository(dir: string): Promise<Served> {
  const repo = writeRepository(dir, SAMPLE_PACKAGES);
  const requests: Array<{ method: string; path: string }> = [];
  const server = await startRepoServer({ dir, onRequest: (method, path) => requests.push({ method, path }) });
  return {
    repo,
    server,
    requests,
    packageGets: (from = 0) => requests.slice(from).filter((r) => r.method === 'GET' && /\.(tgz|tbz)$/.test(r.path)).map((r) => decodeURIComponent(r.path.slice(r.path.lastIndexOf('/') + 1))).sort(),
    close: () => server.close(),
  };
}

/** Every file of the cache, by name, with its size and sha256. */
async function cacheFiles(cacheDir: string): Promise<Array<{ dir: string; name: string; size: number; sha256: string }>> {
  const out = [];
  for (const key of (await readdir(cacheDir).catch(() => [] as string[])).sort()) {
    if (key === 'tmp') continue;
    for (const name of (await readdir(join(cacheDir, key))).sort()) {
      const data = await readFile(join(cacheDir, key, name));
      out.push({ dir: key, name, size: data.length, sha256: createHash('sha256').update(data).digest('hex') });
    }
  }
  return out;
}

interface BuildInfo {
  packageCache?: { hits: number; misses: number; hitBytes: number; missBytes: number; dropped: number; evicted: number };
  contents?: { digest: string };
}

describe('package cache (pkg_add and pkgin through the cache under the work dir)', function () {
  this.timeout(20 * 60 * 1000);
  let w: World;
  let served: Served;
  let proto: string;
  let workDir: string;
  let cacheDir: string;
  const names = ['greeter', 'daemonkit', 'libsigc++'];

  async function build(args: string[], o: { env?: Record<string, string>; out?: string } = {}): Promise<CliResult & { out: string; info: BuildInfo }> {
    const out = o.out ?? (await w.outDir());
    const r = await cli(
      ['build', '-i', w.origin.uuid, '-d', proto, '-m', JSON.stringify({ name: 'pc', version: '1.0.0' }), '-P', 'pc-zfs', '--output-dir', out, '--json', ...args],
      { env: { ...w.env, BUILDIMAGE_WORK_DIR: workDir, SOURCE_DATE_EPOCH: '1734688800', ...o.env } },
    );
    const info = r.code === 0 ? (JSON.parse(await readFile(join(out, 'pc-zfs-1.0.0.build-info.json'), 'utf8')) as BuildInfo) : {};
    return { ...r, out, info };
  }

  before(async () => {
    w = await world();
    served = await serveRepository(join(w.dir, 'pc-repo'));
    proto = join(w.dir, 'pc-proto');
    await mkdir(proto, { recursive: true });
    setRepoUrl(proto, served.server.url);
    // The world's work dir (its cache is ours to empty: other tests' repositories have keys of their own):
    // a work dir of our own would install the sample chain there and leave the world's without its manifests.
    workDir = w.workDir;
    cacheDir = new Layout(w.datasetRoot, workDir).packageCacheDir;
  });

  after(async () => {
    await served?.close();
  });

  it('a warm rebuild with the same packages downloads no package; the image is the same tree as without the cache', async () => {
    await rm(cacheDir, { recursive: true, force: true });
    const off = await build(['-p', names.join(','), '-u'], { env: { BUILDIMAGE_PACKAGE_CACHE_SIZE: '0' } });
    assert.equal(off.code, 0, off.stderr);
    assert.equal(off.info.packageCache, undefined, 'no cache figures with the cache off');
    assert.deepEqual(await cacheFiles(cacheDir), [], 'size 0: nothing cached');

    let from = served.requests.length;
    const cold = await build(['-p', names.join(','), '-u']);
    assert.equal(cold.code, 0, cold.stderr);
    const coldGets = served.packageGets(from);
    assert.ok(coldGets.length > 0, 'the cold build downloads');
    assert.ok(coldGets.includes('greeter-1.1.tgz') && coldGets.includes('daemonkit-2.3.tgz') && coldGets.includes('gsed-4.9.tgz'), coldGets.join(' '));
    assert.equal(cold.info.packageCache?.misses, coldGets.length, 'every download is a miss');
    assert.equal(new Set(coldGets).size, coldGets.length, 'each package downloaded once, though pkgin and pkg_add both fetch greeter-1.1');
    const json = JSON.parse(cold.stdout) as { packageCache?: unknown };
    assert.deepEqual(json.packageCache, cold.info.packageCache, '--json has the figures');
    assert.match(cold.stderr, new RegExp(`package cache: ${cold.info.packageCache?.hits} hits? \\(\\d+\\.\\d MiB\\), ${coldGets.length} misses downloaded`), 'in the timing table');
    const cached = await cacheFiles(cacheDir);
    const key = repositoryKey(`${served.server.url}/All`);
    assert.ok(cached.length > 0 && cached.every((f) => f.dir === key && f.name === `${f.sha256}-${f.name.slice(65)}`), JSON.stringify(cached));

    from = served.requests.length;
    const warm = await build(['-p', names.join(','), '-u']);
    assert.equal(warm.code, 0, warm.stderr);
    assert.deepEqual(served.packageGets(from), [], 'the warm rebuild downloads no package file');
    // pkg_summary is still fetched (by the cache and by pkgin), for freshness.
    assert.ok(served.requests.slice(from).some((r) => r.path.endsWith('/pkg_summary.gz')));
    assert.equal(warm.info.packageCache?.misses, 0);
    assert.equal(warm.info.packageCache?.hits, cold.info.packageCache.hits + cold.info.packageCache.misses);

    // The same tree with and without the cache: the contents listing's digest has no times, only what the image holds.
    assert.ok(off.info.contents?.digest);
    assert.equal(cold.info.contents?.digest, off.info.contents?.digest, 'cold build: same image tree as without the cache');
    assert.equal(warm.info.contents?.digest, off.info.contents?.digest, 'warm build: same image tree as without the cache');
    assert.equal(await readFile(join(warm.out, 'pc-zfs-1.0.0.packages.json'), 'utf8'), await readFile(join(off.out, 'pc-zfs-1.0.0.packages.json'), 'utf8'));
    await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir, outputDir: warm.out, context: warm.stderr });
  });

  it('--locked builds use the cache too', async () => {
    const lockfile = join(w.dir, 'pc-lock.json');
    const written = await build(['-p', names.join(','), '--write-lock', '--lock-file', lockfile]);
    assert.equal(written.code, 0, written.stderr);
    const from = served.requests.length;
    const locked = await build(['-p', names.join(','), '--locked', '--lock-file', lockfile]);
    assert.equal(locked.code, 0, locked.stderr);
    assert.match(locked.stderr, /pkg_add -U /);
    assert.deepEqual(served.packageGets(from), [], 'a warm --locked build downloads no package file');
    assert.ok((locked.info.packageCache?.hits ?? 0) > 0);
  });

  it('a corrupted, a truncated and a replaced cached file are found, dropped and fetched again', async () => {
    const fill = await build(['-p', names.join(',')]);
    assert.equal(fill.code, 0, fill.stderr);
    const key = repositoryKey(`${served.server.url}/All`);
    const files = await cacheFiles(cacheDir);
    const entry = (n: string) => files.find((f) => f.name.endsWith(`-${n}`))!;
    const [greeter, daemonkit, sigc] = ['greeter-1.1.tgz', 'daemonkit-2.3.tgz', 'libsigc++-2.10.8.tgz'].map(entry);
    assert.ok(greeter && daemonkit && sigc, JSON.stringify(files.map((f) => f.name)));
    // Corrupted: one byte flipped, same size.
    const gPath = join(cacheDir, key, greeter.name);
    const g = await readFile(gPath);
    g[g.length - 10] ^= 0xff;
    await writeFile(gPath, g);
    // Truncated.
    await truncate(join(cacheDir, key, daemonkit.name), 20);
    // Replaced: another package's bytes under this one's name.
    await writeFile(join(cacheDir, key, sigc.name), await readFile(join(served.repo.packagesDir, 'webfetch-7.65.1.tgz')));

    const from = served.requests.length;
    const r = await build(['-p', names.join(',')]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(served.packageGets(from), ['daemonkit-2.3.tgz', 'greeter-1.1.tgz', 'libsigc++-2.10.8.tgz'], 'exactly the bad ones fetched again');
    assert.equal(r.info.packageCache?.dropped, 3);
    assert.equal(r.info.packageCache?.misses, 3);
    for (const f of await cacheFiles(cacheDir)) assert.equal(f.name.slice(0, 64), f.sha256, `${f.name} is whole again`);
  });

  it('eviction keeps the cache within its bound', async () => {
    const bound = 3000;
    const r = await build(['-p', names.join(','), '-u'], { env: { BUILDIMAGE_PACKAGE_CACHE_SIZE: String(bound) } });
    assert.equal(r.code, 0, r.stderr);
    const files = await cacheFiles(cacheDir);
    const total = files.reduce((s, f) => s + f.size, 0);
    assert.ok(total <= bound, `${total} bytes cached, bound ${bound}`);
    assert.ok((r.info.packageCache?.evicted ?? 0) > 0, 'something was evicted');
    assert.ok(files.length > 0, 'the most recently used stay');
  });

  it('two builds at once share the cache: both succeed, and it is whole afterwards', async () => {
    await rm(cacheDir, { recursive: true, force: true });
    const [a, b] = await Promise.all([build(['-p', names.join(','), '-u']), build(['-p', 'greeter,webfetch,daemonkit', '-u'])]);
    assert.equal(a.code, 0, a.stderr);
    assert.equal(b.code, 0, b.stderr);
    const files = await cacheFiles(cacheDir);
    const sizes = new Map(served.repo.packages.map((p) => [p.fileName, p.size]));
    for (const f of files) {
      assert.equal(f.name.slice(0, 64), f.sha256, `${f.name}: whole`);
      assert.equal(f.size, sizes.get(f.name.slice(65)), `${f.name}: the repository's size`);
    }
    assert.deepEqual(await readdir(join(cacheDir, 'tmp')), [], 'no download left half-done');
    assert.ok(files.some((f) => f.name.endsWith('-webfetch-7.65.1.tgz')) && files.some((f) => f.name.endsWith('-libsigc++-2.10.8.tgz')));
    await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir, outputDir: a.out });
    await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir, outputDir: b.out });
  });

  it("the image's pkg_install.conf and repositories.conf are the proto's, byte for byte", async () => {
    // The build's packages report comes from the image; the config files went in with the proto and the cache
    // only ever reaches the tools through their environment: the image listing shows them unchanged.
    const out = await w.outDir();
    const r = await build(['-p', 'greeter', '-u'], { out });
    assert.equal(r.code, 0, r.stderr);
    const listing = JSON.parse(gunzipSync(await readFile(join(out, 'pc-zfs-1.0.0.contents.json.gz'))).toString()) as { entries: Array<{ path: string; sha256?: string }> };
    for (const rel of ['opt/local/etc/pkg_install.conf', 'opt/local/etc/pkgin/repositories.conf']) {
      const want = createHash('sha256').update(await readFile(join(proto, rel))).digest('hex');
      const e = listing.entries.find((x) => x.path === `/${rel}`);
      assert.ok(e, `${rel} in the listing: ${JSON.stringify(listing.entries.map((x) => x.path).slice(0, 50))}`);
      assert.equal(e.sha256, want, `${rel} is the proto's`);
    }
    assert.ok((await stat(cacheDir)).isDirectory());
  });
});
