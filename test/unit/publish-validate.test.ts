/**
 * Publish's checks before anything is published (issue 14 item 1: every
 * image manifest by imgmanifest's rules as IMGAPI's import runs them, every
 * image against its manifest's files[0]) and the progress shown while the
 * bits are hashed (item 4). The CLI and the servers: test/integration/publish.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UsageError } from '../../src/core/errors.js';
import { digestFile } from '../../src/core/files.js';
import { makePlan, type PlanInput } from '../../src/publish/plan.js';
import { captureRecords } from '../helpers/logs.js';
import { testManifest } from '../helpers/manifests.js';

/** Log records (message and fields) while `fn` runs, the console silenced. */
async function records(fn: () => Promise<unknown>): Promise<Array<Record<string, unknown>>> {
  const c = captureRecords();
  try {
    await fn();
  } finally {
    c.stop();
  }
  return c.infos;
}

describe('publish: checks and hashing progress', () => {
  let dir: string;
  let bits: string;
  // Several read chunks (64 KiB each) and a little more.
  const image = randomBytes(5 * 64 * 1024 + 17);
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'bi-publish-validate-'));
    bits = join(dir, 'bits');
    await mkdir(join(bits, 'demo'), { recursive: true });
    await writeFile(join(bits, 'demo/demo-zfs-1.zfs.gz'), image);
    await writeFile(join(bits, 'demo/demo-zfs-1.imgmanifest'), JSON.stringify(testManifest({ name: 'demo', version: '1' }, image)));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  const input = (o: Partial<PlanInput> = {}): PlanInput => ({ name: 'demo', branch: 'master', stamp: 's1', channel: 'dev', bitsDir: bits, baseDir: '/u/stor/b', ...o });

  describe('hashing progress', () => {
    it('digestFile reports the running byte count after each chunk of a file bigger than one chunk', async () => {
      const seen: number[] = [];
      const { size } = await digestFile(join(bits, 'demo/demo-zfs-1.zfs.gz'), 'sha1', (b) => seen.push(b));
      assert.equal(size, image.length);
      assert.ok(seen.length > 1, `one report per chunk, got ${seen.join(', ')}`);
      assert.ok(
        seen.every((b, i) => i === 0 || b > seen[i - 1]),
        'rising',
      );
      assert.equal(seen.at(-1), image.length);
    });

    it('the plan reads each file once for MD5, SHA-1 and SHA-256, with progress: byte counts and the total, as log fields', async () => {
      const infos = await records(() => makePlan(input({ progress: { everyMs: 0, live: false } })));
      const of = (label: string) => infos.filter((r) => r.progress === label);
      const imageLabels = new Set(infos.map((r) => r.progress).filter((p) => String(p).startsWith('hashing demo/demo-zfs-1.zfs.gz')));
      assert.deepEqual([...imageLabels], ['hashing demo/demo-zfs-1.zfs.gz (MD5, SHA-1, SHA-256)'], 'the image is read once');
      for (const label of imageLabels as Set<string>) {
        const lines = of(label);
        assert.ok(lines.length > 1, `${label}: ${infos.map((r) => r.message).join(' | ')}`);
        assert.equal(lines.at(-1)!.count, image.length);
        assert.equal(lines[0].total, image.length);
        assert.equal(lines[0].unit, 'bytes');
        assert.match(String(lines.at(-1)!.message), /^hashing demo\/demo-zfs-1\.zfs\.gz \(MD5, SHA-1, SHA-256\): 327\.7 kB of 327\.7 kB \(100%\)/);
      }
    });

    it('off a TTY a quick hash logs nothing (a line every 5 s at most, as uploads)', async () => {
      const infos = await records(() => makePlan(input({ progress: { live: false } })));
      assert.deepEqual(
        infos.filter((r) => r.progress !== undefined),
        [],
      );
    });
  });

  describe('image manifests', () => {
    it('an invalid one is one line naming the file and the field (UsageError, exit 2), with or without -p', async () => {
      await writeFile(join(bits, 'demo/demo-zfs-1.imgmanifest'), JSON.stringify(testManifest({ name: 'demo', version: '1', type: 'zone' }, image)));
      for (const imports of [false, true]) {
        await assert.rejects(makePlan(input({ imports })), (e: UsageError) => {
          assert.ok(e instanceof UsageError);
          assert.equal(e.exitCode, 2);
          assert.match(e.message, /^image manifest demo\/demo-zfs-1\.imgmanifest: "type" must be one of .*; got "zone"$/);
          return true;
        });
      }
    });

    it('checked as IMGAPI sees it: keys the import leaves out do not fail it; v defaults to 2', async () => {
      const { v: _v, ...m } = testManifest({ name: 'demo', version: '1' }, image);
      await writeFile(join(bits, 'demo/demo-zfs-1.imgmanifest'), JSON.stringify({ ...m, expires_at: '2030-01-01T00:00:00Z', state: 'active' }));
      const plan = await makePlan(input({ imports: true }));
      assert.equal(plan.imports.length, 1);
    });

    it('*.manifest is an image manifest only with -p (as bits-upload.sh); a manifest with no image is an error only with -p', async () => {
      await writeFile(join(bits, 'demo/smf.manifest'), '<?xml version="1.0"?><service_bundle/>');
      await makePlan(input());
      await assert.rejects(makePlan(input({ imports: true })), /^UsageError: image manifest demo\/smf\.manifest is not valid JSON$/);
      await rm(join(bits, 'demo/smf.manifest'));
      await rm(join(bits, 'demo/demo-zfs-1.zfs.gz'));
      await makePlan(input());
      await assert.rejects(makePlan(input({ imports: true })), /cannot import demo\/demo-zfs-1\.imgmanifest into updates IMGAPI: no image file beside it/);
    });

    it('the image must be the manifest\'s: size, then sha1; the checked sha1 goes to the import', async () => {
      const plan = await makePlan(input({ imports: true }));
      assert.equal(plan.imports[0].sha1, testManifest({}, image).files![0].sha1);
      await writeFile(join(bits, 'demo/demo-zfs-1.zfs.gz'), image.subarray(1));
      await assert.rejects(makePlan(input()), new RegExp(`"files\\[0\\]\\.size" is ${image.length}, but demo/demo-zfs-1\\.zfs\\.gz is ${image.length - 1} bytes`));
      const flipped = Buffer.from(image);
      flipped[100] ^= 1;
      await writeFile(join(bits, 'demo/demo-zfs-1.zfs.gz'), flipped);
      await assert.rejects(makePlan(input()), /"files\[0\]\.sha1" is [0-9a-f]{40}, but demo\/demo-zfs-1\.zfs\.gz has sha1 [0-9a-f]{40}$/);
    });
  });
});
