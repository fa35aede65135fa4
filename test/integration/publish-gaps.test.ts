/**
 * `publish` through the real CLI against the local Manta server, for what
 * issue 18 found untested end to end (items 2 and 3): an object already
 * there with the same size and another MD5 (every other conflict test used
 * contents of another size), a single conflict, an object Manta answers
 * without Content-MD5, a directory where a file goes, subdirectory
 * arguments, a try branch named release-YYYYMMDD, and which of several
 * image files beside a manifest is its image.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cli, errorLines, type CliResult } from '../helpers/cli.js';
import { testManifest } from '../helpers/manifests.js';
import { MantaTestServer } from '../servers/manta-server.js';
import { nodeRsaKey, tempDir } from '../servers/ssh-keys.js';

const STAMP = 'master-20240501T120000Z-g0123abc';
const USER = 'Joyent_Dev';
const BASE = `/${USER}/public/builds/demo`;
const DEST = `${BASE}/${STAMP}`;
const md5hex = (b: Buffer | string): string => createHash('md5').update(b).digest('hex');

describe('publish gaps (integration, CLI and local Manta)', function () {
  this.timeout(120_000);
  let dir: string;
  let bits: string;
  let home: string;
  let srv: MantaTestServer;
  const image = randomBytes(64 * 1024);
  const manifest = testManifest({ name: 'demo', version: '1.0' }, image);
  const files: Record<string, Buffer> = {
    'demo/demo-zfs-1.0.zfs.gz': image,
    'demo/demo-zfs-1.0.imgmanifest': Buffer.from(JSON.stringify(manifest)),
    'demo/notes.txt': Buffer.from('notes 1\n'),
    'other/x.txt': Buffer.from('x\n'),
  };

  beforeEach(async () => {
    dir = await tempDir('buildimage-publish-gaps-');
    bits = join(dir, 'bits');
    home = join(dir, 'home');
    await mkdir(join(home, '.ssh'), { recursive: true });
    const key = nodeRsaKey();
    await writeFile(join(home, '.ssh/id_rsa'), key.pem, { mode: 0o600 });
    await writeFile(join(home, '.ssh/id_rsa.pub'), key.pubLine + '\n');
    for (const [rel, body] of Object.entries(files)) {
      await mkdir(join(bits, rel, '..'), { recursive: true });
      await writeFile(join(bits, rel), body);
    }
    srv = await MantaTestServer.start({ [USER]: { keys: [key.pubLine] } });
  });
  afterEach(async () => {
    await srv.close();
    await rm(dir, { recursive: true, force: true });
  });

  const publish = (args: string[] = []): Promise<CliResult> =>
    cli(['publish', '-b', 'master', '-n', 'demo', '-t', STAMP, '-d', '/public/builds/demo', '-D', bits, ...args], {
      cwd: dir,
      env: { HOME: home, MANTA_URL: srv.url, MANTA_USER: USER, PATH: process.env.PATH ?? '' },
      timeoutMs: 60_000,
    });
  /** The error line without its hint (the last parenthesised part). */
  const errorLine = (r: CliResult): string | undefined => {
    const l = errorLines(r);
    assert.equal(l.length, 1, r.stderr);
    return l[0].replace(/ \([^()]*\)$/, '');
  };
  const objects = (): string[] => srv.list(BASE).filter((p) => srv.entry(p)?.type === 'object').sort();

  it('an object with the same size and another MD5 stops the publish: exit 3, one line, nothing uploaded, no pointer', async () => {
    const theirs = Buffer.from('notes 2\n');
    assert.equal(theirs.length, files['demo/notes.txt'].length);
    await srv.seed(`${DEST}/demo/notes.txt`, theirs);
    const r = await publish();
    assert.equal(r.code, 3, r.stderr);
    assert.equal(errorLine(r), `buildimage: error: ${DEST}/demo/notes.txt exists with MD5 ${md5hex(theirs)}, local ${md5hex(files['demo/notes.txt'])} (${join(bits, 'demo/notes.txt')})`);
    assert.deepEqual(srv.puts(), []);
    assert.deepEqual(objects(), [`${DEST}/demo/notes.txt`]);
    assert.deepEqual(await srv.read(`${DEST}/demo/notes.txt`), theirs);
  });

  it('an object Manta answers without Content-MD5 stops the publish (bits-upload.sh took an empty mmd5 for "missing" and overwrote it)', async () => {
    await srv.seed(`${DEST}/other/x.txt`, files['other/x.txt'], 'text/plain', { noMd5: true });
    const r = await publish();
    assert.equal(r.code, 3, r.stderr);
    assert.equal(errorLine(r), `buildimage: error: ${DEST}/other/x.txt exists and has no MD5`);
    assert.deepEqual(srv.puts(), []);
    const dry = await publish(['--dry-run']);
    assert.equal(dry.code, 3, dry.stdout + dry.stderr);
    assert.match(dry.stdout, /1 conflict \(publishing would fail\); nothing was changed$/);
  });

  it('a directory where a file goes stops the publish; nothing is put over it', async () => {
    await srv.seed(`${DEST}/demo/notes.txt/kept`, 'k');
    const r = await publish();
    assert.equal(r.code, 3, r.stderr);
    assert.equal(errorLine(r), `buildimage: error: ${DEST}/demo/notes.txt exists and is a directory, not a file`);
    assert.deepEqual(srv.puts(), []);
    assert.equal(srv.entry(`${DEST}/demo/notes.txt`)?.type, 'directory');
  });

  it('subdirectory arguments publish only those, at their path under the stamp; one outside the bits dir is exit 2', async () => {
    const r = await publish(['other']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(objects(), [`${DEST}/SHA256SUMS`, `${DEST}/md5sums.txt`, `${DEST}/other/x.txt`, `${BASE}/master-latest`]);
    assert.equal((await srv.read(`${DEST}/md5sums.txt`)).toString(), `${md5hex(files['other/x.txt'])}  other/x.txt\n`);
    const before = srv.requests.length;
    const bad = await publish(['other', '../bits/demo']);
    assert.equal(bad.code, 2, bad.stderr);
    assert.equal(errorLine(bad), 'buildimage: error: subdirectory ../bits/demo is not inside the bits directory');
    assert.equal(srv.requests.length, before, 'nothing asked of Manta');
  });

  it('a try branch named release-YYYYMMDD moves only its own pointer and goes to the experimental channel', async () => {
    const r = await publish(['-B', 'release-20240101', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { channel: string; tryBranch: string };
    assert.equal(out.channel, 'experimental');
    assert.equal(out.tryBranch, 'release-20240101');
    assert.equal((await srv.read(`${BASE}/release-20240101-latest`)).toString(), `${DEST}\n`);
    assert.equal(srv.entry(`${BASE}/latest-release`), undefined);
    assert.equal(srv.entry(`${BASE}/master-latest`), undefined);
  });

  it('of several image files beside a manifest the one with its bytes is the image: a stale .zfs.gz does not stop a good .zfs.xz', async () => {
    const stale = randomBytes(image.length);
    await rm(join(bits, 'demo/demo-zfs-1.0.zfs.gz'));
    await writeFile(join(bits, 'demo/demo-zfs-1.0.zfs.xz'), image);
    await writeFile(join(bits, 'demo/demo-zfs-1.0.zfs.gz'), stale);
    const r = await publish(['--dry-run', '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /image manifest demo\/demo-zfs-1\.0\.imgmanifest: its image is demo\/demo-zfs-1\.0\.zfs\.xz; not its image: demo\/demo-zfs-1\.0\.zfs\.gz/);
    // Neither is the manifest's: refused before anything is asked of Manta, naming both.
    await writeFile(join(bits, 'demo/demo-zfs-1.0.zfs.xz'), stale);
    const before = srv.requests.length;
    const bad = await publish();
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(errorLine(bad)!, /^buildimage: error: image manifest demo\/demo-zfs-1\.0\.imgmanifest: no file beside it is its image \(files\[0\]: 65536 bytes, sha1 [0-9a-f]{40}\): demo\/demo-zfs-1\.0\.zfs\.gz has sha1 [0-9a-f]{40}, demo\/demo-zfs-1\.0\.zfs\.xz has sha1 [0-9a-f]{40}$/);
    assert.equal(srv.requests.length, before);
    assert.equal(await readFile(join(bits, 'demo/demo-zfs-1.0.zfs.gz')).then((b) => b.equals(stale)), true);
  });
});
