/**
 * The updates importer's decisions (publish -p), against the local IMGAPI
 * test server (HTTP Signature, sdc-imgapi's checks and error bodies): which
 * call comes next from what the server has, what a plan and a result say,
 * what is retried after a fresh read and what stops the publish. The file is
 * uploaded (--upload-file) so no Manta is needed; test/integration/
 * publish-updates.test.ts runs the whole publish, presigned URLs included.
 */
import assert from 'node:assert/strict';
import { createHash, createPrivateKey, randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import sinon from 'sinon';
import { PublishError } from '../../src/core/errors.js';
import { log } from '../../src/core/log.js';
import { keyObjectSigner } from '../../src/http/signature.js';
import { ImgapiAdminClient } from '../../src/imgapi/admin.js';
import type { ImageManifest } from '../../src/image/manifest/types.js';
import type { ImportRequest } from '../../src/publish/importer.js';
import { UpdatesImporter } from '../../src/publish/updates.js';
import { captureLogs } from '../helpers/logs.js';
import { testManifest } from '../helpers/manifests.js';
import { mountAdminApi, writes, type AdminApi } from '../servers/imgapi-admin.js';
import { RestError, startImgapiServer, type ImgapiTestServer } from '../servers/imgapi-server.js';
import { nodeRsaKey } from '../servers/ssh-keys.js';

const FAST = { attempts: 3, firstDelayMs: 1, maxDelayMs: 2, maxRetryAfterMs: 10 };
const sha1 = (b: Buffer): string => createHash('sha1').update(b).digest('hex');

describe('updates importer (publish -p) against the test IMGAPI', () => {
  const key = nodeRsaKey();
  let server: ImgapiTestServer;
  let dir: string;
  let data: Buffer;
  let manifest: ImageManifest;
  let req: ImportRequest;

  // Stands in for Manta's presigned URL (AddImageFileFromUrl): serves `data`, or the statuses queued in `mantaAnswers` first.
  let manta: http.Server;
  let mantaUrl: string;
  let mantaAnswers: number[] = [];

  let admin: AdminApi;

  const importer = (o: { attempts?: number; firstDelayMs?: number; uploadFile?: boolean; fileWaitMs?: number; pollMs?: number; fileTimeoutMs?: number } = {}) =>
    new UpdatesImporter({
      client: new ImgapiAdminClient({
        url: server.url,
        user: 'mg',
        signer: keyObjectSigner(createPrivateKey(key.pem), 'test'),
        channel: 'dev',
        retry: { attempts: 1 },
        fileTimeoutMs: o.fileTimeoutMs,
      }),
      uploadFile: o.uploadFile ?? true,
      retry: { ...FAST, attempts: o.attempts ?? FAST.attempts, ...(o.firstDelayMs !== undefined ? { firstDelayMs: o.firstDelayMs, maxDelayMs: o.firstDelayMs } : {}) },
      fileWaitMs: o.fileWaitMs,
      pollMs: o.pollMs,
    });
  const logged = async <T>(fn: () => Promise<T>): Promise<{ value: T; lines: string[] }> => {
    const logs = captureLogs();
    try {
      return { value: await fn(), lines: logs.lines };
    } finally {
      logs.stop();
    }
  };
  const write = (m: object) => writeFile(req.manifestFile, JSON.stringify(m));
  const want = () => `(sha1 ${sha1(data)}, ${data.length} bytes)`;
  const served = () => server.store.get(manifest.uuid);
  const refused = async (p: Promise<unknown>): Promise<PublishError> => {
    try {
      await p;
    } catch (err) {
      assert.ok(err instanceof PublishError, String(err));
      return err;
    }
    assert.fail('expected a PublishError');
  };

  before(async () => {
    manta = http.createServer((q, res) => {
      const status = mantaAnswers.shift() ?? 200;
      if (status !== 200 || !q.url?.startsWith('/image.zfs.gz')) return void res.writeHead(status === 200 ? 404 : status).end();
      res.writeHead(200, { 'content-length': data.length }).end(data);
    });
    await new Promise<void>((r) => manta.listen(0, '127.0.0.1', r));
    mantaUrl = `http://127.0.0.1:${(manta.address() as AddressInfo).port}/image.zfs.gz?signature=secret`;
  });
  after(() => new Promise((r) => manta.close(r)));

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'bi-updates-'));
    server = await startImgapiServer();
    mantaAnswers = [];
    admin = mountAdminApi(server, { authkeys: { mg: [key.pubLine] }, allowHttpFileUrl: true });
    data = randomBytes(1500);
    manifest = testManifest({ name: 'demo', version: '1.0.0', published_at: '2024-05-01T12:00:00.000Z' }, data);
    req = {
      uuid: manifest.uuid,
      manifestFile: join(dir, 'demo.imgmanifest'),
      imageFile: join(dir, 'demo.zfs.gz'),
      imagePath: '/u/public/builds/demo/demo.zfs.gz',
      size: data.length,
      channel: 'dev',
      imageUrl: () => Promise.reject(new Error('no presigned URL with --upload-file')),
    };
    await write(manifest);
    await writeFile(req.imageFile, data);
  });
  afterEach(async () => {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('not on the server: the plan imports, adds the file and activates, writing nothing; apply does it', async () => {
    const plan = await importer().plan(req);
    assert.equal(plan.action, 'import');
    assert.equal(plan.detail, 'not on the server: import, add-file, activate');
    assert.equal(plan.calls?.length, 3);
    assert.equal(plan.calls?.[1], `PUT ${server.url}/images/${manifest.uuid}/file?channel=dev&compression=gzip&sha1=${sha1(data)} (${data.length} bytes from ${req.imageFile})`);
    assert.deepEqual(writes(server), []);
    const r = await importer().apply(req);
    assert.deepEqual(r, { uuid: manifest.uuid, action: 'imported', detail: `import, add-file, activate: active in channel dev ${want()}`, calls: r.calls });
    assert.equal(r.calls?.length, 3);
    assert.deepEqual(writes(server), ['AdminImportImage', 'AddImageFile', 'ActivateImage']);
    assert.equal(served()?.raw.state, 'active');
  });

  it('already there: the plan skips, apply changes nothing', async () => {
    await server.addImage(manifest, data, { channels: ['dev'] });
    const plan = await importer().plan(req);
    assert.deepEqual(plan, { uuid: manifest.uuid, action: 'skip', detail: `already active in channel dev with the same file (sha1 ${sha1(data)})`, calls: [] });
    const r = await importer().apply(req);
    assert.deepEqual(r, { uuid: manifest.uuid, action: 'already there', detail: `active in channel dev ${want()}`, calls: [] });
    assert.deepEqual(writes(server), []);
  });

  it('in other channels: only added to ours', async () => {
    await server.addImage(manifest, data, { channels: ['experimental', 'staging'] });
    const plan = await importer().plan(req);
    assert.equal(plan.action, 'add-channel');
    assert.equal(plan.detail, 'active in experimental, staging: channel-add');
    assert.equal(plan.calls?.length, 1);
    assert.match(plan.calls[0], new RegExp(`^POST ${server.url}/images/${manifest.uuid}\\?channel=experimental&action=channel-add`), 'the channel-add call, not another');
    const r = await importer().apply(req);
    assert.equal(r.action, 'channel-added');
    assert.equal(r.detail, `was active in experimental, staging; now active in channel dev ${want()}`);
    assert.deepEqual(writes(server), ['ChannelAddImage']);
    assert.deepEqual(served()?.raw.channels, ['experimental', 'staging', 'dev']);
  });

  it('left unactivated by an earlier run: finished from where it stopped', async () => {
    await server.addImage(manifest, undefined, { channels: ['dev'], state: 'unactivated' });
    const plan = await importer().plan(req);
    assert.equal(plan.action, 'finish');
    assert.equal(plan.detail, 'unactivated in dev: add-file, activate');
    const r = await importer().apply(req);
    assert.equal(r.action, 'finished');
    assert.equal(r.detail, `found unactivated from an earlier run; add-file, activate: active in channel dev ${want()}`);
    assert.deepEqual(writes(server), ['AddImageFile', 'ActivateImage']);
  });

  it('the uuid taken by another file: a conflict in the plan, a PublishError from apply, no write', async () => {
    const other = randomBytes(100);
    await server.addImage({ ...manifest, files: [{ sha1: sha1(other), size: other.length, compression: 'gzip' }] }, other, { channels: ['dev'] });
    const reason = `image ${manifest.uuid} is on the server (active) with a different file: sha1 ${sha1(other)}, ${other.length} bytes; ours is sha1 ${sha1(data)}, ${data.length} bytes`;
    assert.deepEqual(await importer().plan(req), { uuid: manifest.uuid, action: 'conflict', detail: reason, calls: [] });
    const err = await refused(importer().apply(req));
    assert.equal(err.message, reason);
    assert.match(err.hint ?? '', /^an image uuid is published once/);
    assert.deepEqual(writes(server), []);
  });

  it('a manifest that does not match its file: a conflict in the plan, an error from apply', async () => {
    await write({ ...manifest, files: [{ sha1: sha1(Buffer.from('x')), size: data.length, compression: 'gzip' }] });
    const plan = await importer().plan(req);
    assert.equal(plan.action, 'conflict');
    assert.match(plan.detail, /says files\[0\]\.sha1 is [0-9a-f]{40}, but .* has sha1 /);
    assert.equal(plan.calls, undefined);
    await refused(importer().apply(req));
    assert.deepEqual(writes(server), []);
  });

  describe('the origin', () => {
    it('must be on the server before an import: a conflict in the plan, an error with a hint from apply', async () => {
      const origin = randomUUID();
      await write({ ...manifest, origin });
      const problem = `origin image ${origin} of ${manifest.uuid} is not on ${server.url}`;
      assert.deepEqual(await importer().plan(req), { uuid: manifest.uuid, action: 'conflict', detail: problem, calls: [] });
      const err = await refused(importer().apply(req));
      assert.equal(err.message, problem);
      assert.equal(err.hint, 'publish the origin image first');
      assert.deepEqual(writes(server), []);
    });

    it('must be a uuid', async () => {
      await write({ ...manifest, origin: '../x' });
      const plan = await importer().plan(req);
      assert.equal(plan.detail, `image ${manifest.uuid}: its "origin" "../x" is not a uuid`);
    });

    it('a long one that is not a uuid is cut to 80 characters in the message', async () => {
      await write({ ...manifest, origin: 'x'.repeat(500) });
      assert.equal((await importer().plan(req)).detail, `image ${manifest.uuid}: its "origin" "${'x'.repeat(79)} is not a uuid`);
    });

    it('an empty one is not a uuid either: a conflict before the import IMGAPI would refuse', async () => {
      await write({ ...manifest, origin: '' });
      const problem = `image ${manifest.uuid}: its "origin" "" is not a uuid`;
      assert.deepEqual(await importer().plan(req), { uuid: manifest.uuid, action: 'conflict', detail: problem, calls: [] });
      assert.equal((await refused(importer().apply(req))).message, problem);
      assert.deepEqual(writes(server), []);
    });

    it('in another channel only: imported with a warning that imgadm cannot install it from ours yet', async () => {
      const originBytes = randomBytes(50);
      const origin: ImageManifest = { ...manifest, uuid: randomUUID(), name: 'origin', files: [{ sha1: sha1(originBytes), size: 50, compression: 'gzip' }] };
      await server.addImage(origin, originBytes, { channels: ['experimental', 'staging'] });
      await write({ ...manifest, origin: origin.uuid });
      const { value: r, lines } = await logged(() => importer().apply(req));
      assert.equal(r.action, 'imported');
      assert.ok(lines.some((l) => l.includes(`origin image ${origin.uuid} is not in channel dev (only experimental, staging)`)), lines.join(''));
    });

    it('no check when the image is already imported: the origin only matters for the import', async () => {
      await write({ ...manifest, origin: randomUUID() });
      await server.addImage({ ...manifest, origin: undefined }, undefined, { channels: ['dev'], state: 'unactivated' });
      assert.equal((await importer().plan(req)).action, 'finish');
      assert.equal((await importer().apply(req)).action, 'finished');
    });
  });

  describe('failures', () => {
    it('a transient 503 on a write: read again, then the same call once more', async () => {
      server.addFault({ kind: 'status', status: 503, route: 'UpdateImage', action: 'import' });
      const r = await importer().apply(req);
      assert.equal(r.action, 'imported');
      assert.deepEqual(writes(server), ['AdminImportImage', 'AdminImportImage', 'AddImageFile', 'ActivateImage']);
    });

    it('a lost answer whose write went through: seen on the fresh read, not sent again', async () => {
      server.addFault({ kind: 'lost-answer', route: 'UpdateImage', action: 'activate' });
      const { value: r, lines } = await logged(() => importer().apply(req));
      assert.equal(r.action, 'imported');
      assert.deepEqual(writes(server), ['AdminImportImage', 'AddImageFile', 'ActivateImage']);
      assert.equal(r.calls?.length, 3);
      assert.ok(lines.some((l) => l.includes(`activated ${manifest.uuid} (its answer was lost)`)));
    });

    it('a 503 every time: stops after the policy\'s attempts, with a hint that a rerun continues', async () => {
      server.addFault({ kind: 'status', status: 503, route: 'UpdateImage', action: 'import', times: Infinity });
      const err = await refused(importer({ attempts: 2 }).apply(req));
      assert.equal(err.hint, 'rerun to continue: the import resumes where it stopped');
      assert.deepEqual(writes(server), ['AdminImportImage', 'AdminImportImage']);
    });

    it('a refusal (4xx) is not retried, and says a rerun would fail the same way', async () => {
      server.addFault({ kind: 'status', status: 409, route: 'UpdateImage', action: 'import', times: Infinity });
      const err = await refused(importer().apply(req));
      assert.equal(err.hint, 'IMGAPI refused it: a rerun would fail the same way');
      assert.deepEqual(writes(server), ['AdminImportImage']);
    });

    it('"the image moved on" (ImageUuidAlreadyExists) is a fresh look, not a failure', async () => {
      // Another publisher imported it between our read and our import.
      server.beforeHandle = async (ctx) => {
        if (ctx.query.action === 'import' && !served()) {
          await server.addImage(manifest, undefined, { channels: ['dev'], state: 'unactivated' });
          throw new RestError(409, 'ImageUuidAlreadyExists', `image uuid "${manifest.uuid}" already exists`);
        }
      };
      const r = await importer().apply(req);
      assert.equal(r.action, 'imported');
      assert.deepEqual(writes(server), ['AdminImportImage', 'AddImageFile', 'ActivateImage']);
    });
  });
  describe('planning', () => {
    it('an image file that cannot be read is an error, not a conflict to report', async () => {
      await rm(req.imageFile);
      await assert.rejects(importer().plan(req), (e: NodeJS.ErrnoException) => !(e instanceof PublishError) && e.code === 'ENOENT');
    });

    it('disabled in our channel with the same file: skipped; the plan and the result say disabled', async () => {
      await server.addImage(manifest, data, { channels: ['dev'], state: 'disabled' });
      assert.deepEqual(await importer().plan(req), { uuid: manifest.uuid, action: 'skip', detail: `already disabled in channel dev with the same file (sha1 ${sha1(data)})`, calls: [] });
      assert.deepEqual(await importer().apply(req), { uuid: manifest.uuid, action: 'already there', detail: `disabled in channel dev ${want()}`, calls: [] });
      assert.deepEqual(writes(server), []);
    });

    it('unactivated in another channel: finished, not just added to the channel', async () => {
      await server.addImage(manifest, undefined, { channels: ['experimental'], state: 'unactivated' });
      const plan = await importer().plan(req);
      assert.equal(plan.action, 'finish');
      assert.equal(plan.detail, 'unactivated in experimental: channel-add, add-file, activate');
      assert.equal(plan.calls?.length, 3);
      const r = await importer().apply(req);
      assert.equal(r.action, 'finished');
      assert.equal(r.detail, `found unactivated from an earlier run; channel-add, add-file, activate: active in channel dev ${want()}`);
      assert.deepEqual(writes(server), ['ChannelAddImage', 'AddImageFile', 'ActivateImage']);
    });

    it('unactivated with its file: only activated, and that is finishing, not a channel-add', async () => {
      await server.addImage(manifest, data, { channels: ['dev'], state: 'unactivated' });
      assert.equal((await importer().plan(req)).action, 'finish');
      const r = await importer().apply(req);
      assert.equal(r.action, 'finished');
      assert.equal(r.detail, `found unactivated from an earlier run; activate: active in channel dev ${want()}`);
      assert.deepEqual(writes(server), ['ActivateImage']);
    });

    it('a server without channels: the plan says so, and no channel is added', async () => {
      await server.close();
      server = await startImgapiServer({ channels: null });
      admin = mountAdminApi(server, { authkeys: { mg: [key.pubLine] } });
      await server.addImage(manifest, undefined, { state: 'unactivated' });
      const plan = await importer().plan(req);
      assert.equal(plan.detail, 'unactivated in no channel: add-file, activate');
      assert.equal((await importer().apply(req)).action, 'finished');
      assert.deepEqual(writes(server), ['AddImageFile', 'ActivateImage']);
    });
  });

  describe('applying', () => {
    it('manifest keys AdminImportImage refuses are left out of the import, with a warning naming them', async () => {
      await write({ ...manifest, build_host: 'jenkins-07', build_note: 'nightly' });
      const { value: r, lines } = await logged(() => importer().apply(req));
      assert.equal(r.action, 'imported');
      assert.ok(lines.some((l) => l.includes(`${req.manifestFile}: leaving out build_host, build_note (AdminImportImage does not accept them)`)), lines.join(''));
      assert.equal('build_host' in admin.importBodies[0], false);
      assert.equal('build_note' in admin.importBodies[0], false);
      // Each call done is said on the log, in order.
      assert.deepEqual(
        lines.filter((l) => l.includes('updates IMGAPI: ')).map((l) => l.slice(l.indexOf('updates IMGAPI: ')).trim().split(' ').slice(2, 3).join(' ')),
        ['imported', 'added', 'activated'],
      );
    });

    it('a manifest with nothing to leave out: no such warning', async () => {
      const { lines } = await logged(() => importer().apply(req));
      assert.ok(!lines.some((l) => l.includes('leaving out')), lines.join(''));
    });

    it('a server whose state keeps changing under us: stops after 16 calls, saying it does not settle', async () => {
      // Something takes the file away again before each activate (NoActivationNoFile: "the image moved on").
      server.beforeHandle = (ctx) => {
        const image = served();
        if (ctx.query.action === 'activate' && image) image.files = [];
      };
      const err = await refused(importer().apply(req));
      assert.equal(err.message, `importing ${manifest.uuid} into ${server.url} does not settle (server state keeps changing)`);
      assert.equal(writes(server).length, 16);
      assert.deepEqual(writes(server).slice(0, 5), ['AdminImportImage', 'AddImageFile', 'ActivateImage', 'AddImageFile', 'ActivateImage']);
    });

    it('each call has the whole retry budget: a 503 on the import and another on the file, with 2 attempts, still import', async () => {
      server.addFault({ kind: 'status', status: 503, route: 'UpdateImage', action: 'import' });
      server.addFault({ kind: 'status', status: 503, route: 'AddImageFile' });
      assert.equal((await importer({ attempts: 2 }).apply(req)).action, 'imported');
      assert.deepEqual(writes(server), ['AdminImportImage', 'AdminImportImage', 'AddImageFile', 'AddImageFile', 'ActivateImage']);
    });

    it('a call whose lost answer the fresh read shows as done gives the next call the whole budget', async () => {
      server.addFault({ kind: 'lost-answer', route: 'UpdateImage', action: 'import' });
      server.addFault({ kind: 'status', status: 503, route: 'AddImageFile' });
      const r = await importer({ attempts: 2 }).apply(req);
      assert.equal(r.action, 'imported');
      assert.equal(r.detail, `import, add-file, activate: active in channel dev ${want()}`);
      assert.deepEqual(writes(server), ['AdminImportImage', 'AddImageFile', 'AddImageFile', 'ActivateImage']);
    });

    it('another publisher activated it between our read and our activate (ImageAlreadyActivated): done, not a failure', async () => {
      server.beforeHandle = (ctx) => {
        const image = served();
        if (ctx.query.action === 'activate' && image && !image.raw.activated) {
          Object.assign(image.raw, { activated: true, state: 'active' });
          throw new RestError(422, 'ImageAlreadyActivated', `image "${manifest.uuid}" is already activated`);
        }
      };
      const r = await importer().apply(req);
      assert.equal(r.action, 'imported');
      assert.equal(r.detail, `import, add-file, activate: active in channel dev ${want()}`);
    });

    it('another publisher added the file and activated it before our upload (ImageFilesImmutable): done, no second file', async () => {
      server.beforeHandle = async (ctx) => {
        if (ctx.req.method === 'PUT' && !served()?.files.length) {
          await server.addImage(manifest, data, { channels: ['dev'] });
          throw new RestError(422, 'ImageFilesImmutable', `cannot modify files on activated image ${manifest.uuid}`);
        }
      };
      const r = await importer().apply(req);
      assert.equal(r.action, 'imported');
      assert.deepEqual(writes(server), ['AdminImportImage', 'AddImageFile']);
    });

    it('the image deleted between our read and our write (ResourceNotFound): imported again from the start', async () => {
      let deleted = false;
      server.beforeHandle = (ctx) => {
        if (ctx.req.method === 'PUT' && !deleted) {
          deleted = true;
          server.store.delete(manifest.uuid);
        }
      };
      const r = await importer().apply(req);
      assert.equal(r.action, 'imported');
      assert.deepEqual(writes(server), ['AdminImportImage', 'AddImageFile', 'AdminImportImage', 'AddImageFile', 'ActivateImage']);
    });

    it('"the image moved on" is looked at again at once, without the backoff', async () => {
      server.beforeHandle = async (ctx) => {
        if (ctx.query.action === 'import' && !served()) {
          await server.addImage(manifest, undefined, { channels: ['dev'], state: 'unactivated' });
          throw new RestError(409, 'ImageUuidAlreadyExists', `image uuid "${manifest.uuid}" already exists`);
        }
      };
      const t0 = Date.now();
      assert.equal((await importer({ firstDelayMs: 4_000 }).apply(req)).action, 'imported');
      assert.ok(Date.now() - t0 < 3_000, `took ${Date.now() - t0} ms`);
    });

    it('a 503 waits the backoff before the fresh read and the next try', async () => {
      server.addFault({ kind: 'status', status: 503, route: 'UpdateImage', action: 'import' });
      const t0 = Date.now();
      assert.equal((await importer({ firstDelayMs: 400 }).apply(req)).action, 'imported');
      assert.ok(Date.now() - t0 >= 390, `took ${Date.now() - t0} ms`);
      assert.deepEqual(writes(server), ['AdminImportImage', 'AdminImportImage', 'AddImageFile', 'ActivateImage']);
    });

    it('an HTML page for an answer: stops with the client\'s own hint (check the URL and proxies), not retried', async () => {
      server.addFault({ kind: 'html', route: 'UpdateImage', action: 'import' });
      const err = await refused(importer().apply(req));
      assert.match(err.message, /got an HTML page \(HTTP 200\), not JSON/);
      assert.equal(err.hint, 'check the --source URL and any http(s)_proxy settings');
      assert.deepEqual(writes(server), ['AdminImportImage']);
    });

    it('a 503 on the read before any write: a PublishError that a rerun continues', async () => {
      server.addFault({ kind: 'status', status: 503, route: 'GetImage' });
      const err = await refused(importer().apply(req));
      assert.match(err.message, /ServiceUnavailable|503/);
      assert.equal(err.hint, 'rerun to continue: the import resumes where it stopped');
      assert.deepEqual(writes(server), []);
    });
  });

  describe('the file from the presigned Manta URL (no --upload-file)', () => {
    beforeEach(() => {
      req.imageUrl = () => Promise.resolve(mantaUrl);
    });

    it('IMGAPI fetches the file itself: import, AddImageFileFromUrl, activate', async () => {
      const plan = await importer({ uploadFile: false }).plan(req);
      const q = `?channel=dev&compression=gzip&sha1=${sha1(data)}`;
      assert.deepEqual(plan.calls, [
        `POST ${server.url}/images/${manifest.uuid}${q.replace(/&.*/, '')}&action=import (manifest demo 1.0.0)`,
        `POST ${server.url}/images/${manifest.uuid}/file/from-url${q} (file_url: presigned Manta URL of ${req.imagePath})`,
        `POST ${server.url}/images/${manifest.uuid}?channel=dev&action=activate`,
      ]);
      const r = await importer({ uploadFile: false }).apply(req);
      assert.equal(r.action, 'imported');
      assert.deepEqual(writes(server), ['AdminImportImage', 'AddImageFileFromUrl', 'ActivateImage']);
      assert.deepEqual(admin.fetches.map((f) => f.status), [200]);
      assert.deepEqual(served()?.files[0].data, data);
    });

    it('a proxy gives up (504 page) while IMGAPI still downloads: we wait for the file instead of asking again', async () => {
      server.addFault({ kind: 'html', status: 504, route: 'AddImageFileFromUrl' });
      let later = false;
      server.beforeHandle = (ctx) => {
        if (ctx.fault?.kind === 'html' && !later) {
          later = true;
          // IMGAPI stores the file a little after the proxy's 504.
          setTimeout(() => void server.addImage(manifest, data, { channels: ['dev'], state: 'unactivated' }), 300);
        }
      };
      const { value: r, lines } = await logged(() => importer({ uploadFile: false, pollMs: 20, fileWaitMs: 3_000 }).apply(req));
      assert.equal(r.action, 'imported');
      assert.deepEqual(writes(server), ['AdminImportImage', 'AddImageFileFromUrl', 'ActivateImage']);
      assert.ok(lines.some((l) => l.includes(`waiting for the file of ${manifest.uuid}`)), lines.join(''));
      assert.ok(lines.some((l) => l.includes(`added the file of ${manifest.uuid} from ${req.imagePath} in Manta (its answer was lost)`)), lines.join(''));
    });

    it('our own timeout while IMGAPI still downloads: the same wait', async () => {
      let slow = true;
      server.beforeHandle = async (ctx) => {
        if (ctx.url.pathname.endsWith('/from-url') && slow) {
          slow = false;
          // IMGAPI stores the file after our client gave up waiting for the answer (it cannot answer a closed connection).
          setTimeout(() => void server.addImage(manifest, data, { channels: ['dev'], state: 'unactivated' }), 400);
          await sleep(600);
          throw new RestError(500, 'InternalError', 'the client is gone');
        }
      };
      const r = await importer({ uploadFile: false, pollMs: 20, fileWaitMs: 3_000, fileTimeoutMs: 200 }).apply(req);
      assert.equal(r.action, 'imported');
      assert.deepEqual(writes(server), ['AdminImportImage', 'AddImageFileFromUrl', 'ActivateImage']);
    });

    it('the image deleted while we wait for its file: imported again from the start', async () => {
      server.addFault({ kind: 'html', status: 504, route: 'AddImageFileFromUrl' });
      server.beforeHandle = (ctx) => {
        if (ctx.fault?.kind === 'html') setTimeout(() => server.store.delete(manifest.uuid), 100);
      };
      const r = await importer({ uploadFile: false, pollMs: 20, fileWaitMs: 3_000 }).apply(req);
      assert.equal(r.action, 'imported');
      assert.deepEqual(writes(server), ['AdminImportImage', 'AddImageFileFromUrl', 'AdminImportImage', 'AddImageFileFromUrl', 'ActivateImage']);
    });

    it('the file does not come within the wait: asked for again', async () => {
      server.addFault({ kind: 'html', status: 504, route: 'AddImageFileFromUrl' });
      const { value: r, lines } = await logged(() => importer({ uploadFile: false, pollMs: 20, fileWaitMs: 150 }).apply(req));
      assert.equal(r.action, 'imported');
      assert.deepEqual(writes(server), ['AdminImportImage', 'AddImageFileFromUrl', 'AddImageFileFromUrl', 'ActivateImage']);
      assert.ok(lines.filter((l) => l.includes('waiting for the file of')).length >= 2, lines.join(''));
    });

    it('by default the wait is 20 minutes (a fake clock that each wait line moves 5 minutes: 4 waits)', async () => {
      server.addFault({ kind: 'html', status: 504, route: 'AddImageFileFromUrl' });
      const clock = sinon.useFakeTimers({ toFake: ['Date'], now: Date.now() });
      const info = log.info.bind(log) as (m: string) => unknown;
      let waits = 0;
      sinon.stub(log, 'info').callsFake(((m: string) => {
        if (m.includes('waiting for the file of')) {
          waits++;
          clock.tick(5 * 60_000);
        }
        return info(m);
      }) as never);
      try {
        const r = await importer({ uploadFile: false, pollMs: 1 }).apply(req);
        assert.equal(r.action, 'imported');
      } finally {
        sinon.restore();
      }
      assert.equal(waits, 4);
      assert.deepEqual(writes(server), ['AdminImportImage', 'AddImageFileFromUrl', 'AddImageFileFromUrl', 'ActivateImage']);
    });

    it('a 504 with an IMGAPI error body is IMGAPI\'s own answer, not a proxy giving up: no wait', async () => {
      server.addFault({ kind: 'status', status: 504, route: 'AddImageFileFromUrl' });
      const { value: r, lines } = await logged(() => importer({ uploadFile: false, pollMs: 20, fileWaitMs: 3_000 }).apply(req));
      assert.equal(r.action, 'imported');
      assert.deepEqual(writes(server), ['AdminImportImage', 'AddImageFileFromUrl', 'AddImageFileFromUrl', 'ActivateImage']);
      assert.ok(!lines.some((l) => l.includes('waiting for the file of')), lines.join(''));
    });

    it('with --upload-file a 504 page is not waited for: the upload is sent again', async () => {
      req.imageUrl = () => Promise.reject(new Error('no presigned URL with --upload-file'));
      server.addFault({ kind: 'html', status: 504, route: 'AddImageFile' });
      const { value: r, lines } = await logged(() => importer({ pollMs: 20, fileWaitMs: 3_000 }).apply(req));
      assert.equal(r.action, 'imported');
      assert.deepEqual(writes(server), ['AdminImportImage', 'AddImageFile', 'AddImageFile', 'ActivateImage']);
      assert.ok(!lines.some((l) => l.includes('waiting for the file of')), lines.join(''));
    });

    it('Manta answering IMGAPI with a 503: nothing was stored, so it is asked for again', async () => {
      mantaAnswers = [503];
      const r = await importer({ uploadFile: false }).apply(req);
      assert.equal(r.action, 'imported');
      assert.deepEqual(writes(server), ['AdminImportImage', 'AddImageFileFromUrl', 'AddImageFileFromUrl', 'ActivateImage']);
      assert.deepEqual(admin.fetches.map((f) => f.status), [503, 200]);
    });

    it('Manta answering IMGAPI with a 404: stops, with the hint that IMGAPI fetches from Manta itself', async () => {
      mantaAnswers = [404];
      const err = await refused(importer({ uploadFile: false }).apply(req));
      assert.match(err.message, /HTTP 404 error attempting to download image/);
      assert.equal(err.hint, 'IMGAPI fetches the image from Manta itself (https, a certificate it trusts); check Manta is reachable from it, or use --upload-file');
      assert.deepEqual(writes(server), ['AdminImportImage', 'AddImageFileFromUrl']);
    });

    it('a file_url IMGAPI refuses: the same hint, not retried', async () => {
      req.imageUrl = () => Promise.resolve('ftp://manta.example/image.zfs.gz');
      const err = await refused(importer({ uploadFile: false }).apply(req));
      assert.equal(err.hint, 'IMGAPI fetches the image from Manta itself (https, a certificate it trusts); check Manta is reachable from it, or use --upload-file');
      assert.deepEqual(writes(server), ['AdminImportImage', 'AddImageFileFromUrl']);
      assert.deepEqual(admin.fetches, []);
    });

    it('IMGAPI\'s record of the file must be ours: another size stops before the activate', async () => {
      // The size we were told differs from the file's (the sha1 IMGAPI checks is the file's).
      const size = data.length + 1;
      await write({ ...manifest, files: [{ sha1: sha1(data), size, compression: 'gzip' }] });
      Object.assign(req, { sha1: sha1(data), size });
      const err = await refused(importer({ uploadFile: false }).apply(req));
      assert.equal(err.message, `IMGAPI stored a file for ${manifest.uuid} with sha1 ${sha1(data)}, ${data.length} bytes; expected sha1 ${sha1(data)}, ${size} bytes`);
      assert.deepEqual(writes(server), ['AdminImportImage', 'AddImageFileFromUrl']);
    });
  });
});
