/**
 * The IMGAPI client against the local test server: channels, headers,
 * error lines, retries, odd bodies, proxies; and conformance of the test
 * server with the official sdc-clients IMGAPI client.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import net, { type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { inspect } from 'node:util';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { noProxyMatches, proxyFor } from '../../src/http/proxy.js';
import { redactUrl } from '../../src/core/redact.js';
import { ImgapiClient, ImgapiError, parseImgapiUrl, type ImgapiClientOptions } from '../../src/imgapi/client.js';
import { log } from '../../src/core/log.js';
import type { ImageManifest } from '../../src/image/manifest/types.js';
import { testManifest } from '../helpers/manifests.js';
import { ImgapiTestServer, satisfies, startImgapiServer } from '../servers/imgapi-server.js';
import { haveOpenssl, selfSignedCert } from '../servers/tls.js';
import { rejection } from '../helpers/rejection.js';

const FAST = {
  retry: { attempts: 4, firstDelayMs: 5, maxDelayMs: 20 },
  timeoutMs: 2_000,
  connectTimeoutMs: 1_000,
  env: {},
} satisfies Partial<ImgapiClientOptions>;

function client(url: string, opts: Partial<ImgapiClientOptions> = {}): ImgapiClient {
  return new ImgapiClient({ ...FAST, url, ...opts, retry: { ...FAST.retry, ...opts.retry } });
}

function manifest(over: Partial<ImageManifest> = {}, data?: Buffer): ImageManifest {
  return testManifest({ public: false, requirements: { min_platform: { '7.0': '20230101T000000Z' } }, ...over }, data);
}

const rejectsWith = (p: Promise<unknown>): Promise<ImgapiError> => rejection(p, ImgapiError);

/** A loopback forward proxy: absolute-URI requests and CONNECT tunnels; counts both. */
async function startProxy(opts: { auth?: string } = {}): Promise<{
  url: string;
  requests: Array<{ method: string; url: string; auth?: string }>;
  close: () => Promise<void>;
}> {
  const requests: Array<{ method: string; url: string; auth?: string }> = [];
  const sockets = new Set<Socket>();
  const denied = (auth: string | undefined): boolean => !!opts.auth && auth !== `Basic ${Buffer.from(opts.auth).toString('base64')}`;
  const server = http.createServer((req, res) => {
    const auth = req.headers['proxy-authorization'];
    requests.push({ method: req.method!, url: req.url!, auth });
    if (denied(auth)) {
      res.writeHead(407, { 'Proxy-Authenticate': 'Basic realm="p"', 'Content-Length': 0 }).end();
      return;
    }
    const target = new URL(req.url!);
    const headers = { ...req.headers };
    delete headers['proxy-authorization'];
    const up = http.request({ host: target.hostname, port: target.port, path: target.pathname + target.search, method: req.method, headers, agent: false }, (ur) => {
      res.writeHead(ur.statusCode!, ur.headers);
      ur.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  server.on('connect', (req: http.IncomingMessage, socket: Socket, head: Buffer) => {
    const auth = req.headers['proxy-authorization'];
    requests.push({ method: 'CONNECT', url: req.url!, auth });
    if (denied(auth)) {
      socket.end('HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    const [host, port] = [req.url!.slice(0, req.url!.lastIndexOf(':')), req.url!.slice(req.url!.lastIndexOf(':') + 1)];
    const up = net.connect(Number(port), host, () => {
      socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length) up.write(head);
      up.pipe(socket);
      socket.pipe(up);
    });
    sockets.add(up);
    up.on('error', () => socket.destroy());
    socket.on('error', () => up.destroy());
  });
  server.on('connection', (s: Socket) => sockets.add(s));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

describe('imgapi client: URL and proxy parsing', () => {
  it('takes ?channel= out of the URL and keeps the base path without a trailing /', () => {
    assert.deepEqual(
      (({ origin, basePath, channel }) => ({ origin: origin.href, basePath, channel }))(parseImgapiUrl('https://u.example.com/imgapi/?channel=staging')),
      { origin: 'https://u.example.com/', basePath: '/imgapi', channel: 'staging' },
    );
    assert.equal(parseImgapiUrl('https://u.example.com').basePath, '');
    assert.equal(parseImgapiUrl('https://u.example.com/').channel, undefined);
    const c = new ImgapiClient({ url: 'https://user:secret@u.example.com/x/?channel=dev&sig=abc', env: {} });
    assert.equal(c.url, 'https://u.example.com/x');
    assert.equal(c.description, 'https://u.example.com/x (channel dev)');
    assert.equal(new ImgapiClient({ url: 'https://u.example.com?channel=dev', channel: 'release', env: {} }).channel, 'release');
    assert.throws(() => new ImgapiClient({ url: 'ftp://x', env: {} }), /must be http/);
  });

  it('redacts credentials and query strings from URLs for messages', () => {
    assert.equal(redactUrl('https://a:b@h.example:8443/p?signature=zzz'), 'https://h.example:8443/p?…');
    assert.equal(redactUrl('https://u@h.example/#top'), 'https://h.example');
    assert.equal(redactUrl(new URL('http://h.example/a/b')), 'http://h.example/a/b');
    assert.equal(redactUrl('not a url //u:p@h/x?y'), 'not a url //h/x?…');
  });

  it('matches no_proxy like curl: suffixes, leading dots, *, ports, exact IPs', () => {
    const u = (s: string): URL => new URL(s);
    assert.equal(noProxyMatches(u('https://a.example.com'), 'example.com'), true);
    assert.equal(noProxyMatches(u('https://example.com'), 'example.com'), true);
    assert.equal(noProxyMatches(u('https://badexample.com'), 'example.com'), false);
    assert.equal(noProxyMatches(u('https://a.b.example.com'), '.example.com'), true);
    assert.equal(noProxyMatches(u('https://a.example.com'), '*.example.com'), true);
    assert.equal(noProxyMatches(u('https://anything.org'), 'foo, *'), true);
    assert.equal(noProxyMatches(u('https://h.example.com'), 'other.org h.example.com:443'), true);
    assert.equal(noProxyMatches(u('https://h.example.com'), 'h.example.com:8443'), false);
    assert.equal(noProxyMatches(u('http://127.0.0.1:8080'), '127.0.0.1'), true);
    assert.equal(noProxyMatches(u('http://127.0.0.10'), '127.0.0.1'), false);
    assert.equal(noProxyMatches(u('http://[::1]:80'), '::1'), true);
    assert.equal(noProxyMatches(u('http://x.org'), ''), false);
  });

  it('picks the proxy per scheme from the environment', () => {
    const env = { http_proxy: 'http://p1:3128', HTTPS_PROXY: 'p2:8080', no_proxy: 'internal.example' };
    assert.equal(proxyFor(new URL('http://a.org'), env)?.href, 'http://p1:3128/');
    assert.equal(proxyFor(new URL('https://a.org'), env)?.href, 'http://p2:8080/');
    assert.equal(proxyFor(new URL('https://x.internal.example'), env), undefined);
    assert.equal(proxyFor(new URL('https://a.org'), {}), undefined);
    assert.throws(() => proxyFor(new URL('https://a.org'), { https_proxy: 'socks5://p:1080' }), /only http/);
  });

  it('server Accept-Version ranges behave as restify/semver would for the usual forms', () => {
    assert.equal(satisfies('~2', '2.0.0'), true);
    assert.equal(satisfies('~1', '2.0.0'), false);
    assert.equal(satisfies('*', '1.0.0'), true);
    assert.equal(satisfies('>=2', '2.0.0'), true);
    assert.equal(satisfies('2.x', '2.0.0'), true);
    assert.equal(satisfies('^1.2', '1.9.0'), true);
    assert.equal(satisfies('~3', '2.0.0'), false);
    assert.equal(satisfies('junk', '2.0.0'), undefined);
  });
});

describe('imgapi client against the test server', function () {
  this.timeout(20_000);
  let silent: boolean;
  before(() => {
    silent = log.silent ?? false;
    log.silent = true;
  });
  after(() => (log.silent = silent));
  let server: ImgapiTestServer;
  const data = randomBytes(200_000);
  let active: ImageManifest;
  let unactivated: ImageManifest;
  let staging: ImageManifest;

  beforeEach(async () => {
    server = await startImgapiServer();
    active = manifest({}, data);
    unactivated = manifest({ name: 'base-64', version: '25.1.0' });
    staging = manifest({ name: 'minimal-64', version: '24.4.1', type: 'lx-dataset', os: 'linux' });
    await server.addImage(active, data);
    await server.addImage(unactivated, undefined, { state: 'unactivated' });
    await server.addImage(staging, randomBytes(10), { channels: ['staging', 'release'] });
  });
  afterEach(() => server.close());

  it('sends Accept-Version ~2, Accept JSON and a buildimage User-Agent; gets channels back', async () => {
    const m = await client(server.url).getImage(active.uuid);
    assert.equal(m.uuid, active.uuid);
    assert.equal(m.state, 'active');
    assert.deepEqual(m.channels, ['dev']);
    assert.deepEqual(m.files, [{ sha1: active.files![0].sha1, size: data.length, compression: 'gzip' }]);
    const h = server.requestsTo('GetImage')[0].headers;
    assert.equal(h['accept-version'], '~2');
    assert.equal(h.accept, 'application/json');
    const pkg = JSON.parse(await readFile(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
    assert.equal(h['user-agent'], `buildimage/${pkg.version} (node/${process.versions.node})`);
    assert.equal(server.requestsTo('GetImage')[0].url, `/images/${active.uuid}`, 'no channel param without a channel');
  });

  it('without Accept-Version the server omits channels (IMGAPI 1.x clients)', async () => {
    const res = await fetch(`${server.url}/images/${active.uuid}`);
    const text = await res.text();
    assert.equal((JSON.parse(text) as ImageManifest).channels, undefined);
    assert.equal(res.headers.get('content-md5'), createHash('md5').update(text).digest('base64'));
  });

  it('channel: ?channel= in the URL, the option over the URL, the default channel otherwise', async () => {
    // In staging only: not in the server's default channel (dev).
    let err = await rejectsWith(client(server.url).getImage(staging.uuid));
    assert.equal(err.message, `IMGAPI ${server.url}: image ${staging.uuid} not found in the server's default channel (ResourceNotFound)`);
    assert.match(err.hint ?? '', /another channel/);

    const viaUrl = client(`${server.url}/?channel=staging`);
    assert.equal(viaUrl.channel, 'staging');
    assert.equal((await viaUrl.getImage(staging.uuid)).uuid, staging.uuid);
    assert.equal(server.requests.at(-1)!.url, `/images/${staging.uuid}?channel=staging`);

    const optionWins = client(`${server.url}?channel=staging`, { channel: 'dev' });
    err = await rejectsWith(optionWins.getImage(staging.uuid));
    assert.match(err.message, /not found in channel dev \(ResourceNotFound\)$/);
    assert.equal(server.requests.at(-1)!.url, `/images/${staging.uuid}?channel=dev`);

    assert.equal((await client(server.url, { channel: '*' }).getImage(staging.uuid)).uuid, staging.uuid);
    assert.equal(server.requests.at(-1)!.url, `/images/${staging.uuid}?channel=*`);
    assert.deepEqual((await client(server.url).getImage(staging.uuid, { channel: 'release' })).channels, ['staging', 'release']);
  });

  it('an unknown channel is one ValidationFailed line, not retried', async () => {
    const before = server.requests.length;
    const err = await rejectsWith(client(server.url, { channel: 'nope' }).getImage(active.uuid));
    assert.equal(err.message, `IMGAPI ${server.url}: image ${active.uuid}: 422 ValidationFailed: unknown channel: nope`);
    assert.equal(err.statusCode, 422);
    assert.equal(server.requests.length - before, 1);
  });

  it('keeps a base path from the URL', async () => {
    const prefixed = await startImgapiServer({ basePath: '/imgapi' });
    try {
      await prefixed.addImage(active, data);
      const c = client(`${prefixed.url}/`);
      assert.equal(c.url, prefixed.url);
      assert.equal((await c.getImage(active.uuid)).uuid, active.uuid);
      assert.equal(prefixed.requests.at(-1)!.url, `/imgapi/images/${active.uuid}`);
      const err = await rejectsWith(client(prefixed.url.replace('/imgapi', '/other')).getImage(active.uuid));
      assert.match(err.message, /: image \S+: 404 ResourceNotFound: \/other\/images\/\S+ does not exist$/);
    } finally {
      await prefixed.close();
    }
  });

  it('gets unactivated images too (GetImage returns any state)', async () => {
    const m = await client(server.url).getImage(unactivated.uuid);
    assert.equal(m.state, 'unactivated');
    assert.deepEqual(m.files, []);
  });

  it('404 is one clear line, at once', async () => {
    const uuid = randomUUID();
    const err = await rejectsWith(client(server.url).getImage(uuid));
    assert.equal(err.message, `IMGAPI ${server.url}: image ${uuid} not found (ResourceNotFound)`);
    assert.equal(err.statusCode, 404);
    assert.equal(err.restCode, 'ResourceNotFound');
    assert.equal(server.requestsTo('GetImage').length, 1);
  });

  it('500 is retried, then succeeds', async () => {
    server.addFault({ kind: 'status', status: 500, route: 'GetImage', times: 2 });
    const m = await client(server.url).getImage(active.uuid);
    assert.equal(m.uuid, active.uuid);
    assert.deepEqual(server.requestsTo('GetImage').map((r) => r.status), [500, 500, 200]);
  });

  it('500 forever fails after bounded retries with one line', async () => {
    server.addFault({ kind: 'status', status: 500, route: 'GetImage', times: Infinity });
    const err = await rejectsWith(client(server.url, { retry: { attempts: 4 } }).getImage(active.uuid));
    assert.match(err.message, new RegExp(`^IMGAPI ${server.url}: image ${active.uuid}: 500 InternalError: boom; gave up after 4 attempts in \\d+\\.\\ds$`));
    assert.equal(server.requestsTo('GetImage').length, 4);
  });

  it('the retry time budget bounds attempts too', async () => {
    server.addFault({ kind: 'status', status: 503, route: 'GetImage', times: Infinity });
    const err = await rejectsWith(client(server.url, { retry: { attempts: 51, firstDelayMs: 100, maxDelayMs: 100, budgetMs: 250 } }).getImage(active.uuid));
    assert.match(err.message, /: 503 ServiceUnavailable: boom; gave up after [2-3] attempts/);
  });

  it('429 is retried (Retry-After honoured up to the max delay); other 4xx are not', async () => {
    server.addFault({ kind: 'status', status: 429, retryAfter: 0, route: 'GetImage' });
    assert.equal((await client(server.url).getImage(active.uuid)).uuid, active.uuid);
    assert.equal(server.requestsTo('GetImage').length, 2);
    server.addFault({ kind: 'status', status: 403, code: 'OperatorOnly', message: 'operator only', route: 'GetImage', times: Infinity });
    const err = await rejectsWith(client(server.url).getImage(active.uuid));
    assert.equal(err.message, `IMGAPI ${server.url}: image ${active.uuid}: 403 OperatorOnly: operator only`);
    assert.equal(server.requestsTo('GetImage').length, 3);
  });

  it('an HTML page instead of JSON is a clear line (200: not retried; 502: retried)', async () => {
    server.addFault({ kind: 'html', route: 'GetImage', times: Infinity });
    let err = await rejectsWith(client(server.url).getImage(active.uuid));
    assert.equal(err.message, `IMGAPI ${server.url}: image ${active.uuid}: got an HTML page (HTTP 200), not JSON — a proxy or login page? "Proxy"`);
    assert.equal(server.requestsTo('GetImage').length, 1);
    server.clearFaults();
    server.addFault({ kind: 'html', status: 502, route: 'GetImage', times: Infinity });
    err = await rejectsWith(client(server.url, { retry: { attempts: 2 } }).getImage(active.uuid));
    assert.match(err.message, /: 502 Bad Gateway: an HTML page "Proxy"; gave up after 2 attempts/);
  });

  it('a body cut by a dropped connection is retried; forever, it is a clear line', async () => {
    server.addFault({ kind: 'truncate', route: 'GetImage' });
    assert.equal((await client(server.url).getImage(active.uuid)).uuid, active.uuid);
    assert.equal(server.requestsTo('GetImage').length, 2);
    server.addFault({ kind: 'truncate', route: 'GetImage', times: Infinity });
    const err = await rejectsWith(client(server.url, { retry: { attempts: 3 } }).getImage(active.uuid));
    assert.match(err.message, new RegExp(`^IMGAPI ${server.url}: image ${active.uuid}: the connection closed before the whole answer arrived; gave up after 3 attempts`));
  });

  it('cut JSON in a complete response is retried, then reported as invalid JSON', async () => {
    server.addFault({ kind: 'bad-json', route: 'GetImage', times: Infinity });
    const err = await rejectsWith(client(server.url, { retry: { attempts: 2 } }).getImage(active.uuid));
    assert.match(err.message, /: the answer is not valid JSON \(\d+ bytes, application\/json; cut short\?\); gave up after 2 attempts/);
    server.clearFaults();
    server.addFault({ kind: 'bad-json', route: 'GetImage' });
    assert.equal((await client(server.url).getImage(active.uuid)).uuid, active.uuid);
  });

  it('a silent server times out, is retried and reported', async () => {
    server.addFault({ kind: 'stall', afterBytes: 10, route: 'GetImage', times: Infinity });
    const err = await rejectsWith(client(server.url, { retry: { attempts: 2 }, timeoutMs: 200 }).getImage(active.uuid));
    assert.match(err.message, /: timed out waiting for an answer; gave up after 2 attempts/);
  });

  it('connection refused is retried and reported', async () => {
    const dead = await startImgapiServer();
    const url = dead.url;
    await dead.close();
    const err = await rejectsWith(client(url, { retry: { attempts: 2 } }).getImage(active.uuid));
    assert.equal(err.message.replace(/ in \d+\.\ds$/, ''), `IMGAPI ${url}: image ${active.uuid}: connection refused; gave up after 2 attempts`);
  });

  it('never puts URL credentials or other query params in errors, causes or requests', async () => {
    const dead = await startImgapiServer();
    const url = dead.url.replace('//', '//alice:pa55word@') + '/?channel=dev&signature=S1GN';
    await dead.close();
    const err = await rejectsWith(client(url, { retry: { attempts: 1 } }).getImage(active.uuid));
    const all = inspect(err, { depth: 10 }) + String(err.hint);
    assert.ok(!/alice|pa55word|S1GN/.test(all), all);
    await client(server.url.replace('//', '//alice:pa55word@') + '?channel=dev&signature=S1GN').getImage(active.uuid);
    assert.equal(server.requests.at(-1)!.url, `/images/${active.uuid}?channel=dev`);
  });

  it('lists images with filters, state and channel handling', async () => {
    const c = client(server.url);
    const names = async (f: Record<string, string>, cl = c): Promise<string[]> => (await cl.listImages(f)).map((m) => `${m.name}@${m.version}`).sort();
    assert.deepEqual(await names({}), ['base-64-lts@24.4.0']);
    assert.deepEqual(await names({ channel: '*' }), ['base-64-lts@24.4.0', 'minimal-64@24.4.1']);
    assert.deepEqual(await names({}, client(`${server.url}?channel=staging`)), ['minimal-64@24.4.1']);
    assert.deepEqual(await names({ channel: '*', name: '~64' }), ['base-64-lts@24.4.0', 'minimal-64@24.4.1']);
    assert.deepEqual(await names({ channel: '*', name: 'minimal-64' }), ['minimal-64@24.4.1']);
    assert.deepEqual(await names({ channel: '*', version: '~24.4' }), ['base-64-lts@24.4.0', 'minimal-64@24.4.1']);
    assert.deepEqual(await names({ channel: '*', type: '!lx-dataset' }), ['base-64-lts@24.4.0']);
    assert.deepEqual(await names({ channel: '*', os: 'linux' }), ['minimal-64@24.4.1']);
    assert.deepEqual(await names({ channel: '*', owner: randomUUID() }), []);
    // Unauthenticated on a private-mode server: only active images, whatever state= says.
    assert.deepEqual(await names({ state: 'all' }), ['base-64-lts@24.4.0']);
    assert.deepEqual(await names({ state: 'unactivated' }), []);
    const err = await rejectsWith(c.listImages({ state: 'bogus' }));
    assert.equal(err.message, `IMGAPI ${server.url}: image list: 422 InvalidParameter: invalid state: "bogus"`);

    const dc = await startImgapiServer({ mode: 'dc' });
    try {
      await dc.addImage(active, data);
      await dc.addImage(unactivated, undefined, { state: 'unactivated' });
      assert.deepEqual(await names({ state: 'all' }, client(dc.url)), ['base-64-lts@24.4.0', 'base-64@25.1.0']);
      assert.deepEqual(await names({ state: 'unactivated' }, client(dc.url)), ['base-64@25.1.0']);
    } finally {
      await dc.close();
    }
  });

  it('pages through more than 1000 images as sdc-clients does', async () => {
    const many = await startImgapiServer();
    try {
      for (let i = 0; i < 1005; i++) await many.addImage(manifest({ version: `1.0.${i}` }));
      const all = await client(many.url).listImages();
      assert.equal(all.length, 1005);
      assert.equal(new Set(all.map((m) => m.uuid)).size, 1005);
      assert.equal(many.requestsTo('ListImages').length, 2);
      assert.match(many.requestsTo('ListImages')[1].url, /marker=[0-9a-f-]{36}&limit=1000$/);
      assert.equal((await client(many.url).listImages({ limit: 10 })).length, 10);
    } finally {
      await many.close();
    }
  });

  it('pings', async () => {
    assert.deepEqual(await client(server.url).ping(), { ping: 'pong', version: '4.13.1', imgapi: true });
  });

  it('streams a file with its headers', async () => {
    const r = await client(server.url).getImageFileStream(active.uuid);
    const chunks: Buffer[] = [];
    for await (const c of r.stream) chunks.push(c as Buffer);
    assert.deepEqual(Buffer.concat(chunks), data);
    assert.equal(r.statusCode, 200);
    assert.equal(r.contentLength, data.length);
    assert.equal(r.acceptRanges, true);
    assert.equal(r.etag, active.files![0].sha1);
    assert.equal(r.contentMd5, createHash('md5').update(data).digest('base64'));
    const part = await client(server.url).getImageFileStream(active.uuid, { offset: 1000, ifRange: r.etag });
    part.stream.destroy();
    assert.equal(part.statusCode, 206);
    assert.deepEqual(part.range, { start: 1000, end: data.length - 1, total: data.length });
    assert.equal(server.requests.at(-1)!.headers.range, 'bytes=1000-');
    const err = await rejectsWith(client(server.url).getImageFileStream(unactivated.uuid));
    assert.equal(err.message, `IMGAPI ${server.url}: image ${unactivated.uuid} file: 404 ResourceNotFound: image "${unactivated.uuid}" has no file`);
  });

  describe('proxies', () => {
    let proxy: Awaited<ReturnType<typeof startProxy>>;
    beforeEach(async () => (proxy = await startProxy()));
    afterEach(() => proxy.close());

    it('http_proxy carries http requests (absolute URI), file downloads included', async () => {
      const c = client(server.url, { env: { http_proxy: proxy.url } });
      assert.equal((await c.getImage(active.uuid)).uuid, active.uuid);
      const r = await c.getImageFileStream(active.uuid);
      const chunks: Buffer[] = [];
      for await (const ch of r.stream) chunks.push(ch as Buffer);
      assert.deepEqual(Buffer.concat(chunks), data);
      assert.deepEqual(proxy.requests.map((x) => `${x.method} ${x.url}`), [
        `GET ${server.url}/images/${active.uuid}`,
        `GET ${server.url}/images/${active.uuid}/file`,
      ]);
      assert.equal(server.requestsTo('GetImage')[0].headers.host, new URL(server.url).host);
    });

    it('no_proxy skips the proxy (exact host, suffix and *)', async () => {
      for (const no_proxy of ['127.0.0.1', 'example.org, 127.0.0.1', '*']) {
        await client(server.url, { env: { http_proxy: proxy.url, no_proxy } }).getImage(active.uuid);
      }
      await client(server.url, { env: { HTTP_PROXY: proxy.url, NO_PROXY: '127.0.0.1' } }).getImage(active.uuid);
      assert.equal(proxy.requests.length, 0);
      await client(server.url, { env: { http_proxy: proxy.url, no_proxy: '127.0.0.2' } }).getImage(active.uuid);
      assert.equal(proxy.requests.length, 1);
    });

    it('proxy credentials go in Proxy-Authorization and never into messages', async () => {
      const authed = await startProxy({ auth: 'bob:s3cret' });
      try {
        const ok = client(server.url, { env: { http_proxy: authed.url.replace('//', '//bob:s3cret@') } });
        assert.equal((await ok.getImage(active.uuid)).uuid, active.uuid);
        assert.equal(authed.requests[0].auth, `Basic ${Buffer.from('bob:s3cret').toString('base64')}`);
        const bad = client(server.url, { env: { http_proxy: authed.url.replace('//', '//bob:wrong@') } });
        const err = await rejectsWith(bad.getImage(active.uuid));
        assert.match(err.message, /: 407 Proxy Authentication Required$/);
        assert.ok(!/wrong|s3cret|bob/.test(err.message + (err.hint ?? '')), err.message);
      } finally {
        await authed.close();
      }
    });

    it('a dead proxy is a clear, retried connection error that names the proxy', async () => {
      const url = proxy.url;
      await proxy.close();
      const err = await rejectsWith(client(server.url, { retry: { attempts: 2 }, env: { http_proxy: url } }).getImage(active.uuid));
      assert.match(err.message, new RegExp(`: connection refused via proxy ${url}; gave up after 2 attempts`));
      proxy = await startProxy();
    });

    describe('https through a CONNECT tunnel', () => {
      let tlsServer: ImgapiTestServer;
      let cert: string;
      before(function () {
        if (!haveOpenssl()) this.skip();
      });
      beforeEach(async () => {
        const pem = await selfSignedCert();
        cert = pem.cert;
        tlsServer = await startImgapiServer({ tls: pem });
        await tlsServer.addImage(active, data);
      });
      afterEach(async () => {
        await tlsServer.close();
      });

      it('https_proxy tunnels with CONNECT and TLS is verified end to end', async () => {
        const c = client(tlsServer.url, { ca: cert, env: { https_proxy: proxy.url, http_proxy: 'http://127.0.0.1:9' } });
        assert.equal((await c.getImage(active.uuid)).uuid, active.uuid);
        const r = await c.getImageFileStream(active.uuid, { offset: 5 });
        const chunks: Buffer[] = [];
        for await (const ch of r.stream) chunks.push(ch as Buffer);
        assert.deepEqual(Buffer.concat(chunks), data.subarray(5));
        const port = new URL(tlsServer.url).port;
        assert.deepEqual(proxy.requests.map((x) => `${x.method} ${x.url}`), [`CONNECT 127.0.0.1:${port}`], 'one tunnel, kept alive for the second request');
        assert.equal(tlsServer.requestsTo('GetImage').length, 1);
      });

      it('an untrusted certificate is a clear line, not retried', async () => {
        const err = await rejectsWith(client(tlsServer.url, { env: { https_proxy: proxy.url } }).getImage(active.uuid));
        assert.match(err.message, /: TLS: .*self[- ]signed/i);
        assert.equal(proxy.requests.length, 1);
        assert.equal((await client(tlsServer.url, { insecure: true }).getImage(active.uuid)).uuid, active.uuid);
      });

      it('a proxy refusing CONNECT is a clear line', async () => {
        const authed = await startProxy({ auth: 'u:p' });
        try {
          const err = await rejectsWith(client(tlsServer.url, { ca: cert, env: { https_proxy: authed.url } }).getImage(active.uuid));
          assert.match(err.message, new RegExp(`: proxy ${authed.url} answered 407 Proxy Authentication Required to CONNECT 127\\.0\\.0\\.1:\\d+$`));
          assert.match(err.hint ?? '', /credentials/);
        } finally {
          await authed.close();
        }
      });
    });
  });
});

describe('test server conformance with sdc-clients IMGAPI', function () {
  this.timeout(20_000);
  type Cb<T> = (err: (Error & { restCode?: string; statusCode?: number }) | null, value?: T) => void;
  interface SdcImgapi {
    getImage(uuid: string, opts: { channel?: string }, cb: Cb<ImageManifest>): void;
    listImages(filters: Record<string, unknown>, opts: { channel?: string }, cb: Cb<ImageManifest[]>): void;
    getImageFile(uuid: string, path: string, account: undefined, opts: { channel?: string }, cb: Cb<unknown>): void;
    ping(cb: Cb<unknown>): void;
    close(): void;
  }
  const IMGAPI = createRequire(import.meta.url)('sdc-clients').IMGAPI as new (o: { url: string; agent: false; channel?: string }) => SdcImgapi;
  const call = <T>(fn: (cb: Cb<T>) => void): Promise<T> =>
    new Promise((resolve, reject) => fn((err, v) => (err ? reject(err) : resolve(v as T))));

  let server: ImgapiTestServer;
  let dir: string;
  const data = randomBytes(300_000);
  const a = manifest({ name: 'alpha', version: '1.0.0' }, data);
  const b = manifest({ name: 'beta', version: '2.0.0', origin: a.uuid }, Buffer.from('beta bytes'));
  const u = manifest({ name: 'gamma', version: '3.0.0' });
  const sdcs: SdcImgapi[] = [];
  const sdc = (o: { channel?: string } = {}): SdcImgapi => {
    const c = new IMGAPI({ url: server.url, agent: false, ...o });
    sdcs.push(c);
    return c;
  };

  before(async () => {
    server = await startImgapiServer();
    await server.addImage(a, data, { channels: ['dev', 'release'] });
    await server.addImage(b, Buffer.from('beta bytes'), { channels: ['staging'] });
    await server.addImage(u, undefined, { state: 'unactivated' });
    dir = await mkdtemp(join(tmpdir(), 'bi-sdc-'));
  });
  after(async () => {
    for (const c of sdcs) c.close();
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });

  for (const channel of [undefined, 'staging', 'release', '*']) {
    it(`getImage and listImages agree, channel ${channel ?? '(default)'}`, async () => {
      const ours = client(server.url, { channel });
      const theirs = sdc({ channel });
      for (const uuid of [a.uuid, b.uuid, u.uuid, randomUUID()]) {
        const mine = await ours.getImage(uuid).then((m) => ({ m }), (e: ImgapiError) => ({ e: { restCode: e.restCode, statusCode: e.statusCode } }));
        const official = await call<ImageManifest>((cb) => theirs.getImage(uuid, {}, cb)).then(
          (m) => ({ m }),
          (e: Error & { restCode?: string; statusCode?: number }) => ({ e: { restCode: e.restCode, statusCode: e.statusCode } }),
        );
        assert.deepEqual(mine, official, `getImage ${uuid}`);
      }
      for (const f of [{}, { state: 'all' }, { name: 'beta' }, { name: '~a' }]) {
        assert.deepEqual(await ours.listImages(f), await call<ImageManifest[]>((cb) => theirs.listImages(f, {}, cb)), `listImages ${JSON.stringify(f)}`);
      }
    });
  }

  it('the 404 and 422 errors sdc-clients sees are the ones we parse', async () => {
    const uuid = randomUUID();
    const official = await call((cb) => sdc().getImage(uuid, {}, cb)).catch((e: Error & { restCode?: string; statusCode?: number }) => e);
    assert.equal((official as { restCode?: string }).restCode, 'ResourceNotFound');
    assert.equal((official as { statusCode?: number }).statusCode, 404);
    assert.equal((official as Error).message, `image ${uuid} not found`);
    const elsewhere = await call((cb) => sdc().getImage(b.uuid, {}, cb)).catch((e: Error) => e);
    assert.equal((elsewhere as Error).message, 'image not found');
    const bad = await call((cb) => sdc({ channel: 'nope' }).getImage(a.uuid, {}, cb)).catch((e: Error & { restCode?: string }) => e);
    assert.equal((bad as { restCode?: string }).restCode, 'ValidationFailed');
    const ours = await rejectsWith(client(server.url, { channel: 'nope' }).getImage(a.uuid));
    assert.equal(ours.restCode, 'ValidationFailed');
  });

  it('getImageFile: same bytes (sdc-clients checks Content-MD5), same channel rules', async () => {
    const path = join(dir, 'a.file');
    await call((cb) => sdc().getImageFile(a.uuid, path, undefined, {}, cb));
    const official = await readFile(path);
    const r = await client(server.url).getImageFileStream(a.uuid);
    const chunks: Buffer[] = [];
    for await (const c of r.stream) chunks.push(c as Buffer);
    assert.deepEqual(Buffer.concat(chunks), official);
    assert.deepEqual(official, data);
    const e1 = await call((cb) => sdc().getImageFile(b.uuid, join(dir, 'b'), undefined, {}, cb)).catch((e: Error & { statusCode?: number }) => e);
    assert.equal((e1 as { statusCode?: number }).statusCode, 404);
    await rejectsWith(client(server.url).getImageFileStream(b.uuid));
    await call((cb) => sdc({ channel: 'staging' }).getImageFile(b.uuid, join(dir, 'b'), undefined, {}, cb));
    assert.equal(await readFile(join(dir, 'b'), 'utf8'), 'beta bytes');
  });

  it('ping agrees', async () => {
    assert.deepEqual(await client(server.url).ping(), await call((cb) => sdc().ping(cb)));
  });
});
