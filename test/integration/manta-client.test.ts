/**
 * The Manta client against the local Manta server, and the server against
 * the official node-manta client (so the server speaks real Manta).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { rm, truncate, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { promisify } from 'node:util';
import { keyObjectSigner, type Signer } from '../../src/http/signature.js';
import { parsePrivateKey } from '../../src/http/keys.js';
import { MantaClient, MantaError } from '../../src/manta/client.js';
import { presignUrl } from '../../src/manta/presign.js';
import { MantaTestServer } from '../servers/manta-server.js';
import { BITS_BASE, BITS_USER, mantaBits, type MantaBits } from '../servers/bits.js';
import { cli, errorLines } from '../helpers/cli.js';
import { haveBinary, nodeRsaKey, smartdcAuth, tempDir } from '../servers/ssh-keys.js';
import { selfSignedCert } from '../servers/tls.js';

 
const manta: any = createRequire(import.meta.url)('manta');
const FAST = { attempts: 4, firstDelayMs: 5, maxDelayMs: 20, maxRetryAfterMs: 5000 };
const md5 = (b: Buffer | string): string => createHash('md5').update(b).digest('base64');

function signerOf(pem: string): Signer {
  const p = parsePrivateKey(pem);
  if (p.locked) throw new Error('locked');
  return keyObjectSigner(p.key, 'test key');
}

describe('Manta client and test server (integration)', function () {
  this.timeout(60_000);
  const key = nodeRsaKey();
  const stranger = nodeRsaKey();
  let srv: MantaTestServer;
  let dir: string;
  let client: MantaClient;

  beforeEach(async () => {
    srv = await MantaTestServer.start({ acct: { keys: [key.pubLine], subusers: { ci: [key.pubLine] } } });
    dir = await tempDir('manta-client-');
    client = new MantaClient({ url: srv.url, user: 'acct', signer: signerOf(key.pem), retry: FAST, stallMs: 800 });
  });
  afterEach(async () => {
    client.close();
    await srv.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('the official node-manta client works against the server: mkdirp, put, info, get, ls', async () => {
    const c = manta.createClient({ url: srv.url, user: 'acct', sign: smartdcAuth.privateKeySigner({ key: key.pem, user: 'acct' }) });
    try {
      await promisify(c.mkdirp.bind(c))('/acct/stor/a/b');
      const body = new PassThrough();
      const put = promisify(c.put.bind(c))('/acct/stor/a/b/x.txt', body, { size: 5, md5: md5('hello') });
      body.end('hello');
      await put;
      const info = await promisify(c.info.bind(c))('/acct/stor/a/b/x.txt');
      assert.equal(info.md5, md5('hello'));
      assert.equal(info.size, 5);
      const stream: NodeJS.ReadableStream = await promisify(c.get.bind(c))('/acct/stor/a/b/x.txt');
      let text = '';
      for await (const chunk of stream) text += String(chunk);
      assert.equal(text, 'hello');
      const entries: any[] = [];
      await new Promise<void>((res, rej) =>
        c.ls('/acct/stor/a/b', {}, (err: Error, r: any) => {
          if (err) return rej(err);
          r.on('entry', (e: any) => entries.push(e));
          r.on('end', () => res());
          r.on('error', rej);
        }),
      );
      assert.deepEqual(entries.map((e) => [e.name, e.type]), [['x.txt', 'object']]);
      // The official client can also tell a missing object from an error.
      await assert.rejects(promisify(c.info.bind(c))('/acct/stor/nope'), (e: any) => e.statusCode === 404);
    } finally {
      c.close();
    }
    assert.ok(srv.requests.every((r) => r.keyId === '/acct/keys/' + client.opts.signer.fingerprint));
  });

  it('mkdir, putFile with Content-Length + Content-MD5, head, get; 404 only for missing', async () => {
    await client.mkdir('/acct/stor/d');
    const f = join(dir, 'f.txt');
    await writeFile(f, 'some bytes');
    await client.putFile('/acct/stor/d/f.txt', f, { size: 10, md5: md5('some bytes'), contentType: 'text/plain' });
    assert.deepEqual(await client.head('/acct/stor/d/f.txt'), { type: 'object', md5: md5('some bytes'), size: 10, contentType: 'text/plain' });
    assert.deepEqual(await client.head('/acct/stor/d'), { type: 'directory' });
    assert.equal(await client.head('/acct/stor/d/none'), undefined);
    assert.equal((await client.get('/acct/stor/d/f.txt')).toString(), 'some bytes');
    const put = srv.requests.find((r) => r.method === 'PUT' && r.path === '/acct/stor/d/f.txt')!;
    assert.equal(put.headers['content-length'], '10');
    assert.equal(put.headers['content-md5'], md5('some bytes'));
    assert.equal(put.headers.expect, '100-continue');
    // A zero-byte object never gets 100 Continue; the PUT must not wait for it.
    const empty = join(dir, 'empty');
    await writeFile(empty, '');
    await client.putFile('/acct/stor/d/empty', empty, { size: 0, md5: md5(''), contentType: 'text/plain' });
    assert.equal((await client.head('/acct/stor/d/empty'))?.type, 'object');
  });

  it('a missing parent is DirectoryDoesNotExist and is not retried', async () => {
    await assert.rejects(client.mkdir('/acct/stor/x/y'), (e: MantaError) => e.status === 404 && e.code === 'DirectoryDoesNotExist');
    assert.equal(srv.requests.length, 1);
  });

  it('an unknown key is a 403 KeyDoesNotExist, asked once; HEAD gets a bare 403', async () => {
    const c = new MantaClient({ url: srv.url, user: 'acct', signer: signerOf(stranger.pem), retry: FAST });
    try {
      await assert.rejects(c.mkdir('/acct/stor/z'), (e: MantaError) => e.isAuth && e.code === 'KeyDoesNotExist' && e.message.includes('/acct/keys/'));
      await assert.rejects(c.head('/acct/stor'), (e: MantaError) => e.status === 403);
    } finally {
      c.close();
    }
    assert.equal(srv.requests.length, 2);
  });

  it('subuser keyIds (/login/subuser/keys/fp) are accepted', async () => {
    const c = new MantaClient({ url: srv.url, user: 'acct', subuser: 'ci', signer: signerOf(key.pem), retry: FAST });
    try {
      await c.mkdir('/acct/stor/sub');
    } finally {
      c.close();
    }
    assert.match(srv.requests[0].keyId!, /^\/acct\/ci\/keys\//);
  });

  it('retries 500, 503 (honouring Retry-After), 408, 409 ConcurrentRequest, resets and stalls; each object stored once', async () => {
    const f = join(dir, 'big');
    const body = Buffer.alloc(3 * 1024 * 1024, 7);
    await writeFile(f, body);
    const meta = { size: body.length, md5: md5(body), contentType: 'application/octet-stream' };
    await client.mkdir('/acct/stor/r');
    const cases: Parameters<MantaTestServer['fault']>[0][] = [
      { kind: 'status', status: 500, code: 'InternalError' },
      { kind: 'status', status: 503, code: 'InternalError', retryAfter: 1 },
      { kind: 'status', status: 408, code: 'UploadTimeout' },
      { kind: 'status', status: 409, code: 'ConcurrentRequest' },
      { kind: 'reset' },
      { kind: 'reset-mid-upload', afterBytes: 1024 * 1024 },
      { kind: 'stall', afterBytes: 512 * 1024 },
    ];
    for (const [i, fault] of cases.entries()) {
      const path = `/acct/stor/r/o${i}`;
      srv.fault({ ...fault, method: 'PUT', path });
      const t0 = Date.now();
      await client.putFile(path, f, meta);
      if (fault.kind === 'status' && fault.retryAfter) assert.ok(Date.now() - t0 >= 900, 'waited for Retry-After');
      assert.equal(srv.entry(path)?.type, 'object', fault.kind);
      assert.equal(srv.puts(path).length, 1, `${fault.kind}: stored once`);
      assert.equal(srv.requests.filter((r) => r.method === 'PUT' && r.path === path).length, 2, `${fault.kind}: one retry`);
    }
  });

  it('a lost 204 (stored, then the connection dropped) is found by HEAD and not sent again', async () => {
    const f = join(dir, 'x');
    await writeFile(f, 'payload');
    srv.fault({ kind: 'commit-then-reset', method: 'PUT', path: '/acct/stor/lost' });
    await client.putFile('/acct/stor/lost', f, { size: 7, md5: md5('payload'), contentType: 'text/plain' });
    assert.equal(srv.requests.filter((r) => r.method === 'PUT').length, 1);
    assert.equal(srv.puts('/acct/stor/lost').length, 1);
  });

  it('gives up after the retry budget with the last error; a wrong Content-MD5 never lands', async () => {
    srv.fault({ kind: 'status', status: 500, code: 'InternalError', message: 'boom', method: 'PUT', times: 10 });
    await assert.rejects(client.mkdir('/acct/stor/q'), (e: MantaError) => e.status === 500 && /boom/.test(e.message));
    assert.equal(srv.requests.length, FAST.attempts);
    srv.clearFaults();
    const f = join(dir, 'm');
    await writeFile(f, 'abc');
    await assert.rejects(
      client.putFile('/acct/stor/m', f, { size: 3, md5: md5('abd'), contentType: 'text/plain' }),
      (e: MantaError) => e.code === 'ContentMD5Mismatch',
    );
    assert.equal(srv.entry('/acct/stor/m'), undefined);
  });

  it('presigned URLs (msign style) are accepted for GET only, and refused when expired or altered', async () => {
    await srv.seed('/acct/public/builds/a b.txt', 'public bits', 'text/plain');
    const signer = signerOf(key.pem);
    const url = await presignUrl({ url: srv.url, user: 'acct', signer, path: '/acct/public/builds/a b.txt' });
    const ok = await fetch(url);
    assert.equal(ok.status, 200);
    assert.equal(await ok.text(), 'public bits');
    assert.equal((await fetch(url, { method: 'HEAD' })).status, 403);
    const both = await presignUrl({ url: srv.url, user: 'acct', signer, path: '/acct/public/builds/a b.txt', methods: ['HEAD', 'GET'] });
    assert.equal((await fetch(both, { method: 'HEAD' })).status, 200);
    const expired = await presignUrl({ url: srv.url, user: 'acct', signer, path: '/acct/public/builds/a b.txt', expires: 1000 });
    const r = await fetch(expired);
    assert.equal(r.status, 403);
    assert.deepEqual(await r.json(), { code: 'InvalidQueryStringAuthentication', message: 'request expired' });
    assert.equal((await fetch(url.replace('expires=', 'expires=1'))).status, 403);
  });

  (haveBinary('openssl') ? it : it.skip)('over TLS: a self-signed server is refused (not retried) unless MANTA_TLS_INSECURE', async () => {
    const tls = await selfSignedCert();
    const s = await MantaTestServer.start({ acct: { keys: [key.pubLine] } }, { tls });
    const strict = new MantaClient({ url: s.url.replace('https://', ''), user: 'acct', signer: signerOf(key.pem), retry: FAST });
    const insecure = new MantaClient({ url: s.url, user: 'acct', signer: signerOf(key.pem), retry: FAST, insecure: true });
    try {
      assert.equal(strict.url.protocol, 'https:', 'no scheme means https');
      await assert.rejects(strict.mkdir('/acct/stor/t'), (e: MantaError) => /SELF_SIGNED|CERT/.test(e.code) && /MANTA_TLS_INSECURE/.test(e.hint ?? ''));
      assert.equal(s.requests.length, 0);
      await insecure.mkdir('/acct/stor/t');
      assert.equal(s.entry('/acct/stor/t')?.type, 'directory');
    } finally {
      strict.close();
      insecure.close();
      await s.close();
    }
  });

  it('streams uploads: a 192 MiB file goes up without buffering it', async () => {
    const f = join(dir, 'huge');
    await writeFile(f, '');
    await truncate(f, 192 * 1024 * 1024);
    const zeros = createHash('md5');
    const mb = Buffer.alloc(1024 * 1024);
    for (let i = 0; i < 192; i++) zeros.update(mb);
    const base = process.memoryUsage().arrayBuffers;
    let peak = 0;
    const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().arrayBuffers - base)), 10);
    const seen: number[] = [];
    try {
      await client.putFile('/acct/stor/huge', f, {
        size: 192 * 1024 * 1024,
        md5: zeros.digest('base64'),
        contentType: 'application/octet-stream',
        onProgress: (b) => seen.push(b),
      });
    } finally {
      clearInterval(timer);
    }
    assert.equal(srv.entry('/acct/stor/huge')?.type, 'object');
    assert.ok(peak < 96 * 1024 * 1024, `peak extra buffer memory ${(peak / 1048576).toFixed(1)} MiB`);
    assert.ok(seen.length > 10 && seen[seen.length - 1] === 192 * 1024 * 1024, 'progress reported along the way');
  });
});

describe('Manta server errors through the CLI (integration)', function () {
  this.timeout(120_000);
  let b: MantaBits;
  beforeEach(async () => {
    b = await mantaBits();
  });
  afterEach(async () => b.dispose());

  const run = async (): Promise<string[]> => {
    const r = await cli(b.args, { cwd: b.dir, env: b.env() });
    assert.equal(r.code, 3, r.stderr);
    return errorLines(r);
  };
  const hint = (): string =>
    `check MANTA_USER and MANTA_SUBUSER: key ${b.fingerprint} from ${b.home}/.ssh/id_rsa must be one of ${BITS_USER}'s keys at ${b.srv.url}`;

  it('a 403 with a message is one line, one level of detail: Manta, the call, status and code, the message, the hint', async () => {
    b.srv.fault({ kind: 'status', status: 403, code: 'AuthorizationFailed', message: `${BITS_USER} may not write to ${BITS_BASE}`, method: 'PUT', times: 100 });
    assert.deepEqual(await run(), [
      `buildimage: error: Manta PUT /${BITS_USER}/public/builds: 403 AuthorizationFailed: ${BITS_USER} may not write to ${BITS_BASE} (${hint()})`,
    ]);
  });

  it('a bare 403 (HEAD has no body) and a 5xx read the same way', async () => {
    b.srv.fault({ kind: 'status', status: 403, code: 'AuthorizationFailed', method: 'HEAD', times: 100 });
    assert.deepEqual(await run(), [`buildimage: error: Manta HEAD ${BITS_BASE}: 403 Forbidden (${hint()})`]);
    b.srv.clearFaults();
    b.srv.fault({ kind: 'status', status: 507, code: 'NotEnoughSpace', message: 'not enough free space for 64 KiB', method: 'PUT', times: 100 });
    assert.deepEqual(await run(), [
      `buildimage: error: Manta PUT /${BITS_USER}/public/builds: 507 NotEnoughSpace: not enough free space for 64 KiB (not a passing fault: a rerun would fail the same way)`,
    ]);
  });
});
