/**
 * bin/buildimage, the file npm links as `buildimage`: a sh wrapper that
 * finds its real directory through npm's bin symlinks and execs node with a
 * small young generation; and oclif.manifest.json, which lets a run import
 * only the command it runs.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, mkdirSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { BIN, REPO } from '../helpers/cli.js';

describe('bin/buildimage (the npm bin)', function () {
  this.timeout(20_000);
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'bi-bin-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('through a chain of relative and absolute symlinks, execs `node --max-semi-space-size=1 <repo>/bin/run.js` with the arguments intact', async () => {
    // A stand-in `node` first in PATH that reports how it was called.
    mkdirSync(join(dir, 'fakebin'));
    writeFileSync(join(dir, 'fakebin', 'node'), '#!/bin/sh\necho "pid $$"\nfor a in "$@"; do echo "arg $a"; done\n');
    chmodSync(join(dir, 'fakebin', 'node'), 0o755);
    // As npm links it: <prefix>/bin/buildimage -> ../lib/node_modules/buildimage/bin/buildimage (here: -> another link -> the file).
    mkdirSync(join(dir, 'lib'));
    symlinkSync(BIN, join(dir, 'lib', 'real-link'));
    mkdirSync(join(dir, 'bin'));
    symlinkSync('../lib/real-link', join(dir, 'bin', 'buildimage'));
    const r = await execa('sh', ['-c', 'echo "shell $$"; exec "$0" "$@"', join(dir, 'bin', 'buildimage'), 'build', '-m', '{"name": "a b"}', ''], {
      env: { PATH: `${join(dir, 'fakebin')}:/usr/bin:/bin` },
    });
    const lines = r.stdout.split('\n');
    assert.deepEqual(lines.filter((l) => l.startsWith('arg ')), [
      'arg --max-semi-space-size=1',
      `arg ${join(REPO, 'bin', 'run.js')}`,
      'arg build',
      'arg -m',
      'arg {"name": "a b"}',
      'arg ',
    ]);
    // exec all the way: node has the pid the caller started (signals and exit status are node's own).
    assert.equal(lines.find((l) => l.startsWith('pid '))!.slice(4), lines.find((l) => l.startsWith('shell '))!.slice(6));
  });

  it('runs the real CLI', async () => {
    const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string; bin: Record<string, string> };
    assert.equal(join(REPO, pkg.bin.buildimage), BIN);
    const r = await execa(BIN, ['build', '--help']);
    assert.match(r.stdout, /-i, --image=<value>/);
  });
});

/**
 * The old tool's habits, which scripts and fingers still have: `-h`
 * anywhere, `buildimage help [COMMAND]`, and `--version` (or `-V`) printing
 * the bare version that `$(buildimage --version)` compares.
 */
describe('help and version, as the old tool answered them', function () {
  this.timeout(60_000);
  const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string };
  const manifest = () =>
    JSON.parse(readFileSync(join(REPO, 'oclif.manifest.json'), 'utf8')) as {
      commands: Record<string, { flags: Record<string, { char?: string }> }>;
    };

  for (const flag of ['--version', '-V']) {
    it(`\`buildimage ${flag}\` prints the bare version and nothing else`, async () => {
      const r = await execa(BIN, [flag], { reject: false });
      assert.equal(r.exitCode, 0, String(r.stderr));
      assert.equal(r.stdout, pkg.version);
      assert.equal(r.stderr, '');
    });
  }

  for (const args of [['-h'], ['--help'], ['help']]) {
    it(`\`buildimage ${args.join(' ')}\` shows the command list`, async () => {
      const r = await execa(BIN, args, { reject: false });
      assert.equal(r.exitCode, 0, String(r.stderr));
      assert.match(r.stdout, /COMMANDS/);
      for (const c of ['build', 'clean', 'publish']) assert.match(r.stdout, new RegExp(`^  ${c} `, 'm'));
    });
  }

  // One test per command (three processes each), so a slow machine's start-up time is bounded per command.
  const ids = Object.keys(manifest().commands).filter((c) => c !== 'help');
  it('every command has its help (the manifest lists them all)', () => {
    assert.ok(ids.length >= 9, ids.join(','));
  });
  for (const id of ids) {
    it(`\`${id} -h\`, \`${id} --help\` and \`help ${id}\` show its help`, async () => {
      const forms = [[id, '-h'], [id, '--help'], ['help', id]];
      const outs = await Promise.all(forms.map((a) => execa(BIN, a, { reject: false })));
      outs.forEach((r, i) => {
        assert.equal(r.exitCode, 0, `${forms[i].join(' ')}: ${String(r.stderr)}`);
        assert.match(r.stdout, new RegExp(`^USAGE\\n  \\$ buildimage ${id}`, 'm'), forms[i].join(' '));
      });
      assert.equal(outs[0].stdout, outs[2].stdout, `${id} -h and help ${id} agree`);
    });
  }

  it('the old tool\'s flag line with -h at the end shows build\'s help, not a build', async () => {
    const r = await execa(BIN, ['-i', '00000000-0000-0000-0000-000000000000', '-d', '/nonexistent', '-h'], { reject: false });
    assert.equal(r.exitCode, 0, String(r.stderr));
    assert.match(r.stdout, /\$ buildimage build/);
  });

  it('`help` with an unknown command is one error line and exit 2', async () => {
    const r = await execa(BIN, ['help', 'nope'], { reject: false });
    assert.equal(r.exitCode, 2);
    assert.equal(String(r.stderr), 'buildimage: error: unknown command "nope" (buildimage help lists the commands)');
  });

  // Issue 14, item 10: "did you mean", the one error line, and --json, for an unknown command however it is asked for.
  it('an unknown command is one error line with the closest command, exit 2; with --json one error object', async () => {
    for (const [args, line] of [
      [['asemble'], 'buildimage: error: unknown command "asemble"; did you mean assemble? (buildimage help lists the commands)'],
      [['biuld', '-i', 'x'], 'buildimage: error: unknown command "biuld"; did you mean build? (buildimage help lists the commands)'],
      [['pub'], 'buildimage: error: unknown command "pub"; did you mean publish? (buildimage help lists the commands)'],
      [['frobnicate'], 'buildimage: error: unknown command "frobnicate" (buildimage help lists the commands)'],
      [['help', 'sael'], 'buildimage: error: unknown command "sael"; did you mean seal? (buildimage help lists the commands)'],
      [['asemble', '--help'], 'buildimage: error: unknown command "asemble"; did you mean assemble? (buildimage help lists the commands)'],
    ] as const) {
      const r = await execa(BIN, args, { reject: false });
      assert.equal(r.exitCode, 2, args.join(' '));
      assert.equal(String(r.stderr), line, args.join(' '));
      assert.equal(String(r.stdout), '', args.join(' '));
    }
    const r = await execa(BIN, ['asemble', '--state', 'x', '--json'], { reject: false });
    assert.equal(r.exitCode, 2);
    assert.equal(String(r.stderr), '');
    const lines = String(r.stdout).split('\n');
    assert.equal(lines.length, 1, String(r.stdout));
    const obj = JSON.parse(lines[0]) as { ok: boolean; error: { message: string; hint?: string; exitCode: number } };
    assert.equal(obj.ok, false);
    assert.equal(obj.error.message, 'unknown command "asemble"; did you mean assemble?');
    assert.equal(obj.error.hint, 'buildimage help lists the commands');
    assert.equal(obj.error.exitCode, 2);
  });

  it('`autocomplete` (the oclif plugin) gives shell completion for the commands and their flags', async () => {
    const r = await execa(BIN, ['autocomplete', 'script', 'bash'], { reject: false, env: { HOME: mkdtempSync(join(tmpdir(), 'bi-ac-')) } });
    assert.equal(r.exitCode, 0, String(r.stderr));
    assert.match(String(r.stdout), /buildimage/);
    const list = await execa(BIN, ['help'], { reject: false });
    assert.match(String(list.stdout), /^ {2}autocomplete /m);
  });

  // Issue 14, items 6 and 10: defaults as the user writes them, and each variable in oclif's one [default: …, env: …] form.
  it('help shows a default as it would be written (30m) and each variable as the flag\'s env', async () => {
    const help = String((await execa(BIN, ['assemble', '--help'], { reject: false })).stdout).replace(/\s+/g, ' ');
    assert.match(help, /--timeout=<value> \[default: 30m\] how long any single command may take/);
    assert.match(help, /--state=<value> \[default: \.buildimage\/state\.json, env: BUILDIMAGE_STATE\] state file of a build in discrete stages/);
    assert.match(help, /--keep-on-failure \[env: BUILDIMAGE_KEEP_ON_FAILURE\] on failure keep/);
    assert.doesNotMatch(help, /1800000|; env:/);
    const build = String((await execa(BIN, ['build', '--help'], { reject: false })).stdout).replace(/\s+/g, ' ');
    assert.match(build, /--source=<value> \[default: https:\/\/updates\.tritondatacenter\.com, env: BUILDIMAGE_SOURCE\] where base images come from/);
    assert.match(build, /--config=<value> \[default: buildimage\.json when there is one here\] build definition file/);
    assert.match(build, /--state=<value> \[env: BUILDIMAGE_STATE\] keep the build state in this file/, 'build: no default state file');
    const publish = String((await execa(BIN, ['publish', '--help'], { reject: false })).stdout).replace(/\s+/g, ' ');
    assert.match(publish, /--state=<value> state file of a finished build/, 'publish does not read BUILDIMAGE_STATE');
  });

  it('no command takes -h or -V as a short flag of its own', () => {
    for (const [id, c] of Object.entries(manifest().commands)) {
      for (const [name, f] of Object.entries(c.flags)) assert.ok(!['h', 'V'].includes(f.char ?? ''), `${id} --${name} has -${f.char}`);
    }
  });
});

describe('oclif.manifest.json (written by npm run build)', () => {
  it('lists every command in dist/commands, each loadable from its own file', () => {
    const manifest = JSON.parse(readFileSync(join(REPO, 'oclif.manifest.json'), 'utf8')) as {
      commands: Record<string, { isESM: boolean; relativePath: string[]; flags: Record<string, unknown> }>;
    };
    const files = readdirSync(join(REPO, 'dist', 'commands')).filter((f) => f.endsWith('.js')).map((f) => f.slice(0, -3)).sort();
    assert.deepEqual(Object.keys(manifest.commands).sort(), files);
    for (const [id, c] of Object.entries(manifest.commands)) {
      assert.equal(c.isESM, true, id);
      assert.deepEqual(c.relativePath, ['dist', 'commands', `${id}.js`]);
    }
    assert.ok('image' in manifest.commands.build.flags, 'build has its -i/--image flag');
  });
});
