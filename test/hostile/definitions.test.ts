/**
 * Hostile build definitions with several images (issue 16), through the
 * real CLI: image names that are not names (empty, `..`, `/`, a path to the
 * host, 10k characters, control characters, unicode, twice), 100k images,
 * per-image keys the definition may not set, images that would write the
 * same outputs, state file or lockfile, --only naming what is not there,
 * --jobs 0 or huge. Each is one error line naming the field (bounded: no
 * 10k-character echo), exit 2, before anything is made: no state file,
 * nothing in the work dir, no output, the host (bait) untouched.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cli, errorLines, type CliResult } from '../helpers/cli.js';
import { layBait, type Bait } from '../helpers/hostile.js';
import { TEST_TOP } from '../helpers/world.js';

const UUID = '41bd4100-eb86-409a-85b0-e649aadf6f62';

describe('hostile: build definitions with several images (issue 16)', function () {
  this.timeout(5 * 60 * 1000);
  let bait: Bait;
  let dir: string;
  let work: string;
  let out: string;
  before(async () => {
    bait = await layBait('definitions');
    await mkdir(TEST_TOP, { recursive: true });
    dir = await mkdtemp(join(TEST_TOP, 'definitions-'));
    work = join(dir, 'work');
    out = join(dir, 'out');
    await mkdir(join(dir, 'proto'));
    await mkdir(out);
  });
  after(async () => {
    await bait.remove();
    await rm(dir, { recursive: true, force: true });
  });

  let n = 0;
  /** A definition file: the shared keys, then the images. */
  async function def(json: unknown): Promise<string> {
    const p = join(dir, `def-${++n}.json`);
    await writeFile(p, typeof json === 'string' ? json : JSON.stringify(json));
    return p;
  }

  const shared = { image: UUID, dir: 'proto', manifest: { version: '1.0.0' } };

  async function run(args: string[]): Promise<CliResult> {
    return cli(args, { cwd: dir, env: { BUILDIMAGE_DATASET_ROOT: 'nopool/images', BUILDIMAGE_WORK_DIR: work, BUILDIMAGE_SOURCE: dir }, timeoutMs: 60_000 });
  }

  async function assertRefused(r: CliResult, line: RegExp, what: string): Promise<void> {
    assert.equal(r.code, 2, `${what}: ${r.stderr}`);
    const lines = errorLines(r);
    assert.equal(lines.length, 1, `${what}: ${r.stderr}`);
    assert.match(lines[0], line, what);
    assert.ok(lines[0].length < 600, `${what}: the line is bounded (${lines[0].length} chars)`);
    assert.ok(!r.stderr.includes('x'.repeat(200)), `${what}: no long echo`);
    assert.ok(!(r.stdout + r.stderr).includes('PRIVATE KEY'), `${what}: the secret was shown`);
    assert.deepEqual(await readdir(work).catch(() => []), [], `${what}: nothing made in the work dir`);
    assert.deepEqual(await readdir(out), [], `${what}: no output`);
    await bait.assertUntouched(what);
  }

  it('image names that are not names: one line naming images[i].name, before anything is made', async () => {
    const names: Array<[unknown, RegExp]> = [
      ['', /images\[0\]\.name: must be an image name/],
      ['..', /images\[0\]\.name: must be an image name/],
      ['.', /images\[0\]\.name: must be an image name/],
      ['/', /images\[0\]\.name: must be an image name/],
      [`../../..${bait.dir}`, /images\[0\]\.name: must be an image name/],
      ['a/b', /images\[0\]\.name: must be an image name/],
      ['x'.repeat(10_000), /images\[0\]\.name: must be an image name/],
      ['api\nERROR: forged line', /images\[0\]\.name: must be an image name/],
      ['-rf', /images\[0\]\.name: must be an image name/],
      ['ａｐｉ', /images\[0\]\.name: must be an image name/],
      ['api\u202e', /images\[0\]\.name: must be an image name/],
      [42, /images\[0\]\.name: Expected string, received number/],
      [undefined, /images\[0\]\.name: is missing: every image has a name/],
    ];
    for (const [name, line] of names) {
      const p = await def({ ...shared, images: [{ ...(name === undefined ? {} : { name }), manifest: { name: 'a' } }] });
      for (const cmd of ['build', 'plan', 'prepare']) await assertRefused(await run([cmd, '--config', p]), line, `${cmd} with name ${JSON.stringify(name)?.slice(0, 40)}`);
    }
    const dup = await def({ ...shared, images: [{ name: 'api', manifest: { name: 'a' } }, { name: 'web', manifest: { name: 'w' } }, { name: 'api', manifest: { name: 'b' } }] });
    await assertRefused(await run(['build', '--config', dup]), /images\[2\]\.name: "api" names two images/, 'a name twice');
  });

  it('100k images, or 101, or none: refused by the file\'s bound or the list\'s, in one line', async () => {
    const many = await def({ ...shared, images: Array.from({ length: 100_000 }, (_, i) => ({ name: `i${i}` })) });
    await assertRefused(await run(['build', '--config', many]), /--config .*def-\d+\.json is larger than/, '100k images');
    const over = await def({ ...shared, images: Array.from({ length: 101 }, (_, i) => ({ name: `i${i}`, manifest: { name: `i${i}` } })) });
    await assertRefused(await run(['plan', '--config', over]), /images: may list at most 100 images/, '101 images');
    const none = await def({ ...shared, images: [] });
    await assertRefused(await run(['build', '--config', none]), /images: must list at least one image/, 'no images');
    const notList = await def({ ...shared, images: { name: 'a' } });
    await assertRefused(await run(['build', '--config', notList]), /images: Expected array, received object/, 'images not a list');
  });

  it('per-image keys an image may not set: unknown, nested images, settings that are not in buildimage.json; a 10k-character key is not echoed', async () => {
    for (const [key, value] of [
      ['images', []],
      ['config', 'other.json'],
      ['dataset-root', 'zones/x'],
      ['work-dir', bait.dir],
      ['state', join(bait.dir, 'etc/passwd')],
      ['write-lock', true],
      ['timeout', '1s'],
      ['jobs', 5],
      ['only', ['x']],
      ['pakages', []],
      ['$schema', 'x'],
      ['k'.repeat(10_000), 1],
    ] as const) {
      const p = await def({ ...shared, images: [{ name: 'api', manifest: { name: 'api' }, [key]: value }] });
      await assertRefused(await run(['build', '--config', p]), /images\[0\]: unknown key "/, `per-image ${key.slice(0, 20)}`);
    }
    // Values are checked per image as at the top: a base that is not a uuid, a prefix that is a path.
    const badUuid = await def({ ...shared, images: [{ name: 'api', manifest: { name: 'api' }, image: `../${bait.dir}` }] });
    await assertRefused(await run(['build', '--config', badUuid]), /image api: "image" in --config .* must be an image uuid/, 'a per-image base that is not a uuid');
    const badPrefix = await def({ ...shared, images: [{ name: 'api', manifest: { name: 'api' }, prefix: `../..${bait.dir}/x` }] });
    await assertRefused(await run(['build', '--config', badPrefix]), /image api: "prefix" in --config .* must be a file name prefix/, 'a per-image prefix that is a path');
  });

  it('images that would write the same outputs, state file or lockfile: refused before either is built', async () => {
    const samePrefix = await def({ ...shared, images: [{ name: 'a', prefix: 'svc', manifest: { name: 'a' } }, { name: 'b', prefix: 'svc', manifest: { name: 'b' } }] });
    await assertRefused(await run(['build', '--config', samePrefix, '--output-dir', out]), /images a and b would write the same output files \(.*svc-1\.0\.0\)/, 'the same prefix');
    await assertRefused(await run(['plan', '--config', samePrefix, '--output-dir', out]), /images a and b would write the same output files/, 'plan: the same prefix');
    const sameName = await def({ ...shared, images: [{ name: 'a', manifest: { name: 'svc' } }, { name: 'b', manifest: { name: 'svc' } }] });
    await assertRefused(await run(['build', '--config', sameName, '--output-dir', out]), /images a and b would write the same output files \(.*svc-zfs-1\.0\.0\)/, 'the same manifest name');
    const ok = await def({ ...shared, images: [{ name: 'a', manifest: { name: 'a' } }, { name: 'b', manifest: { name: 'b' } }] });
    // -P on the command line is every image's prefix.
    await assertRefused(await run(['build', '--config', ok, '-P', 'one', '--output-dir', out]), /images a and b would write the same output files/, '-P for all');
    const sameLock = await def({ ...shared, 'lock-file': 'one.lock.json', images: [{ name: 'a', manifest: { name: 'a' } }, { name: 'b', manifest: { name: 'b' } }] });
    await assertRefused(await run(['build', '--config', sameLock, '--write-lock', '--output-dir', out]), /images a and b would write the same lockfile \(--write-lock\)/, 'one lockfile for two');
  });

  it('--only naming what is not there: one line, the known names listed and bounded; a name that is not a name', async () => {
    const images = Array.from({ length: 40 }, (_, i) => ({ name: `img${i}`, manifest: { name: `img${i}` } }));
    const p = await def({ ...shared, images });
    const r = await run(['build', '--config', p, '--only', 'img1', '--only', 'nope']);
    await assertRefused(r, /--only nope: --config .* has no such image \(its images: img0, img1, .*img11 and 28 more\)/, 'unknown --only');
    await assertRefused(await run(['build', '--config', p, '--only', 'x'.repeat(10_000)]), /--only must be an image name .*, got "x{80}"…/, 'a 10k --only');
    await assertRefused(await run(['build', '--config', p, '--only', '../..']), /--only must be an image name/, '--only ../..');
    await assertRefused(await run(['plan', '--config', p, '--only', 'img1,,img2']), /--only must be an image name .*got ""/, 'an empty name in a list');
    await assertRefused(await run(['prepare', '--config', p]), /lists 40 images: prepare builds one, named with --only/, 'prepare of many');
    // A one-image definition: --only may name its image, nothing else.
    const one = await def({ ...shared, manifest: { name: 'solo', version: '1' } });
    await assertRefused(await run(['build', '--config', one, '--only', 'other']), /--only other: --config .* has no "images" list/, '--only on one image');
  });

  it('--jobs 0, negative, huge or not a number: one line', async () => {
    const p = await def({ ...shared, images: [{ name: 'a', manifest: { name: 'a' } }] });
    for (const j of ['0', '-1', '65', '1000000000000', 'two', '1.5', '']) {
      await assertRefused(await run(['build', '--config', p, '--jobs', j]), /--jobs must be a number of builds at once from 1 to 64/, `--jobs ${j}`);
    }
  });
});
