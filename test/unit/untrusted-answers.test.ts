/**
 * Server answers are hostile until checked (issue 12, items 6, 10, 11, 13):
 * redirects on signed calls and https → http downgrades, huge and gzip-bomb
 * JSON bodies, uuids that are not uuids or not the one asked for, from the
 * local IMGAPI and Manta servers.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PublishError, UsageError } from '../../src/core/errors.js';
import { log } from '../../src/core/log.js';
import { keyObjectSigner } from '../../src/http/signature.js';
import { createPrivateKey } from 'node:crypto';
import { ImgapiAdminClient } from '../../src/imgapi/admin.js';
import { ImgapiClient, ImgapiError, type ImgapiClientOptions } from '../../src/imgapi/client.js';
import { ImgapiSource } from '../../src/base/imgapi-source.js';
import { DirectorySource } from '../../src/base/dir-source.js';
import { installImage } from '../../src/base/install.js';
import type { ImageSource } from '../../src/base/source.js';
import { BuildError } from '../../src/core/errors.js';
import { Layout } from '../../src/core/layout.js';
import type { Zfs } from '../../src/host/zfs.js';
import type { ImageManifest } from '../../src/image/manifest/types.js';
import { MantaClient, MantaError } from '../../src/manta/client.js';
import { makePlan } from '../../src/publish/plan.js';
import { testManifest } from '../helpers/manifests.js';
import { mountAdminApi } from '../servers/imgapi-admin.js';
import { startImgapiServer, type ImgapiTestServer } from '../servers/imgapi-server.js';
import { MantaTestServer } from '../servers/manta-server.js';
import { nodeRsaKey } from '../servers/ssh-keys.js';
import { haveOpenssl, selfSignedCert } from '../servers/tls.js';
import { rejection } from '../helpers/rejection.js';

const FAST = { retry: { attempts: 2, firstDelayMs: 5, maxDelayMs: 10 }, timeoutMs: 5_000, connectTimeoutMs: 1_000, env: {} } satisfies Partial<ImgapiClientOptions>;
const MiB = 1024 * 1024;

/** A plain http server that records every request (the place a redirect points at). */
async function sink(): Promise<{ url: string; hits: http.IncomingHttpHeaders[]; close(): Promise<void> }> {
  const hits: http.IncomingHttpHeaders[] = [];
  const s = http.createServer((req, res) => {
    hits.push(req.headers);
    req.resume();
    res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
  });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(s.address() as AddressInfo).port}`,
    hits,
    close: () => new Promise<void>((r) => s.close(() => r())),
  };
}

describe('untrusted server answers (issue 12)', function () {
  this.timeout(60_000);
  let silent: boolean;
  before(() => {
    silent = log.silent ?? false;
    log.silent = true;
  });
  after(() => (log.silent = silent));

  let server: ImgapiTestServer;
  let target: Awaited<ReturnType<typeof sink>>;
  const data = randomBytes(10_000);
  let image: ReturnType<typeof testManifest>;
  const key = nodeRsaKey();
  const admin = (url = server.url): ImgapiAdminClient =>
    new ImgapiAdminClient({ ...FAST, url, user: 'mg', signer: keyObjectSigner(createPrivateKey(key.pem), 'test key'), channel: 'dev' });

  beforeEach(async () => {
    server = await startImgapiServer();
    mountAdminApi(server, { authkeys: { mg: [key.pubLine] } });
    target = await sink();
    image = testManifest({}, data);
    await server.addImage(image, data);
  });
  afterEach(async () => {
    await server.close();
    await target.close();
  });

  describe('redirects (item 6)', () => {
    it('a signed GET answered 302 is one line naming the status and the Location host; nothing is sent there', async () => {
      server.addFault({ kind: 'redirect', status: 302, location: `${target.url}/images/${image.uuid}`, route: 'GetImage' });
      const err = await rejection(admin().findImage(image.uuid), ImgapiError);
      assert.match(err.message, new RegExp(`HTTP 302 redirect to ${target.url.replace(/\./g, '\\.')} not followed`));
      assert.equal(target.hits.length, 0);
    });

    it('a signed write answered 307 (or 301) is not followed: neither body nor Authorization goes anywhere else', async () => {
      for (const status of [307, 301]) {
        server.addFault({ kind: 'redirect', status, location: `${target.url}/images/${image.uuid}`, action: 'activate' });
        const err = await rejection(admin().activateImage(image.uuid, 'dev'), ImgapiError);
        assert.match(err.message, new RegExp(`activate image ${image.uuid}: HTTP ${status} redirect to http://127\\.0\\.0\\.1:\\d+ not followed`));
      }
      assert.equal(target.hits.length, 0);
    });

    describe('over https', () => {
      let tls: ImgapiTestServer;
      let cert: string;
      before(function () {
        if (!haveOpenssl()) this.skip();
      });
      beforeEach(async () => {
        const pem = await selfSignedCert();
        cert = pem.cert;
        tls = await startImgapiServer({ tls: pem });
        await tls.addImage(image, data);
      });
      afterEach(async () => {
        await tls.close();
      });

      it('an unsigned GetImage or file download is never redirected from https to http', async () => {
        const c = new ImgapiClient({ ...FAST, url: tls.url, ca: cert });
        tls.addFault({ kind: 'redirect', status: 301, location: `${target.url}/images/${image.uuid}`, route: 'GetImage' });
        let err = await rejection(c.getImage(image.uuid), ImgapiError);
        assert.match(err.message, /HTTP 301 redirect to http:\/\/127\.0\.0\.1:\d+ not followed \(from https to http\)/);
        tls.addFault({ kind: 'redirect', status: 302, location: `${target.url}/images/${image.uuid}/file`, route: 'GetImageFile' });
        err = await rejection(c.getImageFileStream(image.uuid), ImgapiError);
        assert.match(err.message, /file: HTTP 302 redirect to http:\/\/127\.0\.0\.1:\d+ not followed \(from https to http\)/);
        assert.equal(target.hits.length, 0);
      });

      it('an unsigned GET still follows a redirect that stays on https', async () => {
        const c = new ImgapiClient({ ...FAST, url: tls.url, ca: cert });
        tls.addFault({ kind: 'redirect', status: 302, location: `${tls.url}/images/${image.uuid}?channel=dev`, route: 'GetImage' });
        assert.equal((await c.getImage(image.uuid)).uuid, image.uuid);
      });
    });
  });

  describe('JSON answers are capped (item 10)', () => {
    it('a huge GetImage answer stops at the cap with one line naming the URL and the cap', async () => {
      server.addFault({ kind: 'huge', bytes: 64 * MiB, route: 'GetImage' });
      const err = await rejection(new ImgapiClient({ ...FAST, url: server.url }).getImage(image.uuid), ImgapiError);
      assert.match(err.message, new RegExp(`^IMGAPI ${server.url.replace(/\./g, '\\.')}: image ${image.uuid}: the answer is larger than 8 MiB`));
      assert.equal(server.requestsTo('GetImage').length, 1, 'not retried');
    });

    it('a gzip bomb is capped by its decompressed size', async () => {
      server.addFault({ kind: 'huge', bytes: 256 * MiB, gzip: true, route: 'ListImages' });
      const err = await rejection(new ImgapiClient({ ...FAST, url: server.url }).listImages(), ImgapiError);
      assert.match(err.message, /image list: the answer is larger than 8 MiB/);
    });

    it('signed calls and writes are capped too', async () => {
      server.addFault({ kind: 'huge', bytes: 64 * MiB, gzip: true, route: 'GetImage' });
      assert.match((await rejection(admin().findImage(image.uuid), ImgapiError)).message, /the answer is larger than 8 MiB/);
      server.addFault({ kind: 'huge', bytes: 64 * MiB, action: 'activate' });
      assert.match((await rejection(admin().activateImage(image.uuid, 'dev'), ImgapiError)).message, /activate image .*: the answer is larger than 8 MiB/);
    });

    it('Manta answers are capped (1 MiB) and a redirect names its Location host', async () => {
      const m = await MantaTestServer.start({ u: { keys: [key.pubLine] } });
      const c = new MantaClient({ url: m.url, user: 'u', signer: keyObjectSigner(createPrivateKey(key.pem), 'test key'), retry: { attempts: 2, firstDelayMs: 5, maxDelayMs: 10, budgetMs: 5_000 } });
      try {
        m.fault({ kind: 'huge', status: 500, bytes: 64 * MiB, method: 'PUT' });
        const err = await rejection(c.mkdir('/u/stor/x'), MantaError);
        assert.match(err.message, /^Manta PUT \/u\/stor\/x: 500 ResponseTooLarge: the answer is larger than 1 MiB/);
        m.fault({ kind: 'redirect', status: 301, location: `${target.url}/u/stor/y`, method: 'PUT' });
        const r = await rejection(c.mkdir('/u/stor/y'), MantaError);
        assert.match(r.message, /^Manta PUT \/u\/stor\/y: 301 Moved Permanently: redirect to http:\/\/127\.0\.0\.1:\d+ not followed/);
        assert.equal(target.hits.length, 0);
      } finally {
        c.close();
        await m.close();
      }
    });
  });

  describe('uuids (items 11, 13)', () => {
    it('a GetImage answer for another uuid is refused (a lying server)', async () => {
      const other = randomUUID();
      server.store.set(other, server.store.get(image.uuid)!);
      const err = await rejection(new ImgapiSource({ ...FAST, url: server.url }).getManifest(other), ImgapiError);
      assert.match(err.message, new RegExp(`image ${other}: the server answered with image ${image.uuid}`));
      const adminErr = await rejection(admin().findImage(other), ImgapiError);
      assert.match(adminErr.message, new RegExp(`image ${other}: the server answered with image ${image.uuid}`));
    });

    it('installing refuses an origin manifest whose uuid is not the origin asked for, and a chain that loops (any source)', async () => {
      const top = testManifest({}, data);
      const origin = randomUUID();
      top.origin = origin;
      const other = testManifest({}, data);
      const byUuid = new Map<string, ImageManifest>([[top.uuid, top], [origin, other]]);
      const source: ImageSource = {
        description: 'a lying source',
        getManifest: async (u) => byUuid.get(u)!,
        openFile: () => Promise.reject(new Error('not reached')),
      };
      const zfs = { exists: async () => false } as unknown as Zfs;
      const layout = new Layout('pool/images', '/var/tmp/nowhere');
      let err = await rejection(installImage({ zfs, layout, source }, top.uuid), BuildError);
      assert.match(err.message, new RegExp(`answered image ${other.uuid} when asked for origin ${origin}`));
      // A loop: the origin's origin is the top again.
      byUuid.set(origin, { ...other, uuid: origin, origin: top.uuid });
      err = await rejection(installImage({ zfs, layout, source }, top.uuid), BuildError);
      assert.match(err.message, new RegExp(`origin chain from a lying source loops \\(${top.uuid} → ${origin} → ${top.uuid}\\)`));
      await rejection(installImage({ zfs, layout, source }, '../../x'), BuildError);
    });

    it('a uuid that is not a uuid never reaches a URL', async () => {
      for (const bad of ['../../x', 'a/b', `${image.uuid}/file`]) {
        await rejection(new ImgapiClient({ ...FAST, url: server.url }).getImage(bad), ImgapiError);
        await rejection(admin().findImage(bad), ImgapiError);
        await rejection(admin().activateImage(bad, 'dev'), ImgapiError);
        assert.throws(() => admin().importCall(bad, 'dev'), ImgapiError);
      }
      assert.equal(server.requests.length, 0);
    });

    it('a directory source refuses a manifest whose uuid is not a uuid, and a lookup by a non-uuid', async () => {
      const dir = await mkdtemp(join(tmpdir(), 'bi-dirsrc-'));
      try {
        await writeFile(join(dir, 'bad.imgmanifest'), JSON.stringify({ ...image, uuid: '../../x' }));
        const src = new DirectorySource(dir);
        await rejection(src.getManifest('../../x'), Error);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });

    it("publish -p refuses a manifest whose uuid is not a uuid (e.g. '../../x')", async () => {
      const dir = await mkdtemp(join(tmpdir(), 'bi-plan-'));
      try {
        await mkdir(join(dir, 'demo'));
        await writeFile(join(dir, 'demo/demo.imgmanifest'), JSON.stringify(testManifest({ uuid: '../../x', name: 'demo', version: '1' }, Buffer.from('x'))));
        await writeFile(join(dir, 'demo/demo.zfs.gz'), 'x');
        const err = await rejection(
          makePlan({ name: 'demo', branch: 'master', stamp: 's', channel: 'dev', bitsDir: dir, baseDir: '/u/stor/b', imports: true }),
          UsageError,
        );
        // Checked with every image manifest, by imgmanifest's rules, before anything is published.
        assert.match(err.message, /^image manifest demo\/demo\.imgmanifest: "uuid" must be a lower-case UUID, got "\.\.\/\.\.\/x"/);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  });

  describe('bits dirs with links (item 5)', () => {
    it('plans only regular files: symlinked files and subdirectories are skipped with a warning naming them', async () => {
      const dir = await mkdtemp(join(tmpdir(), 'bi-links-'));
      const secret = join(dir, 'secret');
      try {
        await writeFile(secret, 'KEY');
        const bits = join(dir, 'bits');
        await mkdir(join(bits, 'svc/real'), { recursive: true });
        await mkdir(join(dir, 'elsewhere'));
        await writeFile(join(dir, 'elsewhere/f.txt'), 'KEY');
        await writeFile(join(bits, 'svc/real/ok.txt'), 'ok');
        await symlink(secret, join(bits, 'svc/notes.txt'));
        await symlink(join(dir, 'elsewhere'), join(bits, 'svc/linked'));
        await symlink(join(dir, 'elsewhere'), join(bits, 'top'));
        const warned: string[] = [];
        const orig = log.warn.bind(log);
        (log as unknown as { warn: (m: string) => void }).warn = (m: string) => void warned.push(m);
        try {
          const all = await makePlan({ name: 'svc', branch: 'master', stamp: 's', channel: 'dev', bitsDir: bits, baseDir: '/u/stor/b' });
          assert.deepEqual(all.files.map((f) => f.rel), ['svc/real/ok.txt']);
          assert.equal(warned.length, 1, warned.join('\n'));
          assert.match(warned[0], /not publishing 3 symlinks.*: svc\/linked, svc\/notes\.txt, top/);
          // Named as a subdirectory argument: still not followed.
          warned.length = 0;
          await rejection(makePlan({ name: 'svc', branch: 'master', stamp: 's', channel: 'dev', bitsDir: bits, baseDir: '/u/stor/b', subdirs: ['top'] }), Error);
          await rejection(makePlan({ name: 'svc', branch: 'master', stamp: 's', channel: 'dev', bitsDir: bits, baseDir: '/u/stor/b', subdirs: ['svc/linked'] }), Error);
          // Build outputs (--state) are staged only into a real <bits>/<name>/, and only regular files.
          await symlink(join(dir, 'elsewhere'), join(bits, 'linkedname'));
          await writeFile(join(dir, 'out.zfs.gz'), 'img');
          await symlink(secret, join(dir, 'out.imgmanifest'));
          const p = { name: 'linkedname', branch: 'master', stamp: 's', channel: 'dev', bitsDir: bits, baseDir: '/u/stor/b' };
          assert.match((await rejection(makePlan({ ...p, outputs: [join(dir, 'out.zfs.gz')] }), PublishError)).message, /linkedname is not a directory \(a symlink\)/);
          assert.match((await rejection(makePlan({ ...p, name: 'svc', outputs: [join(dir, 'out.imgmanifest')] }), PublishError)).message, /out\.imgmanifest is not a regular file/);
        } finally {
          (log as unknown as { warn: typeof orig }).warn = orig;
        }
        void createHash;
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  });
});
