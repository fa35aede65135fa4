/**
 * Through the real CLI on the test world: the build-info report beside the
 * image, JSON log lines, the log file (with -v detail and the final error)
 * and the timing table, on success and on failure.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../../src/host/exec.js';
import { BuildInfoSchema } from '../../src/build/build-info.js';
import { cli, errorLines } from '../helpers/cli.js';
import { assertNoLeaks } from '../helpers/leaks.js';
import { world, type World } from '../helpers/world.js';

/** A component checkout with its proto under root/, as eng's stage dir has it. */
async function protoInRepo(w: World): Promise<{ repo: string; proto: string; commit: string }> {
  const repo = join(w.dir, 'component');
  const proto = join(repo, 'root');
  await mkdir(join(proto, 'opt/smartdc/svc'), { recursive: true });
  await writeFile(join(proto, 'opt/smartdc/svc/server.js'), 'console.log("hi")\n');
  const git = (...args: string[]) => run('git', ['-C', repo, ...args]);
  await git('init', '-q', '-b', 'release-20240101');
  await git('-c', 'user.email=t@example.com', '-c', 'user.name=t', 'add', '.');
  await git('-c', 'user.email=t@example.com', '-c', 'user.name=t', 'commit', '-q', '-m', 'proto');
  const commit = (await git('rev-parse', 'HEAD')).stdout.trim();
  return { repo, proto, commit };
}

describe('reports and logs (CLI)', function () {
  this.timeout(5 * 60 * 1000);
  let w: World;
  before(async () => {
    w = await world();
  });

  it('writes build-info beside the image; --log-format json on stderr; --log-file with -v detail', async () => {
    const { proto, repo, commit } = await protoInRepo(w);
    const out = await w.outDir();
    const logFile = join(w.dir, 'logs', 'build.log');
    const r = await cli(
      ['build', '-i', w.origin.uuid, '-d', proto, '-m', JSON.stringify({ name: 'info', version: '3.0.0' }), '-p', 'greeter', '--output-dir', out,
        '--log-format', 'json', '--log-file', logFile],
      // In the checkout, as Jenkins runs: git is read at the proto dir or the working directory, never searched for upward.
      { env: { ...w.env, BUILD_URL: 'https://jenkins.example/job/info/7/', BUILD_NUMBER: '7' }, cwd: repo },
    );
    assert.equal(r.code, 0, r.stderr);
    const stem = join(out, 'info-zfs-3.0.0');
    assert.ok(r.stdout.trim().split('\n').pop()!.includes(`${stem}.build-info.json`), 'last line names the report');

    // Every stderr line is a JSON log record; the timing table is among them.
    const records = r.stderr.trim().split('\n').map((l) => JSON.parse(l) as { level: string; message: string; elapsed: number });
    assert.ok(records.length > 5);
    assert.ok(records.every((x) => typeof x.elapsed === 'number' && typeof x.message === 'string'));
    assert.ok(records.some((x) => /^total\s+\d+\.\d$/.test(x.message)), 'timing table');
    assert.ok(!records.some((x) => x.level === 'debug'), 'no -v detail on the console without -v');

    // The log file has the -v detail: the commands run and their output.
    const fileLines = (await readFile(logFile, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { level: string; message: string });
    assert.ok(fileLines.some((x) => x.level === 'debug' && x.message.startsWith('exec: zfs ')), 'commands in the log file');
    assert.ok(fileLines.some((x) => x.level === 'debug' && x.message.startsWith('  | ')), 'child output in the log file');

    const info = BuildInfoSchema.parse(JSON.parse(await readFile(`${stem}.build-info.json`, 'utf8')));
    const manifest = JSON.parse(await readFile(`${stem}.imgmanifest`, 'utf8'));
    assert.equal(info.image.uuid, manifest.uuid);
    const { sha1, size, compression } = info.image.file;
    assert.deepEqual({ sha1, size, compression }, manifest.files[0]);
    assert.equal(info.image.file.sha1, createHash('sha1').update(await readFile(`${stem}.zfs.gz`)).digest('hex'));
    assert.equal(info.base.uuid, w.origin.uuid);
    assert.equal(info.base.sha1, w.origin.files![0].sha1);
    assert.deepEqual(info.proto, { path: proto, git: { dir: repo, commit, branch: 'release-20240101', dirty: false } });
    assert.deepEqual(info.inputs.packages, ['greeter']);
    const pkgs = JSON.parse(await readFile(`${stem}.packages.json`, 'utf8')).packages;
    assert.deepEqual(info.packages, pkgs);
    assert.ok(info.packages.some((p) => p.name === 'greeter-1.1'));
    assert.equal(info.tool.version, JSON.parse(await readFile(new URL('../../../package.json', import.meta.url), 'utf8')).version);
    assert.equal(info.host.platform, 'linux');
    assert.deepEqual(Object.keys(info.build.timings), ['prepare', 'assemble', 'pkgadd']);
    assert.equal(info.ci?.BUILD_NUMBER, '7');
    await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir: w.workDir, outputDir: out, images: [w.base.uuid, w.origin.uuid] });
  });

  it('a failed stage: one error line, the same line in the log file, the timing table names the failed stage', async () => {
    const { proto } = await protoInRepo(w).catch(async () => ({ proto: join(w.dir, 'component', 'root') }));
    const out = await w.outDir();
    const logFile = join(w.dir, 'logs', 'failed.log');
    const missing = '00000000-0000-4000-8000-000000000001';
    const r = await cli(
      ['build', '-i', missing, '-d', proto, '-m', JSON.stringify({ name: 'nope', version: '1' }), '--output-dir', out, '--log-file', logFile],
      { env: w.env },
    );
    assert.equal(r.code, 1, r.stderr);
    const errs = errorLines(r);
    assert.equal(errs.length, 1, r.stderr);
    assert.match(errs[0], new RegExp(missing));
    assert.match(r.stderr, /\] prepare \(failed\)\s+\d+\.\d\n/, 'timing table with the failed stage');
    const text = await readFile(logFile, 'utf8');
    const last = text.trim().split('\n').pop()!;
    assert.match(last, /\] ERROR: /);
    assert.ok(last.endsWith(errs[0].replace('buildimage: error: ', '')), `log file ends with the error: ${last}`);
    await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir: w.workDir, outputDir: out, images: [w.base.uuid, w.origin.uuid] });
  });

  it('--log-file over discrete stages: each call starts with a header (time, command, version, build id), every line has the wall-clock time, in order', async () => {
    const { proto } = await protoInRepo(w).catch(async () => ({ proto: join(w.dir, 'component', 'root') }));
    const out = await w.outDir();
    const state = join(w.dir, 'logs', 'staged.json');
    const logFile = join(w.dir, 'logs', 'staged.log');
    const calls = [
      ['prepare', '-i', w.origin.uuid, '-d', proto, '-m', JSON.stringify({ name: 'staged', version: '1.0.0' }), '--output-dir', out, '--state', state],
      ['assemble', '--state', state],
      ['clean', '--state', state],
    ];
    for (const args of calls) {
      const r = await cli([...args, '--log-file', logFile], { env: w.env });
      assert.equal(r.code, 0, r.stderr);
      // stderr keeps its short form.
      assert.ok(r.stderr.split('\n').filter(Boolean).every((l) => l.startsWith('[')), r.stderr);
    }
    const { buildId } = JSON.parse(await readFile(state, 'utf8')) as { buildId: string };
    const version = JSON.parse(await readFile(new URL('../../../package.json', import.meta.url), 'utf8')).version as string;
    const lines = (await readFile(logFile, 'utf8')).trim().split('\n');
    const ISO = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) /;
    const headers = lines.filter((l) => / === buildimage /.test(l));
    assert.equal(lines[0], headers[0], 'the file starts with a header');
    assert.deepEqual(
      headers.map((h) => h.replace(ISO, '').replace(/pid \d+/, 'pid N')),
      calls.map((c) => `=== buildimage ${version} ${c[0]} (build ${buildId}, pid N) ===`),
    );
    let last = 0;
    for (const l of lines) {
      const m = ISO.exec(l);
      assert.ok(m, `a wall-clock time on every line: ${l}`);
      const t = Date.parse(m[1]);
      assert.ok(t >= last, `in order: ${l}`);
      last = t;
    }
    assert.ok(lines.some((l) => /\[\s+\d+\.\ds\] exec: zfs /.test(l)), 'the -v detail, with its elapsed seconds');
    await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir: w.workDir, outputDir: out, images: [w.base.uuid, w.origin.uuid] });
  });

  it('--log-format json: a failing run ends with a JSON record of level error on stderr, also when the command line is bad', async () => {
    const { proto } = await protoInRepo(w).catch(async () => ({ proto: join(w.dir, 'component', 'root') }));
    const missing = '00000000-0000-4000-8000-000000000001';
    const r = await cli(
      ['build', '-i', missing, '-d', proto, '-m', JSON.stringify({ name: 'nope', version: '1' }), '--output-dir', await w.outDir(), '--log-format', 'json'],
      { env: w.env },
    );
    assert.equal(r.code, 1, r.stderr);
    const records = r.stderr.trim().split('\n').map((l) => JSON.parse(l) as { level: string; message: string; exitCode?: number; time: string });
    const end = records.at(-1)!;
    assert.equal(end.level, 'error');
    assert.match(end.message, new RegExp(missing));
    assert.equal(end.exitCode, 1);
    assert.ok(!Number.isNaN(Date.parse(end.time)));

    for (const args of [['seal', '--state', join(w.dir, 'none.json'), '--log-format', 'json'], ['doctor', '--log-format=json', '--bogus']]) {
      const bad = await cli(args, { env: w.env });
      assert.equal(bad.code, 2, bad.stderr);
      const rec = JSON.parse(bad.stderr.trim().split('\n').at(-1)!) as { level: string; message: string; hint?: string; exitCode: number };
      assert.deepEqual([rec.level, rec.exitCode], ['error', 2]);
      assert.ok(rec.hint, 'the hint is a field of its own');
    }
    const env = await cli(['seal', '--state', join(w.dir, 'none.json')], { env: { ...w.env, BUILDIMAGE_LOG_FORMAT: 'json' } });
    assert.equal((JSON.parse(env.stderr.trim().split('\n').at(-1)!) as { level: string }).level, 'error');
  });
});
