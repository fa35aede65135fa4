/**
 * Publishing through a proxy (issue 14 item 3), with the real CLI, a real
 * forwarding proxy and the local Manta server that verifies HTTP
 * Signatures: https_proxy tunnels (CONNECT), http_proxy sends
 * absolute-form requests, no_proxy bypasses, a proxy's credentials never
 * reach a line, and a proxy variable that is not a proxy URL is one error
 * line naming it.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cli, errorLines, type CliResult } from '../helpers/cli.js';
import { BITS_BASE, BITS_STAMP, mantaBits, type MantaBits } from '../servers/bits.js';
import { ForwardProxy } from '../servers/forward-proxy.js';
import { haveBinary } from '../servers/ssh-keys.js';
import { selfSignedCert } from '../servers/tls.js';

const IMAGE = `${BITS_BASE}/${BITS_STAMP}/demo/demo-zfs-1.0.zfs.gz`;

function landed(b: MantaBits): void {
  assert.equal(b.srv.entry(IMAGE)?.type, 'object', 'the image was uploaded');
  assert.equal(b.srv.entry(`${BITS_BASE}/master-latest`)?.type, 'object', 'the pointer was written');
}

function oneLine(r: CliResult, code: number): string {
  assert.equal(r.code, code, r.stderr);
  const lines = errorLines(r);
  assert.equal(lines.length, 1, r.stderr);
  return lines[0];
}

describe('publish through a proxy (integration)', function () {
  this.timeout(120_000);
  let b: MantaBits;
  let proxy: ForwardProxy;
  afterEach(async () => {
    await proxy?.close();
    await b?.dispose();
  });

  (haveBinary('openssl') ? it : it.skip)('https_proxy: every Manta request goes through a CONNECT tunnel, and the signed upload lands', async () => {
    b = await mantaBits({ tls: await selfSignedCert() });
    proxy = await ForwardProxy.start();
    const r = await cli(b.args, { cwd: b.dir, env: b.env({ https_proxy: proxy.url }) });
    assert.equal(r.code, 0, r.stderr);
    landed(b);
    const target = new URL(b.srv.url).host;
    assert.ok(proxy.log.length >= 1, 'the proxy saw the publish');
    assert.deepEqual(new Set(proxy.log.map((e) => `${e.method} ${e.target}`)), new Set([`CONNECT ${target}`]));
    assert.ok(b.srv.requests.every((q) => q.keyId), 'every request was signed, and the server verified it');
  });

  it('HTTP_PROXY (upper case): an http:// Manta gets absolute-form requests through the proxy', async () => {
    b = await mantaBits();
    proxy = await ForwardProxy.start();
    const r = await cli(b.args, { cwd: b.dir, env: b.env({ HTTP_PROXY: proxy.url }) });
    assert.equal(r.code, 0, r.stderr + JSON.stringify(proxy.log) + JSON.stringify(b.srv.requests.map((q) => [q.method, q.path, q.status])));
    landed(b);
    assert.ok(proxy.log.some((e) => e.method === 'PUT' && e.target === `${b.srv.url}${IMAGE}`), JSON.stringify(proxy.log));
    assert.ok(proxy.log.every((e) => e.target.startsWith(`${b.srv.url}/`) && !e.refused));
    assert.equal(proxy.log.length, b.srv.requests.length, 'every request to Manta went through the proxy');
  });

  it('no_proxy naming the Manta host bypasses the proxy', async () => {
    b = await mantaBits();
    proxy = await ForwardProxy.start();
    const r = await cli(b.args, { cwd: b.dir, env: b.env({ http_proxy: proxy.url, https_proxy: proxy.url, NO_PROXY: `localhost, ${new URL(b.srv.url).host}` }) });
    assert.equal(r.code, 0, r.stderr);
    landed(b);
    assert.deepEqual(proxy.log, []);
  });

  (haveBinary('openssl') ? it : it.skip)('a proxy URL with credentials: they go to the proxy only, and never into a line', async () => {
    const password = 'pr0xy-s3cret';
    b = await mantaBits({ tls: await selfSignedCert() });
    proxy = await ForwardProxy.start({ credentials: { user: 'jenkins', password } });
    const logFile = join(b.dir, 'publish.log');
    const ok = await cli([...b.args, '-v', '--log-file', logFile], { cwd: b.dir, env: b.env({ https_proxy: proxy.urlWithCredentials }) });
    assert.equal(ok.code, 0, ok.stderr);
    landed(b);
    assert.ok(proxy.log.length >= 1 && proxy.log.every((e) => e.proxyAuthorization?.startsWith('Basic ') && !e.refused));
    assert.ok(b.srv.requests.every((q) => q.headers['proxy-authorization'] === undefined), 'the credentials stop at the proxy');

    // Wrong credentials: a 407, one line, no password.
    const bad = `http://jenkins:wrong-${password}@${new URL(proxy.url).host}`;
    const r = await cli([...b.args, '-v', '--log-file', logFile], { cwd: b.dir, env: b.env({ https_proxy: bad }) });
    const line = oneLine(r, 3);
    assert.equal(
      line,
      `buildimage: error: Manta HEAD ${BITS_BASE}: proxy ${proxy.url} answered 407 Proxy Authentication Required to CONNECT ${new URL(b.srv.url).host} (the proxy wants credentials: put them in the proxy URL)`,
    );
    const everything = ok.stdout + ok.stderr + r.stdout + r.stderr + (await readFile(logFile, 'utf8'));
    const basic = (p: string): string => Buffer.from(`jenkins:${p}`).toString('base64');
    for (const secret of [password, basic(password), basic(`wrong-${password}`), encodeURIComponent(password)]) {
      assert.ok(!everything.includes(secret), `${secret} leaked`);
    }
  });

  it('a proxy variable that is no proxy URL: one line naming the variable, exit 2, nothing sent', async () => {
    b = await mantaBits();
    proxy = await ForwardProxy.start();
    const cases: Array<[Record<string, string>, string]> = [
      [{ http_proxy: 'http://jenkins:s3cret@proxy host:3128' }, 'http_proxy is not a proxy URL (e.g. http://user:password@proxy.example.com:3128)'],
      [{ HTTP_PROXY: 'socks5://jenkins:s3cret@127.0.0.1:1080' }, 'HTTP_PROXY: a socks5:// proxy is not supported, only http:// and https://'],
      [{ all_proxy: 'http://jenkins:s3cret@[::1' }, 'all_proxy is not a proxy URL (e.g. http://user:password@proxy.example.com:3128)'],
    ];
    for (const [env, want] of cases) {
      const r = await cli(b.args, { cwd: b.dir, env: b.env(env) });
      assert.equal(oneLine(r, 2), `buildimage: error: ${want}`);
      assert.ok(!r.stderr.includes('s3cret') && !r.stdout.includes('s3cret'));
    }
    assert.deepEqual(b.srv.requests, []);
    assert.deepEqual(proxy.log, []);
  });
});
