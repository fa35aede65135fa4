/**
 * Hostile inputs of the contents listing (issue 15): an image root whose
 * links aim at the host (listed by their text, never followed or hashed),
 * odd names; and listings given to `buildimage diff`: a gzip bomb, deep
 * nesting, huge strings, wrong fields, a FIFO, a link to a secret, a
 * listing edited by hand, control characters for the terminal. Each bad
 * listing is one error line, exit 2, never its text; the host is untouched.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readFile, rm, symlink, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { writeListing } from '../../src/contents/file.js';
import { makeListing, type Entry } from '../../src/contents/listing.js';
import { cli, errorLines } from '../helpers/cli.js';
import { layBait, type Bait } from '../helpers/hostile.js';
import { assertNoLeaks } from '../helpers/leaks.js';
import { TEST_TOP, world, type World } from '../helpers/world.js';

const ORIGIN = { uuid: '11111111-1111-4111-8111-111111111111', name: 'base', version: '1.0' };
const IMAGE = { uuid: '22222222-2222-4222-8222-222222222222', name: 'svc', version: '2.0' };
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/;

describe('hostile contents listings', function () {
  this.timeout(10 * 60 * 1000);
  let bait: Bait;
  let dir: string;
  let good: string;

  before(async () => {
    bait = await layBait('bait-contents');
    dir = join(TEST_TOP, `contents-hostile-${process.pid}`);
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    good = join(dir, 'good.contents.json.gz');
    await writeListing(good, makeListing(IMAGE, ORIGIN, [{ path: '/opt/a', change: 'added', type: 'file', mode: '0644', uid: 0, gid: 0, size: 1, sha256: 'a'.repeat(64) }]));
  });
  after(async () => {
    await bait.assertUntouched();
    await bait.remove();
    await rm(dir, { recursive: true, force: true });
  });

  async function refused(file: string, why: RegExp): Promise<void> {
    const r = await cli(['diff', good, file], { timeoutMs: 60_000 });
    assert.equal(r.code, 2, `exit 2\n${r.stderr}`);
    const lines = errorLines(r);
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0], /^buildimage: error: listing B \(/);
    assert.match(lines[0], why);
    assert.ok(!r.stderr.includes(bait.secretText.trim()) && !r.stdout.includes(bait.secretText.trim()), 'the secret is never shown');
    assert.ok(!lines[0].includes('AAAAAAAAAAAAAAAA'), 'no value is quoted');
    assert.equal(r.stdout, '');
  }

  it('a gzip bomb stops at the bound', async () => {
    const bomb = join(dir, 'bomb.contents.json.gz');
    await writeFile(bomb, gzipSync(Buffer.alloc(200 * 1024 * 1024, 0x20), { level: 9 }));
    await refused(bomb, /decompresses to more than 134217728 bytes/);
  });

  it('deep nesting, huge strings, wrong types and values, unknown fields: one line naming the field, never the value', async () => {
    const head = { contentsVersion: 1, contentDigest: `sha256:${'0'.repeat(64)}`, image: IMAGE, origin: ORIGIN, counts: { added: 1, changed: 0, deleted: 0 } };
    const cases: Array<[string, string, RegExp]> = [
      ['nested', `${JSON.stringify(head).slice(0, -1)},"entries":${'['.repeat(1_000_000)}${']'.repeat(1_000_000)}}`, /entries\[0\]: expected object, got array/],
      ['huge-path', JSON.stringify({ ...head, entries: [{ path: '/' + 'A'.repeat(5_000_000), change: 'added', type: 'file' }] }), /entries\[0\]\.path: String must contain at most 16384/],
      ['enum', JSON.stringify({ ...head, entries: [{ path: '/a', change: `${bait.secretText}\x1b[2J`, type: 'file' }] }), /entries\[0\]\.change: not one of added, changed, deleted/],
      ['unknown', JSON.stringify({ ...head, [`${bait.secretText}`]: 1, entries: [] }), /top: 1 unknown field\(s\)|: 1 unknown field/],
      ['version', JSON.stringify({ ...head, contentsVersion: 2, entries: [] }), /contentsVersion: must be 1/],
      ['not-object', '[1,2,3]', /top: expected object, got array/],
      ['proto', JSON.stringify({ ...head, entries: [] }).replace('{', '{"__proto__":{"polluted":1},'), /unknown field/],
      ['order', JSON.stringify({ ...head, entries: [{ path: '/b', change: 'deleted', type: 'file' }, { path: '/a', change: 'deleted', type: 'file' }] }), /entries out of order or repeated at \[1\]/],
      ['digest', JSON.stringify({ ...head, entries: [] }), /contentDigest does not match its entries/],
    ];
    for (const [name, text, why] of cases) {
      const f = join(dir, `${name}.contents.json.gz`);
      await writeFile(f, gzipSync(text));
      await refused(f, why);
    }
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });

  it('not gzip nor JSON, a link to a secret, a FIFO, a directory, a file too large: one line, no hang, nothing read out', async () => {
    const link = join(dir, 'secret.contents.json.gz');
    await symlink(bait.secret, link);
    await refused(link, /not valid JSON/);
    const broken = join(dir, 'broken.contents.json.gz');
    await writeFile(broken, Buffer.concat([gzipSync('{"contentsVersion":1}'), Buffer.from('trailing')]).subarray(0, 20));
    await refused(broken, /not a valid gzip file/);
    const fifo = join(dir, 'fifo.contents.json.gz');
    execFileSync('mkfifo', [fifo]);
    await refused(fifo, /not a regular file/);
    await refused(dir, /not a regular file/);
    const big = join(dir, 'big.contents.json.gz');
    await writeFile(big, '');
    await truncate(big, 65 * 1024 * 1024);
    await refused(big, /larger than 67108864 bytes/);
  });

  it('names with control characters, bidi overrides and bytes that are not UTF-8 are shown escaped', async () => {
    const nasty: Entry[] = [
      { path: '/opt/\x1b]0;pwned\x07title', change: 'added', type: 'file', mode: '0644', uid: 0, gid: 0, size: 1, sha256: 'b'.repeat(64) },
      { path: '/opt/\u202egnp.exe', change: 'added', type: 'symlink', mode: '0777', uid: 0, gid: 0, target: '/etc/\r\nfake line' },
      { path: '/\x1b[2Jtop/x', change: 'deleted', type: 'file' },
      { path: '/opt/bad-\\xff', change: 'added', type: 'fifo', mode: '0644', uid: 0, gid: 0 },
    ];
    const f = join(dir, 'nasty.contents.json.gz');
    await writeListing(f, makeListing(IMAGE, ORIGIN, nasty));
    const r = await cli(['diff', good, f]);
    assert.equal(r.code, 1, r.stderr);
    assert.doesNotMatch(r.stdout, CONTROL, 'no raw control character reaches the terminal');
    assert.ok(!r.stdout.includes('\u202e'));
    assert.match(r.stdout, /\+ \/opt\/\\x1b\]0;pwned\\x07title/);
    assert.match(r.stdout, /-> \/etc\/\\x0d\\x0afake line/);
    assert.match(r.stdout, /^\/\\x1b\[2Jtop: /m);
    const j = await cli(['diff', good, f, '--json']);
    assert.equal(j.code, 1);
    assert.equal(JSON.parse(j.stdout).groups.length, 2);
  });
});

describe('hostile image contents: the listing of an image whose links aim at the host', function () {
  this.timeout(10 * 60 * 1000);
  let w: World;
  let bait: Bait;
  before(async () => {
    w = await world();
    bait = await layBait('bait-contents-image');
  });
  after(() => bait.remove());

  it('links to host files and dirs are listed by their text, never followed or hashed; odd names listed escaped-reversibly', async () => {
    const proto = join(w.dir, 'proto-contents-hostile');
    await rm(proto, { recursive: true, force: true });
    await mkdir(join(proto, 'opt/svc'), { recursive: true });
    await writeFile(join(proto, 'opt/svc/app.js'), 'x\n');
    await symlink(bait.secret, join(proto, 'opt/svc/key'));
    await symlink(bait.dir, join(proto, 'opt/svc/hostdir'));
    await symlink('../'.repeat(20) + bait.secret.slice(1), join(proto, 'opt/svc/climb'));
    // (Names that are not UTF-8 are listed as \xNN too: test/unit/contents; host/copy does not copy them yet.)
    await writeFile(join(proto, 'opt/svc/name-\\-\x1b'), 'odd\n');
    const out = await w.outDir();
    const r = await cli(['-i', w.origin.uuid, '-d', proto, '-m', JSON.stringify({ name: 'hostile-contents', version: '1.0.0' }), '-P', 'hc-zfs', '--output-dir', out], { env: w.env });
    assert.equal(r.code, 0, r.stderr);
    const gz = await readFile(join(out, 'hc-zfs-1.0.0.contents.json.gz'));
    const text = gunzipSync(gz).toString();
    assert.ok(!text.includes(bait.secretText.trim()), 'the secret is not in the listing');
    const entries = new Map((JSON.parse(text) as { entries: Entry[] }).entries.map((e) => [e.path, e]));
    assert.deepEqual(entries.get('/opt/svc/key'), { path: '/opt/svc/key', change: 'added', type: 'symlink', mode: '0777', uid: 0, gid: 0, target: bait.secret });
    assert.equal(entries.get('/opt/svc/hostdir')?.target, bait.dir);
    assert.equal(entries.get('/opt/svc/climb')?.sha256, undefined);
    assert.equal([...entries.keys()].filter((p) => p.startsWith('/opt/svc/hostdir/')).length, 0, 'a link to a host dir is not walked');
    assert.equal(entries.get('/opt/svc/name-\\\\-\x1b')?.sha256, createHash('sha256').update('odd\n').digest('hex'), [...entries.keys()].join(' '));
    await bait.assertUntouched(r.stderr);
    await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir: w.workDir, outputDir: out, context: r.stderr });
  });
});
