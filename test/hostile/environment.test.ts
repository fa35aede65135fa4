/**
 * Hostile environment and records (issue 12, items 1, 4, 8, 15), through
 * the real CLI on the test world:
 * - credentials in --source, -S and CI variables never reach build-info,
 *   the state file, the image (its motd), the published files or the logs;
 * - a foreign-owned `.git` around the proto dir runs nothing as root;
 * - versions that are not one file-name component stop before prepare;
 * - switches and BUILDIMAGE_* variables with odd values are one error line.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { StateSchema } from '../../src/build/state.js';
import { run } from '../../src/host/exec.js';
import { cli, errorLines, type CliResult } from '../helpers/cli.js';
import { layBait, type Bait } from '../helpers/hostile.js';
import { assertNoLeaks } from '../helpers/leaks.js';
import { serveSampleChain, world, type World } from '../helpers/world.js';
import { startImgapiServer, type ImgapiTestServer } from '../servers/imgapi-server.js';

const FOREIGN_UID = 4243;

/** Every regular file under `dir`, as text (gzip'd ones unpacked: the image stream holds the motd). */
async function filesUnder(dir: string): Promise<Array<[string, string]>> {
  const out: Array<[string, string]> = [];
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const p = join(dir, name);
    const st = await stat(p);
    if (st.isDirectory()) out.push(...(await filesUnder(p)));
    else if (st.isFile()) {
      const bytes = await readFile(p);
      out.push([p, (p.endsWith('.gz') ? gunzipSync(bytes) : bytes).toString('latin1')]);
    }
  }
  return out;
}

function assertOneUsageLine(r: CliResult, re: RegExp): void {
  assert.equal(r.code, 2, r.stderr);
  const lines = errorLines(r);
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0], re);
}

describe('hostile: environment and records', function () {
  this.timeout(10 * 60 * 1000);
  let w: World;
  let bait: Bait;
  let proto: string;
  const mf = JSON.stringify({ name: 'rec', version: '1.0.0' });
  const images = () => [w.base.uuid, w.origin.uuid, ...imported];
  const imported: string[] = [];

  before(async () => {
    w = await world();
    bait = await layBait('environment');
    proto = join(w.dir, 'proto-environment');
    await mkdir(join(proto, 'opt/svc'), { recursive: true });
    await writeFile(join(proto, 'opt/svc/app.js'), '1\n');
  });
  after(async () => {
    await bait.assertUntouched();
    await bait.remove();
  });

  describe('credentials', () => {
    let server: ImgapiTestServer;
    before(async () => {
      server = await startImgapiServer();
    });
    after(() => server?.close());

    it('in --source, -S and CI variables appear in no output, state file, image, published file or log line', async () => {
      // The sample chain behind the IMGAPI server, under new uuids (imported anew through the URL).
      const { base, origin } = await serveSampleChain(server, w);
      imported.push(base, origin);

      const tag = `${process.pid}x${Date.now()}`;
      const secrets = [`srcpw-${tag}`, `srctok-${tag}`, `repopw-${tag}`, `repotok-${tag}`, `cipw-${tag}`, `citok-${tag}`];
      const source = `${server.url.replace('http://', `http://builder:${secrets[0]}@`)}/?token=${secrets[1]}&channel=dev`;
      const repo = `https://ci:${secrets[2]}@github.com/org/svc.git?access_token=${secrets[3]}`;
      const env = {
        ...w.env,
        BUILD_URL: `https://admin:${secrets[4]}@jenkins.example/job/rec/1/?token=${secrets[5]}`,
        BUILD_NUMBER: '1',
      };
      const out = await w.outDir();
      const state = join(out, 'state', 'state.json');
      const logFile = join(out, 'logs', 'build.log');
      const texts: Array<[string, string]> = [];
      const step = async (args: string[]) => {
        const r = await cli([...args, '--state', state, '--log-file', logFile, '-v'], { env });
        texts.push([`${args[0]} stdout`, r.stdout], [`${args[0]} stderr`, r.stderr]);
        assert.equal(r.code, 0, r.stderr);
        texts.push([`state file after ${args[0]}`, await readFile(state, 'utf8')]);
      };

      await step(['prepare', '-i', origin, '-d', proto, '-m', mf, '-M', '-S', repo, '--source', source, '--output-dir', out]);
      // Later stages run from the state file alone: they never needed the source's credentials.
      await step(['assemble']);
      const analog = StateSchema.parse(JSON.parse(await readFile(state, 'utf8'))).analog!;
      const motd = await readFile(join(analog.mountpoint, 'root/etc/motd'), 'utf8');
      texts.push(['/etc/motd', motd]);
      assert.ok(motd.includes('https://github.com/org/svc.git?access_token=…'), motd);
      await step(['pkgadd']);
      await step(['seal']);

      const bits = join(out, 'bits');
      const published = join(out, 'published');
      await mkdir(bits);
      const pub = await cli(['publish', '--state', state, '-L', '-d', published, '-b', 'master', '-D', bits], { env, cwd: out });
      texts.push(['publish stdout', pub.stdout], ['publish stderr', pub.stderr]);
      assert.equal(pub.code, 0, pub.stderr);

      // doctor tries the source, and reports an image it lacks.
      for (const image of [origin, randomUUID()]) {
        const doc = await cli(['doctor', '--source', source, '-i', image, '--output-dir', out], { env });
        texts.push(['doctor stdout', doc.stdout], ['doctor stderr', doc.stderr]);
        assert.match(doc.stdout, /source/);
      }
      const docJson = await cli(['doctor', '--source', source.replace(/:\d+\//, ':1/'), '--json'], { env });
      texts.push(['doctor --json', docJson.stdout + docJson.stderr]);
      texts.push(['log file', await readFile(logFile, 'utf8')]);
      // Every file the build and publish wrote: outputs (the image unpacked), bits, published copies, the state file.
      texts.push(...(await filesUnder(out)));
      assert.ok(texts.some(([p]) => p.endsWith('.zfs.gz')), 'the image was searched');
      for (const [where, text] of texts) {
        for (const s of secrets) assert.ok(!text.includes(s), `${where} has the secret ${s}`);
      }
      const info = JSON.parse(await readFile(join(out, 'rec-zfs-1.0.0.build-info.json'), 'utf8'));
      assert.equal(info.inputs.source, `${server.url}/?token=…&channel=dev`);
      assert.equal(info.ci.BUILD_URL, 'https://jenkins.example/job/rec/1/?token=…');
      assert.equal(info.base.uuid, origin);
      await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir: w.workDir, outputDir: out, images: images() });
    });
  });

  it('a foreign-owned .git around the proto dir (and the working directory) runs nothing as root', async () => {
    const ws = join(w.dir, `foreign-ws-${process.pid}`);
    const wsProto = join(ws, 'proto');
    await mkdir(join(wsProto, 'opt/svc'), { recursive: true });
    await writeFile(join(wsProto, 'opt/svc/app.js'), '1\n');
    const hit = join(bait.dir, '..', `fsmonitor-hit-${process.pid}`);
    const git = (...args: string[]) => run('git', ['-C', ws, '-c', 'user.email=t@example.com', '-c', 'user.name=t', ...args]);
    await git('init', '-q');
    await git('add', '.');
    await git('commit', '-q', '-m', 'ws');
    await writeFile(join(ws, '.git', 'monitor.sh'), `#!/bin/sh\necho ran >> ${hit}\nexit 1\n`, { mode: 0o755 });
    await git('config', 'core.fsmonitor', join(ws, '.git', 'monitor.sh'));
    await run('chown', ['-R', `${FOREIGN_UID}:${FOREIGN_UID}`, ws]);
    const out = await w.outDir();
    // An unknown log level must not silence the warning either.
    const r = await cli(['build', '-i', w.origin.uuid, '-d', wsProto, '-m', mf, '--output-dir', out], {
      env: { ...w.env, BUILDIMAGE_LOG_LEVEL: 'BOGUS' },
      cwd: ws,
    });
    assert.equal(r.code, 0, r.stderr);
    await assert.rejects(stat(hit), 'the foreign fsmonitor ran as root');
    assert.match(r.stderr, /not reading git information from .*owned by uid 4243/);
    const info = JSON.parse(await readFile(join(out, 'rec-zfs-1.0.0.build-info.json'), 'utf8'));
    assert.equal(info.proto.git, undefined);
    await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir: w.workDir, outputDir: out, images: images() });
  });

  it('a version that is not one file-name component stops before prepare: one line naming the flag', async () => {
    const before = await w.zfs.listChildren(w.datasetRoot);
    const evil = `../../../..${bait.dir}/evil`;
    const cases: Array<[string[], RegExp]> = [
      [['--image-version', '../x'], /--image-version becomes part of output file names .* has "\/"/],
      [['--image-version', 'a/b'], /--image-version .* has "\/"/],
      [['--image-version', evil], /--image-version .* has "\/"/],
      [['--image-version', '.'], /--image-version .* is "\."/],
      [['--image-version', '..'], /--image-version .* is "\.\."/],
      [['--image-version', 'v'.repeat(300)], /--image-version .* longer than 200 bytes/],
      [['--image-version', 'feature/x-20240101T000000Z-gabcdef0'], /has "\/".*\(a STAMP made from a branch like feature\/x: replace "\/"/],
      [['-m', JSON.stringify({ name: 'rec', version: evil })], /-m "version" becomes part of output file names .* has "\/"/],
      [['-P', 'p'.repeat(150), '--image-version', 'v'.repeat(100)], /would be too long/],
    ];
    for (const [flags, re] of cases) {
      const out = await w.outDir();
      const args = ['build', '-i', w.origin.uuid, '-d', proto, ...(flags[0] === '-m' ? [] : ['-m', mf]), ...flags, '--output-dir', out];
      const r = await cli(args, { env: w.env });
      assertOneUsageLine(r, re);
      assert.equal(r.stdout, '');
      assert.deepEqual(await readdir(out), [], `${flags.join(' ')}: nothing in the output dir`);
      await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir: w.workDir, outputDir: out, images: images() });
    }
    assert.deepEqual(await w.zfs.listChildren(w.datasetRoot), before, 'no dataset made');
    await assert.rejects(stat(join(bait.dir, 'evil.zfs.gz')));
  });

  it('switches with odd values are one usage line naming the variable, before anything is done', async () => {
    const out = await w.outDir();
    const build = ['build', '-i', w.origin.uuid, '-d', proto, '-m', mf, '--output-dir', out];
    const cases: Array<[string[], Record<string, string>, RegExp]> = [
      [build, { BUILDIMAGE_INSECURE: 'maybe' }, /^buildimage: error: BUILDIMAGE_INSECURE must be 1, true, yes or on/],
      [build, { IMGADM_INSECURE: '2' }, /IMGADM_INSECURE must be/],
      [build, { BUILDIMAGE_NO_LIVE: 'yes please' }, /BUILDIMAGE_NO_LIVE must be/],
      [['publish', '-b', 'master', '-n', 'rec', '-d', join(out, 'pub'), '-L', '-D', out], { UPDATES_IMGADM_INSECURE: 'nope' }, /UPDATES_IMGADM_INSECURE must be/],
      [['publish', '-b', 'master', '-n', 'rec', '-d', join(out, 'pub'), '-L', '-D', out], { MANTA_TLS_INSECURE: 'off!' }, /MANTA_TLS_INSECURE must be/],
      [['seal', '--state', join(out, 'none.json')], { BUILDIMAGE_NO_LIVE: '-1' }, /BUILDIMAGE_NO_LIVE must be/],
    ];
    for (const [args, extra, re] of cases) {
      const r = await cli(args, { env: { ...w.env, ...extra } });
      assertOneUsageLine(r, re);
    }
    assert.deepEqual(await readdir(out), [], 'nothing written');
    await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir: w.workDir, outputDir: out, images: images() });
  });

  it('BUILDIMAGE_* variables with odd values: one line naming the variable, nothing done', async () => {
    const out = await w.outDir();
    const build = ['build', '-i', w.origin.uuid, '-d', proto, '-m', mf, '--output-dir', out];
    const cases: Array<[Record<string, string>, RegExp]> = [
      [{ BUILDIMAGE_LOG_FORMAT: 'xml' }, /BUILDIMAGE_LOG_FORMAT \(--log-format\) must be one of human, json/],
      [{ BUILDIMAGE_DATASET_ROOT: '../etc' }, /BUILDIMAGE_DATASET_ROOT \(--dataset-root\): invalid dataset root name/],
      [{ BUILDIMAGE_DATASET_ROOT: `${w.datasetRoot}/../x` }, /BUILDIMAGE_DATASET_ROOT \(--dataset-root\)/],
      [{ BUILDIMAGE_SOURCE: join(bait.dir, 'nope') }, /image source \(--source\) .* does not exist/],
      [{ BUILDIMAGE_SOURCE: bait.secret }, /image source \(--source\) .* is not a directory/],
    ];
    for (const [extra, re] of cases) {
      const r = await cli(build, { env: { ...w.env, ...extra } });
      assertOneUsageLine(r, re);
      assert.ok(!r.stderr.includes(bait.secretText.trim()), 'the secret file was not read out');
    }
    assert.deepEqual(await readdir(out), [], 'nothing written');
    await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir: w.workDir, outputDir: out, images: images() });
  });
});
