/**
 * The package cache's parts without a build: pkg_summary's FILE_SIZE and
 * FILE_CKSUM, the cache's checks of what it finds (it is hostile input),
 * eviction by last use within the bound, and the loopback mirror against
 * the sample repository server (a real HTTP server): a miss fetched and
 * kept, then a hit; a file that disagrees with pkg_summary refused and not
 * kept; PKG_PATH and repositories.conf turned into mirror URLs.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { chmod, link, mkdir, readFile, readdir, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { get } from 'node:http';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { PackageCache, repositoryKey } from '../../src/pkgsrc/cache.js';
import { PackageMirror, mirroredPkgPath, mirroredRepos } from '../../src/pkgsrc/mirror.js';
import { parseSummaryFiles, type SummaryFile } from '../../src/pkgsrc/summary.js';
import { parseSize } from '../../src/settings/table.js';
import { SAMPLE_PACKAGES, writeRepository } from '../../testbed/packages.js';
import { startRepoServer } from '../../testbed/repo-server.js';
import { TEST_TOP } from '../helpers/world.js';
import { layBait } from '../helpers/hostile.js';

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

function httpGet(url: string): Promise<{ status: number; body: Buffer }> {
  return new Promise((ok, fail) => {
    get(url, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => ok({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      res.on('error', fail);
    }).on('error', fail);
  });
}

describe('package cache parts', function () {
  this.timeout(60_000);
  const top = join(TEST_TOP, `pkgcache-unit-${process.pid}`);
  const cacheDir = join(top, 'work/cache/packages');
  const lockPath = join(top, 'work/locks/package-cache.lock');

  beforeEach(async () => {
    await rm(top, { recursive: true, force: true });
    await mkdir(join(top, 'work'), { recursive: true, mode: 0o755 });
  });
  after(() => rm(top, { recursive: true, force: true }));

  describe('pkg_summary (FILE_NAME, FILE_SIZE, FILE_CKSUM)', () => {
    it('reads each file with its size and digest; FILE_NAME defaults to PKGNAME.tgz', () => {
      const files = parseSummaryFiles(
        [
          'PKGNAME=a-1.0\nFILE_SIZE=10\nFILE_CKSUM=SHA256 ' + 'A'.repeat(64),
          'PKGNAME=b-2.0\nFILE_NAME=b-2.0.tbz\nFILE_SIZE=20\nFILE_CKSUM=sha1 ' + 'b'.repeat(40),
          'PKGNAME=c-3\nFILE_SIZE=30\nFILE_CKSUM=rmd160 ' + 'c'.repeat(40),
          'PKGNAME=d-4\nFILE_SIZE=40\nFILE_CKSUM=sha256 short',
          'PKGNAME=e-5',
          'PKGNAME=f-6\nFILE_SIZE=-1',
          'PKGNAME=g-7\nFILE_NAME=../../etc/passwd.tgz\nFILE_SIZE=1',
          'PKGNAME=h-8\nFILE_SIZE=1\n\nPKGNAME=h-8\nFILE_SIZE=2',
        ].join('\n\n'),
      );
      assert.deepEqual([...files.keys()].sort(), ['a-1.0.tgz', 'b-2.0.tbz', 'c-3.tgz', 'd-4.tgz']);
      assert.deepEqual(files.get('a-1.0.tgz'), { pkgname: 'a-1.0', fileName: 'a-1.0.tgz', size: 10, cksum: { alg: 'sha256', hex: 'a'.repeat(64) } });
      assert.deepEqual(files.get('b-2.0.tbz')?.cksum, { alg: 'sha1', hex: 'b'.repeat(40) });
      assert.equal(files.get('c-3.tgz')?.cksum, 'unknown', 'an algorithm we cannot check');
      assert.equal(files.get('d-4.tgz')?.cksum, 'unknown', 'a digest of the wrong length');
    });

    it('--package-cache-size takes 0, bytes and K/M/G/T sizes, and refuses the rest in one line', () => {
      assert.equal(parseSize('0', '--package-cache-size'), 0);
      assert.equal(parseSize('4096', '--package-cache-size'), 4096);
      assert.equal(parseSize('500M', '--package-cache-size'), 500 * 1024 ** 2);
      assert.equal(parseSize('2GiB', '--package-cache-size'), 2 * 1024 ** 3);
      assert.equal(parseSize('1.5g', '--package-cache-size'), 1.5 * 1024 ** 3);
      for (const bad of ['', '-1', '2X', '1e9', 'lots', '9999T']) assert.throws(() => parseSize(bad, '--package-cache-size'), /--package-cache-size must be a size like 500M/);
    });
  });

  describe('the cache on disk (hostile input)', () => {
    const key = repositoryKey('http://repo.example/All');
    const data = Buffer.from('package bytes '.repeat(50));
    const entry = (o: Partial<SummaryFile> = {}): SummaryFile => ({ pkgname: 'p-1', fileName: 'p-1.tgz', size: data.length, ...o });
    const place = async (name = `${sha256(data)}-p-1.tgz`, bytes = data) => {
      await mkdir(join(cacheDir, key), { recursive: true });
      await writeFile(join(cacheDir, key, name), bytes);
      return join(cacheDir, key, name);
    };

    it('offers a whole file, and marks it used', async () => {
      const cache = (await PackageCache.open({ dir: cacheDir, lockPath, maxBytes: 1 << 20 }))!;
      const path = await place();
      await utimes(path, 1000, 1000);
      const hit = await cache.lookup(key, entry({ cksum: { alg: 'sha256', hex: sha256(data) } }));
      assert.ok(hit);
      await hit.fh.close();
      assert.ok((await stat(path)).mtimeMs > 1_000_000, 'last use is now');
      assert.equal(cache.dropped, 0);
    });

    it('drops a truncated, a corrupted and a FILE_CKSUM-disagreeing file, a symlink and a hard link, never following them', async () => {
      const bait = await layBait('pkgcache');
      try {
        const cache = (await PackageCache.open({ dir: cacheDir, lockPath, maxBytes: 1 << 20 }))!;
        const good = `${sha256(data)}-p-1.tgz`;
        await place(good, data.subarray(0, 10));
        assert.equal(await cache.lookup(key, entry()), undefined, 'truncated');
        const flipped = Buffer.from(data);
        flipped[3] ^= 1;
        await place(good, flipped);
        assert.equal(await cache.lookup(key, entry()), undefined, 'corrupted: same size, another sha256');
        await place(good);
        assert.equal(await cache.lookup(key, entry({ cksum: { alg: 'md5', hex: '0'.repeat(32) } })), undefined, 'the repository says another digest');
        await symlink(bait.secret, join(cacheDir, key, good));
        assert.equal(await cache.lookup(key, entry({ size: bait.secretText.length })), undefined, 'a symlink');
        const baitCopy = join(bait.dir, 'copy.tgz');
        await writeFile(baitCopy, data);
        await link(baitCopy, join(cacheDir, key, good));
        assert.equal(await cache.lookup(key, entry()), undefined, 'a hard link (a host file) is neither read nor touched');
        assert.equal(cache.dropped, 5);
        assert.deepEqual(await readdir(join(cacheDir, key)), [], 'every bad one removed');
        assert.equal(await readFile(baitCopy, 'utf8'), data.toString());
        await rm(baitCopy);
        await bait.assertUntouched();
      } finally {
        await bait.remove();
      }
    });

    it('is not used when a part of it is a symlink (to the host): the build goes on without it', async () => {
      const bait = await layBait('pkgcache');
      try {
        await mkdir(join(top, 'work/cache'), { mode: 0o755 });
        await symlink(bait.dir, cacheDir);
        assert.equal(await PackageCache.open({ dir: cacheDir, lockPath, maxBytes: 1 << 20 }), undefined);
        await rm(cacheDir);
        await mkdir(join(top, 'work/cache/packages'));
        await chmod(join(top, 'work/cache/packages'), 0o777);
        assert.equal(await PackageCache.open({ dir: cacheDir, lockPath, maxBytes: 1 << 20 }), undefined, 'writable by others');
        await bait.assertUntouched();
      } finally {
        await bait.remove();
      }
    });

    it('evicts the least recently used down to the bound, and removes what is no cache entry', async () => {
      const cache = (await PackageCache.open({ dir: cacheDir, lockPath, maxBytes: 2500 }))!;
      const files = [];
      for (let i = 0; i < 5; i++) {
        const bytes = Buffer.alloc(1000, i);
        const path = await place(`${sha256(bytes)}-p-${i}.tgz`, bytes);
        await utimes(path, 1_000_000 + i, 1_000_000 + [3, 0, 4, 1, 2][i]);
        files.push(path);
      }
      await symlink('/etc/passwd', join(cacheDir, key, `${'0'.repeat(64)}-x-1.tgz`));
      await writeFile(join(cacheDir, 'not-a-key'), 'x');
      await writeFile(join(cacheDir, 'tmp', '999999999-0123456789abcdef'), 'left by a dead build');
      await writeFile(join(cacheDir, 'tmp', `${process.pid}-0123456789abcdef`), 'this build, downloading');
      const r = await cache.evict();
      assert.deepEqual(r, { files: 3, bytes: 3000 });
      // mtimes (last use) 3,0,4,1,2: the two used last (0 and 2) stay.
      assert.deepEqual((await readdir(join(cacheDir, key))).sort(), [files[0], files[2]].map((p) => p.slice(p.lastIndexOf('/') + 1)).sort());
      assert.deepEqual((await readdir(cacheDir)).sort(), [key, 'tmp']);
      assert.deepEqual(await readdir(join(cacheDir, 'tmp')), [`${process.pid}-0123456789abcdef`]);
    });
  });

  describe('the loopback mirror', () => {
    it('fetches a miss, checks it against pkg_summary and keeps it; then answers from the cache; passes the rest through', async () => {
      const repoDir = join(top, 'repo');
      const repo = writeRepository(repoDir, SAMPLE_PACKAGES);
      // A summary with FILE_CKSUM, one of them wrong.
      const summary = gunzipSync(await readFile(repo.summaryFile)).toString();
      const withSums = summary
        .split('\n\n')
        .map((b) => {
          const name = /^FILE_NAME=(.*)$/m.exec(b)?.[1];
          if (!name) return b;
          const hex = name === 'webfetch-7.65.1.tgz' ? '0'.repeat(64) : sha256(readFileSync(join(repo.packagesDir, name)));
          return `${b}\nFILE_CKSUM=SHA256 ${hex}`;
        })
        .join('\n\n');
      await writeFile(repo.summaryFile, gzipSync(withSums));
      const requests: string[] = [];
      const server = await startRepoServer({ dir: repoDir, onRequest: (_m, p) => requests.push(decodeURIComponent(p)) });
      const cache = (await PackageCache.open({ dir: cacheDir, lockPath, maxBytes: 1 << 20 }))!;
      const mirror = await PackageMirror.start(cache);
      try {
        const base = mirror.offer(`${server.url}/All`)!;
        assert.match(base, /^http:\/\/127\.0\.0\.1:\d+\/[0-9a-f]{32}\/0$/);
        const want = await readFile(join(repo.packagesDir, 'greeter-1.1.tgz'));
        const first = await httpGet(`${base}/greeter-1.1.tgz`);
        assert.equal(first.status, 200);
        assert.ok(first.body.equals(want));
        const second = await httpGet(`${base}/greeter-1.1.tgz`);
        assert.ok(second.body.equals(want));
        assert.deepEqual(requests.filter((p) => p.endsWith('.tgz')), ['/All/greeter-1.1.tgz'], 'fetched once');
        assert.deepEqual(await readdir(join(cacheDir, repositoryKey(`${server.url}/All`))), [`${sha256(want)}-greeter-1.1.tgz`]);
        assert.deepEqual({ hits: mirror.stats.hits, misses: mirror.stats.misses, hitBytes: mirror.stats.hitBytes }, { hits: 1, misses: 1, hitBytes: want.length });

        const bad = await httpGet(`${base}/webfetch-7.65.1.tgz`);
        assert.equal(bad.status, 502, 'a file that disagrees with pkg_summary is not handed on');
        assert.match(bad.body.toString(), /does not match its pkg_summary \(FILE_CKSUM sha256\)/);
        assert.equal((await readdir(join(cacheDir, repositoryKey(`${server.url}/All`)))).length, 1, 'nor kept');

        const index = await httpGet(`${base}/`);
        assert.equal(index.status, 200);
        assert.match(index.body.toString(), /greeter-1\.1\.tgz/, 'the directory index as the repository lists it');
        assert.equal((await httpGet(`${base}/nothere.tgz`)).status, 404);
        assert.equal((await httpGet(`${mirror.offer(`${server.url}/All`)!.replace(/\/[0-9a-f]{32}\//, '/0123456789abcdef0123456789abcdef/')}/greeter-1.1.tgz`)).status, 404, 'only with the token');
      } finally {
        await mirror.close();
        await server.close();
      }
    });

    it('turns PKG_PATH and repositories.conf into mirror URLs, $arch left for pkgin, the rest as it was', async () => {
      const cache = (await PackageCache.open({ dir: cacheDir, lockPath, maxBytes: 1 << 20 }))!;
      const mirror = await PackageMirror.start(cache);
      try {
        const m = mirror.offer('https://pkgsrc.example/All')!;
        const prefix = m.slice(0, -2);
        assert.equal(mirroredPkgPath(mirror, 'https://pkgsrc.example/All;/var/tmp/local;ftp://old.example/All'), `${prefix}/0;/var/tmp/local;ftp://old.example/All`);
        assert.equal(mirroredPkgPath(mirror, '/only/local'), undefined);
        assert.equal(
          mirroredRepos(mirror, '# comment\nhttps://pkgsrc.example/packages/SmartOS/2024Q4/$arch/All\n\nfile:///local/All\nhttps://pkgsrc.example/All\n'),
          `${prefix}/1/$arch/All file:///local/All ${prefix}/0`,
        );
        assert.equal(mirroredRepos(mirror, 'https://$arch.example/All\n'), undefined, 'a $ in the host is left to pkgin');
        assert.equal(mirroredRepos(mirror, '# none\n'), undefined);
      } finally {
        await mirror.close();
      }
    });
  });
});
