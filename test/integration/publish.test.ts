/**
 * `publish` end to end against the local Manta server (and -L into a
 * directory): bits-upload.sh's layout and pointers, md5 skip/fail rules,
 * reruns after a failure at every step and after a real kill -9, faults,
 * -p's import slot (a fake importer; the real one is in publish-updates.test),
 * --state, --dry-run, and no secret in any log line.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { lstat, mkdir, readFile, readlink, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import winston from 'winston';
import { PublishError, UsageError } from '../../src/core/errors.js';
import { jsonFormat, log } from '../../src/core/log.js';
import { parsePublicKeyLine, sha256Fingerprint } from '../../src/http/signature.js';
import type { ImgapiImporter, ImportRequest } from '../../src/publish/importer.js';
import { publish, type PublishOptions, type PublishResult } from '../../src/publish/publish.js';
import { newState, type BuildDefinition } from '../../src/build/state.js';
import { BIN, cli, errorLines } from '../helpers/cli.js';
import { mountAdminApi } from '../servers/imgapi-admin.js';
import { startImgapiServer } from '../servers/imgapi-server.js';
import { MantaTestServer } from '../servers/manta-server.js';
import { nodeRsaKey, tempDir } from '../servers/ssh-keys.js';
import { captureLogs } from '../helpers/logs.js';
import { testManifest } from '../helpers/manifests.js';

const STAMP = 'master-20240501T120000Z-g0123abc';
const USER = 'Joyent_Dev';
const BASE = `/${USER}/public/builds/demo`;
const DEST = `${BASE}/${STAMP}`;
const FAST = { attempts: 3, firstDelayMs: 5, maxDelayMs: 20, maxRetryAfterMs: 1000 };
const IMAGE_UUID = '2b1c8d3e-0000-4000-8000-000000000001';

const md5hex = (b: Buffer | string): string => createHash('md5').update(b).digest('hex');

interface Fixture {
  dir: string;
  bits: string;
  home: string;
  sshDir: string;
  key: ReturnType<typeof nodeRsaKey>;
  srv: MantaTestServer;
  files: Record<string, Buffer>;
}

/** The image manifest of the fixture's image; `over` changes it (a conflict with what is published). */
function demoManifest(image: Buffer, over: Record<string, unknown> = {}): Record<string, unknown> {
  return { ...testManifest({ uuid: IMAGE_UUID, name: 'demo', version: '1.0' }, image), ...over };
}

async function fixture(opts: { imageBytes?: number; accountKeys?: string[] } = {}): Promise<Fixture> {
  const dir = await tempDir('buildimage-publish-');
  const bits = join(dir, 'bits');
  const home = join(dir, 'home');
  const sshDir = join(home, '.ssh');
  await mkdir(join(bits, 'demo'), { recursive: true });
  await mkdir(sshDir, { recursive: true });
  const key = nodeRsaKey();
  await writeFile(join(sshDir, 'id_rsa'), key.pem, { mode: 0o600 });
  await writeFile(join(sshDir, 'id_rsa.pub'), key.pubLine + '\n');
  const image = randomBytes(opts.imageBytes ?? 300 * 1024);
  const files: Record<string, Buffer> = {
    'demo/demo-zfs-1.0.zfs.gz': image,
    'demo/demo-zfs-1.0.imgmanifest': Buffer.from(JSON.stringify(demoManifest(image))),
    'demo/latest-build-stamp': Buffer.from(STAMP + '\n'),
  };
  for (const [rel, body] of Object.entries(files)) await writeFile(join(bits, rel), body);
  const srv = await MantaTestServer.start({ [USER]: { keys: opts.accountKeys ?? [key.pubLine] } });
  return { dir, bits, home, sshDir, key, srv, files };
}

async function dispose(f: Fixture): Promise<void> {
  await f.srv.close();
  await rm(f.dir, { recursive: true, force: true });
}

function opts(f: Fixture, o: Partial<PublishOptions> = {}): PublishOptions {
  return {
    branch: 'master',
    name: 'demo',
    uploadDir: '/public/builds/demo',
    bitsDir: f.bits,
    local: false,
    updates: false,
    dryRun: false,
    env: { MANTA_URL: f.srv.url, MANTA_USER: USER },
    sshDir: f.sshDir,
    retry: FAST,
    stallMs: 1000,
    cwd: f.dir,
    ...o,
  };
}

/** Objects under the base dir with their MD5 (what a consumer sees). */
async function published(srv: MantaTestServer): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const p of srv.list(BASE)) {
    const e = srv.entry(p)!;
    out[p] = e.type === 'directory' ? 'dir' : md5hex(await srv.read(p));
  }
  return out;
}

class FakeImporter implements ImgapiImporter {
  readonly description = 'fake IMGAPI';
  readonly planned: ImportRequest[] = [];
  readonly applied: { req: ImportRequest; body: Buffer; url: string }[] = [];
  async plan(req: ImportRequest) {
    this.planned.push(req);
    return { uuid: req.uuid, action: 'import', detail: 'would import' };
  }
  async apply(req: ImportRequest) {
    const url = await req.imageUrl();
    const res = await fetch(url);
    assert.equal(res.status, 200);
    this.applied.push({ req, body: Buffer.from(await res.arrayBuffer()), url });
    return { uuid: req.uuid, action: 'imported', detail: `into ${req.channel}` };
  }
}

describe('publish (integration)', function () {
  this.timeout(120_000);
  const consoles = log.transports.filter((t) => t instanceof winston.transports.Console);
  before(() => consoles.forEach((t) => (t.silent = true)));
  after(() => consoles.forEach((t) => (t.silent = false)));

  describe('to Manta', () => {
    let f: Fixture;
    beforeEach(async () => {
      f = await fixture();
    });
    afterEach(async () => dispose(f));

    it('lays out bits as bits-upload.sh: <base>/<stamp>/<files>, md5sums.txt, <branch>-latest, artifacts.txt', async () => {
      const r = await publish(opts(f));
      assert.equal(r.destination, DEST);
      assert.equal(r.uploaded, 3);
      assert.equal(r.channel, 'dev');
      for (const [rel, body] of Object.entries(f.files)) {
        const e = f.srv.entry(`${DEST}/${rel}`);
        assert.equal(e?.type, 'object', rel);
        assert.deepEqual(await f.srv.read(`${DEST}/${rel}`), body);
      }
      assert.equal((f.srv.entry(`${DEST}/demo/demo-zfs-1.0.zfs.gz`) as { contentType: string }).contentType, 'application/gzip');
      assert.equal((f.srv.entry(`${DEST}/demo/demo-zfs-1.0.imgmanifest`) as { contentType: string }).contentType, 'application/json');
      const sums = (await f.srv.read(`${DEST}/md5sums.txt`)).toString();
      assert.equal(sums, Object.keys(f.files).sort().map((rel) => `${md5hex(f.files[rel])}  ${rel}\n`).join(''));
      // SHA256SUMS beside it, as sha256sum(1) writes it.
      const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
      assert.equal((await f.srv.read(`${DEST}/SHA256SUMS`)).toString(), Object.keys(f.files).sort().map((rel) => `${sha256(f.files[rel])}  ${rel}\n`).join(''));
      assert.equal((f.srv.entry(`${DEST}/SHA256SUMS`) as { contentType: string }).contentType, 'text/plain');
      assert.equal((await f.srv.read(`${BASE}/master-latest`)).toString(), `${DEST}\n`);
      assert.equal((f.srv.entry(`${BASE}/master-latest`) as { contentType: string }).contentType, 'text/plain');
      assert.equal(f.srv.entry(`${BASE}/latest-release`), undefined);
      // Every object PUT carried Content-Length and Content-MD5 (the server checked it).
      for (const p of f.srv.puts()) {
        assert.ok(p.headers['content-length'] !== undefined && p.headers['content-md5'], p.path);
        assert.equal(p.headers['transfer-encoding'], undefined);
      }
      const artifacts = (await readFile(join(f.bits, 'artifacts.txt'), 'utf8')).trim().split('\n');
      assert.deepEqual(artifacts, [
        ...Object.keys(f.files).sort().map((rel) => `${f.srv.url}${DEST}/${rel}`),
        `${f.srv.url}${DEST}/md5sums.txt`,
        `${f.srv.url}${DEST}/SHA256SUMS`,
        `${f.srv.url}${BASE}/master-latest`,
      ]);
      // The default key id is bits-upload.sh's: MD5 of ~/.ssh/id_rsa.pub.
      assert.match(f.srv.requests[0].keyId!, /^\/Joyent_Dev\/keys\/([0-9a-f]{2}:){15}[0-9a-f]{2}$/);
    });

    it('a rerun uploads nothing and moves nothing; a new stamp moves the pointer', async () => {
      await publish(opts(f));
      const before = f.srv.requests.length;
      const r = await publish(opts(f, { env: { MANTA_URL: f.srv.url, MANTA_USER: USER, MANTA_KEY_ID: sha256Fingerprint(parsePublicKeyLine(f.key.pubLine).blob) } }));
      assert.equal(r.uploaded, 0);
      assert.equal(r.skipped, 3);
      const again = f.srv.requests.slice(before);
      assert.deepEqual(again.filter((q) => q.method !== 'HEAD'), [], 'only HEADs on a rerun');
      const next = 'master-20240502T120000Z-g4567def';
      await publish(opts(f, { stamp: next }));
      assert.equal((await f.srv.read(`${BASE}/master-latest`)).toString(), `${BASE}/${next}\n`);
    });

    it('release branches also move latest-release; a try branch names its own pointer', async () => {
      const r = await publish(opts(f, { branch: 'release-20240501' }));
      assert.equal(r.channel, 'staging');
      assert.equal((await f.srv.read(`${BASE}/release-20240501-latest`)).toString(), `${DEST}\n`);
      assert.equal((await f.srv.read(`${BASE}/latest-release`)).toString(), `${DEST}\n`);
      const t = await publish(opts(f, { tryBranch: 'TRITON-42' }));
      assert.equal(t.channel, 'experimental');
      assert.equal((await f.srv.read(`${BASE}/TRITON-42-latest`)).toString(), `${DEST}\n`);
      assert.equal(f.srv.entry(`${BASE}/master-latest`), undefined);
    });

    it('an object already there with another MD5 fails before anything is uploaded', async () => {
      await f.srv.seed(`${DEST}/demo/latest-build-stamp`, 'something else\n');
      await assert.rejects(publish(opts(f)), (e: PublishError) => {
        assert.equal(e.exitCode, 3);
        assert.match(e.message, new RegExp(`${DEST}/demo/latest-build-stamp exists with MD5 [0-9a-f]{32}, local ${md5hex(f.files['demo/latest-build-stamp'])}`));
        assert.match(e.hint!, /never overwritten/);
        return true;
      });
      assert.deepEqual(f.srv.puts(), [], 'no object written');
      assert.equal(f.srv.entry(`${BASE}/master-latest`), undefined);
    });

    it('refuses -dirty stamps unless BITS_UPLOAD_ALLOW_DIRTY is set', async () => {
      const dirty = `${STAMP}-dirty`;
      await assert.rejects(publish(opts(f, { stamp: dirty })), (e: UsageError) => e.exitCode === 2 && /marked dirty/.test(e.message) && /BITS_UPLOAD_ALLOW_DIRTY/.test(e.hint!));
      assert.equal(f.srv.requests.length, 0);
      const r = await publish(opts(f, { stamp: dirty, env: { MANTA_URL: f.srv.url, MANTA_USER: USER, BITS_UPLOAD_ALLOW_DIRTY: '1' } }));
      assert.equal(r.destination, `${BASE}/${dirty}`);
    });

    it('a key Manta does not know fails with one clear line, asked once (no retries)', async () => {
      const other = nodeRsaKey();
      await writeFile(join(f.sshDir, 'id_rsa'), other.pem);
      await writeFile(join(f.sshDir, 'id_rsa.pub'), other.pubLine);
      await assert.rejects(publish(opts(f)), (e: PublishError) => {
        assert.equal(e.exitCode, 3);
        assert.match(e.message, /^Manta HEAD \/Joyent_Dev\/public\/builds(\/demo)?.*: 403/);
        assert.ok(!e.message.includes('\n'));
        assert.match(e.hint!, /MANTA_USER.*key .*from .*id_rsa/);
        return true;
      });
      assert.equal(f.srv.requests.length, 1);
      f.srv.clearFaults();
    });

    it('401/403 on a later call stops at once; a HEAD error is never taken for "missing"', async () => {
      f.srv.fault({ kind: 'status', status: 401, code: 'InvalidAlgorithm', method: 'PUT', path: `${DEST}/demo/demo-zfs-1.0.zfs.gz` });
      await assert.rejects(publish(opts(f)), /Manta PUT .*demo-zfs-1\.0\.zfs\.gz: 401 InvalidAlgorithm/);
      assert.equal(f.srv.requests.filter((r) => r.path.endsWith('.zfs.gz') && r.method === 'PUT').length, 1);

      f.srv.clearFaults();
      const g = await fixture();
      try {
        await publish(opts(g, { dryRun: true }));
        g.srv.fault({ kind: 'status', status: 500, code: 'InternalError', method: 'HEAD', path: `${DEST}/demo/latest-build-stamp`, times: 100 });
        // The stamp dir must exist for the file HEADs to happen.
        await g.srv.seed(`${DEST}/demo/demo-zfs-1.0.zfs.gz`, g.files['demo/demo-zfs-1.0.zfs.gz']);
        await assert.rejects(publish(opts(g)), (e: PublishError) => e.exitCode === 3 && /^Manta HEAD .*latest-build-stamp: 500 Internal Server Error/.test(e.message));
        assert.deepEqual(g.srv.puts(), [], 'nothing uploaded when a HEAD failed');
        g.srv.clearFaults();
        g.srv.fault({ kind: 'reset', method: 'HEAD', path: `${DEST}/demo/latest-build-stamp`, times: 100 });
        await assert.rejects(publish(opts(g)), /HEAD .*latest-build-stamp: ECONNRESET/);
        assert.deepEqual(g.srv.puts(), []);
      } finally {
        await dispose(g);
      }
    });

    it('rides out transient faults (500, 503+Retry-After, 409, reset mid-upload, stall, lost 204), storing each object once', async () => {
      const img = `${DEST}/demo/demo-zfs-1.0.zfs.gz`;
      f.srv.fault({ kind: 'status', status: 500, code: 'InternalError', method: 'PUT', path: `${BASE}` });
      f.srv.fault({ kind: 'status', status: 503, code: 'ServiceUnavailable', retryAfter: 0, method: 'HEAD' });
      f.srv.fault({ kind: 'reset-mid-upload', afterBytes: 100 * 1024, method: 'PUT', path: img });
      f.srv.fault({ kind: 'stall', afterBytes: 200 * 1024, method: 'PUT', path: img });
      f.srv.fault({ kind: 'status', status: 409, code: 'ConcurrentRequest', method: 'PUT', path: `${DEST}/md5sums.txt` });
      f.srv.fault({ kind: 'commit-then-reset', method: 'PUT', path: `${BASE}/master-latest` });
      const logs = captureLogs();
      try {
        await publish(opts(f, { retry: { ...FAST, attempts: 4 } }));
      } finally {
        logs.stop();
      }
      for (const p of [...Object.keys(f.files).map((r) => `${DEST}/${r}`), `${DEST}/md5sums.txt`, `${BASE}/master-latest`]) {
        assert.equal(f.srv.puts(p).length, 1, `${p} stored once`);
      }
      assert.equal(f.srv.requests.filter((r) => r.method === 'PUT' && r.path === img).length, 3);
      assert.ok(logs.lines.some((l) => /WARN: Manta PUT .*zfs\.gz: .*(ECONNRESET|EPIPE).*retrying in/.test(l)), 'retries are logged');
      assert.ok(logs.lines.some((l) => /Stalled: no progress/.test(l)));
    });

    it('reruns after a failure at every write step finish the job, never storing anything twice', async () => {
      // The clean run's writes, in order: mkdirs, objects, md5sums.txt, SHA256SUMS, pointer.
      const clean = await fixture();
      let writes: string[];
      let want: Record<string, string>;
      try {
        await publish(opts(clean));
        writes = clean.srv.requests.filter((r) => r.method === 'PUT').map((r) => r.path);
        want = await published(clean.srv);
      } finally {
        await dispose(clean);
      }
      assert.equal(writes.length, 10);
      for (const [i, path] of writes.entries()) {
        for (const kind of ['reset', 'commit-then-reset'] as const) {
          const g = await fixture();
          try {
            g.srv.fault({ kind, method: 'PUT', path, skip: writes.slice(0, i).filter((w) => w === path).length });
            await assert.rejects(publish(opts(g, { retry: { ...FAST, attempts: 1 } })), PublishError, `step ${i} ${kind} fails`);
            const r = await publish(opts(g));
            assert.ok(r.uploaded + r.skipped === 3);
            const got = await published(g.srv);
            assert.deepEqual(Object.keys(got), Object.keys(want), `step ${i} (${path}) ${kind}: same layout`);
            for (const [rel, body] of Object.entries(g.files)) assert.equal(got[`${DEST}/${rel}`], md5hex(body));
            for (const p of Object.keys(got).filter((p) => got[p] !== 'dir')) {
              assert.equal(g.srv.puts(p).length, 1, `step ${i} (${path}) ${kind}: ${p} stored once`);
            }
          } finally {
            await dispose(g);
          }
        }
      }
    });

    it('a publish killed with SIGKILL mid-upload is finished by a rerun without re-uploading', async function () {
      const env = { HOME: f.home, MANTA_URL: f.srv.url, MANTA_USER: USER, SSH_AUTH_SOCK: '', MANTA_KEY_ID: '' };
      const img = `${DEST}/demo/demo-zfs-1.0.zfs.gz`;
      f.srv.fault({ kind: 'stall', afterBytes: 64 * 1024, method: 'PUT', path: img });
      const child = execa(BIN, ['publish', '-b', 'master', '-n', 'demo', '-d', '/public/builds/demo', '-D', f.bits], {
        cwd: f.dir,
        env,
        reject: false,
        stdin: 'ignore',
      });
      const t0 = Date.now();
      while (!f.srv.requests.some((r) => r.path === img && r.fault === 'stall') && Date.now() - t0 < 30_000) await sleep(20);
      const stalled = f.srv.requests.find((r) => r.path === img && r.fault === 'stall');
      assert.ok(stalled, 'upload reached the stall');
      await sleep(100);
      child.kill('SIGKILL');
      await child;
      assert.equal(f.srv.entry(img), undefined, 'the killed upload was not stored');
      const stored = f.srv.puts().map((p) => p.path);
      assert.ok(stored.includes(`${DEST}/demo/demo-zfs-1.0.imgmanifest`), 'the first file was stored before the kill');
      const r = await cli(['publish', '-b', 'master', '-n', 'demo', '-d', '/public/builds/demo', '-D', f.bits], { cwd: f.dir, env, timeoutMs: 60_000 });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /published demo master-20240501T120000Z-g0123abc .*: 2 uploaded .* 1 already there; master-latest moved/);
      for (const rel of Object.keys(f.files)) assert.equal(f.srv.puts(`${DEST}/${rel}`).length, 1, rel);
    });

    it('SIGTERM mid-upload stops at once with exit 143; a rerun finishes', async () => {
      const env = { HOME: f.home, MANTA_URL: f.srv.url, MANTA_USER: USER, SSH_AUTH_SOCK: '', MANTA_KEY_ID: '' };
      const img = `${DEST}/demo/demo-zfs-1.0.zfs.gz`;
      f.srv.fault({ kind: 'stall', afterBytes: 64 * 1024, method: 'PUT', path: img });
      const args = ['publish', '-b', 'master', '-n', 'demo', '-d', '/public/builds/demo', '-D', f.bits];
      const child = execa(BIN, args, { cwd: f.dir, env, reject: false, stdin: 'ignore' });
      const t0 = Date.now();
      while (!f.srv.requests.some((r) => r.path === img && r.fault === 'stall') && Date.now() - t0 < 30_000) await sleep(20);
      const t1 = Date.now();
      child.kill('SIGTERM');
      const r = await child;
      assert.ok(Date.now() - t1 < 5000, 'stopped promptly');
      assert.equal(r.exitCode, 143, String(r.stderr));
      assert.deepEqual(String(r.stderr).split('\n').filter((l) => l.startsWith('buildimage: error:')), ['buildimage: error: interrupted by SIGTERM']);
      assert.equal(f.srv.entry(`${BASE}/master-latest`), undefined);
      const again = await cli(args, { cwd: f.dir, env, timeoutMs: 60_000 });
      assert.equal(again.code, 0, again.stderr);
      for (const rel of Object.keys(f.files)) assert.equal(f.srv.puts(`${DEST}/${rel}`).length, 1, rel);
    });

    it('logs bytes and rate while uploading, and no key, signature or signed-URL query in any line', async () => {
      const g = await fixture({ imageBytes: 4 * 1024 * 1024 });
      const importer = new FakeImporter();
      const logs = captureLogs();
      // The same records as --log-format json writes them.
      const records: Array<Record<string, unknown>> = [];
      const json = new winston.transports.Stream({
        stream: new Writable({ write: (c, _e, cb) => cb(void records.push(JSON.parse(String(c)))) }),
        level: 'debug',
        format: jsonFormat,
      });
      log.add(json);
      let err: unknown;
      try {
        g.srv.fault({ kind: 'status', status: 500, code: 'InternalError', method: 'PUT', path: `${DEST}/demo/latest-build-stamp` });
        await publish(opts(g, { updates: true, importer, progress: { everyMs: 0, live: false } }));
        // And a refused key, whose error text goes to the user.
        await writeFile(join(g.sshDir, 'id_rsa'), nodeRsaKey().pem);
        await rm(join(g.sshDir, 'id_rsa.pub'));
        await publish(opts(g, { env: { MANTA_URL: g.srv.url, MANTA_USER: USER, MANTA_KEY_ID: 'MD5:' + '00:'.repeat(15) + '00' } })).catch((e) => (err = e));
      } finally {
        logs.stop();
        log.remove(json);
        await dispose(g);
      }
      const upload = records.find((r) => r.progress === `${DEST}/demo/demo-zfs-1.0.zfs.gz`);
      assert.ok(upload, 'upload progress as json fields');
      assert.equal(upload.unit, 'bytes');
      assert.equal(upload.total, 4 * 1024 * 1024);
      assert.equal(typeof upload.count, 'number');
      assert.ok(logs.lines.some((l) => /\] \/Joyent_Dev\/public\/builds\/demo\/[^ ]+\/demo-zfs-1\.0\.zfs\.gz: [\d.]+ [kM]?B of 4\.2 MB \(\d+%\), [\d.]+ [kM]?B\/s/.test(l)), 'progress lines');
      assert.equal(importer.applied.length, 1);
      const url = importer.applied[0].url;
      assert.deepEqual(importer.applied[0].body, g.files['demo/demo-zfs-1.0.zfs.gz']);
      const secrets = [
        ...g.key.pem.split('\n').filter((l) => l.length > 20 && !l.startsWith('-----')),
        ...g.srv.authorizations.map((a) => /signature="([^"]+)"/.exec(a)![1]),
        new URL(url).searchParams.get('signature')!,
        new URL(url).search,
        'Signature keyId',
        'signature=',
        'BEGIN RSA PRIVATE KEY',
      ];
      const text = logs.lines.join('') + String((err as Error)?.message) + String((err as PublishError)?.hint);
      for (const s of secrets) assert.ok(!text.includes(s), `log must not contain ${s.slice(0, 20)}…`);
      assert.ok(logs.lines.length > 10);
    });

    it('-p: imports each image through the importer after the bits are in Manta (dry run only plans)', async () => {
      const importer = new FakeImporter();
      const dry = await publish(opts(f, { updates: true, importer, dryRun: true }));
      assert.equal(importer.planned.length, 1);
      assert.equal(importer.applied.length, 0);
      assert.deepEqual(dry.steps.filter((s) => s.op === 'import').map((s) => (s as { uuid: string }).uuid), [IMAGE_UUID]);
      await publish(opts(f, { updates: true, importer }));
      const req = importer.applied[0].req;
      assert.equal(req.uuid, IMAGE_UUID);
      assert.equal(req.imagePath, `${DEST}/demo/demo-zfs-1.0.zfs.gz`);
      assert.equal(req.channel, 'dev');
      assert.equal(req.manifestFile, join(f.bits, 'demo/demo-zfs-1.0.imgmanifest'));
    });

    it('-p checks the updates IMGAPI before anything is uploaded: a server that is down is one line, exit 3', async () => {
      const env = { MANTA_URL: f.srv.url, MANTA_USER: USER, UPDATES_IMGADM_URL: 'http://127.0.0.1:9' };
      await assert.rejects(publish(opts(f, { updates: true, env })), (e: PublishError) => e.exitCode === 3 && /^IMGAPI http:\/\/127\.0\.0\.1:9: ping: connection refused/.test(e.message));
      assert.equal(f.srv.requests.length, 0);
    });

    it('-p with a manifest that has no image beside it fails before uploading anything', async () => {
      await rm(join(f.bits, 'demo/demo-zfs-1.0.zfs.gz'));
      await assert.rejects(publish(opts(f, { updates: true, importer: new FakeImporter() })), /cannot import demo\/demo-zfs-1\.0\.imgmanifest into updates IMGAPI: no image file beside it/);
      assert.equal(f.srv.requests.length, 0);
    });

    it('--dry-run only reads: it lists each mkdir, upload, skip, conflict, write and pointer', async () => {
      const r = await publish(opts(f, { dryRun: true }));
      assert.ok(f.srv.requests.every((q) => q.method === 'HEAD'));
      assert.deepEqual(
        r.steps.map((s) => `${s.op} ${s.path}`),
        [
          `mkdir /${USER}/public/builds`,
          `mkdir ${BASE}`,
          `mkdir ${DEST}`,
          `mkdir ${DEST}/demo`,
          ...Object.keys(f.files).sort().map((rel) => `upload ${DEST}/${rel}`),
          `put ${DEST}/md5sums.txt`,
          `put ${DEST}/SHA256SUMS`,
          `pointer ${BASE}/master-latest`,
          `artifacts ${join(f.bits, 'artifacts.txt')}`,
        ],
      );
      await assert.rejects(stat(join(f.bits, 'artifacts.txt')));
      // After a real publish and a local change: a skip and a conflict.
      await publish(opts(f));
      await writeFile(join(f.bits, 'demo/demo-zfs-1.0.imgmanifest'), JSON.stringify(demoManifest(f.files['demo/demo-zfs-1.0.zfs.gz'], { description: 'changed' })));
      const r2 = await publish(opts(f, { dryRun: true }));
      assert.equal(r2.conflicts, 1);
      assert.deepEqual(r2.steps.filter((s) => s.op === 'skip' || s.op === 'conflict').map((s) => s.op), ['conflict', 'skip', 'skip']);
    });

    it('--state stages a finished build\'s outputs into <bits>/<name>/ (hard link) and publishes them', async () => {
      const out = join(f.dir, 'out');
      await mkdir(out);
      await rm(join(f.bits, 'demo'), { recursive: true });
      const version = '20240501T120000Z';
      const outputs = {
        image: join(out, `demo-zfs-${version}.zfs.gz`),
        manifest: join(out, `demo-zfs-${version}.imgmanifest`),
        packages: join(out, `demo-zfs-${version}.packages.json`),
        buildInfo: join(out, `demo-zfs-${version}.build-info.json`),
      };
      const imageBytes = randomBytes(50_000);
      await writeFile(outputs.image, imageBytes);
      await writeFile(outputs.manifest, JSON.stringify(testManifest({ uuid: randomUUID(), name: 'demo', version }, imageBytes)));
      await writeFile(outputs.packages, '[]');
      await writeFile(outputs.buildInfo, '{}');
      const statePath = join(f.dir, 'state.json');
      await writeFile(statePath, JSON.stringify(sealedState(outputs, version, out)));
      const r = await publish(opts(f, { state: statePath }));
      assert.equal(r.name, 'demo');
      assert.equal(r.stamp, version);
      assert.deepEqual(r.steps.filter((s) => s.op === 'stage').length, 4, 'every output file is staged');
      assert.equal((await stat(join(f.bits, 'demo', `demo-zfs-${version}.zfs.gz`))).ino, (await stat(outputs.image)).ino);
      assert.equal(f.srv.entry(`${BASE}/${version}/demo/demo-zfs-${version}.zfs.gz`)?.type, 'object');
      const again = await publish(opts(f, { state: statePath }));
      assert.equal(again.steps.filter((s) => s.op === 'stage').length, 0);
      assert.equal(again.uploaded, 0);

      const unsealed = sealedState(outputs, version, out);
      unsealed.completed = ['prepare'];
      await writeFile(statePath, JSON.stringify(unsealed));
      await assert.rejects(publish(opts(f, { state: statePath })), (e: UsageError) => e.exitCode === 2 && /has not finished/.test(e.message));
    });
  });

  describe('-L (local directory)', () => {
    let f: Fixture;
    let out: string;
    beforeEach(async () => {
      f = await fixture();
      out = join(f.dir, 'published');
    });
    afterEach(async () => dispose(f));
    const lopts = (o: Partial<PublishOptions> = {}): PublishOptions => opts(f, { local: true, uploadDir: out, env: {}, ...o });

    it('writes the same layout with relative symlink pointers, and reruns copy nothing', async () => {
      const r = await publish(lopts({ branch: 'release-20240501' }));
      assert.equal(r.store.kind, 'local');
      for (const [rel, body] of Object.entries(f.files)) assert.deepEqual(await readFile(join(out, STAMP, rel)), body);
      assert.equal(await readlink(join(out, 'release-20240501-latest')), STAMP);
      assert.equal(await readlink(join(out, 'latest-release')), STAMP);
      assert.match(await readFile(join(out, STAMP, 'md5sums.txt'), 'utf8'), /^[0-9a-f]{32} {2}demo\/demo-zfs-1\.0\.imgmanifest\n/);
      const mtime = (await stat(join(out, STAMP, 'demo/demo-zfs-1.0.zfs.gz'))).mtimeMs;
      const again = await publish(lopts({ branch: 'release-20240501' }));
      assert.equal(again.uploaded, 0);
      assert.equal((await stat(join(out, STAMP, 'demo/demo-zfs-1.0.zfs.gz'))).mtimeMs, mtime);
      assert.ok(again.steps.every((s) => s.op !== 'pointer' || s.unchanged));
      await publish(lopts({ branch: 'release-20240501', stamp: 'release-20240501-20240502T000000Z-g1111111' }));
      assert.equal(await readlink(join(out, 'latest-release')), 'release-20240501-20240502T000000Z-g1111111');
    });

    it('-d may be a symlink to the real directory (an NFS mount)', async () => {
      const real = join(f.dir, 'nfs');
      await mkdir(real);
      await symlink(real, out);
      await publish(lopts());
      assert.equal(await readlink(join(real, 'master-latest')), STAMP);
      assert.deepEqual(await readFile(join(real, STAMP, 'demo/latest-build-stamp')), f.files['demo/latest-build-stamp']);
    });

    it('a copy killed halfway is redone; a different file already there fails', async () => {
      await mkdir(join(out, STAMP, 'demo'), { recursive: true });
      await writeFile(join(out, STAMP, 'demo', 'demo-zfs-1.0.zfs.gz.partial-99999'), 'half');
      await publish(lopts());
      await assert.rejects(lstat(join(out, STAMP, 'demo', 'demo-zfs-1.0.zfs.gz.partial-99999')));
      assert.deepEqual(await readFile(join(out, STAMP, 'demo/demo-zfs-1.0.zfs.gz')), f.files['demo/demo-zfs-1.0.zfs.gz']);
      await writeFile(join(out, STAMP, 'demo/latest-build-stamp'), 'tampered\n');
      await assert.rejects(publish(lopts()), (e: PublishError) => e.exitCode === 3 && /latest-build-stamp exists with MD5/.test(e.message));
    });
  });

  describe('the command', () => {
    let f: Fixture;
    before(async () => {
      f = await fixture();
    });
    after(async () => dispose(f));
    const env = (): Record<string, string> => ({ HOME: f.home, MANTA_URL: f.srv.url, MANTA_USER: USER, SSH_AUTH_SOCK: '', MANTA_KEY_ID: '' });

    it('usage errors are one line and exit 2', async () => {
      for (const [args, msg] of [
        [['-n', 'demo', '-d', 'x'], /missing -b \(branch\)/],
        [['-b', 'master', '-n', 'demo', '-d', '/tmp/x', '-L', '-p'], /-p needs the images in Manta and cannot be used with -L/],
        [['-b', 'feature/x', '-n', 'demo', '-d', 'x'], /branch "feature\/x" is not usable in a path/],
        [['-b', 'master', '-n', 'demo', '-d', 'x', '-t', `${STAMP}-dirty`], /marked dirty/],
        [['-b', 'master', '-n', 'demo', '-d', 'x', '--bits-dir=' + join(f.dir, 'nope')], /bits directory .*nope does not exist/],
        [['-b', 'master', '-n', 'demo', '-d', 'x', '--channel', 'Bad!'], /not a valid IMGAPI channel/],
      ] as const) {
        const r = await cli(['publish', ...(args.some((a) => a.startsWith('--bits-dir')) ? [] : ['-D', f.bits]), ...args], { cwd: f.dir, env: env(), timeoutMs: 60_000 });
        assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
        const lines = errorLines(r);
        assert.equal(lines.length, 1, r.stderr);
        assert.match(lines[0], msg);
      }
    });

    it('--dry-run prints the plan; --json returns the result; -p with a refused IMGAPI key fails with exit 3 before publishing', async () => {
      const dry = await cli(['publish', '-b', 'master', '-n', 'demo', '-d', '/public/builds/demo', '-D', f.bits, '--dry-run'], { cwd: f.dir, env: env(), timeoutMs: 60_000 });
      assert.equal(dry.code, 0, dry.stderr);
      assert.match(dry.stdout, /^plan: publish demo master-20240501T120000Z-g0123abc \(branch master, channel dev\) to \/Joyent_Dev\/public\/builds\/demo\//);
      assert.match(dry.stdout, /\n {2}upload {4}\/Joyent_Dev\/public\/builds\/demo\/.*\/demo\/demo-zfs-1\.0\.zfs\.gz \(307\.2 kB\)\n/);
      assert.match(dry.stdout, /\n {2}pointer {3}\/Joyent_Dev\/public\/builds\/demo\/master-latest → /);
      assert.match(dry.stdout, /dry run: 3 to upload \(307\.\d kB\), 0 already published; nothing was changed$/);
      assert.ok(f.srv.requests.every((r) => r.method === 'HEAD'));

      const js = await cli(['publish', '-b', 'master', '-n', 'demo', '-d', '/public/builds/demo', '-D', f.bits, '--json'], { cwd: f.dir, env: env(), timeoutMs: 60_000 });
      assert.equal(js.code, 0, js.stderr);
      const res = JSON.parse(js.stdout) as PublishResult;
      assert.equal(res.ok, true);
      assert.equal(res.uploaded, 3);
      assert.equal(res.store.kind, 'manta');

      // A dry run that predicts a conflict exits as the real run would (3), after printing the plan.
      await writeFile(join(f.bits, 'demo/demo-zfs-1.0.imgmanifest'), JSON.stringify(demoManifest(f.files['demo/demo-zfs-1.0.zfs.gz'], { description: 'changed' })));
      const conflicted = await cli(['publish', '-b', 'master', '-n', 'demo', '-d', '/public/builds/demo', '-D', f.bits, '--dry-run'], { cwd: f.dir, env: env(), timeoutMs: 60_000 });
      assert.equal(conflicted.code, 3, conflicted.stdout + conflicted.stderr);
      assert.match(conflicted.stdout, /1 conflict \(publishing would fail\); nothing was changed$/);
      const real = await cli(['publish', '-b', 'master', '-n', 'demo', '-d', '/public/builds/demo', '-D', f.bits], { cwd: f.dir, env: env(), timeoutMs: 60_000 });
      assert.equal(real.code, 3, 'the real run fails the same way');
      await writeFile(join(f.bits, 'demo/demo-zfs-1.0.imgmanifest'), f.files['demo/demo-zfs-1.0.imgmanifest']);

      const imgapi = await startImgapiServer();
      mountAdminApi(imgapi, { authkeys: { mg: [nodeRsaKey().pubLine] } });
      const before = f.srv.requests.length;
      try {
        const p = await cli(['publish', '-b', 'master', '-n', 'demo', '-d', '/public/builds/demo', '-D', f.bits, '-p'], { cwd: f.dir, env: { ...env(), UPDATES_IMGADM_URL: imgapi.url }, timeoutMs: 60_000 });
        assert.equal(p.code, 3, p.stderr);
        const lines = errorLines(p);
        assert.equal(lines.length, 1, p.stderr);
        assert.match(lines[0], /^buildimage: error: IMGAPI http:\/\/127\.0\.0\.1:\d+: ping: 401 UnauthorizedError: Unauthorized \(check UPDATES_IMGADM_USER and UPDATES_IMGADM_IDENTITY: IMGAPI must have key ([0-9a-f]{2}:){15}[0-9a-f]{2} from \S+ for user "mg"\)$/);
        assert.equal(f.srv.requests.length, before, 'nothing sent to Manta');
      } finally {
        await imgapi.close();
      }
    });

    it('a refused key is one line, exit 3', async () => {
      const other = nodeRsaKey();
      const home = join(f.dir, 'home2');
      await mkdir(join(home, '.ssh'), { recursive: true });
      await writeFile(join(home, '.ssh', 'id_rsa'), other.pem);
      await writeFile(join(home, '.ssh', 'id_rsa.pub'), other.pubLine);
      const r = await cli(['publish', '-b', 'master', '-n', 'demo', '-d', '/public/builds/demo', '-D', f.bits], { cwd: f.dir, env: { ...env(), HOME: home }, timeoutMs: 60_000 });
      assert.equal(r.code, 3, r.stderr);
      const lines = errorLines(r);
      assert.equal(lines.length, 1);
      assert.match(lines[0], /^buildimage: error: Manta HEAD \/Joyent_Dev\/public\/builds\/demo: 403 Forbidden \(check MANTA_USER and MANTA_SUBUSER: key ([0-9a-f]{2}:){15}[0-9a-f]{2} from .*home2\/\.ssh\/id_rsa must be one of Joyent_Dev's keys at http:\/\/127\.0\.0\.1:\d+\)$/);
    });

    it('-L needs no server (the README demo)', async () => {
      const out = join(f.dir, 'local-out');
      const r = await cli(['publish', '-L', '-d', out, '-b', 'master', '-n', 'demo', '-D', f.bits], { cwd: f.dir, env: { HOME: f.home }, timeoutMs: 60_000 });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(await readlink(join(out, 'master-latest')), STAMP);
    });
  });

  describe('checks before the first upload (the command)', () => {
    const NEXT = 'master-20240502T120000Z-g4567def';
    let f: Fixture;
    beforeEach(async () => {
      f = await fixture();
      // Published once: master-latest points at STAMP, and must stay there.
      await publish(opts(f));
    });
    afterEach(async () => dispose(f));
    const env = (): Record<string, string> => ({ HOME: f.home, MANTA_URL: f.srv.url, MANTA_USER: USER, SSH_AUTH_SOCK: '', MANTA_KEY_ID: '' });
    const run = (extra: string[] = []) =>
      cli(['publish', '-b', 'master', '-n', 'demo', '-t', NEXT, '-d', '/public/builds/demo', '-D', f.bits, ...extra], { cwd: f.dir, env: env(), timeoutMs: 60_000 });

    /** Both the dry run and the real run: `re` as the one line, exit 2, no plan printed, Manta as it was, master-latest unchanged. */
    async function refusedBoth(re: RegExp): Promise<void> {
      const before = await published(f.srv);
      const puts = f.srv.puts().length;
      for (const extra of [['--dry-run'], []]) {
        const r = await run(extra);
        assert.equal(r.code, 2, `${extra.join(' ')}: ${r.stdout}${r.stderr}`);
        const lines = errorLines(r);
        assert.equal(lines.length, 1, r.stderr);
        assert.match(lines[0], re);
        assert.doesNotMatch(lines[0], /rerun/, 'a rerun fails the same way: no rerun hint');
        assert.equal(r.stdout, '', 'no plan: the run stopped before it');
      }
      assert.equal(f.srv.puts().length, puts, 'nothing uploaded');
      assert.deepEqual(await published(f.srv), before, 'Manta holds nothing new');
      assert.equal((await f.srv.read(`${BASE}/master-latest`)).toString(), `${DEST}\n`, 'master-latest unchanged');
    }

    it('an invalid image manifest ("type":"zone") fails --dry-run and the real run: one line naming the file and field, exit 2', async () => {
      const image = f.files['demo/demo-zfs-1.0.zfs.gz'];
      await writeFile(join(f.bits, 'demo/demo-zfs-1.0.imgmanifest'), JSON.stringify(demoManifest(image, { type: 'zone' })));
      await refusedBoth(/^buildimage: error: image manifest demo\/demo-zfs-1\.0\.imgmanifest: "type" must be one of zone-dataset, .*; got "zone" \(IMGAPI would refuse it/);
      // Not JSON at all, and a required field missing: the same.
      await writeFile(join(f.bits, 'demo/demo-zfs-1.0.imgmanifest'), '{"uuid":');
      await refusedBoth(/^buildimage: error: image manifest demo\/demo-zfs-1\.0\.imgmanifest is not valid JSON/);
      const { os: _os, ...noOs } = demoManifest(image);
      await writeFile(join(f.bits, 'demo/demo-zfs-1.0.imgmanifest'), JSON.stringify(noOs));
      await refusedBoth(/image manifest demo\/demo-zfs-1\.0\.imgmanifest: "os" is missing/);
    });

    it("an image whose bytes do not match its manifest's files[0] (sha1, size) fails before anything is uploaded, exit 2", async () => {
      const image = f.files['demo/demo-zfs-1.0.zfs.gz'];
      const other = randomBytes(image.length);
      await writeFile(join(f.bits, 'demo/demo-zfs-1.0.zfs.gz'), other);
      await refusedBoth(
        new RegExp(`image manifest demo/demo-zfs-1\\.0\\.imgmanifest: "files\\[0\\]\\.sha1" is ${createHash('sha1').update(image).digest('hex')}, but demo/demo-zfs-1\\.0\\.zfs\\.gz has sha1 ${createHash('sha1').update(other).digest('hex')} \\(the manifest and the image come from different builds`),
      );
      await writeFile(join(f.bits, 'demo/demo-zfs-1.0.zfs.gz'), Buffer.concat([image, Buffer.from('x')]));
      await refusedBoth(new RegExp(`"files\\[0\\]\\.size" is ${image.length}, but demo/demo-zfs-1\\.0\\.zfs\\.gz is ${image.length + 1} bytes`));
    });

    it('"rerun to continue" only where a rerun can help: not after a refusal that comes back the same', async () => {
      // 507 (out of quota) is not transient: asked once, no rerun hint.
      f.srv.fault({ kind: 'status', status: 507, code: 'NotEnoughSpace', method: 'PUT', path: `${BASE}/${NEXT}/demo/demo-zfs-1.0.zfs.gz`, times: 100 });
      const r = await run();
      assert.equal(r.code, 3, r.stderr);
      const lines = errorLines(r);
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0], /PUT .*demo-zfs-1\.0\.zfs\.gz: 507 NotEnoughSpace.*\(not a passing fault: a rerun would fail the same way\)$/);
      assert.doesNotMatch(lines[0], /rerun to continue/);
      // A 503 that outlasts the retries: a rerun may well go through.
      f.srv.clearFaults();
      f.srv.fault({ kind: 'status', status: 503, code: 'ServiceUnavailable', retryAfter: 0, method: 'PUT', path: `${BASE}/${NEXT}/demo/demo-zfs-1.0.zfs.gz`, times: 100 });
      await assert.rejects(publish(opts(f, { stamp: NEXT })), (e: PublishError) => {
        assert.equal(e.exitCode, 3);
        assert.match(e.hint!, /^rerun to continue: what is already published is skipped$/);
        return true;
      });
    });
  });

  describe('-L says copy, not upload (the command)', () => {
    let f: Fixture;
    before(async () => {
      f = await fixture();
    });
    after(async () => dispose(f));

    it('the plan, the log and the summary say copy / copying / copied', async () => {
      const out = join(f.dir, 'copied');
      const args = ['publish', '-L', '-d', out, '-b', 'master', '-n', 'demo', '-D', f.bits];
      const dry = await cli([...args, '--dry-run'], { cwd: f.dir, env: { HOME: f.home }, timeoutMs: 60_000 });
      assert.equal(dry.code, 0, dry.stderr);
      assert.match(dry.stdout, new RegExp(`\\n {2}copy {6}${out}/${STAMP}/demo/demo-zfs-1\\.0\\.zfs\\.gz \\(307\\.2 kB\\)\\n`));
      assert.match(dry.stdout, /dry run: 3 to copy \(307\.\d kB\), 0 already published; nothing was changed$/);
      const r = await cli(args, { cwd: f.dir, env: { HOME: f.home }, timeoutMs: 60_000 });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /\] copying demo\/demo-zfs-1\.0\.zfs\.gz \(307\.2 kB\) to /);
      assert.match(r.stderr, /\] copied demo\/demo-zfs-1\.0\.zfs\.gz: 307\.2 kB in /);
      assert.match(r.stdout, new RegExp(`^published demo ${STAMP} to ${out}/${STAMP}: 3 copied \\(307\\.\\d kB\\), 0 already there; master-latest moved \\(`));
      for (const text of [dry.stdout, dry.stderr, r.stdout, r.stderr]) assert.doesNotMatch(text, /upload/i, text);
    });
  });
});

function sealedState(outputs: { image: string; manifest: string; packages: string; buildInfo: string }, version: string, outDir: string) {
  const def: BuildDefinition = {
    imageUuid: '41bd4100-eb86-409a-85b0-e649aadf6f62',
    protoDir: '/tmp/proto',
    manifest: { name: 'demo', version },
    packages: [],
    prefix: 'demo-zfs',
    motd: false,
    audit: false,
    upgrade: false,
    source: 'https://updates.tritondatacenter.com',
    datasetRoot: 'zones/test/data',
    outputDir: outDir,
    compression: 'gzip',
    workDir: '/var/tmp/buildimage',
  };
  const s = newState(def);
  s.completed = ['prepare', 'assemble', 'pkgadd', 'seal'];
  s.outputs = outputs;
  return s;
}
