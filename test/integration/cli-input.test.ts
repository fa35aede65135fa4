/**
 * Bad input through the real CLI: one clear error line, the usage exit
 * code, and nothing created (these fail before any ZFS work).
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Layout } from '../../src/core/layout.js';
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
    ['proto is a file that is no archive', (d) => ['-i', UUID, '-d', join(d, 'afile'), '-m', MF], /proto archive \(-d\) .* is not a tar archive \(plain, gzip, bzip2 or xz\)/],
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
    // manifest JSON: types, unknown and builder-owned fields, sizes
    ['manifest name is a number', (d) => ['-i', UUID, '-d', d, '-m', '{"name":1,"version":"1"}'], /"name"/],
    ['manifest version with spaces', (d) => ['-i', UUID, '-d', d, '-m', '{"name":"x","version":"1 0"}'], /"version"/],
    ['manifest tags is an array', (d) => ['-i', UUID, '-d', d, '-m', '{"name":"x","version":"1","tags":[1]}'], /"tags"/],
    ['manifest unknown field', (d) => ['-i', UUID, '-d', d, '-m', '{"name":"x","version":"1","colour":"red"}'], /"colour"/],
    ['manifest sets uuid', (d) => ['-i', UUID, '-d', d, '-m', `{"name":"x","version":"1","uuid":"${UUID}"}`], /"uuid" is set by buildimage/],
    ['manifest sets files', (d) => ['-i', UUID, '-d', d, '-m', '{"name":"x","version":"1","files":[]}'], /"files" is set by buildimage/],
    ['manifest is v1', (d) => ['-i', UUID, '-d', d, '-m', '{"name":"x","version":"1","creator_uuid":"x"}'], /v1 image manifest/],
    ['manifest huge description', (d) => ['-i', UUID, '-d', d, '-m', JSON.stringify({ name: 'x', version: '1', description: 'd'.repeat(20000) })], /"description"/],
    ['manifest name too long', (d) => ['-i', UUID, '-d', d, '-m', JSON.stringify({ name: 'n'.repeat(2000), version: '1' })], /"name"/],
    ['manifest bad requirements', (d) => ['-i', UUID, '-d', d, '-m', '{"name":"x","version":"1","requirements":{"min_ram":"lots"}}'], /requirements/],
    ['manifest bad min_platform', (d) => ['-i', UUID, '-d', d, '-m', '{"name":"x","version":"1","requirements":{"min_platform":{"7.0":"yesterday"}}}'], /min_platform/],
    ['manifest is empty', (d) => ['-i', UUID, '-d', d, '-m', ''], /manifest/],
    ['manifest is null', (d) => ['-i', UUID, '-d', d, '-m', 'null'], /must be a JSON object/],
    // package names with shell metacharacters and option look-alikes
    ...[';reboot', 'a|b', 'a`id`', 'a&&b', 'a>b', 'a b', 'a\nb', '$HOME', "a'b", 'foo*'].map(
      (p) => [`package name ${JSON.stringify(p)}`, (d: string) => ['-i', UUID, '-d', d, '-m', MF, '-p', `curl,${p}`], /invalid package name/] as [string, (d: string) => string[], RegExp],
    ),
    ['empty package in list', (d) => ['-i', UUID, '-d', d, '-m', MF, '-p', 'curl,,wget'], /empty|package/],
    // uuids
    ['uuid too short', (d) => ['-i', '41bd4100-eb86-409a-85b0', '-d', d, '-m', MF], /-i must be an image uuid/],
    ['uuid with spaces', (d) => ['-i', ` ${UUID}`, '-d', d, '-m', MF], /-i must be an image uuid/],
    ['uuid with a path', (d) => ['-i', `../${UUID}`, '-d', d, '-m', MF], /-i must be an image uuid/],
    // paths and other flags
    ['proto with a space that does not exist', (d) => ['-i', UUID, '-d', join(d, 'no such dir'), '-m', MF], /does not exist/],
    ['timeout not a duration', (d) => ['-i', UUID, '-d', d, '-m', MF, '--timeout', 'forever'], /--timeout must be a duration/],
    ['timeout too short', (d) => ['-i', UUID, '-d', d, '-m', MF, '--timeout', '0s'], /--timeout must be a duration/],
    ['channel with a slash', (d) => ['-i', UUID, '-d', d, '-m', MF, '--channel', 'a/b', '--dataset-root', 'p/x'], /--channel must be a channel name/],
    ['motd source with a newline', (d) => ['-i', UUID, '-d', d, '-m', MF, '-S', 'a\nb', '--dataset-root', 'p/x'], /-S must be a single line/],
    ['clean with --state and --all', () => ['clean', '--all', '--state', 'x.json'], /cannot also be provided|--all|--state/],
  ];

  for (const [name, args, re] of cases) {
    it(name, async () => {
      const r = await cli([...args(dir), '--work-dir', work], { env: { BUILDIMAGE_DATASET_ROOT: 'nopool/images' } });
      const lines = errorLines(r);
      assert.equal(r.code, 2, `exit code (stderr: ${r.stderr})`);
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0], re);
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

  it('state files: missing, corrupt, not ours, a directory, or from another build', async () => {
    const corrupt = join(dir, 'corrupt.json');
    await writeFile(corrupt, '{"version":1,');
    const foreign = join(dir, 'foreign.json');
    await writeFile(foreign, JSON.stringify({ name: 'package.json', version: '1.0.0' }));
    const other = join(dir, 'other.json');
    const { newState } = await import('../../src/build/state.js');
    const st = newState({
      imageUuid: UUID, protoDir: dir, manifest: { name: 'x', version: '1' }, packages: [], prefix: 'x-zfs', motd: false, audit: false,
      upgrade: false, source: dir, datasetRoot: 'nopool/images', outputDir: dir, compression: 'gzip', workDir: work,
    });
    st.completed = ['prepare'];
    st.analog = { dataset: `nopool/images/${st.buildId}`, mountpoint: new Layout('nopool/images', work).zoneMountpoint(st.buildId) };
    await writeFile(other, JSON.stringify(st));
    for (const [file, re] of [
      [join(dir, 'none.json'), /no state file at/],
      [corrupt, /is corrupt \(not JSON\)/],
      [foreign, /is not a buildimage state file/],
      [dir, /cannot read state file/],
      [other, /zone analog nopool\/images\/\S+ no longer exists/],
    ] as const) {
      const r = await cli(['assemble', '--state', file]);
      assert.equal(r.code, 2, r.stderr);
      assert.equal(errorLines(r).length, 1, r.stderr);
      assert.match(errorLines(r)[0], re);
    }
    assert.deepEqual(await readdir(work).catch(() => []), [], 'nothing created');
  });

  it('stage commands refuse without a state file', async () => {
    for (const stage of ['assemble', 'pkgadd', 'seal']) {
      const r = await cli([stage, '--state', join(dir, 'none.json')]);
      assert.equal(r.code, 2);
      assert.match(errorLines(r)[0], /no state file at .*run `buildimage prepare` first/);
    }
  });
});
