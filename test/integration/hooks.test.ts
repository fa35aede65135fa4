/**
 * Stage hooks on the host (issue 17 item 2): commands the build definition
 * names run before and after stages with BUILDIMAGE_ROOT, BUILDIMAGE_STATE
 * and BUILDIMAGE_STAGE, in the definition's directory, with a clean
 * environment; their output is in the log; a failing one fails the build in
 * one line naming it and leaves nothing behind; discrete stages run them too.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { chmod, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { cli, errorLines, type CliResult } from '../helpers/cli.js';
import { assertNoLeaks } from '../helpers/leaks.js';
import { world, type World } from '../helpers/world.js';

describe('stage hooks', function () {
  this.timeout(10 * 60 * 1000);
  let w: World;
  let proto: string;
  const ok = (r: CliResult) => assert.equal(r.code, 0, r.stderr);

  before(async () => {
    w = await world();
    proto = join(w.dir, 'proto-hooks');
    await mkdir(join(proto, 'opt/app'), { recursive: true });
    await writeFile(join(proto, 'opt/app/big'), Buffer.alloc(300 * 1024, 1));
  });

  /** A component directory: its buildimage.json with these hooks, and the hook scripts beside it. */
  async function component(hooks: Record<string, unknown>): Promise<{ dir: string; config: string; marks: string }> {
    const dir = join(w.dir, `component-${randomUUID().slice(0, 8)}`);
    await mkdir(join(dir, 'tools'), { recursive: true });
    const marks = join(dir, 'marks');
    const script = async (name: string, body: string) => {
      await writeFile(join(dir, name), `#!/bin/sh\n${body}\n`);
      await chmod(join(dir, name), 0o755);
    };
    // Records where and how it ran, then edits the image root.
    await script(
      'edit-root',
      [
        `echo "$BUILDIMAGE_HOOK stage=$BUILDIMAGE_STAGE cwd=$(pwd) state=$BUILDIMAGE_STATE root=$BUILDIMAGE_ROOT secret=\${HOOK_TEST_SECRET:-none}" >> "${marks}"`,
        'echo "stamped by a hook" > "$BUILDIMAGE_ROOT/etc/hooked"',
        'echo "edit-root: wrote /etc/hooked"',
      ].join('\n'),
    );
    // A size budget in KiB over the image root.
    await script(
      'tools/size-budget',
      ['used=$(du -sk "$BUILDIMAGE_ROOT" | cut -f1)', `echo "$BUILDIMAGE_HOOK used=$used budget=$1" >> "${marks}"`, 'echo "image root uses ${used}K of ${1}K"', '[ "$used" -le "$1" ] || exit 3'].join('\n'),
    );
    await script('mark', `echo "$BUILDIMAGE_HOOK stage=$BUILDIMAGE_STAGE root=\${BUILDIMAGE_ROOT:-unset}" >> "${marks}"`);
    const config = join(dir, 'buildimage.json');
    await writeFile(config, JSON.stringify({ image: w.origin.uuid, dir: proto, manifest: { name: 'hooked', version: '1.0.0' }, hooks }, null, 2));
    return { dir, config, marks };
  }

  const lines = async (f: string) => (await readFile(f, 'utf8').catch(() => '')).split('\n').filter(Boolean);

  it('an after.assemble hook edits the image root, a before.seal hook checks a size budget: the image has the edit', async () => {
    const c = await component({ 'after.assemble': ['./edit-root'], 'before.seal': ['./tools/size-budget', '100000'] });
    const out = await w.outDir();
    const r = await cli(['build', '--config', c.config, '--output-dir', out], { env: { ...w.env, HOOK_TEST_SECRET: 'leaked' }, cwd: w.dir });
    ok(r);
    const marks = await lines(c.marks);
    assert.equal(marks.length, 2, marks.join('\n'));
    const m = /^after\.assemble stage=assemble cwd=(\S+) state=(\S+) root=(\S+) secret=(\S+)$/.exec(marks[0]);
    assert.ok(m, marks[0]);
    assert.equal(m[1], c.dir, 'cwd is the definition file\'s directory');
    assert.match(m[2], /\.json$/, 'BUILDIMAGE_STATE is the state file');
    assert.match(m[3], /\/zone\/root$/, 'BUILDIMAGE_ROOT is the image root');
    assert.equal(m[4], 'none', 'a clean environment: the CLI\'s other variables are not passed on');
    assert.match(marks[1], /^before\.seal used=\d+ budget=100000$/);
    // Output in the log, line by line, prefixed with the hook.
    assert.match(r.stderr, /after\.assemble \.\/edit-root \| edit-root: wrote \/etc\/hooked/);
    assert.match(r.stderr, /before\.seal \.\/tools\/size-budget \| image root uses \d+K of 100000K/);
    // The edit is part of the image: its contents listing names it.
    const listing = gunzipSync(await readFile(join(out, 'hooked-zfs-1.0.0.contents.json.gz'))).toString();
    assert.match(listing, /"path":\s*"\/?etc\/hooked"/);
    await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir: w.workDir, outputDir: out, context: r.stderr });
  });

  it('a failing hook fails the build in one line naming it, and cleans up: no analog, no outputs', async () => {
    const c = await component({ 'after.assemble': ['./edit-root'], 'before.seal': ['./tools/size-budget', '1'] });
    const out = await w.outDir();
    const r = await cli(['build', '--config', c.config, '--output-dir', out], { env: w.env, cwd: w.dir });
    assert.equal(r.code, 1, r.stderr);
    const errs = errorLines(r);
    assert.equal(errs.length, 1, r.stderr);
    assert.equal(errs[0], 'buildimage: error: before.seal hook ["./tools/size-budget","1"] exited 3');
    assert.deepEqual(await readdir(out), [], 'no outputs');
    await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir: w.workDir, outputDir: out, context: r.stderr });
  });

  it('an after.seal hook that fails withdraws the outputs seal wrote', async () => {
    const c = await component({ 'after.seal': ['sh', '-c', 'ls "$BUILDIMAGE_OUTPUT_DIR" >&2; exit 4'] });
    const out = await w.outDir();
    const r = await cli(['build', '--config', c.config, '--output-dir', out], { env: w.env, cwd: w.dir });
    assert.equal(r.code, 1, r.stderr);
    assert.deepEqual(errorLines(r), ['buildimage: error: after.seal hook ["sh","-c","ls \\"$BUILDIMAGE_OUTPUT_DIR\\" >&2; exit 4"] exited 4']);
    assert.match(r.stderr, /after\.seal sh \| hooked-zfs-1\.0\.0\.imgmanifest/, 'the outputs were there when it ran');
    assert.deepEqual(await readdir(out), [], 'withdrawn: no image set that looks whole');
    await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir: w.workDir, outputDir: out, context: r.stderr });
  });

  it('discrete stages run the hooks the definition named, each in its stage', async () => {
    const every = Object.fromEntries(['prepare', 'assemble', 'pkgadd', 'seal'].flatMap((s) => ['before', 'after'].map((x) => [`${x}.${s}`, ['./mark']])));
    const c = await component(every);
    const out = await w.outDir();
    const state = join(c.dir, 'state.json');
    ok(await cli(['prepare', '--config', c.config, '--output-dir', out, '--state', state], { env: w.env, cwd: w.dir }));
    for (const stage of ['assemble', 'pkgadd', 'seal']) ok(await cli([stage, '--state', state], { env: w.env, cwd: w.dir }));
    const marks = await lines(c.marks);
    assert.deepEqual(
      marks.map((l) => l.replace(/root=\/\S+\/zone\/root$/, 'root=ROOT')),
      [
        'before.prepare stage=prepare root=unset',
        'after.prepare stage=prepare root=ROOT',
        'before.assemble stage=assemble root=ROOT',
        'after.assemble stage=assemble root=ROOT',
        'before.pkgadd stage=pkgadd root=ROOT',
        'after.pkgadd stage=pkgadd root=ROOT',
        'before.seal stage=seal root=ROOT',
        'after.seal stage=seal root=unset',
      ],
    );
    await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir: w.workDir, outputDir: out });
  });

  it('--hook on the command line runs after the definition file\'s, relative to the current directory', async () => {
    const c = await component({ 'after.prepare': ['./mark'] });
    const out = await w.outDir();
    const r = await cli(['build', '--config', c.config, '--output-dir', out, '--hook', 'after.prepare=./mark', '--hook', 'before.assemble=["./mark","x"]'], { env: w.env, cwd: c.dir });
    ok(r);
    assert.deepEqual((await lines(c.marks)).map((l) => l.split(' ')[0]), ['after.prepare', 'after.prepare', 'before.assemble']);
    await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir: w.workDir, outputDir: out });
  });
});
