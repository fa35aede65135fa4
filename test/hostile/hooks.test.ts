/**
 * Hostile stage hooks (issue 17 items 2 and 4). A hook runs as root on the
 * host, so it is taken only from the build definition or the command line:
 * malformed, huge or NUL-carrying entries are refused in one line before
 * anything is created; a state file cannot add or change a hook (the
 * analog carries the digest of the hooks prepare was given); no variable
 * names one; a hook's output, however long its lines, is logged in bounded
 * lines; and nothing a hook started outlives it. A program path with ".."
 * is allowed: a hook is as trusted as its definition, and its path is
 * relative to the definition file, not to wherever the CLI runs.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { chmod, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { StateFile } from '../../src/build/state.js';
import { HOOKS_PROPERTY } from '../../src/build/hooks.js';
import { run } from '../../src/host/exec.js';
import { cli, errorLines, type CliResult } from '../helpers/cli.js';
import { layBait, type Bait } from '../helpers/hostile.js';
import { assertNoLeaks } from '../helpers/leaks.js';
import { world, type World } from '../helpers/world.js';

function assertRefused(r: CliResult, why: RegExp, code = 2): void {
  assert.equal(r.code, code, `expected a refusal\n${r.stderr}`);
  const lines = errorLines(r);
  assert.equal(lines.length, 1, `one error line\n${r.stderr}`);
  assert.match(lines[0], why, r.stderr);
}

describe('hostile: stage hooks', function () {
  this.timeout(10 * 60 * 1000);
  let w: World;
  let proto: string;
  let bait: Bait;
  before(async () => {
    w = await world();
    proto = join(w.dir, 'proto-hostile-hooks');
    await mkdir(join(proto, 'opt'), { recursive: true });
    await writeFile(join(proto, 'opt/f'), 'f');
    bait = await layBait('hooks-bait');
  });
  after(async () => {
    await bait.assertUntouched();
    await bait.remove();
  });

  async function definition(hooks: unknown, sub = ''): Promise<{ dir: string; config: string }> {
    const dir = join(w.dir, `hooks-${randomUUID().slice(0, 8)}`, sub);
    await mkdir(dir, { recursive: true });
    const config = join(dir, 'buildimage.json');
    await writeFile(config, JSON.stringify({ image: w.origin.uuid, dir: proto, manifest: { name: 'hh', version: '1' }, hooks }));
    return { dir, config };
  }

  const leaks = (out?: string, context?: string) => assertNoLeaks({ datasetRoot: w.datasetRoot, workDir: w.workDir, outputDir: out, context });

  describe('entries that are not an argv, or too big, are refused in one line before anything is made', () => {
    const cases: Array<[string, unknown, RegExp]> = [
      ['a number', { 'after.assemble': 3 }, /--config .*: hooks\.after\.assemble: Expected array, received number/],
      ['a list of numbers', { 'after.assemble': [1, 2] }, /"hooks" in --config .*: a hook is a non-empty list of strings/],
      ['an empty argv', { 'after.assemble': [] }, /a hook is a non-empty list of strings/],
      ['strings and lists mixed', { 'after.assemble': ['a', ['b']] }, /a hook is a non-empty list of strings/],
      ['a list of lists of numbers', { 'after.assemble': [['a'], [1]] }, /a hook is a non-empty list of strings/],
      ['an object', { 'after.assemble': { argv: ['x'] } }, /hooks\.after\.assemble: Expected array, received object/],
      ['hooks that are not an object', ['./x'], /--config .*: hooks: Expected object, received array/],
      ['an unknown event', { 'after.bogus': ['./x'] }, /"after\.bogus" is not a hook event \(before\.prepare, after\.prepare/],
      ['a stage that is no stage', { 'before.publish': ['./x'] }, /"before\.publish" is not a hook event/],
      ['a NUL in an argument', { 'after.assemble': ['/bin/echo', 'a\u0000b'] }, /a hook's argument has a NUL character/],
      ['an empty program', { 'after.assemble': [''] }, /a hook's program is empty/],
      ['too many arguments', { 'after.assemble': ['/bin/echo', ...Array.from({ length: 300 }, () => 'x')] }, /a hook may have 256 arguments, this one has 301/],
      ['a huge argument', { 'after.assemble': ['/bin/echo', 'x'.repeat(100_000)] }, /a hook's argument is longer than 65536 bytes/],
      ['too many hooks', { 'after.assemble': Array.from({ length: 65 }, () => ['/bin/true']) }, /at most 64 hooks, got 65/],
      ['a program that is not there', { 'after.assemble': ['./missing'] }, /after\.assemble hook \["\.\/missing"\]: .*missing does not exist/],
      ['a program that is not executable', { 'after.assemble': ['./buildimage.json'] }, /is not an executable file/],
    ];
    for (const [what, hooks, why] of cases) {
      it(what, async () => {
        const d = await definition(hooks);
        const out = await w.outDir();
        const r = await cli(['build', '--config', d.config, '--output-dir', out], { env: w.env });
        assertRefused(r, why);
        await leaks(out, r.stderr);
      });
    }

    it('--hook text that is no EVENT=ARGV', async () => {
      for (const [arg, why] of [
        ['./x', /--hook takes EVENT=PROGRAM/],
        ['after.assemble=["a",1]', /a hook is a non-empty list of strings/],
        ['after.assemble=[not json', /argv is not a JSON list of strings/],
        ['during.seal=./x', /"during\.seal" is not a hook event/],
      ] as const) {
        const r = await cli(['prepare', '-i', w.origin.uuid, '-d', proto, '-m', '{"name":"hh","version":"1"}', '--hook', arg, '--state', join(w.dir, `s-${randomUUID()}.json`)], { env: w.env });
        assertRefused(r, why);
      }
      await leaks();
    });
  });

  it('a ".." in a hook\'s program is allowed (trusted like the definition) and resolved against the definition\'s directory', async () => {
    const d = await definition({ 'before.prepare': ['../tools/check', 'arg'] }, 'component');
    await mkdir(join(d.dir, '../tools'), { recursive: true });
    const mark = join(d.dir, '../ran');
    await writeFile(join(d.dir, '../tools/check'), `#!/bin/sh\necho "$(pwd) $1" > "${mark}"\n`);
    await chmod(join(d.dir, '../tools/check'), 0o755);
    const state = join(w.dir, `s-${randomUUID()}.json`);
    // Run from elsewhere: the path is the definition's, not the CLI's current directory.
    const r = await cli(['prepare', '--config', d.config, '--state', state], { env: w.env, cwd: bait.dir });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await readFile(mark, 'utf8'), `${d.dir} arg\n`);
    assert.equal((await cli(['clean', '--state', state], { env: w.env })).code, 0);
    await leaks();
  });

  describe('a state file cannot name a hook', () => {
    let before: { state: string; config: string };
    beforeEach(async () => {
      const d = await definition({ 'after.assemble': ['/bin/true'] });
      before = { state: join(d.dir, 'state.json'), config: d.config };
      const r = await cli(['prepare', '--config', d.config, '--state', before.state], { env: w.env });
      assert.equal(r.code, 0, r.stderr);
    });
    afterEach(async () => {
      // The genuine build still cleans (clean runs no hook).
      assert.equal((await cli(['clean', '--state', before.state], { env: w.env })).code, 0);
      await leaks();
    });

    const pwned = () => join(bait.dir, `pwned-${process.pid}`);
    const forge = async (edit: (s: StateFile) => void) => {
      const sf = await StateFile.load(before.state);
      edit(sf);
      await sf.save();
    };
    const assertNotRun = async (r: CliResult) => {
      assertRefused(r, /names hooks \(.*\) that build [0-9a-f-]+ was not defined with; nothing was run/);
      assert.equal(await stat(pwned()).catch(() => undefined), undefined, 'the forged hook did not run');
      await bait.assertUntouched();
    };

    it('one added to the definition it records', async () => {
      await forge((sf) => sf.state.definition.hooks!.push({ event: 'before.assemble', argv: ['/bin/sh', '-c', `touch ${pwned()}`], cwd: '/' }));
      await assertNotRun(await cli(['assemble', '--state', before.state], { env: w.env }));
    });

    it('one changed (same event, another argv)', async () => {
      await forge((sf) => (sf.state.definition.hooks![0].argv = ['/bin/sh', '-c', `touch ${pwned()}`]));
      await assertNotRun(await cli(['assemble', '--state', before.state], { env: w.env }));
    });

    it('one whose directory moved', async () => {
      await forge((sf) => (sf.state.definition.hooks![0].cwd = bait.dir));
      await assertNotRun(await cli(['assemble', '--state', before.state], { env: w.env }));
    });

    it('the analog\'s digest is only ZFS\'s: a state that also names a digest is still checked against the analog', async () => {
      await forge((sf) => {
        sf.state.definition.hooks = [{ event: 'before.assemble', argv: ['/bin/sh', '-c', `touch ${pwned()}`], cwd: '/' }];
        (sf.state as unknown as Record<string, unknown>)[HOOKS_PROPERTY] = 'sha256:0';
      });
      // A state with unknown keys is read (zod strips them); the digest comes from the analog.
      await assertNotRun(await cli(['assemble', '--state', before.state], { env: w.env }));
    });
  });

  it('no variable names a hook: BUILDIMAGE_HOOK and BUILDIMAGE_HOOKS are not read', async () => {
    const state = join(w.dir, `s-${randomUUID()}.json`);
    const pwned = join(bait.dir, `env-pwned-${process.pid}`);
    const r = await cli(['prepare', '-i', w.origin.uuid, '-d', proto, '-m', '{"name":"hh","version":"1"}', '--state', state], {
      env: { ...w.env, BUILDIMAGE_HOOK: `after.prepare=["/bin/touch","${pwned}"]`, BUILDIMAGE_HOOKS: `after.prepare=["/bin/touch","${pwned}"]` },
    });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await stat(pwned).catch(() => undefined), undefined);
    assert.equal((await cli(['clean', '--state', state], { env: w.env })).code, 0);
    await leaks();
  });

  it('100 MB of output without a newline: logged in bounded lines, the build goes on', async () => {
    const logFile = join(w.dir, `hook-log-${randomUUID()}.log`);
    const d = await definition({ 'after.prepare': ['sh', '-c', "head -c 100000000 /dev/zero | tr '\\0' a; echo; echo after-the-flood"] });
    const state = join(d.dir, 'state.json');
    const r = await cli(['prepare', '--config', d.config, '--state', state, '--log-file', logFile], { env: w.env });
    assert.equal(r.code, 0, r.stderr);
    const text = await readFile(logFile, 'utf8');
    const longest = Math.max(...text.split('\n').map((l) => l.length));
    assert.ok(longest < 16 * 1024, `longest log line ${longest} characters`);
    assert.match(text, /\[line cut at 8192 bytes\]/);
    assert.match(text, /after\.prepare sh \| after-the-flood/);
    assert.ok(r.stderr.length < 1024 * 1024, `stderr ${r.stderr.length} characters`);
    assert.equal((await cli(['clean', '--state', state], { env: w.env })).code, 0);
    await leaks();
  });

  it('what a hook leaves running is stopped when it exits: a background child holding its output does not hold the build', async () => {
    const tag = `${3000 + (process.pid % 997)}`;
    const d = await definition({ 'after.prepare': ['sh', '-c', `sleep ${tag} & echo started`] });
    const state = join(d.dir, 'state.json');
    const t0 = Date.now();
    const r = await cli(['prepare', '--config', d.config, '--state', state], { env: w.env });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(Date.now() - t0 < 120_000, 'not held by the background sleep');
    const ps = await run('ps', ['-eo', 'args'], {});
    assert.ok(!ps.stdout.split('\n').some((l) => l.trim() === `sleep ${tag}`), 'the background sleep is gone');
    assert.equal((await cli(['clean', '--state', state], { env: w.env })).code, 0);
    await leaks();
  });
});
