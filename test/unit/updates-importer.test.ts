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
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PublishError } from '../../src/core/errors.js';
import { keyObjectSigner } from '../../src/http/signature.js';
import { ImgapiAdminClient } from '../../src/imgapi/admin.js';
import type { ImageManifest } from '../../src/image/manifest/types.js';
import type { ImportRequest } from '../../src/publish/importer.js';
import { UpdatesImporter } from '../../src/publish/updates.js';
import { captureLogs } from '../helpers/logs.js';
import { mountAdminApi, writes } from '../servers/imgapi-admin.js';
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

  const importer = (o: { attempts?: number } = {}) =>
    new UpdatesImporter({
      client: new ImgapiAdminClient({ url: server.url, user: 'mg', signer: keyObjectSigner(createPrivateKey(key.pem), 'test'), channel: 'dev', retry: { attempts: 1 } }),
      uploadFile: true,
      retry: { ...FAST, attempts: o.attempts ?? FAST.attempts },
    });
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

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'bi-updates-'));
    server = await startImgapiServer();
    mountAdminApi(server, { authkeys: { mg: [key.pubLine] } });
    data = randomBytes(1500);
    manifest = {
      v: 2,
      uuid: randomUUID(),
      owner: '00000000-0000-0000-0000-000000000000',
      name: 'demo',
      version: '1.0.0',
      type: 'zone-dataset',
      os: 'smartos',
      published_at: '2024-05-01T12:00:00.000Z',
      files: [{ sha1: sha1(data), size: data.length, compression: 'gzip' }],
    };
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

  it('in another channel: only added to ours', async () => {
    await server.addImage(manifest, data, { channels: ['experimental'] });
    const plan = await importer().plan(req);
    assert.equal(plan.action, 'add-channel');
    assert.equal(plan.detail, 'active in experimental: channel-add');
    const r = await importer().apply(req);
    assert.equal(r.action, 'channel-added');
    assert.equal(r.detail, `was active in experimental; now active in channel dev ${want()}`);
    assert.deepEqual(writes(server), ['ChannelAddImage']);
    assert.deepEqual(served()?.raw.channels, ['experimental', 'dev']);
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

    it('in another channel only: imported with a warning that imgadm cannot install it from ours yet', async () => {
      const originBytes = randomBytes(50);
      const origin: ImageManifest = { ...manifest, uuid: randomUUID(), name: 'origin', files: [{ sha1: sha1(originBytes), size: 50, compression: 'gzip' }] };
      await server.addImage(origin, originBytes, { channels: ['experimental'] });
      await write({ ...manifest, origin: origin.uuid });
      const logs = captureLogs();
      try {
        assert.equal((await importer().apply(req)).action, 'imported');
      } finally {
        logs.stop();
      }
      assert.ok(logs.lines.some((l) => l.includes(`origin image ${origin.uuid} is not in channel dev (only experimental)`)), logs.lines.join(''));
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
      const logs = captureLogs();
      let r;
      try {
        r = await importer().apply(req);
      } finally {
        logs.stop();
      }
      assert.equal(r.action, 'imported');
      assert.deepEqual(writes(server), ['AdminImportImage', 'AddImageFile', 'ActivateImage']);
      assert.equal(r.calls?.length, 3);
      assert.ok(logs.lines.some((l) => l.includes(`activated ${manifest.uuid} (its answer was lost)`)));
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
});
