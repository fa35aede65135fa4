/**
 * Hostile proxy variables (issue 14 item 3): publish now reads
 * http_proxy/https_proxy/all_proxy/no_proxy (and their upper-case forms)
 * for Manta. A Jenkins job's environment is input: a value that is no
 * proxy URL, carries a header injection, control characters or broken
 * percent-encoding in its credentials is one usage line naming the
 * variable, exit 2, the value (and any password in it) never echoed, and
 * nothing sent to Manta or to any proxy. A no_proxy full of junk is only
 * a list that matches nothing.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cli, errorLines } from '../helpers/cli.js';
import { layBait, type Bait } from '../helpers/hostile.js';
import { mantaBits, type MantaBits } from '../servers/bits.js';
import { ForwardProxy } from '../servers/forward-proxy.js';

describe('hostile: proxy variables (publish)', function () {
  this.timeout(5 * 60 * 1000);
  let b: MantaBits;
  let proxy: ForwardProxy;
  let bait: Bait;
  before(async () => {
    b = await mantaBits();
    proxy = await ForwardProxy.start();
    bait = await layBait('proxy-env');
  });
  after(async () => {
    await proxy.close();
    await b.dispose();
    await bait.assertUntouched();
  });

  const SECRET = 'Pr0xyPa55';
  const host = (): string => new URL(proxy.url).host;
  const bad: Array<[string, string, string]> = [
    ['http_proxy', `http://u:${SECRET}@${'x'.repeat(8)}\r\nX-Injected: 1`, 'http_proxy is not a proxy URL'],
    ['HTTP_PROXY', `http://u:${SECRET}@proxy\u001b[2Jhost:3128`, 'HTTP_PROXY is not a proxy URL'],
    ['http_proxy', `http://u:${SECRET}%zz@PLACEHOLDER`, 'http_proxy: the user or password is not valid percent-encoding'],
    ['all_proxy', `file:///etc/passwd?${SECRET}`, 'all_proxy: a file:// proxy is not supported, only http:// and https://'],
    ['http_proxy', `http://u:${SECRET}@`, 'http_proxy is not a proxy URL'],
    ['http_proxy', `\tu:${SECRET}@[::1`, 'http_proxy is not a proxy URL'],
  ];

  for (const [variable, value, want] of bad) {
    it(`${variable}=${JSON.stringify(value.slice(0, 40))}: one line naming ${variable}, exit 2, nothing sent, no secret`, async () => {
      const before = b.srv.requests.length;
      const r = await cli([...b.args, '-v', '--log-file', join(b.dir, 'hostile.log')], {
        cwd: b.dir,
        env: b.env({ [variable]: value.replace('PLACEHOLDER', host()) }),
      });
      assert.equal(r.code, 2, r.stderr);
      const lines = errorLines(r);
      assert.equal(lines.length, 1, r.stderr);
      assert.ok(lines[0].startsWith(`buildimage: error: ${want}`), lines[0]);
      const everything = r.stdout + r.stderr + (await readFile(join(b.dir, 'hostile.log'), 'utf8'));
      assert.ok(!everything.includes(SECRET) && !everything.includes('X-Injected') && !everything.includes('\u001b[2J'), everything);
      assert.equal(b.srv.requests.length, before, 'nothing sent to Manta');
      assert.deepEqual(proxy.log, [], 'nothing sent to a proxy');
    });
  }

  it('a no_proxy of junk matches nothing: the publish goes through the proxy and lands', async () => {
    const junk = ['*.', '.', ':::', '[', ']:80', '%00', 'a'.repeat(5000), '127.0.0.1:notaport', '..'].join(',');
    const r = await cli(b.args, { cwd: b.dir, env: b.env({ http_proxy: proxy.url, no_proxy: junk }) });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(proxy.log.length > 0 && proxy.log.every((e) => !e.refused));
  });
});
