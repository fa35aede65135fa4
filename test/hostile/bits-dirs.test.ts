/**
 * Hostile bits directories (issue 12 items 5 and 11), published by the real
 * CLI to the local Manta server and with -L: links to the bait secret,
 * symlinked subdirectories, FIFOs, `..` in subdirectory arguments,
 * manifests whose "uuid" is a path, and image manifests that are huge,
 * nested deep or not JSON (read and checked before anything is sent). The secret must never appear in any
 * uploaded object, and nothing may land outside the stamp directory.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { execa } from 'execa';
import { cli, errorLines, type CliResult } from '../helpers/cli.js';
import { layBait, type Bait } from '../helpers/hostile.js';
import { testManifest } from '../helpers/manifests.js';
import { MantaTestServer } from '../servers/manta-server.js';
import { nodeRsaKey, tempDir } from '../servers/ssh-keys.js';

const USER = 'Joyent_Dev';
const STAMP = 'master-20240501T120000Z-g0123abc';
const BASE = `/${USER}/public/builds/svc`;
const DEST = `${BASE}/${STAMP}`;
const UUID = '2b1c8d3e-0000-4000-8000-0000000000aa';

describe('hostile bits directories (publish)', function () {
  this.timeout(180_000);
  let dir: string;
  let home: string;
  let bait: Bait;
  let srv: MantaTestServer;
  const key = nodeRsaKey();

  before(async () => {
    dir = await tempDir('bi-hostile-bits-');
    home = join(dir, 'home');
    await mkdir(join(home, '.ssh'), { recursive: true });
    await writeFile(join(home, '.ssh', 'id_rsa'), key.pem, { mode: 0o600 });
    await writeFile(join(home, '.ssh', 'id_rsa.pub'), key.pubLine + '\n');
    bait = await layBait('bits-bait');
  });
  after(async () => {
    await bait?.remove();
    await rm(dir, { recursive: true, force: true });
  });
  beforeEach(async () => {
    srv = await MantaTestServer.start({ [USER]: { keys: [key.pubLine] } });
  });
  afterEach(async () => {
    await srv.close();
    await bait.assertUntouched();
  });

  const env = (extra: Record<string, string> = {}): Record<string, string> => ({
    HOME: home,
    MANTA_URL: srv.url,
    MANTA_USER: USER,
    SSH_AUTH_SOCK: '',
    MANTA_KEY_ID: '',
    ...extra,
  });

  /** A bits dir with one good file per component and the given hostile additions. */
  async function bits(name: string): Promise<string> {
    const b = join(dir, name);
    await mkdir(join(b, 'svc/real'), { recursive: true });
    await writeFile(join(b, 'svc/latest-build-stamp'), STAMP + '\n');
    await writeFile(join(b, 'svc/real/ok.txt'), 'ok\n');
    await writeFile(join(b, 'svc/svc-pkg.tgz'), randomBytes(4096));
    return b;
  }

  function publishCli(b: string, extra: string[] = [], e: Record<string, string> = {}): Promise<CliResult> {
    return cli(['publish', '-b', 'master', '-n', 'svc', '-d', '/public/builds/svc', '-D', b, ...extra], { cwd: dir, env: env(e), timeoutMs: 90_000 });
  }

  /** Every stored object: under the stamp dir (or the pointer), and none carrying the secret. */
  async function assertCleanUploads(): Promise<string[]> {
    const objects: string[] = [];
    for (const p of srv.list(`/${USER}`)) {
      const e = srv.entry(p)!;
      if (e.type !== 'object') continue;
      objects.push(p);
      assert.ok(p.startsWith(`${DEST}/`) || p === `${BASE}/master-latest`, `uploaded outside the stamp dir: ${p}`);
      const body = (await srv.read(p)).toString('latin1');
      assert.ok(!body.includes(bait.secretText.trim()), `${p} carries the secret`);
    }
    return objects;
  }

  it('a latest-build-stamp that is a link to a secret, a FIFO, or holds a secret: one line that does not show it, nothing uploaded', async () => {
    for (const plant of [
      (p: string) => symlink(bait.secret, p),
      (p: string) => execa('mkfifo', [p]),
      async (p: string) => writeFile(p, await readFile(bait.secret)),
    ]) {
      const b = await bits(`stamp-${randomBytes(3).toString('hex')}`);
      await rm(join(b, 'svc/latest-build-stamp'));
      await plant(join(b, 'svc/latest-build-stamp'));
      const r = await publishCli(b);
      assert.equal(r.code, 2, r.stderr);
      assert.equal(errorLines(r).length, 1, r.stderr);
      assert.match(errorLines(r)[0], /latest-build-stamp/);
      for (const out of [r.stdout, r.stderr]) assert.ok(!out.includes('PRIVATE KEY'), `the secret was shown:\n${out}`);
      assert.deepEqual(await assertCleanUploads(), []);
    }
  });

  it('symlinks to a secret, symlinked subdirs and a FIFO are not published; the links are named in one warning', async () => {
    const b = await bits('links');
    await symlink(bait.secret, join(b, 'svc/notes.txt'));
    await symlink(bait.dir, join(b, 'svc/host'));
    await symlink(bait.dir, join(b, 'top'));
    await symlink(join(bait.dir, 'etc/passwd'), join(b, 'svc/real/passwd'));
    await execa('mkfifo', [join(b, 'svc/pipe')]);
    const r = await publishCli(b);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /not publishing 4 symlinks in .* \(only regular files are published\): svc\/host, svc\/notes\.txt, svc\/real\/passwd, top/);
    assert.match(r.stderr, /not publishing 1 special file\(s\) \(FIFO, socket, device\) in .*: svc\/pipe/);
    const objects = await assertCleanUploads();
    assert.deepEqual(objects.filter((p) => p.startsWith(`${DEST}/`)).map((p) => p.slice(DEST.length + 1)).sort(), [
      'SHA256SUMS',
      'md5sums.txt',
      'svc/latest-build-stamp',
      'svc/real/ok.txt',
      'svc/svc-pkg.tgz',
    ]);
    assert.ok(!(await srv.read(`${DEST}/md5sums.txt`)).toString().includes('notes.txt'));
  });

  it('-L copies no link target either', async () => {
    const b = await bits('links-local');
    await symlink(bait.secret, join(b, 'svc/notes.txt'));
    await symlink(bait.dir, join(b, 'svc/host'));
    const out = join(dir, 'local-out');
    const r = await cli(['publish', '-L', '-d', out, '-b', 'master', '-n', 'svc', '-D', b], { cwd: dir, env: { HOME: home }, timeoutMs: 60_000 });
    assert.equal(r.code, 0, r.stderr);
    const seen: string[] = [];
    const walk = async (d: string): Promise<void> => {
      for (const e of await readdir(d, { withFileTypes: true })) {
        const p = join(d, e.name);
        if (e.isDirectory()) await walk(p);
        else if (e.isFile()) {
          seen.push(p.slice(out.length + 1));
          assert.ok(!(await readFile(p, 'utf8')).includes(bait.secretText.trim()), `${p} carries the secret`);
        }
      }
    };
    await walk(out);
    assert.ok(!seen.some((p) => p.includes('notes.txt') || p.includes('host/')), seen.join(', '));
  });

  it('a subdirectory argument with .. or through a symlink is one line, exit 2, nothing sent', async () => {
    const b = await bits('subdirs');
    await symlink(bait.dir, join(b, 'out'));
    await symlink(bait.dir, join(b, 'svc/via'));
    for (const [arg, re] of [
      ['..', /subdirectory \.\. is not inside the bits directory/],
      ['svc/../..', /subdirectory svc\/\.\.\/\.\. is not inside the bits directory/],
      ['out', /subdirectory out: out is a symlink; publish does not follow links/],
      ['svc/via/etc', /subdirectory svc\/via\/etc: svc\/via is a symlink/],
    ] as const) {
      const r = await publishCli(b, [arg]);
      assert.equal(r.code, 2, `${arg}: ${r.stderr}`);
      const lines = errorLines(r);
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0], re);
    }
    assert.deepEqual(srv.requests, [], 'nothing sent to Manta');
  });

  it("-p with a manifest whose uuid is a path ('../../x') is one line, exit 2, before anything is uploaded", async () => {
    for (const uuid of ['../../x', `${UUID}/../../x`, 42]) {
      const b = await bits(`uuid-${typeof uuid}-${String(uuid).length}`);
      const image = randomBytes(1024);
      await writeFile(join(b, 'svc/svc-zfs-1.imgmanifest'), JSON.stringify(testManifest({ uuid: uuid as string, name: 'svc', version: '1' }, image)));
      await writeFile(join(b, 'svc/svc-zfs-1.zfs.gz'), image);
      const r = await publishCli(b, ['-p'], { UPDATES_IMGADM_URL: 'http://127.0.0.1:9', UPDATES_IMGADM_USER: 'mg' });
      assert.equal(r.code, 2, r.stderr);
      const lines = errorLines(r);
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0], /image manifest svc\/svc-zfs-1\.imgmanifest: "uuid" must be a lower-case UUID, got /);
    }
    assert.deepEqual(srv.requests, [], 'Manta not even asked');
  });

  it('image manifests are read as hostile input, with or without -p: huge, nested deep, not JSON, a secret inside: one line that does not show it, exit 2, nothing sent', async () => {
    const secret = (await readFile(bait.secret, 'utf8')).trim();
    for (const [what, body, re] of [
      ['huge', `{"name":"${'a'.repeat(2 * 1024 * 1024)}"}`, /image manifest svc\/svc-zfs-1\.imgmanifest is larger than 1048576 bytes/],
      ['nested', `${'['.repeat(100_000)}${']'.repeat(100_000)}`, /image manifest svc\/svc-zfs-1\.imgmanifest: the manifest is not a JSON object/],
      ['tags nested', JSON.stringify({ ...testManifest({ name: 'svc', version: '1' }, Buffer.alloc(1)), tags: JSON.parse(`${'{"a":'.repeat(1000)}1${'}'.repeat(1000)}`) }), /"tags" is nested too deeply/],
      ['not JSON', secret, /image manifest svc\/svc-zfs-1\.imgmanifest is not valid JSON \(/],
    ] as const) {
      const b = await bits(`manifest-${what.replace(' ', '-')}`);
      await writeFile(join(b, 'svc/svc-zfs-1.imgmanifest'), body);
      await writeFile(join(b, 'svc/svc-zfs-1.zfs.gz'), randomBytes(1024));
      for (const extra of [[], ['--dry-run']]) {
        const r = await publishCli(b, extra);
        assert.equal(r.code, 2, `${what}: ${r.stderr}`);
        const lines = errorLines(r);
        assert.equal(lines.length, 1, r.stderr);
        assert.match(lines[0], re, what);
        for (const out of [r.stdout, r.stderr]) assert.ok(!out.includes('PRIVATE KEY'), `${what}: the secret was shown:\n${out.slice(0, 2000)}`);
      }
    }
    assert.deepEqual(srv.requests, [], 'Manta not even asked');
  });

  it('a Manta that redirects (301/302/307 to http, another host) is one line naming the status and host; nothing follows it', async () => {
    const hits: string[] = [];
    const sink = http.createServer((req, res) => {
      hits.push(`${req.method} ${req.url}`);
      req.resume();
      res.writeHead(204).end();
    });
    await new Promise<void>((r) => sink.listen(0, '127.0.0.1', r));
    const to = `http://127.0.0.1:${(sink.address() as AddressInfo).port}`;
    try {
      const b = await bits('redirect');
      for (const status of [301, 302, 307]) {
        srv.clearFaults();
        srv.fault({ kind: 'redirect', status, location: `${to}/steal`, method: 'PUT', times: 100 });
        const r = await publishCli(b);
        assert.equal(r.code, 3, r.stderr);
        const lines = errorLines(r);
        assert.equal(lines.length, 1, r.stderr);
        assert.match(lines[0], new RegExp(`: ${status} [\\w ]+: redirect to ${to.replace(/\./g, '\\.')} not followed`));
      }
      assert.deepEqual(hits, []);
      await assertCleanUploads();
    } finally {
      await new Promise<void>((r) => sink.close(() => r()));
    }
  });
});
