/**
 * `publish -p` end to end against the local Manta (https) and IMGAPI test
 * servers: what bits-upload.sh + `updates-imgadm import -m MF -f <msign URL>`
 * laid down, reruns after a failure or a kill at every step, lost answers,
 * a re-publish as a no-op, conflicts, channel-add, --upload-file,
 * --dry-run's API calls, refused keys, and no secret in any log or file.
 */
import assert from 'node:assert/strict';
import { createHash, createPrivateKey, randomBytes, randomUUID } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import winston from 'winston';
import type { PublishError } from '../../src/core/errors.js';
import { keyObjectSigner, md5Fingerprint, parsePublicKeyLine } from '../../src/http/signature.js';
import { ImgapiAdminClient } from '../../src/imgapi/admin.js';
import { log } from '../../src/core/log.js';
import type { ImageManifest } from '../../src/image/manifest/types.js';
import { publish, type PublishOptions, type PublishResult } from '../../src/publish/publish.js';
import { UpdatesImporter } from '../../src/publish/updates.js';
import { BIN, cli, errorLines } from '../helpers/cli.js';
import { mountAdminApi, opOf, writes, type AdminApi } from '../servers/imgapi-admin.js';
import { RestError, startImgapiServer, type ImgapiTestServer } from '../servers/imgapi-server.js';
import { MantaTestServer } from '../servers/manta-server.js';
import { nodeRsaKey, tempDir } from '../servers/ssh-keys.js';
import { captureLogs } from '../helpers/logs.js';
import { selfSignedCert } from '../servers/tls.js';

const STAMP = 'master-20240501T120000Z-g0123abc';
const USER = 'Joyent_Dev';
const BASE = `/${USER}/public/builds/demo`;
const DEST = `${BASE}/${STAMP}`;
const IMAGE_PATH = `${DEST}/demo/demo-zfs-1.0.zfs.gz`;
const FAST = { attempts: 3, firstDelayMs: 5, maxDelayMs: 20, maxRetryAfterMs: 1000 };
const sha1 = (b: Buffer): string => createHash('sha1').update(b).digest('hex');

interface World {
  dir: string;
  bits: string;
  home: string;
  sshDir: string;
  mantaKey: ReturnType<typeof nodeRsaKey>;
  imgapiKey: ReturnType<typeof nodeRsaKey>;
  manta: MantaTestServer;
  imgapi: ImgapiTestServer;
  admin: AdminApi;
  image: Buffer;
  manifest: ImageManifest;
  origin: ImageManifest;
}

let tls: { key: string; cert: string };

async function world(o: { manifest?: Partial<ImageManifest>; authkeys?: string[] } = {}): Promise<World> {
  const dir = await tempDir('buildimage-publish-updates-');
  const bits = join(dir, 'bits');
  const home = join(dir, 'home');
  const sshDir = join(home, '.ssh');
  await mkdir(join(bits, 'demo'), { recursive: true });
  await mkdir(sshDir, { recursive: true });
  // Manta signs with ~/.ssh/id_rsa (bits-upload.sh's MANTA_KEY_ID default), IMGAPI with automation.id_rsa (its UPDATES_IMGADM_IDENTITY default).
  const mantaKey = nodeRsaKey();
  const imgapiKey = nodeRsaKey();
  await writeFile(join(sshDir, 'id_rsa'), mantaKey.pem, { mode: 0o600 });
  await writeFile(join(sshDir, 'id_rsa.pub'), mantaKey.pubLine + '\n');
  await writeFile(join(sshDir, 'automation.id_rsa'), imgapiKey.pem, { mode: 0o600 });
  const originBytes = randomBytes(2000);
  const origin: ImageManifest = {
    v: 2,
    uuid: randomUUID(),
    owner: '00000000-0000-0000-0000-000000000000',
    name: 'triton-origin-x86_64-21.4.0',
    version: '20220322T012137Z',
    type: 'zone-dataset',
    os: 'smartos',
    files: [{ sha1: sha1(originBytes), size: originBytes.length, compression: 'gzip' }],
  };
  const image = randomBytes(300 * 1024);
  const manifest: ImageManifest = {
    v: 2,
    uuid: randomUUID(),
    owner: '00000000-0000-0000-0000-000000000000',
    name: 'demo',
    version: '1.0',
    description: 'demo service image',
    type: 'zone-dataset',
    os: 'smartos',
    origin: origin.uuid,
    published_at: '2024-05-01T12:00:00Z',
    requirements: { min_platform: { '7.0': '20240101T000000Z' } },
    tags: { smartdc_service: true },
    files: [{ sha1: sha1(image), size: image.length, compression: 'gzip' }],
    ...o.manifest,
  };
  await writeFile(join(bits, 'demo/demo-zfs-1.0.zfs.gz'), image);
  await writeFile(join(bits, 'demo/demo-zfs-1.0.imgmanifest'), JSON.stringify(manifest, null, 2));
  await writeFile(join(bits, 'demo/latest-build-stamp'), STAMP + '\n');
  const manta = await MantaTestServer.start({ [USER]: { keys: [mantaKey.pubLine] } }, { tls });
  const imgapi = await startImgapiServer();
  const admin = mountAdminApi(imgapi, { authkeys: { mg: o.authkeys ?? [imgapiKey.pubLine] }, fileUrlCa: tls.cert });
  await imgapi.addImage(origin, originBytes, { channels: ['dev', 'staging'] });
  return { dir, bits, home, sshDir, mantaKey, imgapiKey, manta, imgapi, admin, image, manifest, origin };
}

async function dispose(w: World): Promise<void> {
  await w.manta.close();
  await w.imgapi.close();
  await rm(w.dir, { recursive: true, force: true });
}

function env(w: World, extra: Record<string, string> = {}): Record<string, string> {
  return { MANTA_URL: w.manta.url, MANTA_USER: USER, MANTA_TLS_INSECURE: '1', UPDATES_IMGADM_URL: w.imgapi.url, ...extra };
}

function opts(w: World, o: Partial<PublishOptions> = {}): PublishOptions {
  return {
    branch: 'master',
    name: 'demo',
    uploadDir: '/public/builds/demo',
    bitsDir: w.bits,
    local: false,
    updates: true,
    dryRun: false,
    env: env(w),
    sshDir: w.sshDir,
    retry: FAST,
    stallMs: 1000,
    cwd: w.dir,
    ...o,
  };
}

/** Writes IMGAPI carried out (2xx), by API name. */
function done(imgapi: ImgapiTestServer, from = 0): string[] {
  return imgapi.requests.slice(from).filter((r) => r.method !== 'GET' && (r.status ?? 0) >= 200 && (r.status ?? 0) < 300).map(opOf);
}

function importStep(r: PublishResult): { action: string; detail: string; calls?: string[] } {
  return r.steps.find((s) => s.op === 'import') as { action: string; detail: string; calls?: string[] };
}

/** What IMGAPI serves for the image (any channel), as a consumer's GetImage sees it. */
async function served(w: World): Promise<ImageManifest | undefined> {
  const img = w.imgapi.store.get(w.manifest.uuid);
  return img && w.imgapi.serialize(img);
}

describe('publish -p into the updates IMGAPI (integration)', function () {
  this.timeout(120_000);
  const consoles = log.transports.filter((t) => t instanceof winston.transports.Console);
  before(async () => {
    consoles.forEach((t) => (t.silent = true));
    tls = await selfSignedCert();
  });
  after(async () => {
    consoles.forEach((t) => (t.silent = false));
  });

  let w: World;
  beforeEach(async () => {
    w = await world();
  });
  afterEach(async () => dispose(w));

  it('lays everything down as bits-upload.sh + updates-imgadm: Manta bits, then the image active in the branch channel with the manifest\'s file', async () => {
    const r = await publish(opts(w));
    assert.deepEqual(await w.manta.read(IMAGE_PATH), w.image);
    assert.equal((await w.manta.read(`${BASE}/master-latest`)).toString(), `${DEST}\n`);
    const img = (await served(w))!;
    assert.equal(img.state, 'active');
    assert.deepEqual(img.channels, ['dev']);
    assert.deepEqual(img.files, w.manifest.files);
    assert.equal(img.origin, w.origin.uuid);
    assert.ok(w.imgapi.store.has(w.origin.uuid));
    assert.equal(img.published_at, w.manifest.published_at, 'an imported published_at is kept');
    assert.equal(img.public, false);
    for (const k of ['name', 'version', 'description', 'type', 'os', 'requirements', 'tags'] as const) assert.deepEqual(img[k], w.manifest[k], k);
    assert.deepEqual(w.imgapi.store.get(w.manifest.uuid)!.files[0].data, w.image);

    // The calls updates-imgadm makes, in its order and with its query strings, each once.
    assert.deepEqual(writes(w.imgapi), ['AdminImportImage', 'AddImageFileFromUrl', 'ActivateImage']);
    const u = w.manifest.uuid;
    const sent = w.imgapi.requests.filter((q) => q.method === 'POST').map((q) => q.url);
    assert.deepEqual(sent, [
      `/images/${u}?channel=dev&action=import`,
      `/images/${u}/file/from-url?channel=dev&compression=gzip&sha1=${w.manifest.files![0].sha1}`,
      `/images/${u}?channel=dev&action=activate`,
    ]);
    const body = w.admin.importBodies[0];
    for (const k of ['files', 'state', 'channels', 'activated', 'icon']) assert.ok(!(k in body), `import body has no ${k}`);
    const { files: _files, ...rest } = w.manifest;
    assert.deepEqual(body, { ...rest, public: false });
    // IMGAPI fetched the presigned Manta URL of the published file, once.
    assert.equal(w.admin.fetches.length, 1);
    assert.equal(new URL(w.admin.fetches[0].url).pathname, IMAGE_PATH);
    assert.ok(w.manta.requests.some((q) => q.presigned && q.method === 'GET' && q.path === IMAGE_PATH && q.status === 200));
    // Every IMGAPI request signed as sdc-clients signs (keyId = user), Accept-Version ~2.
    for (const q of w.imgapi.requests) {
      assert.match(String(q.headers.authorization), /^Signature keyId="mg",algorithm="rsa-sha256",signature="[A-Za-z0-9+/=]+"$/, q.url);
      assert.equal(q.headers['accept-version'], '~2');
    }
    const step = importStep(r);
    assert.equal(step.action, 'imported');
    assert.deepEqual(step.calls!.map((c) => c.split(' ')[0]), ['POST', 'POST', 'POST']);
  });

  it('a re-publish is a no-op: only reads, "already there"', async () => {
    await publish(opts(w));
    const i0 = w.imgapi.requests.length;
    const m0 = w.manta.requests.length;
    const r = await publish(opts(w));
    assert.deepEqual(w.imgapi.requests.slice(i0).map(opOf), ['Ping', 'GetImage']);
    assert.ok(w.manta.requests.slice(m0).every((q) => q.method === 'HEAD'));
    assert.equal(importStep(r).action, 'already there');
    assert.match(importStep(r).detail, /^active in channel dev \(sha1 [0-9a-f]{40}, 307200 bytes\)$/);
  });

  for (const [step, route, action, rest] of [
    ['import', 'UpdateImage', 'import', ['AdminImportImage', 'AddImageFileFromUrl', 'ActivateImage']],
    ['file add', 'AddImageFileFromUrl', undefined, ['AddImageFileFromUrl', 'ActivateImage']],
    ['activate', 'UpdateImage', 'activate', ['ActivateImage']],
  ] as const) {
    it(`a run that fails at the ${step} exits 3; the rerun finishes with only what is missing (${rest.join(', ')})`, async () => {
      w.imgapi.addFault({ kind: 'status', status: 500, code: 'InternalError', message: 'storage hiccup', route, ...(action ? { action } : {}), times: Infinity });
      // A 500 that outlasts the retries: a rerun may well go through, and the hint says so.
      await assert.rejects(publish(opts(w)), (e: PublishError) => e.exitCode === 3 && /: 500 InternalError: storage hiccup$/.test(e.message) && /^rerun to continue/.test(e.hint!));
      w.imgapi.clearFaults();
      const i0 = w.imgapi.requests.length;
      const r = await publish(opts(w));
      assert.deepEqual(done(w.imgapi, i0), rest);
      assert.equal((await served(w))!.state, 'active');
      assert.deepEqual(done(w.imgapi), ['AdminImportImage', 'AddImageFileFromUrl', 'ActivateImage'], 'each write done once over both runs');
      assert.equal(w.admin.fetches.filter((f) => f.status === 200).length, 1, 'the file was downloaded from Manta once');
      assert.equal(importStep(r).action, step === 'import' ? 'imported' : 'finished');
    });
  }

  it('answers lost after the server acted (a proxy 504, a dropped connection) are reconciled in the same run, nothing sent twice', async () => {
    w.imgapi.addFault({ kind: 'lost-answer', route: 'UpdateImage', action: 'import' });
    w.imgapi.addFault({ kind: 'lost-answer', route: 'AddImageFileFromUrl' });
    w.imgapi.addFault({ kind: 'lost-answer', status: 0, route: 'UpdateImage', action: 'activate' });
    const r = await publish(opts(w));
    assert.equal((await served(w))!.state, 'active');
    assert.deepEqual(writes(w.imgapi), ['AdminImportImage', 'AddImageFileFromUrl', 'ActivateImage'], 'no write resent');
    assert.equal(w.admin.fetches.length, 1);
    assert.equal(importStep(r).action, 'imported');
  });

  it('a proxy gives up on a long AddImageFileFromUrl while IMGAPI keeps downloading: we wait for the file instead of asking again', async () => {
    // haproxy's 504 goes out once IMGAPI is downloading from Manta; IMGAPI carries on and stores the file a little later.
    let pendingRes: import('node:http').ServerResponse | undefined;
    w.imgapi.beforeHandle = (ctx) => {
      if (ctx.url.pathname.endsWith('/from-url')) pendingRes = ctx.res;
    };
    w.manta.fault({ kind: 'delay', ms: 300, method: 'GET', path: IMAGE_PATH });
    w.manta.onRequest = (q) => {
      if (q.presigned && pendingRes && !pendingRes.headersSent) {
        pendingRes.writeHead(504, { 'content-type': 'text/html' }).end('<html><body><h1>504 Gateway Time-out</h1></body></html>\n');
      }
    };
    const client = new ImgapiAdminClient({ url: w.imgapi.url, user: 'mg', signer: keyObjectSigner(createPrivateKey(w.imgapiKey.pem), 'test'), channel: 'dev', retry: { attempts: 3, firstDelayMs: 5 } });
    const importer = new UpdatesImporter({ client, retry: FAST, pollMs: 50, fileWaitMs: 10_000 });
    const logs = captureLogs();
    let r: PublishResult;
    try {
      r = await publish(opts(w, { importer }));
    } finally {
      logs.stop();
    }
    assert.equal((await served(w))!.state, 'active');
    assert.deepEqual(writes(w.imgapi), ['AdminImportImage', 'AddImageFileFromUrl', 'ActivateImage'], 'the download was asked for once');
    assert.equal(w.admin.fetches.length, 1);
    assert.ok(logs.lines.some((l) => l.includes('waiting for the file of')));
    assert.equal(importStep(r).action, 'imported');
  });

  it('transient 503s: reads are retried, a refused write is decided again from a fresh read', async () => {
    w.imgapi.addFault({ kind: 'status', status: 503, route: 'GetImage' });
    w.imgapi.addFault({ kind: 'status', status: 503, route: 'UpdateImage', action: 'import' });
    await publish(opts(w));
    assert.equal((await served(w))!.state, 'active');
    assert.deepEqual(done(w.imgapi), ['AdminImportImage', 'AddImageFileFromUrl', 'ActivateImage']);
  });

  it('killed with SIGKILL while IMGAPI downloads the file: a rerun only activates', async function () {
    const args = ['publish', '-b', 'master', '-n', 'demo', '-d', '/public/builds/demo', '-D', w.bits, '-p'];
    const childEnv = { ...env(w), HOME: w.home, SSH_AUTH_SOCK: '', MANTA_KEY_ID: '', BUILDIMAGE_LOG_LEVEL: 'info' };
    const child = execa(BIN, args, { cwd: w.dir, env: childEnv, reject: false, stdin: 'ignore' });
    let killed = false;
    // IMGAPI's GET of the presigned URL reaching Manta: the client is waiting for AddImageFileFromUrl's answer.
    w.manta.onRequest = (q) => {
      if (q.presigned && q.path === IMAGE_PATH && !killed) {
        killed = true;
        child.kill('SIGKILL');
      }
    };
    const first = await child;
    w.manta.onRequest = undefined;
    assert.ok(killed, first.stderr);
    assert.equal(first.signal, 'SIGKILL');
    // IMGAPI finished storing the file although its client was gone.
    for (let i = 0; i < 100 && !w.imgapi.store.get(w.manifest.uuid)?.files.length; i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(w.imgapi.store.get(w.manifest.uuid)?.files.length, 1);
    assert.equal((await served(w))!.state, 'unactivated');
    const i0 = w.imgapi.requests.length;
    const again = await cli(args, { cwd: w.dir, env: childEnv, timeoutMs: 60_000 });
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual(done(w.imgapi, i0), ['ActivateImage']);
    assert.match(again.stdout, /updates IMGAPI: [0-9a-f-]{36} finished \(channel dev\)/);
  });

  it('killed before its activate was handled: a rerun activates, without importing or adding the file again', async () => {
    w.imgapi.beforeHandle = (ctx) => {
      if (ctx.query.action === 'activate') throw new RestError(500, 'InternalError', 'killed');
    };
    await assert.rejects(publish(opts(w)));
    w.imgapi.beforeHandle = undefined;
    assert.equal((await served(w))!.state, 'unactivated');
    const i0 = w.imgapi.requests.length;
    await publish(opts(w));
    assert.deepEqual(done(w.imgapi, i0), ['ActivateImage']);
  });

  it('the same uuid on the server with another file fails loudly before any write; the dry run shows the conflict', async () => {
    const other = randomBytes(1000);
    await w.imgapi.addImage({ ...w.manifest, files: [{ sha1: sha1(other), size: other.length, compression: 'gzip' }] }, other, { channels: ['dev'] });
    const dry = await publish(opts(w, { dryRun: true }));
    assert.equal(importStep(dry).action, 'conflict');
    assert.equal(dry.conflicts, 1);
    await assert.rejects(publish(opts(w)), (e: PublishError) => {
      assert.equal(e.exitCode, 3);
      assert.equal(e.message, `image ${w.manifest.uuid} is on the server (active) with a different file: sha1 ${sha1(other)}, 1000 bytes; ours is sha1 ${sha1(w.image)}, ${w.image.length} bytes`);
      assert.match(e.hint!, /build again/);
      return true;
    });
    assert.deepEqual(writes(w.imgapi), []);
  });

  it('active in another channel: ChannelAddImage only', async () => {
    await w.imgapi.addImage(w.manifest, w.image, { channels: ['experimental'] });
    const r = await publish(opts(w));
    assert.deepEqual(writes(w.imgapi), ['ChannelAddImage']);
    const q = w.imgapi.requests.find((x) => opOf(x) === 'ChannelAddImage')!;
    assert.equal(q.url, `/images/${w.manifest.uuid}?channel=experimental&action=channel-add`);
    assert.deepEqual((await served(w))!.channels, ['experimental', 'dev']);
    assert.equal(importStep(r).action, 'channel-added');
  });

  it('left unactivated in another channel (an earlier run on another branch): channel-add, then file and activate', async () => {
    await w.imgapi.addImage({ ...w.manifest, files: undefined }, undefined, { channels: ['experimental'], state: 'unactivated' });
    await publish(opts(w));
    assert.deepEqual(writes(w.imgapi), ['ChannelAddImage', 'AddImageFileFromUrl', 'ActivateImage']);
    assert.equal((await served(w))!.state, 'active');
  });

  it('--upload-file: the local file is PUT to IMGAPI; IMGAPI fetches nothing from Manta', async () => {
    const r = await publish(opts(w, { uploadFile: true }));
    assert.deepEqual(writes(w.imgapi), ['AdminImportImage', 'AddImageFile', 'ActivateImage']);
    assert.equal(w.admin.fetches.length, 0);
    assert.ok(!w.manta.requests.some((q) => q.presigned));
    const put = w.imgapi.requests.find((q) => opOf(q) === 'AddImageFile')!;
    assert.equal(put.headers['content-type'], 'application/octet-stream');
    assert.equal(put.headers['content-length'], String(w.image.length));
    assert.deepEqual(w.imgapi.store.get(w.manifest.uuid)!.files[0].data, w.image);
    assert.equal(importStep(r).action, 'imported');
  });

  it('--dry-run prints each IMGAPI call it would make and writes nothing (the command)', async () => {
    const args = ['publish', '-b', 'release-20240501', '-n', 'demo', '-d', '/public/builds/demo', '-D', w.bits, '-p', '--dry-run'];
    const childEnv = { ...env(w), HOME: w.home, SSH_AUTH_SOCK: '', MANTA_KEY_ID: '' };
    const r = await cli(args, { cwd: w.dir, env: childEnv, timeoutMs: 60_000 });
    assert.equal(r.code, 0, r.stderr);
    const u = w.manifest.uuid;
    const s = w.manifest.files![0].sha1;
    assert.match(r.stdout, new RegExp(`\\n {2}import {4}${u} from ${IMAGE_PATH} into channel staging: import \\(not on the server: import, add-file, activate\\)\\n`));
    assert.ok(r.stdout.includes(`\n              POST ${w.imgapi.url}/images/${u}?channel=staging&action=import (manifest demo 1.0)\n`), r.stdout);
    assert.ok(r.stdout.includes(`\n              POST ${w.imgapi.url}/images/${u}/file/from-url?channel=staging&compression=gzip&sha1=${s} (file_url: presigned Manta URL of ${IMAGE_PATH})\n`));
    assert.ok(r.stdout.includes(`\n              POST ${w.imgapi.url}/images/${u}?channel=staging&action=activate\n`));
    assert.deepEqual(writes(w.imgapi), []);
    assert.ok(w.manta.requests.every((q) => q.method === 'HEAD'));
  });

  it('a key IMGAPI does not have: one line naming the user and key fingerprint, exit 3, before anything goes to Manta', async () => {
    await rm(join(w.sshDir, 'automation.id_rsa'));
    const stranger = nodeRsaKey();
    await writeFile(join(w.dir, 'stranger.pem'), stranger.pem, { mode: 0o600 });
    const args = ['publish', '-b', 'master', '-n', 'demo', '-d', '/public/builds/demo', '-D', w.bits, '-p'];
    const r = await cli(args, { cwd: w.dir, env: { ...env(w), HOME: w.home, SSH_AUTH_SOCK: '', MANTA_KEY_ID: '', UPDATES_IMGADM_USER: 'builder', UPDATES_IMGADM_IDENTITY: join(w.dir, 'stranger.pem') }, timeoutMs: 60_000 });
    assert.equal(r.code, 3, r.stderr);
    const fp = md5Fingerprint(parsePublicKeyLine(stranger.pubLine).blob);
    assert.deepEqual(errorLines(r), [
      `buildimage: error: IMGAPI ${w.imgapi.url}: ping: 401 UnauthorizedError: Unauthorized ` +
        `(check UPDATES_IMGADM_USER and UPDATES_IMGADM_IDENTITY: IMGAPI must have key ${fp} from ${join(w.dir, 'stranger.pem')} for user "builder")`,
    ]);
    assert.ok(!r.stderr.includes('signature="') && !r.stderr.includes('PRIVATE KEY'));
    assert.equal(w.manta.requests.length, 0);
    // An ECDSA/Ed25519 identity is refused before any request.
    await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(w.dir, 'ed')]);
    const ed = await cli(args, { cwd: w.dir, env: { ...env(w), HOME: w.home, SSH_AUTH_SOCK: '', MANTA_KEY_ID: '', UPDATES_IMGADM_IDENTITY: join(w.dir, 'ed') }, timeoutMs: 60_000 });
    assert.equal(ed.code, 3);
    assert.match(errorLines(ed)[0], /is ed25519: IMGAPI only accepts RSA keys/);
  });

  it('a manifest IMGAPI would refuse ("type":"zone") fails -p --dry-run and -p before any upload, IMGAPI call or pointer move: one line, exit 2', async () => {
    const bad = await world({ manifest: { type: 'zone' } });
    try {
      const childEnv = { ...env(bad), HOME: bad.home, SSH_AUTH_SOCK: '', MANTA_KEY_ID: '' };
      for (const extra of [['--dry-run'], []]) {
        const r = await cli(['publish', '-b', 'master', '-n', 'demo', '-d', '/public/builds/demo', '-D', bad.bits, '-p', ...extra], { cwd: bad.dir, env: childEnv, timeoutMs: 60_000 });
        assert.equal(r.code, 2, r.stdout + r.stderr);
        assert.deepEqual(errorLines(r), [
          'buildimage: error: image manifest demo/demo-zfs-1.0.imgmanifest: "type" must be one of zone-dataset, lx-dataset, zvol, docker, lxd, other; got "zone" ' +
            '(IMGAPI would refuse it (imgmanifest rules); nothing was published)',
        ]);
      }
      assert.deepEqual(bad.imgapi.requests, [], 'IMGAPI not even asked');
      assert.deepEqual(bad.manta.requests, [], 'Manta not even asked: nothing uploaded, no pointer moved');
    } finally {
      await dispose(bad);
    }
  });

  it('IMGAPI errors are one line with code, message and errors[]: a refused import (no rerun hint), a missing origin, an http file_url', async () => {
    // A refusal the local checks cannot foresee: a rerun would be refused the same way, and the hint does not suggest one.
    w.imgapi.addFault({ kind: 'status', status: 422, code: 'ValidationFailed', message: 'invalid image data: tags', route: 'UpdateImage', action: 'import', times: Infinity });
    await assert.rejects(publish(opts(w)), (e: PublishError) => {
      assert.equal(e.exitCode, 3);
      assert.match(e.message, /: import image [0-9a-f-]{36}: 422 ValidationFailed: invalid image data: tags$/);
      assert.equal(e.hint, 'IMGAPI refused it: a rerun would fail the same way');
      return true;
    });
    assert.equal(w.imgapi.requests.filter((q) => opOf(q) === 'AdminImportImage').length, 1, 'asked once');
    w.imgapi.clearFaults();
    const orphan = await world({ manifest: { origin: randomUUID() } });
    try {
      await assert.rejects(publish(opts(orphan)), (e: PublishError) => e.exitCode === 3 && e.message === `origin image ${orphan.manifest.origin} of ${orphan.manifest.uuid} is not on ${orphan.imgapi.url}`);
      assert.deepEqual(writes(orphan.imgapi), []);
    } finally {
      await dispose(orphan);
    }
    // A Manta IMGAPI cannot fetch over https: the real server refuses http:// file URLs.
    const plain = await MantaTestServer.start({ [USER]: { keys: [w.mantaKey.pubLine] } });
    try {
      await assert.rejects(publish(opts(w, { env: env(w, { MANTA_URL: plain.url }) })), (e: PublishError) => {
        assert.equal(e.message, `IMGAPI ${w.imgapi.url}: add file to image ${w.manifest.uuid} from the Manta URL: 422 InvalidParameter: Only URLs using the https: scheme are supported; file_url: Invalid`);
        assert.match(e.hint!, /--upload-file/);
        return true;
      });
    } finally {
      await plain.close();
    }
  });

  it('channel: --channel > UPDATES_IMGADM_CHANNEL > ?channel= in UPDATES_IMGADM_URL > the branch', async () => {
    const channelOf = async (o: Partial<PublishOptions>): Promise<string> => (await publish(opts(w, { dryRun: true, ...o }))).channel;
    assert.equal(await channelOf({}), 'dev');
    assert.equal(await channelOf({ branch: 'feature-x' }), 'experimental');
    assert.equal(await channelOf({ env: env(w, { UPDATES_IMGADM_URL: `${w.imgapi.url}?channel=support` }) }), 'support');
    assert.equal(await channelOf({ env: env(w, { UPDATES_IMGADM_URL: `${w.imgapi.url}?channel=support`, UPDATES_IMGADM_CHANNEL: 'release' }) }), 'release');
    assert.equal(await channelOf({ channel: 'staging', env: env(w, { UPDATES_IMGADM_CHANNEL: 'release' }) }), 'staging');
    await publish(opts(w, { env: env(w, { UPDATES_IMGADM_URL: `${w.imgapi.url}?channel=support` }) }));
    assert.deepEqual((await served(w))!.channels, ['support']);
  });

  it('no key, signature or presigned-URL query in any log line, error, result or file written', async () => {
    const logs = captureLogs();
    const errors: string[] = [];
    const results: string[] = [];
    const echoed: string[] = [];
    try {
      w.imgapi.addFault({ kind: 'status', status: 500, route: 'AddImageFileFromUrl', times: Infinity });
      await publish(opts(w)).catch((e: PublishError) => errors.push(`${e.message} ${e.hint}`));
      w.imgapi.clearFaults();
      // IMGAPI (or a proxy) echoing the presigned URL in an error.
      w.imgapi.beforeHandle = async (ctx) => {
        if (!ctx.url.pathname.endsWith('/from-url')) return;
        const chunks: Buffer[] = [];
        for await (const c of ctx.req) chunks.push(c as Buffer);
        const url = (JSON.parse(Buffer.concat(chunks).toString()) as { file_url: string }).file_url;
        echoed.push(url);
        throw new RestError(400, 'Download', `HTTP 403 error attempting to download image ${url}`);
      };
      await publish(opts(w)).catch((e: PublishError) => errors.push(`${e.message} ${e.hint}`));
      w.imgapi.beforeHandle = undefined;
      await publish(opts(w, { dryRun: true })).then((r) => results.push(JSON.stringify(r)));
      results.push(JSON.stringify(await publish(opts(w))));
      await writeFile(join(w.sshDir, 'automation.id_rsa'), nodeRsaKey().pem);
      await publish(opts(w)).catch((e: PublishError) => errors.push(`${e.message} ${e.hint}`));
    } finally {
      logs.stop();
    }
    assert.equal(errors.length, 3);
    assert.match(errors[1], /HTTP 403 error attempting to download image https:\/\/127\.0\.0\.1:\d+\/Joyent_Dev\/public\/builds\/demo\/.*\.zfs\.gz\?…/);
    assert.equal((await served(w))!.state, 'active');
    const fetched = [...w.admin.fetches.map((f) => f.url), ...echoed].map((u) => new URL(u));
    assert.ok(fetched.length >= 1);
    const secrets = [
      ...[w.mantaKey.pem, w.imgapiKey.pem].flatMap((p) => p.split('\n').filter((l) => l.length > 20 && !l.startsWith('-----'))),
      ...w.manta.authorizations.map((a) => /signature="([^"]+)"/.exec(a)![1]),
      ...w.imgapi.requests.map((q) => /signature="([^"]+)"/.exec(String(q.headers.authorization))?.[1]).filter((s): s is string => !!s),
      ...fetched.flatMap((u) => [u.search, u.searchParams.get('signature')!, encodeURIComponent(u.searchParams.get('signature')!)]),
      'Signature keyId',
      'signature=',
      'PRIVATE KEY',
    ];
    const written = await readFile(join(w.bits, 'artifacts.txt'), 'utf8');
    const text = [...logs.lines, ...errors, ...results, written].join('\n');
    for (const s of secrets) assert.ok(!text.includes(s), `must not contain ${s.slice(0, 24)}…`);
    assert.ok(logs.lines.some((l) => l.includes('updates IMGAPI: activated')));
  });
});
