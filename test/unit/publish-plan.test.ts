/**
 * publish/plan.ts on its own (issue 18 items 2 and 3): what a bits dir
 * becomes, from real files in a temp dir. Subdirectory arguments (inside
 * the bits dir only, normalised, no duplicates), temp files of a killed
 * copy (`.partial-`) and artifacts.txt never published, image manifests
 * without a uuid refused, which image file beside a manifest is its image,
 * the release rule for pointers. The store side is publish-apply.test.ts.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UsageError } from '../../src/core/errors.js';
import { makePlan, type PlanInput, type PublishPlan } from '../../src/publish/plan.js';
import { captureRecords } from '../helpers/logs.js';
import { testManifest } from '../helpers/manifests.js';
import { rejection } from '../helpers/rejection.js';

const md5hex = (b: Buffer | string): string => createHash('md5').update(b).digest('hex');

describe('publish plan (unit)', () => {
  let dir: string;
  let bits: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'bi-publish-plan-'));
    bits = join(dir, 'bits');
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  const input = (o: Partial<PlanInput> = {}): PlanInput => ({ name: 'demo', branch: 'master', stamp: 's1', channel: 'dev', bitsDir: bits, baseDir: '/u/stor/b', ...o });
  const rels = (p: PublishPlan): string[] => p.files.map((f) => f.rel);
  async function put(files: Record<string, string | Buffer>): Promise<void> {
    for (const [rel, body] of Object.entries(files)) {
      await mkdir(join(bits, rel, '..'), { recursive: true });
      await writeFile(join(bits, rel), body);
    }
  }

  describe('subdirectory arguments (bits-upload.sh\'s trailing arguments)', () => {
    beforeEach(() =>
      put({
        'top.txt': 'top',
        'a/x.txt': 'ax',
        'a/b/y.txt': 'aby',
        'c/z.txt': 'cz',
        'c/d/w.txt': 'cdw',
      }),
    );

    it('none: the whole bits dir, each file at <base>/<stamp>/<its path in the bits dir>', async () => {
      const p = await makePlan(input());
      assert.deepEqual(rels(p), ['a/b/y.txt', 'a/x.txt', 'c/d/w.txt', 'c/z.txt', 'top.txt']);
      assert.deepEqual(
        p.files.map((f) => f.remote),
        rels(p).map((r) => `/u/stor/b/s1/${r}`),
      );
      assert.deepEqual(p.dirs, ['/u/stor/b', '/u/stor/b/s1', '/u/stor/b/s1/a', '/u/stor/b/s1/a/b', '/u/stor/b/s1/c', '/u/stor/b/s1/c/d']);
    });

    it('only the named subdirectories, recursively, keeping their path under the stamp; md5sums.txt lists only those', async () => {
      const p = await makePlan(input({ subdirs: ['a'] }));
      assert.deepEqual(rels(p), ['a/b/y.txt', 'a/x.txt']);
      assert.deepEqual(
        p.files.map((f) => f.remote),
        ['/u/stor/b/s1/a/b/y.txt', '/u/stor/b/s1/a/x.txt'],
      );
      assert.deepEqual(p.dirs, ['/u/stor/b', '/u/stor/b/s1/a', '/u/stor/b/s1/a/b']);
      assert.equal(p.md5sums.body, `${md5hex('aby')}  a/b/y.txt\n${md5hex('ax')}  a/x.txt\n`);
      assert.equal(p.md5sums.remote, '/u/stor/b/s1/md5sums.txt');
    });

    it('spellings of the same directory (trailing slash, ./, a/../) and overlapping ones plan each file once', async () => {
      const p = await makePlan(input({ subdirs: ['a/', './a/b', 'c/d/../d', 'a'] }));
      assert.deepEqual(rels(p), ['a/b/y.txt', 'a/x.txt', 'c/d/w.txt']);
      assert.deepEqual(p.dirs, ['/u/stor/b', '/u/stor/b/s1/a', '/u/stor/b/s1/a/b', '/u/stor/b/s1/c/d']);
      assert.equal(p.md5sums.body.split('\n').filter(Boolean).length, 3);
      // "." is the bits dir itself.
      assert.deepEqual(rels(await makePlan(input({ subdirs: ['.'] }))), rels(await makePlan(input())));
    });

    it('a subdirectory outside the bits dir (.., ../x, a/../.., an absolute path) is a usage error, and nothing outside is read', async () => {
      // A file beside the bits dir that a walk of ".." would find.
      await writeFile(join(dir, 'outside.txt'), 'host file');
      for (const s of ['..', '../', '../bits/a', 'a/../..', 'a/b/../../..', '/etc', join(bits, 'a')]) {
        const err = await rejection(makePlan(input({ subdirs: [s] })));
        assert.ok(err instanceof UsageError, `${s}: ${err.message}`);
        assert.equal(err.message, `subdirectory ${s} is not inside the bits directory`);
      }
    });

    it('a subdirectory that is missing or a file is a usage error naming it', async () => {
      const missing = await rejection(makePlan(input({ subdirs: ['nope'] })));
      assert.ok(missing instanceof UsageError);
      assert.equal(missing.message, `${join(bits, 'nope')} is not a directory`);
      const file = await rejection(makePlan(input({ subdirs: ['a', 'top.txt'] })));
      assert.equal(file.message, `${join(bits, 'top.txt')} is not a directory`);
      const under = await rejection(makePlan(input({ subdirs: ['top.txt/x'] })));
      assert.equal(under.message, `${join(bits, 'top.txt/x')} is not a directory`);
    });
  });

  it('temp files of a killed copy (.partial-) and artifacts.txt at the top are never published', async () => {
    await put({
      'demo/keep.txt': 'k',
      'demo/demo-zfs-1.zfs.gz.partial-4242': 'half an image',
      'demo/.partial-x': 'p',
      'demo/sub.partial-9/inside.txt': 'in a temp dir',
      'artifacts.txt': 'last run',
      'demo/artifacts.txt': 'a file of the component, published',
    });
    const p = await makePlan(input());
    assert.deepEqual(rels(p), ['demo/artifacts.txt', 'demo/keep.txt']);
    assert.ok(!p.md5sums.body.includes('partial'));
    assert.ok(!p.dirs.some((d) => d.includes('partial')), p.dirs.join(' '));
    assert.equal(p.artifactsFile, join(bits, 'artifacts.txt'));
  });

  describe('image manifests', () => {
    const image = randomBytes(4096);
    const base = testManifest({ name: 'demo', version: '1' }, image);
    const mf = (o: Record<string, unknown> = {}): string => JSON.stringify({ ...base, ...o });

    it('an image manifest with no uuid is refused before anything is published (bits-upload.sh skipped it and exited 0)', async () => {
      const noUuid = JSON.parse(mf()) as Record<string, unknown>;
      delete noUuid.uuid;
      await put({ 'demo/demo-zfs-1.zfs.gz': image, 'demo/demo-zfs-1.imgmanifest': JSON.stringify(noUuid) });
      for (const imports of [false, true]) {
        const err = await rejection(makePlan(input({ imports })));
        assert.ok(err instanceof UsageError, err.message);
        assert.match(err.message, /^image manifest demo\/demo-zfs-1\.imgmanifest: "uuid" is missing/);
      }
      // With -p a .manifest is an image manifest too (bits-upload.sh's rule); without -p it is only a file.
      await rm(join(bits, 'demo/demo-zfs-1.imgmanifest'));
      await put({ 'demo/demo-zfs-1.manifest': JSON.stringify(noUuid) });
      assert.match((await rejection(makePlan(input({ imports: true })))).message, /^image manifest demo\/demo-zfs-1\.manifest: "uuid" is missing/);
      assert.deepEqual(rels(await makePlan(input())), ['demo/demo-zfs-1.manifest', 'demo/demo-zfs-1.zfs.gz']);
    });

    describe('which file is the image when several sit beside its manifest', () => {
      const other = randomBytes(4096);
      const manifest = JSON.parse(mf()) as { uuid: string };

      it('the one whose size and sha1 are the manifest\'s files[0], whatever its name; the others are only published', async () => {
        await put({ 'demo/demo-zfs-1.imgmanifest': mf(), 'demo/demo-zfs-1.zfs.gz': other, 'demo/demo-zfs-1.zfs.xz': image, 'demo/demo-zfs-1.tgz': other });
        const c = captureRecords();
        let p: PublishPlan;
        try {
          p = await makePlan(input({ imports: true }));
        } finally {
          c.stop();
        }
        assert.equal(p.imports.length, 1);
        assert.equal(p.imports[0].uuid, manifest.uuid);
        assert.equal(p.imports[0].image.rel, 'demo/demo-zfs-1.zfs.xz');
        assert.equal(p.imports[0].compression, undefined);
        assert.deepEqual(rels(p), ['demo/demo-zfs-1.imgmanifest', 'demo/demo-zfs-1.tgz', 'demo/demo-zfs-1.zfs.gz', 'demo/demo-zfs-1.zfs.xz']);
        const warned = c.infos.filter((r) => r.level === 'warn').map((r) => String(r.message));
        assert.deepEqual(warned, ['image manifest demo/demo-zfs-1.imgmanifest: its image is demo/demo-zfs-1.zfs.xz; not its image: demo/demo-zfs-1.zfs.gz, demo/demo-zfs-1.tgz']);
      });

      it('two with the manifest\'s bytes: the first in bits-upload.sh\'s order (.zfs.gz, then buildimage\'s other compressions, .sh, .tgz, .tar.gz)', async () => {
        await put({ 'demo/demo-zfs-1.imgmanifest': mf(), 'demo/demo-zfs-1.sh': image, 'demo/demo-zfs-1.tar.gz': image });
        const p = await makePlan(input({ imports: true }));
        assert.equal(p.imports[0].image.rel, 'demo/demo-zfs-1.sh');
        assert.equal(p.imports[0].compression, 'none');
        await put({ 'demo/demo-zfs-1.zfs.bz2': image });
        assert.equal((await makePlan(input({ imports: true }))).imports[0].image.rel, 'demo/demo-zfs-1.zfs.bz2');
        await put({ 'demo/demo-zfs-1.zfs.gz': image });
        assert.equal((await makePlan(input({ imports: true }))).imports[0].image.rel, 'demo/demo-zfs-1.zfs.gz');
      });

      it('none of them the manifest\'s: refused, naming each (and without -p too: the manifest is checked against its image)', async () => {
        await put({ 'demo/demo-zfs-1.imgmanifest': mf(), 'demo/demo-zfs-1.zfs.gz': other, 'demo/demo-zfs-1.sh': Buffer.concat([image, Buffer.from('x')]) });
        for (const imports of [true, false]) {
          const err = await rejection(makePlan(input({ imports })));
          assert.ok(err instanceof UsageError, err.message);
          assert.equal(
            err.message,
            `image manifest demo/demo-zfs-1.imgmanifest: no file beside it is its image (files[0]: ${image.length} bytes, sha1 ${createHash('sha1').update(image).digest('hex')}): demo/demo-zfs-1.zfs.gz has sha1 ${createHash('sha1').update(other).digest('hex')}, demo/demo-zfs-1.sh is ${image.length + 1} bytes`,
          );
        }
      });
    });
  });

  describe('pointers and channel come from the branch, never from the try branch\'s name', () => {
    beforeEach(() => put({ 'demo/x.txt': 'x' }));

    it('a release build moves <branch>-latest and latest-release', async () => {
      const p = await makePlan(input({ branch: 'release-20240101' }));
      assert.deepEqual(
        p.pointers.map((x) => x.remote),
        ['/u/stor/b/release-20240101-latest', '/u/stor/b/latest-release'],
      );
      assert.ok(p.pointers.every((x) => x.target === '/u/stor/b/s1'));
    });

    it('a try branch named release-YYYYMMDD is not a release build: only its own pointer', async () => {
      const p = await makePlan(input({ branch: 'master', tryBranch: 'release-20240101' }));
      assert.deepEqual(
        p.pointers.map((x) => x.remote),
        ['/u/stor/b/release-20240101-latest'],
      );
      assert.equal(p.tryBranch, 'release-20240101');
    });
  });
});
