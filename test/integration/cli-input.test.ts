/**
 * Bad input through the real CLI: one clear error line, the usage exit
 * code, and nothing created (these fail before any ZFS work).
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli, errorLines } from '../helpers/cli.js';

const UUID = '41bd4100-eb86-409a-85b0-e649aadf6f62';
const MF = '{"name":"svc","version":"1.0.0"}';

describe('CLI: bad input is one clear line and exit 2', function () {
  this.timeout(120_000);
  let dir: string;
  let work: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'bi-cli-'));
    work = join(dir, 'work');
    await writeFile(join(dir, 'afile'), 'x');
  });
  after(() => rm(dir, { recursive: true, force: true }));

  const cases: Array<[string, (d: string) => string[], RegExp]> = [
    ['manifest not JSON', (d) => ['-i', UUID, '-d', d, '-m', '{name:'], /manifest \(-m\) is not valid JSON/],
    ['manifest without version', (d) => ['-i', UUID, '-d', d, '-m', '{"name":"x"}'], /"version" is missing/],
    ['manifest without name', (d) => ['-i', UUID, '-d', d, '-m', '{"version":"1"}'], /"name" is missing/],
    ['manifest is an array', (d) => ['-i', UUID, '-d', d, '-m', '[1]'], /must be a JSON object/],
    ['bad uuid', (d) => ['-i', 'not-a-uuid', '-d', d, '-m', MF], /-i must be an image uuid/],
    ['missing proto dir', (d) => ['-i', UUID, '-d', join(d, 'nope'), '-m', MF], /proto directory \(-d\) .* does not exist/],
    ['proto is a file', (d) => ['-i', UUID, '-d', join(d, 'afile'), '-m', MF], /proto directory \(-d\) .* is not a directory/],
    ['bad package name', (d) => ['-i', UUID, '-d', d, '-m', MF, '-p', 'curl,$(reboot)'], /invalid package name/],
    ['package looks like an option', (d) => ['-i', UUID, '-d', d, '-m', MF, '-p', '-f'], /package/],
    ['bad compression', (d) => ['-i', UUID, '-d', d, '-m', MF, '--compression', 'zstd'], /compression/],
    ['bad prefix', (d) => ['-i', UUID, '-d', d, '-m', MF, '-P', '../evil'], /-P must be a file name prefix/],
    ['unknown flag', (d) => ['-i', UUID, '-d', d, '-m', MF, '--frobnicate'], /Nonexistent flag/],
    ['missing -i', (d) => ['build', '-d', d, '-m', MF], /missing -i \(the base image uuid\)/],
    ['bad dataset root', (d) => ['-i', UUID, '-d', d, '-m', MF, '--dataset-root', 'pool//x'], /invalid dataset root name/],
    ['bad min platform', (d) => ['-i', UUID, '-d', d, '-m', MF, '--dataset-root', 'p/x', '--min-platform', 'soon'], /--min-platform/],
    ['output dir is a file', (d) => ['-i', UUID, '-d', d, '-m', MF, '--output-dir', join(d, 'afile')], /is not a directory/],
    ['source dir missing', (d) => ['-i', UUID, '-d', d, '-m', MF, '--source', join(d, 'none'), '--dataset-root', 'p/x'], /image source .* does not exist/],
  ];

  for (const [name, args, re] of cases) {
    it(name, async () => {
      const r = await cli([...args(dir), '--work-dir', work], { env: { BUILDIMAGE_DATASET_ROOT: 'nopool/images' } });
      const lines = errorLines(r);
      assert.equal(r.code, 2, `exit code (stderr: ${r.stderr})`);
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0]!, re);
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
      assert.deepEqual(await readdir(work).catch(() => []), [], 'nothing created');
    });
  }

  it('--json reports the error as one object', async () => {
    const r = await cli(['-i', 'bad', '-d', dir, '-m', MF, '--json']);
    assert.equal(r.code, 2);
    const obj = JSON.parse(r.stdout.trim());
    assert.equal(obj.ok, false);
    assert.match(obj.error.message, /-i must be an image uuid/);
  });

  it('stage commands refuse without a state file', async () => {
    for (const stage of ['assemble', 'pkgadd', 'seal']) {
      const r = await cli([stage, '--state', join(dir, 'none.json')]);
      assert.equal(r.code, 2);
      assert.match(errorLines(r)[0]!, /no state file at .*run `buildimage prepare` first/);
    }
  });
});
