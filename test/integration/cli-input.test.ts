/**
 * Bad input through the real CLI: one clear error line, the usage exit
 * code, and nothing created (these fail before any ZFS work).
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
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
    ['manifest without version', (d) => ['-i', UUID, '-d', d, '-m', '{"name":"x"}'], /missing --image-version \(the image's version\)/],
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

/**
 * Issue 14: each error names the input the user wrote (the flag, the
 * variable, or the key in buildimage.json), and the discrete stages take
 * their state file from BUILDIMAGE_STATE and their definition from
 * ./buildimage.json. Exact lines and exit codes, through the real CLI.
 */
describe('CLI: errors name the input the user wrote (issue 14)', function () {
  this.timeout(120_000);
  let dir: string;
  let work: string;
  const env = () => ({ BUILDIMAGE_DATASET_ROOT: 'nopool/images', BUILDIMAGE_WORK_DIR: work });
  /** The one error line (and exit 2). */
  async function errorLine(args: string[], o: { cwd?: string; env?: Record<string, string> } = {}): Promise<string> {
    const r = await cli(args, { cwd: o.cwd ?? dir, env: { ...env(), ...o.env } });
    assert.equal(r.code, 2, r.stderr);
    const lines = errorLines(r);
    assert.equal(lines.length, 1, r.stderr);
    return lines[0];
  }
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'bi-cli14-'));
    work = join(dir, 'work');
    await mkdir(join(dir, 'proto'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('a name that cannot make the prefix names -m "name", or the key in --config; a bad prefix in the file is the file\'s, not -P\'s', async () => {
    assert.equal(
      await errorLine(['-i', UUID, '-d', 'proto', '-m', '{"name":"my image","version":"1"}']),
      'buildimage: error: -m "name" is "my image": it cannot make the output file prefix NAME-zfs (letters, digits, . _ + -) (pass -P PREFIX)',
    );
    await writeFile(join(dir, 'spaced.json'), JSON.stringify({ image: UUID, dir: 'proto', manifest: { name: 'my image' } }));
    assert.equal(
      await errorLine(['build', '--config', 'spaced.json', '--image-version', '1']),
      'buildimage: error: "manifest.name" in --config spaced.json is "my image": it cannot make the output file prefix NAME-zfs (letters, digits, . _ + -) (pass -P PREFIX, or set "prefix" in --config spaced.json)',
    );
    await writeFile(join(dir, 'prefixed.json'), JSON.stringify({ image: UUID, dir: 'proto', manifest: { name: 'my image' }, prefix: 'my image-zfs' }));
    assert.equal(
      await errorLine(['build', '--config', 'prefixed.json', '--image-version', '1']),
      'buildimage: error: "prefix" in --config prefixed.json must be a file name prefix (letters, digits, . _ + -), got "my image-zfs"',
    );
    await writeFile(join(dir, 'noproto.json'), JSON.stringify({ image: UUID, dir: 'nope', manifest: { name: 'svc' } }));
    assert.equal(
      await errorLine(['build', '--config', 'noproto.json', '--image-version', '1']),
      `buildimage: error: proto directory ("dir" in --config noproto.json) ${join(dir, 'nope')} does not exist`,
    );
  });

  it('a missing version points at --image-version (and the manifest it could be in)', async () => {
    await writeFile(join(dir, 'noversion.json'), JSON.stringify({ image: UUID, dir: 'proto', manifest: { name: 'svc' } }));
    assert.equal(
      await errorLine(['build', '--config', 'noversion.json']),
      'buildimage: error: missing --image-version (the image\'s version) (pass --image-version VERSION, or set "manifest.version" in --config noversion.json)',
    );
    assert.equal(
      await errorLine(['build', '-i', UUID, '-d', 'proto', '-m', '{"name":"svc"}']),
      'buildimage: error: missing --image-version (the image\'s version) (pass --image-version VERSION, or set "version" in -m)',
    );
  });

  it('-m takes JSON, @FILE or the path of a file; anything else says so', async () => {
    await writeFile(join(dir, 'manifest.json'), '{"name":"from file","version":"1"}');
    // The file is read: its name is the one that cannot make a prefix.
    for (const m of ['manifest.json', '@manifest.json', `@${join(dir, 'manifest.json')}`]) {
      assert.equal(
        await errorLine(['-i', UUID, '-d', 'proto', '-m', m]),
        'buildimage: error: -m "name" is "from file": it cannot make the output file prefix NAME-zfs (letters, digits, . _ + -) (pass -P PREFIX)',
        m,
      );
    }
    assert.equal(
      await errorLine(['-i', UUID, '-d', 'proto', '-m', 'manifst.json']),
      'buildimage: error: -m takes the manifest as JSON or @FILE, got "manifst.json" (e.g. -m \'{"name":"NAME","version":"1.0.0"}\' or -m @manifest.json)',
    );
    assert.equal(
      await errorLine(['-i', UUID, '-d', 'proto', '-m', '@manifst.json']),
      'buildimage: error: cannot read -m file manifst.json: no such file (-m takes the manifest as JSON or @FILE)',
    );
    await writeFile(join(dir, 'broken.json'), '{"name": "x",\n  "version": "1" "description": "d"}');
    assert.equal(await errorLine(['-i', UUID, '-d', 'proto', '-m', '@broken.json']), 'buildimage: error: -m file broken.json is not valid JSON (line 2, column 18)');
    assert.equal(await errorLine(['-i', UUID, '-d', 'proto', '-m', '@proto']), 'buildimage: error: cannot read -m file proto: not a regular file (-m takes the manifest as JSON or @FILE)');
  });

  it('--timeout names itself once and says the range', async () => {
    for (const t of ['5x', '0s', '200h']) {
      assert.equal(
        await errorLine(['assemble', '--timeout', t]),
        `buildimage: error: --timeout must be a duration like 90s, 30m or 2h (from 1s to 168h), got "${t}"`,
      );
    }
  });

  it('the stages, clean and prepare take --state from BUILDIMAGE_STATE; publish does not', async () => {
    const state = join(dir, 'elsewhere', 'state.json');
    for (const c of ['assemble', 'pkgadd', 'seal', 'clean']) {
      assert.equal(await errorLine([c], { env: { BUILDIMAGE_STATE: state } }), `buildimage: error: no state file at ${state} (run \`buildimage prepare\` first, or pass --state or set BUILDIMAGE_STATE)`, c);
    }
    // --state wins over the variable.
    assert.equal(
      await errorLine(['assemble', '--state', 'given.json'], { env: { BUILDIMAGE_STATE: state } }),
      'buildimage: error: no state file at given.json (run `buildimage prepare` first, or pass --state or set BUILDIMAGE_STATE)',
    );
    // publish puts a build's outputs into the bits only when --state is on its command line.
    const r = await cli(['publish', '-L', '-d', join(dir, 'pub'), '-b', 'master', '-n', 'svc', '-t', 'master-1', '-D', join(dir, 'nobits'), '--json'], { cwd: dir, env: { BUILDIMAGE_STATE: state } });
    assert.equal(r.code, 2, r.stderr);
    assert.equal(JSON.parse(r.stdout).error.message, `bits directory ${join(dir, 'nobits')} does not exist`);
  });

  // Item 10: the flags declare their variables (oclif `env`) for help, but oclif reads none itself.
  it('a variable is read the one buildimage way: a switch by core/env\'s rule, and below buildimage.json', async () => {
    assert.equal(
      await errorLine(['assemble'], { env: { BUILDIMAGE_KEEP_ON_FAILURE: 'maybe' } }),
      'buildimage: error: BUILDIMAGE_KEEP_ON_FAILURE must be 1, true, yes or on (or 0, false, no, off, empty), got "maybe"',
    );
    await writeFile(join(dir, 'sourced.json'), JSON.stringify({ image: UUID, dir: 'proto', manifest: { name: 'svc' }, source: 'from-file' }));
    assert.equal(
      await errorLine(['build', '--config', 'sourced.json', '--image-version', '1'], { env: { BUILDIMAGE_SOURCE: join(dir, 'from-env') } }),
      `buildimage: error: image source (--source) ${join(dir, 'from-file')} does not exist`,
    );
    assert.equal(
      await errorLine(['assemble'], { env: { BUILDIMAGE_LOG_FORMAT: 'xml' } }),
      'buildimage: error: BUILDIMAGE_LOG_FORMAT (--log-format) must be one of human, json',
    );
  });

  it('build and prepare read ./buildimage.json when --config is not given', async () => {
    const repo = join(dir, 'repo');
    await mkdir(repo);
    await writeFile(join(repo, 'buildimage.json'), JSON.stringify({ image: UUID, dir: 'proto', manifest: { name: 'svc' } }));
    for (const c of ['prepare', 'build']) {
      assert.equal(await errorLine([c, '--image-version', '1'], { cwd: repo }), `buildimage: error: proto directory ("dir" in --config buildimage.json) ${join(repo, 'proto')} does not exist`, c);
    }
    // Said on stderr, so a log shows where the values came from.
    const r = await cli(['prepare', '--image-version', '1'], { cwd: repo, env: env() });
    assert.match(r.stderr, /^\[ *[\d.]+s\] build definition: buildimage.json \(no --config given; it is the default here\)$/m);
    // --config wins over it.
    await writeFile(join(repo, 'other.json'), JSON.stringify({ image: UUID, dir: 'other', manifest: { name: 'svc' } }));
    assert.equal(await errorLine(['prepare', '--config', 'other.json', '--image-version', '1'], { cwd: repo }), `buildimage: error: proto directory ("dir" in --config other.json) ${join(repo, 'other')} does not exist`);
  });
});
