/**
 * A cached base needs no network (issue 13, item 1): once a build installed
 * the base chain, later builds from it ask no server at all, as imgadm
 * looks locally first. The source is the test IMGAPI (counting requests) or
 * a listener that counts every TCP connection made to it (and stands for
 * the proxy too). An installed image whose manifest is not known here (an
 * older buildimage, a hand-received dataset), or whose kept manifest names
 * another image, still goes to the source.
 */
import assert from 'node:assert/strict';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { Layout } from '../../src/core/layout.js';
import { DoctorResultSchema } from '../../src/cli/schemas.js';
import { cli, type CliResult } from '../helpers/cli.js';
import { assertNoLeaks } from '../helpers/leaks.js';
import { serveSampleChain, world, type World } from '../helpers/world.js';
import { startImgapiServer, type ImgapiTestServer } from '../servers/imgapi-server.js';

/** A TCP listener that counts connections and closes each at once: a source nobody should dial. */
async function dialCounter(): Promise<{ url: string; count: () => number; close: () => Promise<void> }> {
  let n = 0;
  const socks = new Set<Socket>();
  const srv: Server = createServer((s) => {
    n++;
    socks.add(s);
    s.destroy();
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    count: () => n,
    close: () => new Promise((r) => srv.close(() => r())),
  };
}

describe('a cached base needs no network', function () {
  this.timeout(5 * 60 * 1000);
  let w: World;
  let server: ImgapiTestServer;
  let dead: Awaited<ReturnType<typeof dialCounter>>;
  let layout: Layout;
  let proto: string;
  const images: string[] = [];
  const mf = JSON.stringify({ name: 'offline', version: '1.0.0' });

  before(async () => {
    w = await world();
    server = await startImgapiServer();
    dead = await dialCounter();
    layout = new Layout(w.datasetRoot, w.workDir);
    proto = join(w.dir, 'proto-offline');
    await mkdir(join(proto, 'opt/svc'), { recursive: true });
    await writeFile(join(proto, 'opt/svc/app.js'), '1\n');
  });
  after(async () => {
    await server?.close();
    await dead?.close();
  });

  async function build(uuid: string, source: string): Promise<{ r: CliResult; out: string }> {
    const out = await w.outDir();
    // From the counter, the proxy variables aim at it too: a dial anywhere shows.
    const proxy: Record<string, string> = source === dead.url ? { http_proxy: dead.url, https_proxy: dead.url, HTTP_PROXY: dead.url, HTTPS_PROXY: dead.url, no_proxy: '', NO_PROXY: '' } : {};
    const env = { ...w.env, BUILDIMAGE_SOURCE: source, ...proxy };
    const r = await cli(['-i', uuid, '-d', proto, '-m', mf, '--output-dir', out], { env });
    return { r, out };
  }

  async function installedChain(): Promise<{ base: string; origin: string }> {
    const chain = await serveSampleChain(server, w);
    images.push(chain.base, chain.origin);
    const { r } = await build(chain.origin, server.url);
    assert.equal(r.code, 0, r.stderr);
    return chain;
  }

  it('the chain installed by an earlier build: the next builds ask no server, even with the base no longer active', async () => {
    const chain = await installedChain();
    for (const u of [chain.base, chain.origin]) {
      const kept = JSON.parse(await readFile(layout.installedManifest(u), 'utf8'));
      assert.equal(kept.uuid, u, 'each installed image has its manifest kept');
    }
    // The test IMGAPI still up, counting; the base disabled there.
    server.store.get(chain.origin)!.raw.disabled = true;
    const before = server.requests.length;
    let { r, out } = await build(chain.origin, server.url);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(server.requests.length, before, `no request to the IMGAPI: ${server.requests.slice(before).map((q) => q.url).join(' ')}`);
    assert.match(r.stderr, new RegExp(`image ${chain.origin} \\(triton-origin-sample@[^)]+\\) already installed; manifest from .*, no source asked`));
    const m = JSON.parse(await readFile(join(out, 'offline-zfs-1.0.0.imgmanifest'), 'utf8'));
    assert.equal(m.origin, chain.origin);

    // A source where nothing answers: the build succeeds and nothing dialled out.
    ({ r, out } = await build(chain.origin, dead.url));
    assert.equal(r.code, 0, r.stderr);
    assert.equal(dead.count(), 0, 'no connection was made');
    await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir: w.workDir, outputDir: out, images });

    // Doctor agrees: the base is installed, the source is not needed (and not asked).
    const d = await cli(['doctor', '-i', chain.origin, '--json', '--source', dead.url], { env: w.env });
    const res = DoctorResultSchema.parse(JSON.parse(d.stdout));
    const source = res.checks.find((c) => c.id === 'source')!;
    assert.equal(source.status, 'ok', source.detail);
    assert.match(source.detail, new RegExp(`base ${chain.origin} \\(triton-origin-sample@[^)]+\\) is installed with its manifest: builds from it need no source`));
    assert.equal(dead.count(), 0, 'doctor dialled nothing');
  });

  it('an installed image whose manifest is not kept (older buildimage, received by hand) goes to the source once', async () => {
    const chain = await installedChain();
    await rm(layout.installedManifest(chain.origin));
    // Doctor: installed, but a build needs the source, which is down.
    const d = await cli(['doctor', '-i', chain.origin, '--json', '--source', dead.url], { env: w.env });
    const source = DoctorResultSchema.parse(JSON.parse(d.stdout)).checks.find((c) => c.id === 'source')!;
    assert.equal(source.status, 'fail', source.detail);
    assert.match(source.detail, /installed but its manifest is not known here/);
    const n0 = dead.count();
    let { r } = await build(chain.origin, dead.url);
    assert.equal(r.code, 1, 'the source is needed');
    assert.ok(dead.count() > n0, 'the source was dialled');

    const before = server.requestsTo('GetImage').filter((q) => q.url.includes(chain.origin)).length;
    ({ r } = await build(chain.origin, server.url));
    assert.equal(r.code, 0, r.stderr);
    assert.equal(server.requestsTo('GetImage').filter((q) => q.url.includes(chain.origin)).length, before + 1, 'the source was asked');
    assert.equal(server.requestsTo('GetImageFile').filter((q) => q.url.includes(chain.origin)).length, 1, 'not downloaded again');
    // ... and its answer kept: the next build is offline.
    assert.equal(JSON.parse(await readFile(layout.installedManifest(chain.origin), 'utf8')).uuid, chain.origin);
    const n1 = dead.count();
    ({ r } = await build(chain.origin, dead.url));
    assert.equal(r.code, 0, r.stderr);
    assert.equal(dead.count(), n1);
  });

  it('a kept manifest naming another image is ignored with a warning, and the source is asked', async () => {
    const chain = await installedChain();
    const path = layout.installedManifest(chain.origin);
    await writeFile(path, await readFile(layout.installedManifest(chain.base)));
    const before = server.requestsTo('GetImage').filter((q) => q.url.includes(chain.origin)).length;
    const { r, out } = await build(chain.origin, server.url);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, new RegExp(`WARN: ignoring ${path}: names image ${chain.base}, not ${chain.origin}`));
    assert.equal(server.requestsTo('GetImage').filter((q) => q.url.includes(chain.origin)).length, before + 1, 'the source was asked');
    const m = JSON.parse(await readFile(join(out, 'offline-zfs-1.0.0.imgmanifest'), 'utf8'));
    assert.equal(m.origin, chain.origin, 'built on the right base');
    assert.equal(JSON.parse(await readFile(path, 'utf8')).uuid, chain.origin, 'the kept manifest is the right one again');
  });
});
