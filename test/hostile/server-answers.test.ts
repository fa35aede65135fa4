/**
 * Hostile server answers (issue 12 items 6, 10, 11, 13), through the real
 * CLI: an IMGAPI that redirects (https → http, signed calls anywhere), lies
 * about uuids, sends an origin chain with a loop or a path for an origin,
 * huge or gzip-bomb JSON, or a file that does not match its manifest. Each
 * build or publish must end with one error line and a non-zero exit, leave
 * nothing behind, and send nothing where a redirect pointed.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { ImageManifest } from '../../src/image/manifest/types.js';
import { testManifest } from '../helpers/manifests.js';
import { cli, errorLines, type CliResult } from '../helpers/cli.js';
import { assertNoLeaks } from '../helpers/leaks.js';
import { world, type World } from '../helpers/world.js';
import { mountAdminApi } from '../servers/imgapi-admin.js';
import { startImgapiServer, type ImgapiTestServer } from '../servers/imgapi-server.js';
import { MantaTestServer } from '../servers/manta-server.js';
import { nodeRsaKey, tempDir } from '../servers/ssh-keys.js';
import { haveOpenssl, selfSignedCert } from '../servers/tls.js';

const MiB = 1024 * 1024;

/** Where a redirect points: records every request it gets. */
async function startSink(): Promise<{ url: string; hits: string[]; close(): Promise<void> }> {
  const hits: string[] = [];
  const s = http.createServer((req, res) => {
    hits.push(`${req.method} ${req.url} auth=${req.headers.authorization ? 'yes' : 'no'}`);
    req.resume();
    res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
  });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(s.address() as AddressInfo).port}`, hits, close: () => new Promise<void>((r) => s.close(() => r())) };
}

function expectOneLine(r: CliResult, code: number, re: RegExp): void {
  assert.equal(r.code, code, r.stderr);
  const lines = errorLines(r);
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0], re);
}

describe('hostile server answers', function () {
  this.timeout(5 * 60 * 1000);
  let w: World;
  let server: ImgapiTestServer;
  let sink: Awaited<ReturnType<typeof startSink>>;
  let proto: string;
  const imported: string[] = [];
  const mf = JSON.stringify({ name: 'hostile', version: '1.0.0' });
  const sample = async (stem: string): Promise<ImageManifest> => JSON.parse(await readFile(join(w.sampleDir, `${stem}.imgmanifest`), 'utf8')) as ImageManifest;
  const BASE_FILE = (): string => join(w.sampleDir, 'minimal-64-lts-sample-24.4.1.zfs.gz');
  const ORIGIN_FILE = (): string => join(w.sampleDir, 'triton-origin-sample-24.4.1.zfs.gz');

  before(async () => {
    w = await world();
    server = await startImgapiServer();
    sink = await startSink();
    proto = join(w.dir, 'proto-hostile-answers');
    await mkdir(join(proto, 'opt'), { recursive: true });
    await writeFile(join(proto, 'opt/x'), 'x\n');
  });
  after(async () => {
    await server?.close();
    await sink?.close();
  });
  afterEach(() => assert.deepEqual(sink.hits, [], 'nothing was sent where a redirect pointed'));

  /** The sample chain under fresh uuids on `s`. */
  async function chain(s: ImgapiTestServer, edit: (base: ImageManifest, top: ImageManifest) => void = () => {}): Promise<{ base: string; top: string }> {
    const base = await sample('minimal-64-lts-sample-24.4.1');
    const top = await sample('triton-origin-sample-24.4.1');
    base.uuid = randomUUID();
    top.uuid = randomUUID();
    top.origin = base.uuid;
    edit(base, top);
    await s.addImage(base, BASE_FILE());
    await s.addImage(top, ORIGIN_FILE());
    imported.push(base.uuid, top.uuid);
    return { base: base.uuid, top: top.uuid };
  }

  async function build(uuid: string, source: string, env: Record<string, string> = {}): Promise<CliResult> {
    const out = await w.outDir();
    const r = await cli(['-i', uuid, '-d', proto, '-m', mf, '--output-dir', out], { env: { ...w.env, BUILDIMAGE_SOURCE: source, ...env } });
    await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir: w.workDir, outputDir: out, images: [w.base.uuid, w.origin.uuid, ...imported], context: r.stderr });
    return r;
  }

  it('a server answering another image for the uuid asked is refused (the top, then an origin)', async () => {
    const c = await chain(server);
    const liar = randomUUID();
    server.store.set(liar, server.store.get(c.base)!);
    expectOneLine(await build(liar, server.url), 1, new RegExp(`image ${liar}: the server answered with image ${c.base}, not ${liar}`));

    const fake = randomUUID();
    const d = await chain(server, (_b, top) => (top.origin = fake));
    server.store.set(fake, server.store.get(c.base)!);
    expectOneLine(await build(d.top, server.url), 1, new RegExp(`image ${fake}: the server answered with image ${c.base}, not ${fake}`));
  });

  it('an origin chain that loops is one line, not a hundred requests', async () => {
    const a = randomUUID();
    const b = randomUUID();
    await chain(server, (base, top) => {
      base.uuid = b;
      base.origin = a;
      top.uuid = a;
      top.origin = b;
    });
    imported.push(a, b);
    const before = server.requestsTo('GetImage').length;
    expectOneLine(await build(a, server.url), 1, new RegExp(`image ${a}: the origin chain from .* loops \\(${a} → ${b} → ${a}\\)`));
    assert.ok(server.requestsTo('GetImage').length - before <= 3);
  });

  it("an origin that is a path ('../../x') never becomes a URL or a dataset name", async () => {
    const c = await chain(server, (_b, top) => (top.origin = '../../x'));
    const before = server.requests.length;
    expectOneLine(await build(c.top, server.url), 1, /"origin"/);
    assert.ok(server.requests.slice(before).every((q) => !q.url.includes('..')), 'no path in any URL');
  });

  it('huge and gzip-bomb JSON answers stop at the cap: one line naming the URL and the cap', async () => {
    const c = await chain(server);
    server.addFault({ kind: 'huge', bytes: 512 * MiB, route: 'GetImage', uuid: c.top, times: Infinity });
    expectOneLine(await build(c.top, server.url), 1, new RegExp(`IMGAPI ${server.url.replace(/\./g, '\\.')}: image ${c.top}: the answer is larger than 8 MiB`));
    server.clearFaults();
    server.addFault({ kind: 'huge', bytes: 1024 * MiB, gzip: true, route: 'GetImage', uuid: c.base, times: Infinity });
    expectOneLine(await build(c.top, server.url), 1, new RegExp(`image ${c.base}: the answer is larger than 8 MiB`));
    server.clearFaults();
  });

  it('a file that does not match its manifest (sha1) is refused and nothing of it stays', async () => {
    const c = await chain(server);
    server.addFault({ kind: 'wrong-bytes', route: 'GetImageFile', uuid: c.base, times: Infinity });
    expectOneLine(await build(c.top, server.url), 1, new RegExp(`${c.base}.*sha1`));
    server.clearFaults();
  });

  describe('over https', () => {
    let tls: ImgapiTestServer;
    before(async function () {
      if (!haveOpenssl()) this.skip();
      tls = await startImgapiServer({ tls: await selfSignedCert() });
    });
    after(async () => {
      await tls?.close();
    });

    it('a manifest or file redirected from https to http is refused (301, 302, 307)', async () => {
      const c = await chain(tls);
      for (const [status, route, uuid] of [
        [301, 'GetImage', c.top],
        [302, 'GetImage', c.base],
        [307, 'GetImageFile', c.base],
      ] as const) {
        tls.clearFaults();
        tls.addFault({ kind: 'redirect', status, location: `${sink.url}/images/${uuid}${route === 'GetImageFile' ? '/file' : ''}`, route, uuid, times: Infinity });
        const r = await build(c.top, tls.url, { IMGADM_INSECURE: '1' });
        expectOneLine(r, 1, new RegExp(`image ${uuid}( file)?: HTTP ${status} redirect to http://127\\.0\\.0\\.1:\\d+ not followed \\(from https to http\\)`));
      }
      tls.clearFaults();
    });
  });

  describe('publish -p', () => {
    let fdir: string;
    let manta: MantaTestServer;
    let imgapi: ImgapiTestServer;
    const key = nodeRsaKey();
    const uuid = randomUUID();
    before(async () => {
      fdir = await tempDir('bi-hostile-updates-');
      await mkdir(join(fdir, 'home/.ssh'), { recursive: true });
      await writeFile(join(fdir, 'home/.ssh/id_rsa'), key.pem, { mode: 0o600 });
      await writeFile(join(fdir, 'home/.ssh/id_rsa.pub'), key.pubLine + '\n');
      await mkdir(join(fdir, 'bits/svc'), { recursive: true });
      const image = Buffer.from('not really an image');
      await writeFile(join(fdir, 'bits/svc/svc.imgmanifest'), JSON.stringify(testManifest({ uuid, name: 'svc', version: '1' }, image)));
      await writeFile(join(fdir, 'bits/svc/svc.zfs.gz'), image);
      manta = await MantaTestServer.start({ U: { keys: [key.pubLine] } });
      imgapi = await startImgapiServer();
      mountAdminApi(imgapi, { authkeys: { mg: [key.pubLine] } });
    });
    after(async () => {
      await manta?.close();
      await imgapi?.close();
      if (fdir) await rm(fdir, { recursive: true, force: true });
    });

    const publish = (): Promise<CliResult> =>
      cli(['publish', '-b', 'master', '-n', 'svc', '-t', 'master-20240501T120000Z-g0123abc', '-d', '/stor/builds/svc', '-D', join(fdir, 'bits'), '-p'], {
        cwd: fdir,
        env: { HOME: join(fdir, 'home'), MANTA_URL: manta.url, MANTA_USER: 'U', SSH_AUTH_SOCK: '', MANTA_KEY_ID: '', UPDATES_IMGADM_URL: imgapi.url, UPDATES_IMGADM_USER: 'mg' },
        timeoutMs: 90_000,
      });

    it('signed calls answered with a redirect (302, 307) are not followed: one line, exit 3, nothing uploaded', async () => {
      for (const status of [302, 307]) {
        imgapi.clearFaults();
        imgapi.addFault({ kind: 'redirect', status, location: `${sink.url}/ping`, route: 'Ping', times: Infinity });
        expectOneLine(await publish(), 3, new RegExp(`ping: HTTP ${status} redirect to http://127\\.0\\.0\\.1:\\d+ not followed \\(a signed call never follows a redirect\\)`));
      }
      imgapi.clearFaults();
      assert.equal(manta.puts().length, 0, 'nothing uploaded to Manta');
    });

    it('a huge signed answer is one line, exit 3', async () => {
      imgapi.addFault({ kind: 'huge', bytes: 64 * MiB, gzip: true, route: 'Ping', times: Infinity });
      expectOneLine(await publish(), 3, /ping: the answer is larger than 8 MiB/);
      imgapi.clearFaults();
      assert.equal(manta.puts().length, 0, 'nothing uploaded to Manta');
    });

    it('an IMGAPI answering another image for ours is refused before any write to it', async () => {
      const other = randomUUID();
      await imgapi.addImage({ v: 2, uuid: other, name: 'other', version: '1', type: 'zone-dataset', os: 'smartos', owner: '00000000-0000-0000-0000-000000000000' });
      imgapi.store.set(uuid, imgapi.store.get(other)!);
      try {
        expectOneLine(await publish(), 3, new RegExp(`image ${uuid}: the server answered with image ${other}, not ${uuid}`));
        assert.deepEqual(imgapi.requests.filter((q) => q.method !== 'GET').map((q) => q.url), [], 'no write to IMGAPI');
      } finally {
        imgapi.store.delete(uuid);
      }
    });
  });
});
