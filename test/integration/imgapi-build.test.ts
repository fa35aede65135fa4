/**
 * Builds whose base image and origin live only behind an IMGAPI URL (the
 * local test server), as on a Jenkins agent importing from
 * updates.tritondatacenter.com: channels, dropped connections, bad bytes,
 * unknown and inactive images, concurrent imports.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Layout } from '../../src/core/layout.js';
import { execa } from 'execa';
import { BIN, REPO, cli, errorLines, type CliResult } from '../helpers/cli.js';
import { assertNoLeaks } from '../helpers/leaks.js';
import { serveSampleChain, world, type World } from '../helpers/world.js';
import { startImgapiServer, type ImgapiTestServer } from '../servers/imgapi-server.js';

describe('build from an IMGAPI source', function () {
  this.timeout(5 * 60 * 1000);
  let w: World;
  let server: ImgapiTestServer;
  let url: string;
  let proto: string;
  const imported: string[] = [];
  const mf = JSON.stringify({ name: 'net', version: '1.0.0' });

  before(async () => {
    w = await world();
    server = await startImgapiServer();
    url = server.url;
    proto = join(w.dir, 'proto-imgapi');
    await mkdir(join(proto, 'opt/svc'), { recursive: true });
    await writeFile(join(proto, 'opt/svc/app.js'), '1\n');
  });
  after(() => server?.close());

  /** The sample chain published under new uuids (so it is imported anew), in `channels`. */
  async function publishChain(channels = ['dev'], state: 'active' | 'unactivated' = 'active'): Promise<{ base: string; origin: string }> {
    const chain = await serveSampleChain(server, w, { channels, state });
    imported.push(chain.base, chain.origin);
    return chain;
  }

  const allowed = () => [w.base.uuid, w.origin.uuid, ...imported];

  async function build(uuid: string, extra: string[] = []): Promise<{ r: CliResult; out: string }> {
    const out = await w.outDir();
    const r = await cli(['-i', uuid, '-d', proto, '-m', mf, '--output-dir', out, ...extra], { env: { ...w.env, BUILDIMAGE_SOURCE: url } });
    return { r, out };
  }

  async function expectOneLineFailure(r: CliResult, re: RegExp, out: string): Promise<void> {
    assert.equal(r.code, 1, r.stderr);
    const lines = errorLines(r);
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0], re);
    await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir: w.workDir, outputDir: out, images: allowed() });
  }

  it('imports a 2-level chain (origins first) and builds', async () => {
    const chain = await publishChain();
    const { r, out } = await build(chain.origin);
    assert.equal(r.code, 0, r.stderr);
    for (const u of [chain.base, chain.origin]) assert.ok(await w.zfs.exists(`${w.datasetRoot}/${u}@final`));
    const files = server.requestsTo('GetImageFile').map((q) => q.url);
    assert.ok(files.findIndex((u) => u.includes(chain.base)) < files.findIndex((u) => u.includes(chain.origin)), 'base first');
    const gets = server.requestsTo('GetImage').filter((q) => q.url.includes(chain.base) || q.url.includes(chain.origin));
    assert.ok(gets.every((q) => q.headers['accept-version'] === '~2'));
    const m = JSON.parse(await readFile(join(out, 'net-zfs-1.0.0.imgmanifest'), 'utf8'));
    assert.equal(m.origin, chain.origin);
    await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir: w.workDir, outputDir: out, images: allowed() });
  });

  it('honours the channel of the source URL and --channel', async () => {
    const chain = await publishChain(['experimental']);
    const first = await build(chain.origin);
    const out = first.out;
    let r = first.r;
    await expectOneLineFailure(r, new RegExp(`image ${chain.origin} not found`), out);
    ({ r } = await build(chain.origin, ['--source', `${url}?channel=experimental`]));
    assert.equal(r.code, 0, r.stderr);
    const again = await publishChain(['experimental']);
    ({ r } = await build(again.origin, ['--channel', 'experimental']));
    assert.equal(r.code, 0, r.stderr);
    assert.ok(server.requestsTo('GetImageFile').some((q) => q.url.includes(again.base) && q.url.includes('channel=experimental')));
  });

  it('survives a connection dropped mid-file (resumes with Range)', async () => {
    const chain = await publishChain();
    server.addFault({ kind: 'drop', afterBytes: 20_000, route: 'GetImageFile', uuid: chain.base, times: 2 });
    const { r } = await build(chain.origin);
    assert.equal(r.code, 0, r.stderr);
    const reqs = server.requestsTo('GetImageFile').filter((q) => q.url.includes(chain.base));
    assert.ok(reqs.length >= 2, 'reconnected');
    assert.ok(reqs.some((q) => /^bytes=\d+-$/.test(String(q.headers.range))), 'resumed with a Range request');
  });

  it('starts an image over when a server without ranges drops mid-file', async () => {
    const chain = await publishChain();
    server.ranges = false;
    try {
      server.addFault({ kind: 'drop', afterBytes: 20_000, route: 'GetImageFile', uuid: chain.base, times: 1 });
      const { r } = await build(chain.origin);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /cannot resume .*starting the import over/);
      assert.equal(server.requestsTo('GetImageFile').filter((q) => q.url.includes(chain.base)).length, 2);
      await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir: w.workDir, images: allowed() });
    } finally {
      server.ranges = true;
    }
  });

  it('fails cleanly on bytes whose sha1 does not match, leaving no -partial', async () => {
    const chain = await publishChain();
    server.addFault({ kind: 'wrong-bytes', route: 'GetImageFile', uuid: chain.base, times: Infinity });
    const { r, out } = await build(chain.origin);
    await expectOneLineFailure(r, new RegExp(`image ${chain.base}: sha1: expected [0-9a-f]{40}, got [0-9a-f]{40}`), out);
    server.clearFaults();
  });

  it('unknown uuid: one line naming the server answer', async () => {
    const uuid = randomUUID();
    const { r, out } = await build(uuid);
    await expectOneLineFailure(r, new RegExp(`IMGAPI http://127\\.0\\.0\\.1:\\d+: image ${uuid} not found \\(ResourceNotFound\\)`), out);
  });

  it('refuses an image that is not active', async () => {
    const chain = await publishChain(['dev'], 'unactivated');
    const { r, out } = await build(chain.origin);
    await expectOneLineFailure(r, new RegExp(`image ${chain.origin} .*is not active`), out);
  });

  it('answers HTML or 500s with one clear line', async () => {
    const chain = await publishChain();
    server.addFault({ kind: 'html', route: 'GetImage', uuid: chain.origin, times: Infinity });
    let { r, out } = await build(chain.origin);
    await expectOneLineFailure(r, /HTML|not JSON|html/i, out);
    server.clearFaults();
    server.addFault({ kind: 'status', status: 500, route: 'GetImage', uuid: chain.origin, times: Infinity });
    ({ r, out } = await build(chain.origin));
    await expectOneLineFailure(r, /500|InternalError/, out);
    server.clearFaults();
  });

  for (const [how, signal, code] of [['SIGINT', 'SIGINT', 130], ['kill -9', 'SIGKILL', null]] as const) {
    it(`${how} mid-download leaves no -partial, and the next build imports the image whole`, async () => {
      const chain = await publishChain();
      server.addFault({ kind: 'stall', afterBytes: 30_000, route: 'GetImageFile', uuid: chain.base, times: 1 });
      const out = await w.outDir();
      const child = execa(BIN, ['-i', chain.origin, '-d', proto, '-m', mf, '--output-dir', out], {
        cwd: REPO, env: { ...w.env, BUILDIMAGE_SOURCE: url }, reject: false, stdin: 'ignore',
      });
      // Wait until the stalled download is under way: the receive journal names its -partial.
      const layout = new Layout(w.datasetRoot, w.workDir);
      const partial = layout.partialDataset(chain.base);
      const journal = layout.receiveJournal(chain.base);
      const started = async () => (await readFile(journal, 'utf8').catch(() => '')).trim() === partial;
      for (let i = 0; i < 100 && !(await started()); i++) await new Promise((r) => setTimeout(r, 100));
      assert.ok(await started(), 'receive under way');
      await new Promise((r) => setTimeout(r, 300));
      child.kill(signal);
      const r = await child;
      if (code) assert.equal(r.exitCode, code, String(r.stderr));
      else {
        // kill -9 cannot clean up; the next run (or clean --all) must.
        const c = await cli(['clean', '--all'], { env: w.env });
        assert.equal(c.code, 0, c.stderr);
      }
      assert.equal(await w.zfs.exists(partial), false, 'no -partial left');
      assert.equal(await w.zfs.exists(`${w.datasetRoot}/${chain.base}`), false, 'never renamed into place incomplete');
      await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir: w.workDir, outputDir: out, images: allowed() });
      const again = await build(chain.origin);
      assert.equal(again.r.code, 0, again.r.stderr);
      assert.ok(await w.zfs.exists(`${w.datasetRoot}/${chain.base}@final`));
    });
  }

  it('concurrent builds import each image once', async () => {
    const chain = await publishChain();
    // Slow the first download so the other builds arrive while it holds the locks.
    server.addFault({ kind: 'stall', afterBytes: 1000, ms: 2000, route: 'GetImageFile', uuid: chain.base, times: 1 });
    const results = await Promise.all([1, 2, 3].map(() => build(chain.origin)));
    for (const { r } of results) assert.equal(r.code, 0, r.stderr);
    assert.ok(results.some(({ r }) => new RegExp(`waiting for image (${chain.base}|${chain.origin}) import lock`).test(r.stderr)), 'a waiting build says so');
    for (const u of [chain.base, chain.origin]) {
      // One download from byte 0 (the stalled one resumes with a Range request).
      assert.equal(server.requestsTo('GetImageFile').filter((q) => q.url.includes(u) && !q.headers.range).length, 1, `${u} downloaded once`);
    }
    await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir: w.workDir, images: allowed() });
  });
});
