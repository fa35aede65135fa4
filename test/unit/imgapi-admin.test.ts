/**
 * The IMGAPI write side: HTTP Signature as sdc-clients/smartdc-auth make it
 * (a recorded vector and a live comparison), key selection, the test
 * server's write API checked with the official sdc-clients IMGAPI client,
 * ImgapiAdminClient against it (calls, errors as one line, no secrets),
 * and the idempotency table.
 */
import assert from 'node:assert/strict';
import { createHash, createPrivateKey, generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import sinon from 'sinon';
import { KeyError } from '../../src/http/keys.js';
import { keyObjectSigner, md5Fingerprint, parsePublicKeyLine, sha256Fingerprint, type Signer } from '../../src/http/signature.js';
import { ImgapiAdminClient } from '../../src/imgapi/admin.js';
import { checkImgapiKey, defaultIdentity, imgapiAuthHeaders, imgapiSigner } from '../../src/imgapi/auth.js';
import type { ImgapiError } from '../../src/imgapi/client.js';
import { decide, importBody, planSteps, type Want } from '../../src/imgapi/import-state.js';
import type { ImageManifest } from '../../src/image/manifest/types.js';
import { mountAdminApi, opOf, writes, type AdminApi } from '../servers/imgapi-admin.js';
import { startImgapiServer, type ImgapiTestServer } from '../servers/imgapi-server.js';
import { haveBinary, nodeRsaKey, smartdcAuth, sshKeygen, startSshAgent } from '../servers/ssh-keys.js';

const require = createRequire(import.meta.url);

// A throwaway 1024-bit test key; the header below was produced with it by sdc-clients 13.0.6 + smartdc-auth 2.6.0.
const GOLDEN_PEM = `-----BEGIN RSA PRIVATE KEY-----
MIICXAIBAAKBgQCoRQ3biDVEIhhY1OIUZft0rzHZWqbfZvv3zqnwRqcDnO+FcEDE
3sDItLjQHcndvhDACdGSj+kNAFZsvV4jA7BcK4Aro/NDwORGU2Zs1joYcl48vUjr
6gx0L0gNp+j86kHGr826jVze7RzwgukPKWAh1zIyI0wepVsYKjjLBLnIhwIDAQAB
AoGAXQ2i9i5C1qTMNgOz6nfjMMnZlUtOUOjQml+NFrTbk2HsCyzihHxyvAtE0MJI
afm7pZdIb/ZpeKkhIg0uy8o0cj5DFKnX4+L3lqifdLy47cUuJTAnaudaH4/6HJTZ
WAl2BAyJVxwvplubHR1P7BleIXfXa5DlbwkLystFkHT6gWECQQDZt22ed6Dd4w6K
CP+kimQLB8UYcq9Wg/PKcLew7NPtfEPxEzPGoVZ5rGVw9eQDIZDWs6c2ELq8uhR8
FSNzPBcvAkEAxdvD4LERRWQDMHcAW0BHkQcj5TmAWnrnl8ISAYKlM+GvFiqg9Rth
8f7Ms8xr8ScNgXEOKqoT6rMnp6NhiSKOKQJBAIrkIvFyXdTP8kmLHhOJGfOTfGBx
YXwu58shB36+RyD9Ipbb6i7wZCtxGLHsnA6HTlA6AhVSrN6TU1gpYBk2n48CQAN0
8Honfc7BjZC2M4pkmBt/jW/+zjBGf29WU6w1FR/P7JgtjHxbyx1IP1lQ0/31mbXO
PNof+JMcKDA0mYqk0OkCQCfdJiP1V2N5iIcs6+Cnz+itWZiBKzDkZZfe5YXc8RM+
uPNFByS8CY7waqBZnLJvEFMuv9E/Lx8+opukq18uZ30=
-----END RSA PRIVATE KEY-----
`;
const GOLDEN_DATE = 'Tue, 14 Nov 2023 22:13:20 GMT';
const GOLDEN_AUTHZ =
  'Signature keyId="mg",algorithm="rsa-sha256",signature="eUrEyW7g2z6hEIKaHoWGsegdcVPBxeVB3df3lFvvmZDYG9oXfPE8lRhv5fShWqcOfWcVk2M8rRmAK+Ov9A2gvFi/' +
  'vcLdnrSM0wTaVBqM1E/oZwSAFS3GSpRozbK913BowKj5YepPVF0g97t3yL+QFmjDWeQ4BKHfneK4c+OQPik="';

type Cb<T> = (err: (Error & { restCode?: string; statusCode?: number; body?: { errors?: unknown[]; code?: string } }) | null, value?: T) => void;
interface SdcImgapi {
  _getAuthHeaders(cb: Cb<Record<string, string>>): void;
  adminImportImage(data: Record<string, unknown>, opts: { channel?: string }, cb: Cb<ImageManifest>): void;
  addImageFile(opts: { uuid: string; file: string; compression: string; sha1?: string; channel?: string }, cb: Cb<ImageManifest>): void;
  addImageFileFromUrl(opts: { uuid: string; file_url: string; compression?: string; sha1?: string }, cb: Cb<ImageManifest>): void;
  activateImage(uuid: string, account: undefined, opts: { channel?: string }, cb: Cb<ImageManifest>): void;
  channelAddImage(opts: { uuid: string; channel: string }, cb: Cb<ImageManifest>): void;
  ping(cb: Cb<{ user?: string }>): void;
  close(): void;
}
const IMGAPI = require('sdc-clients').IMGAPI as new (o: Record<string, unknown>) => SdcImgapi;
const call = <T>(fn: (cb: Cb<T>) => void): Promise<T> => new Promise((resolve, reject) => fn((err, v) => (err ? reject(err) : resolve(v as T))));

function pemSigner(pem: string): Signer {
  return keyObjectSigner(createPrivateKey(pem), 'test key');
}

function manifest(o: Partial<ImageManifest> = {}, file?: Buffer): ImageManifest {
  return {
    v: 2,
    uuid: randomUUID(),
    owner: '00000000-0000-0000-0000-000000000000',
    name: 'demo',
    version: '1.0.0',
    type: 'zone-dataset',
    os: 'smartos',
    published_at: '2024-05-01T12:00:00.000Z',
    requirements: { min_platform: { '7.0': '20240101T000000Z' } },
    tags: {},
    ...(file ? { files: [{ sha1: createHash('sha1').update(file).digest('hex'), size: file.length, compression: 'gzip' as const }] } : {}),
    ...o,
  };
}

describe('IMGAPI HTTP Signature (§3)', () => {
  it('recorded vector: our Authorization for a fixed key and date is what sdc-clients + smartdc-auth sent', async () => {
    const h = await imgapiAuthHeaders(pemSigner(GOLDEN_PEM), 'mg', GOLDEN_DATE);
    assert.deepEqual(h, { date: GOLDEN_DATE, authorization: GOLDEN_AUTHZ });
    // keyId is the user, no headers= param, no space after a comma (IMGAPI's 0.10 parser refuses one).
    assert.match(h.authorization, /^Signature keyId="mg",algorithm="rsa-sha256",signature="[A-Za-z0-9+/=]+"$/);
  });

  it('live: equal to sdc-clients._getAuthHeaders with smartdc-auth for a fresh key at a fixed time', async () => {
    const key = nodeRsaKey(2048);
    const clock = sinon.useFakeTimers({ now: Date.parse('2024-05-01T12:00:00Z'), toFake: ['Date'] });
    try {
      const sdc = new IMGAPI({ url: 'http://127.0.0.1:1', user: 'builder', sign: smartdcAuth.privateKeySigner({ key: key.pem, user: 'builder' }), agent: false });
      const theirs = await call<Record<string, string>>((cb) => sdc._getAuthHeaders(cb));
      sdc.close();
      const ours = await imgapiAuthHeaders(pemSigner(key.pem), 'builder');
      assert.deepEqual(ours, { date: theirs.date, authorization: theirs.authorization });
    } finally {
      clock.restore();
    }
  });

  it('only RSA keys: ECDSA and Ed25519 are refused before any request', () => {
    for (const type of ['ed25519', 'ec'] as const) {
      const { privateKey } = type === 'ec' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : generateKeyPairSync('ed25519');
      const s = keyObjectSigner(privateKey, `${type} key`);
      assert.throws(() => checkImgapiKey(s), (e: KeyError) => e instanceof KeyError && /IMGAPI only accepts RSA keys/.test(e.message) && e.message.includes(s.fingerprint));
    }
    assert.doesNotThrow(() => checkImgapiKey(pemSigner(GOLDEN_PEM)));
  });

  describe('UPDATES_IMGADM_IDENTITY', () => {
    let dir: string;
    let key: ReturnType<typeof nodeRsaKey>;
    before(async () => {
      dir = await mkdtemp(join(tmpdir(), 'bi-imgapi-id-'));
      key = nodeRsaKey();
      await mkdir(join(dir, 'ssh'));
      await writeFile(join(dir, 'ssh', 'id_rsa'), key.pem, { mode: 0o600 });
      await writeFile(join(dir, 'ssh', 'id_rsa.pub'), key.pubLine);
      await writeFile(join(dir, 'other.pem'), key.pem, { mode: 0o600 });
    });
    after(() => rm(dir, { recursive: true, force: true }));
    const blob = (): Buffer => parsePublicKeyLine(key.pubLine).blob;

    it('a key path, an MD5 or a SHA256 fingerprint, or by default ~/.ssh/automation.id_rsa then ~/.ssh/id_rsa', async () => {
      const sshDir = join(dir, 'ssh');
      const fp = md5Fingerprint(blob());
      assert.equal((await imgapiSigner({ identity: join(dir, 'other.pem'), sshDir })).fingerprint, fp);
      assert.equal((await imgapiSigner({ identity: fp, sshDir })).fingerprint, fp);
      assert.equal((await imgapiSigner({ identity: `MD5:${fp}`, sshDir })).fingerprint, fp);
      assert.equal((await imgapiSigner({ identity: sha256Fingerprint(blob()), sshDir })).fingerprint, fp);
      assert.equal(defaultIdentity(sshDir), join(sshDir, 'id_rsa'));
      assert.equal((await imgapiSigner({ sshDir })).source, join(sshDir, 'id_rsa'));
      await writeFile(join(sshDir, 'automation.id_rsa'), nodeRsaKey().pem, { mode: 0o600 });
      assert.equal(defaultIdentity(sshDir), join(sshDir, 'automation.id_rsa'));
      await rm(join(sshDir, 'automation.id_rsa'));
    });

    (haveBinary('ssh-agent') && haveBinary('ssh-keygen') ? it : it.skip)('a passphrase-protected key file is used through the ssh-agent; IMGAPI verifies its signature', async () => {
      const k = await sshKeygen(dir, 'locked', 'rsa', { bits: 2048 });
      const agent = await startSshAgent(dir);
      const server = await startImgapiServer();
      mountAdminApi(server, { authkeys: { mg: [k.pubLine] } });
      try {
        await agent.add(k.path);
        // Locked only after ssh-add (which would prompt for the passphrase).
        await execa('ssh-keygen', ['-q', '-p', '-P', '', '-N', 'secret-pass', '-f', k.path], { stdin: 'ignore' });
        await assert.rejects(imgapiSigner({ identity: k.path, sshDir: join(dir, 'ssh') }), /protected by a passphrase; add it to the ssh-agent/);
        const s = await imgapiSigner({ identity: k.path, sshDir: join(dir, 'ssh'), agentSocket: agent.socket });
        assert.match(s.source, /^ssh-agent/);
        const r = await fetch(`${server.url}/ping`, { headers: await imgapiAuthHeaders(s, 'mg') });
        assert.equal(((await r.json()) as { user?: string }).user, 'mg');
      } finally {
        await server.close();
        await agent.stop();
      }
    });

    it('no key, an unreadable path, an unknown fingerprint: one clear KeyError', async () => {
      await assert.rejects(imgapiSigner({ sshDir: join(dir, 'empty') }), (e: KeyError) => e instanceof KeyError && /UPDATES_IMGADM_IDENTITY is not set/.test(e.message));
      await assert.rejects(imgapiSigner({ identity: join(dir, 'nope'), sshDir: join(dir, 'ssh') }), /nope: no such file \(it is neither a key fingerprint nor a readable key file\)/);
      await assert.rejects(imgapiSigner({ identity: 'MD5:' + '00:'.repeat(15) + '00', sshDir: join(dir, 'ssh') }), /could not be located/);
    });
  });
});

describe('test IMGAPI write side (checked with sdc-clients)', function () {
  this.timeout(30_000);
  let server: ImgapiTestServer;
  let admin: AdminApi;
  let files: http.Server;
  let filesUrl: string;
  let dir: string;
  const key = nodeRsaKey();
  const other = nodeRsaKey();
  const data = randomBytes(200_000);
  const sdcs: SdcImgapi[] = [];
  const sdc = (o: Record<string, unknown> = {}): SdcImgapi => {
    const c = new IMGAPI({ url: server.url, agent: false, user: 'mg', sign: smartdcAuth.privateKeySigner({ key: key.pem, user: 'mg' }), ...o });
    sdcs.push(c);
    return c;
  };
  const ours = (o: { pem?: string; user?: string } = {}): ImgapiAdminClient =>
    new ImgapiAdminClient({ url: server.url, user: o.user ?? 'mg', signer: pemSigner(o.pem ?? key.pem), channel: 'dev', retry: { attempts: 1 } });

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'bi-imgapi-admin-'));
    await writeFile(join(dir, 'image.zfs.gz'), data);
    server = await startImgapiServer();
    admin = mountAdminApi(server, { authkeys: { mg: [other.pubLine, key.pubLine] }, allowHttpFileUrl: true });
    files = http.createServer((req, res) => {
      if (req.url?.startsWith('/image.zfs.gz')) return void res.writeHead(200, { 'content-length': data.length }).end(data);
      res.writeHead(404).end();
    });
    await new Promise<void>((r) => files.listen(0, '127.0.0.1', r));
    filesUrl = `http://127.0.0.1:${(files.address() as AddressInfo).port}`;
  });
  after(async () => {
    for (const c of sdcs) c.close();
    await server.close();
    await new Promise((r) => files.close(r));
    await rm(dir, { recursive: true, force: true });
  });

  it('accepts sdc-clients\' signed adminImportImage, addImageFile, activateImage, channelAddImage', async () => {
    const m = manifest({}, data);
    const c = sdc({ channel: 'experimental' });
    const imported = await call<ImageManifest>((cb) => c.adminImportImage(m, {}, cb));
    assert.equal(imported.state, 'unactivated');
    assert.deepEqual(imported.channels, ['experimental']);
    assert.equal(imported.published_at, m.published_at);
    assert.deepEqual(imported.files, []);
    const withFile = await call<ImageManifest>((cb) => c.addImageFile({ uuid: m.uuid, file: join(dir, 'image.zfs.gz'), compression: 'gzip', sha1: m.files![0].sha1 }, cb));
    assert.deepEqual(withFile.files, [{ sha1: m.files![0].sha1, size: data.length, compression: 'gzip' }]);
    const active = await call<ImageManifest>((cb) => c.activateImage(m.uuid, undefined, {}, cb));
    assert.equal(active.state, 'active');
    const added = await call<ImageManifest>((cb) => c.channelAddImage({ uuid: m.uuid, channel: 'dev' }, cb));
    assert.deepEqual(added.channels, ['experimental', 'dev']);
    assert.equal((await call<{ user?: string }>((cb) => c.ping(cb))).user, 'mg');
    assert.deepEqual(writes(server).slice(-4), ['AdminImportImage', 'AddImageFile', 'ActivateImage', 'ChannelAddImage']);
    // The store has what GetImageFile serves: the same bytes.
    assert.deepEqual(server.store.get(m.uuid)!.files[0].data, data);
  });

  it('addImageFileFromUrl: the server fetches file_url itself (https only on the real one)', async () => {
    const m = manifest({}, data);
    const c = sdc({ channel: 'dev' });
    await call((cb) => c.adminImportImage(m, {}, cb));
    const img = await call<ImageManifest>((cb) => c.addImageFileFromUrl({ uuid: m.uuid, file_url: `${filesUrl}/image.zfs.gz?sig=x`, sha1: m.files![0].sha1 }, cb));
    assert.equal(img.files![0].size, data.length);
    assert.equal(admin.fetches.at(-1)!.status, 200);
    const strict = await startImgapiServer();
    mountAdminApi(strict, { authkeys: { mg: [key.pubLine] } });
    try {
      const s = new IMGAPI({ url: strict.url, agent: false, user: 'mg', sign: smartdcAuth.privateKeySigner({ key: key.pem, user: 'mg' }) });
      sdcs.push(s);
      await call((cb) => s.adminImportImage(m, {}, cb));
      const e = await call((cb) => s.addImageFileFromUrl({ uuid: m.uuid, file_url: `${filesUrl}/image.zfs.gz` }, cb)).catch((err: Error & { restCode?: string }) => err);
      assert.equal((e as { restCode?: string }).restCode, 'InvalidParameter');
      assert.equal((e as Error).message, 'Only URLs using the https: scheme are supported');
    } finally {
      await strict.close();
    }
  });

  it('error codes and bodies sdc-clients sees: 409, 422 with errors[], OriginDoesNotExist, NoActivationNoFile, ImageFilesImmutable, ImageAlreadyActivated, 401', async () => {
    const c = sdc({ channel: 'dev' });
    const fail = (fn: (cb: Cb<unknown>) => void): Promise<Error & { restCode?: string; statusCode?: number; body?: { errors?: unknown[]; code?: string } }> =>
      call(fn).then(
        () => assert.fail('expected an error'),
        (e) => e,
      );
    const m = manifest({}, data);
    await call((cb) => c.adminImportImage(m, {}, cb));
    let e = await fail((cb) => c.adminImportImage(m, {}, cb));
    assert.deepEqual([e.statusCode, e.restCode, e.message], [409, 'ImageUuidAlreadyExists', `image uuid "${m.uuid}" already exists`]);
    e = await fail((cb) => c.activateImage(m.uuid, undefined, {}, cb));
    assert.deepEqual([e.statusCode, e.restCode], [422, 'NoActivationNoFile']);
    const extra = manifest({ activated: true, expires_at: 'x' });
    e = await fail((cb) => c.adminImportImage(extra, {}, cb));
    assert.deepEqual([e.statusCode, e.restCode, e.message], [422, 'InvalidParameter', 'invalid extra parameters: "activated", "expires_at"']);
    assert.deepEqual(e.body?.errors, [{ field: 'activated', code: 'Invalid' }, { field: 'expires_at', code: 'Invalid' }]);
    const { os: _os, ...noOs } = manifest();
    e = await fail((cb) => c.adminImportImage(noOs, {}, cb));
    assert.deepEqual([e.statusCode, e.restCode, e.message], [422, 'ValidationFailed', 'invalid image data: os']);
    e = await fail((cb) => c.adminImportImage(manifest({ public: true }), {}, cb));
    assert.deepEqual([e.restCode, (e.body?.errors?.[0] as { field?: string })?.field], ['ValidationFailed', 'public']);
    e = await fail((cb) => c.adminImportImage(manifest({ origin: randomUUID() }), {}, cb));
    assert.deepEqual([e.statusCode, e.restCode], [422, 'OriginDoesNotExist']);
    e = await fail((cb) => c.adminImportImage(manifest({ nic_driver: 'virtio' }), {}, cb));
    assert.equal(e.restCode, 'InvalidParameter', 'zvol-only fields on a zone image');
    await call((cb) => c.addImageFile({ uuid: m.uuid, file: join(dir, 'image.zfs.gz'), compression: 'gzip' }, cb));
    await call((cb) => c.activateImage(m.uuid, undefined, {}, cb));
    e = await fail((cb) => c.activateImage(m.uuid, undefined, {}, cb));
    assert.deepEqual([e.statusCode, e.restCode, e.message], [422, 'ImageAlreadyActivated', `image "${m.uuid}" is already activated`]);
    e = await fail((cb) => c.addImageFile({ uuid: m.uuid, file: join(dir, 'image.zfs.gz'), compression: 'gzip' }, cb));
    // sdc-clients' raw (file) client puts the code in body.code only.
    assert.deepEqual([e.statusCode, (e.body as { code?: string }).code], [422, 'ImageFilesImmutable']);
    e = await fail((cb) => c.addImageFile({ uuid: randomUUID(), file: join(dir, 'image.zfs.gz'), compression: 'gzip', sha1: 'f'.repeat(40) }, cb));
    assert.equal(e.statusCode, 404);
    const unsigned = new IMGAPI({ url: server.url, agent: false, channel: 'dev' });
    sdcs.push(unsigned);
    e = await fail((cb) => unsigned.adminImportImage(manifest(), {}, cb));
    assert.deepEqual([e.statusCode, e.restCode, e.message], [401, 'UnauthorizedError', 'Unauthorized']);
    e = await fail((cb) => sdc({ channel: 'dev', sign: smartdcAuth.privateKeySigner({ key: nodeRsaKey().pem, user: 'mg' }) }).adminImportImage(manifest(), {}, cb));
    assert.deepEqual([e.statusCode, e.restCode], [401, 'UnauthorizedError']);
  });

  it('verifies signatures as IMGAPI 4.13: strict on writes, passive on GETs, none on GetImageFile; 0.10 parser rules', async () => {
    const m = manifest({}, data);
    await server.addImage(m, data);
    const signed = await imgapiAuthHeaders(pemSigner(key.pem), 'mg');
    const req = async (method: string, path: string, headers: Record<string, string>): Promise<{ status: number; body: string }> => {
      const r = await fetch(server.url + path, { method, headers: { 'accept-version': '~2', ...headers } });
      return { status: r.status, body: await r.text() };
    };
    const msg = (b: string): string => (JSON.parse(b) as { message: string }).message;
    assert.equal((await req('GET', `/images/${m.uuid}`, {})).status, 200);
    assert.equal((await req('GET', `/images/${m.uuid}`, signed)).status, 200);
    const spaced = { date: signed.date, authorization: signed.authorization.replace(/",/g, '", ') };
    let r = await req('GET', `/images/${m.uuid}`, spaced);
    assert.deepEqual([r.status, msg(r.body)], [401, 'bad param format']);
    assert.equal((await req('GET', `/images/${m.uuid}/file`, spaced)).status, 200, 'GetImageFile has no auth middleware');
    r = await req('POST', `/images/${m.uuid}?action=activate`, {});
    assert.deepEqual([r.status, JSON.parse(r.body)], [401, { code: 'UnauthorizedError', message: 'Unauthorized' }]);
    const ed = generateKeyPairSync('ed25519').privateKey;
    const edHeaders = await imgapiAuthHeaders(keyObjectSigner(ed, 'ed'), 'mg');
    r = await req('GET', '/ping', edHeaders);
    assert.equal(r.status, 401);
    assert.match(msg(r.body), /ed25519-sha512 is not supported|is not a supported http-signature signing algorithm/);
    r = await req('GET', '/ping', await imgapiAuthHeaders(pemSigner(key.pem), 'mg', new Date(Date.now() - 600_000).toUTCString()));
    assert.deepEqual([r.status, /clock skew of \d+(\.\d+)?s was greater than 300s/.test(msg(r.body))], [401, true]);
    r = await req('GET', '/ping', await imgapiAuthHeaders(pemSigner(key.pem), 'nobody'));
    assert.deepEqual([r.status, msg(r.body)], [401, 'Unauthorized']);
    r = await req('GET', '/ping', signed);
    assert.equal((JSON.parse(r.body) as { user: string }).user, 'mg');
  });

  it('ImgapiAdminClient: same calls and results as sdc-clients; channel explicit, Accept-Version ~2, signed', async () => {
    const m = manifest({}, data);
    const c = ours();
    const before = server.requests.length;
    assert.equal(await c.findImage(m.uuid), undefined);
    const body = importBody(m).body;
    assert.equal((await c.adminImportImage(body, 'dev')).state, 'unactivated');
    const img = await c.addImageFile(m.uuid, { path: join(dir, 'image.zfs.gz'), size: data.length }, { compression: 'gzip', sha1: m.files![0].sha1, channel: 'dev' });
    assert.equal(img.files![0].sha1, m.files![0].sha1);
    assert.equal((await c.activateImage(m.uuid, 'dev')).state, 'active');
    assert.deepEqual((await c.channelAddImage(m.uuid, 'dev', 'staging')).channels, ['dev', 'staging']);
    const got = (await c.findImage(m.uuid))!;
    const mine = server.requests.slice(before);
    const sdcView = await call<ImageManifest>((cb) => (sdc({ channel: '*' }) as unknown as { getImage(u: string, o: object, cb: Cb<ImageManifest>): void }).getImage(m.uuid, {}, cb));
    assert.deepEqual(got, sdcView);
    assert.deepEqual(mine.map(opOf), ['GetImage', 'AdminImportImage', 'AddImageFile', 'ActivateImage', 'ChannelAddImage', 'GetImage']);
    for (const q of mine) {
      assert.match(String(q.headers.authorization), /^Signature keyId="mg",algorithm="rsa-sha256",signature="[^"]+"$/);
      assert.equal(q.headers['accept-version'], '~2');
      assert.match(q.url, /[?&]channel=(dev|\*)(&|$)/, q.url);
    }
    assert.match(mine[2].url, /^\/images\/[^?]+\/file\?channel=dev&compression=gzip&sha1=[0-9a-f]{40}$/);
  });

  it('a base path in UPDATES_IMGADM_URL is kept (an IMGAPI behind a path-routing proxy)', async () => {
    const prefixed = await startImgapiServer({ basePath: '/imgapi' });
    mountAdminApi(prefixed, { authkeys: { mg: [key.pubLine] } });
    try {
      const c = new ImgapiAdminClient({ url: `${prefixed.url}/`, user: 'mg', signer: pemSigner(key.pem), retry: { attempts: 1 } });
      const m = manifest();
      assert.equal((await c.adminImportImage(importBody(m).body, 'dev')).uuid, m.uuid);
      assert.equal((await c.findImage(m.uuid))!.state, 'unactivated');
      assert.equal(c.callText(c.activateCall(m.uuid, 'dev')), `POST ${prefixed.url}/images/${m.uuid}?channel=dev&action=activate`);
      assert.deepEqual(prefixed.requests.map((q) => q.url.split('?')[0]), ['/imgapi/images/' + m.uuid, '/imgapi/images/' + m.uuid]);
    } finally {
      await prefixed.close();
    }
  });

  it('ImgapiAdminClient errors: one line with code, message and errors[]; 401 names user and key, never the signature', async () => {
    const c = ours();
    const bad = { ...importBody(manifest()).body, bogus: 1 };
    const e1 = (await c.adminImportImage(bad, 'dev').catch((e) => e)) as ImgapiError;
    assert.equal(e1.message, `IMGAPI ${server.url}: import image ${bad.uuid}: 422 InvalidParameter: invalid extra parameters: "bogus"; bogus: Invalid`);
    const { os: _os, ...noOs } = importBody(manifest()).body;
    const e2 = (await c.adminImportImage(noOs as typeof bad, 'dev').catch((e) => e)) as ImgapiError;
    assert.match(e2.message, /: 422 ValidationFailed: invalid image data: os; os: MissingParameter.*$/);
    assert.ok(!e2.message.includes('\n'));
    const stranger = ours({ pem: nodeRsaKey().pem });
    const e3 = (await stranger.whoami().catch((e) => e)) as ImgapiError;
    assert.equal(e3.statusCode, 401);
    assert.equal(e3.message, `IMGAPI ${server.url}: ping: 401 UnauthorizedError: Unauthorized`);
    assert.match(e3.hint!, new RegExp(`^check UPDATES_IMGADM_USER and UPDATES_IMGADM_IDENTITY: IMGAPI must have key ${stranger.signer.fingerprint} from test key for user "mg"$`));
    const authz = server.requests.at(-1)!.headers.authorization!;
    assert.ok(!e3.message.includes(/signature="([^"]+)"/.exec(authz)![1]));
    // A server (or proxy) that echoes the presigned URL does not get it into our message.
    const m = manifest({}, data);
    await c.adminImportImage(importBody(m).body, 'dev');
    const secretUrl = `${filesUrl}/image.zfs.gz?algorithm=RSA-SHA256&expires=1&keyId=%2Fx&signature=SECRETSIG`;
    server.addFault({ kind: 'status', status: 400, code: 'Download', message: `cannot get ${secretUrl}`, route: 'AddImageFileFromUrl' });
    const e4 = (await c.addImageFileFromUrl(m.uuid, secretUrl, { compression: 'gzip', sha1: m.files![0].sha1, channel: 'dev' }).catch((e) => e)) as ImgapiError;
    assert.equal(e4.restCode, 'Download');
    assert.ok(!e4.message.includes('SECRETSIG') && !e4.message.includes('expires='), e4.message);
    assert.ok(e4.message.includes(`cannot get ${filesUrl}/image.zfs.gz`));
  });
});

describe('import decisions (§2.10)', () => {
  const w: Want = { uuid: 'u', name: 'demo', version: '1.0', sha1: 'a'.repeat(40), size: 10, channel: 'dev' };
  const file = { sha1: w.sha1, size: 10, compression: 'gzip' as const };
  const img = (o: Partial<ImageManifest>): ImageManifest => ({ v: 2, uuid: 'u', name: 'demo', version: '1.0', state: 'active', channels: ['dev'], files: [file], ...o });
  const table: Array<[string, ImageManifest | undefined, string]> = [
    ['not there', undefined, 'import, add-file, activate'],
    ['a creating placeholder', img({ state: 'creating', files: [] }), 'import, add-file, activate'],
    ['unactivated, no file (killed after import)', img({ state: 'unactivated', files: [] }), 'add-file, activate'],
    ['unactivated with our file (killed before activate)', img({ state: 'unactivated' }), 'activate'],
    ['unactivated in another channel', img({ state: 'unactivated', files: [], channels: ['experimental'] }), 'channel-add, add-file, activate'],
    ['active in our channel, same file', img({}), 'done'],
    ['disabled in our channel, same file', img({ state: 'disabled', disabled: true }), 'done'],
    ['active in another channel', img({ channels: ['staging'] }), 'channel-add'],
    ['a server without channels', img({ channels: undefined }), 'done'],
    ['active with another sha1', img({ files: [{ ...file, sha1: 'b'.repeat(40) }] }), 'conflict'],
    ['unactivated with another size', img({ state: 'unactivated', files: [{ ...file, size: 11 }] }), 'conflict'],
    ['another name', img({ name: 'other' }), 'conflict'],
    ['failed', img({ state: 'failed', files: [] }), 'conflict'],
  ];
  for (const [what, image, want] of table) {
    it(`${what} → ${want}`, () => {
      const { steps, end } = planSteps(image, w);
      const got = end.kind === 'conflict' ? 'conflict' : steps.length ? steps.map((s) => s.step).join(', ') : 'done';
      assert.equal(got, want);
    });
  }
  it('channel-add names a channel the image is in', () => {
    assert.deepEqual(decide(img({ channels: ['staging', 'release'] }), w), { kind: 'step', step: 'channel-add', from: 'staging' });
  });

  it('the import body: no files/state/channels/activated/icon, zvol fields only for zvol, public:false, v/uuid/published_at kept', () => {
    const m = {
      ...manifest({}, Buffer.from('x')),
      v: undefined as unknown as number,
      state: 'active',
      channels: ['dev'],
      activated: true,
      icon: true,
      nic_driver: 'virtio',
      image_size: 10,
      public: true,
      expires_at: 'soon',
    };
    const { body, dropped } = importBody(m);
    assert.deepEqual(Object.keys(body).sort(), ['name', 'os', 'owner', 'public', 'published_at', 'requirements', 'tags', 'type', 'uuid', 'v', 'version']);
    assert.equal(body.v, 2);
    assert.equal(body.public, false);
    assert.equal(body.published_at, m.published_at);
    assert.deepEqual(dropped, ['expires_at']);
    const zvol = importBody({ ...m, type: 'zvol', disk_driver: 'virtio', cpu_type: 'host' }).body;
    assert.deepEqual([zvol.nic_driver, zvol.disk_driver, zvol.cpu_type, zvol.image_size], ['virtio', 'virtio', 'host', 10]);
  });
});
