/**
 * The contents listing and its diff on hand-made trees: real files, real
 * lstat, real links, FIFOs and owners (the tests run as root).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, chown, lstat, lutimes, mkdir, mkdtemp, readFile, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { diffListings, topOf } from '../../src/contents/diff.js';
import { listingBytes, readListing, writeListing } from '../../src/contents/file.js';
import { canonicalText, contentDigest, displayText, encodeBytes, makeListing, type Entry } from '../../src/contents/listing.js';
import { listChanges } from '../../src/contents/walk.js';
import { clampTimes } from '../../src/host/rootfs.js';

const sha256 = (s: string | Buffer) => createHash('sha256').update(s).digest('hex');
const ORIGIN = { uuid: '11111111-1111-4111-8111-111111111111', name: 'base', version: '1.0' };
const IMAGE = { uuid: '22222222-2222-4222-8222-222222222222', name: 'svc', version: '2.0' };

async function origin(dir: string): Promise<void> {
  await mkdir(join(dir, 'etc'), { recursive: true });
  await mkdir(join(dir, 'usr/bin'), { recursive: true });
  await mkdir(join(dir, 'gone/deeper'), { recursive: true });
  await writeFile(join(dir, 'etc/motd'), 'hello\n');
  await writeFile(join(dir, 'etc/same-size'), 'aaaa');
  await writeFile(join(dir, 'etc/touched'), 'untouched content');
  await writeFile(join(dir, 'etc/mode'), 'm', { mode: 0o644 });
  await writeFile(join(dir, 'etc/owner'), 'o');
  await writeFile(join(dir, 'usr/bin/tool'), '#!/bin/sh\n', { mode: 0o755 });
  await writeFile(join(dir, 'gone/f'), 'f');
  await writeFile(join(dir, 'gone/deeper/g'), 'g');
  await writeFile(join(dir, 'becomes-dir'), 'x');
  await symlink('motd', join(dir, 'etc/link'));
}

describe('contents: what an image root adds, changes and deletes', () => {
  let top: string;
  let org: string;
  let img: string;
  let host: string;
  beforeEach(async () => {
    top = await mkdtemp(join(tmpdir(), 'bi-contents-'));
    org = join(top, 'origin');
    img = join(top, 'image');
    host = join(top, 'host');
    await mkdir(host);
    await writeFile(join(host, 'id_rsa'), 'SECRET KEY\n', { mode: 0o600 });
    await origin(org);
    // A copy keeps mode, owner, times and bytes; only the inodes differ, as after a zfs clone they would not.
    execFileSync('cp', ['-a', org, img]);
  });
  afterEach(() => rm(top, { recursive: true, force: true }));

  const byPath = (entries: Entry[]) => new Map(entries.map((e) => [e.path, e]));

  it('an untouched copy lists nothing (files of equal size and metadata are compared by content)', async () => {
    const { entries, stats } = await listChanges(img, org);
    assert.deepEqual(entries, []);
    assert.ok(stats.walked >= 14, `walked ${stats.walked}`);
  });

  it('lists additions with sha256, changes (content, mode, owner, link target, type) and deletions', async () => {
    await mkdir(join(img, 'opt/svc'), { recursive: true });
    await writeFile(join(img, 'opt/svc/server.js'), 'listen()\n', { mode: 0o640 });
    await writeFile(join(img, 'etc/motd'), 'a new motd\n');
    await writeFile(join(img, 'etc/same-size'), 'bbbb');
    await utimes(join(img, 'etc/touched'), new Date(), new Date());
    await chmod(join(img, 'etc/mode'), 0o4755);
    await chown(join(img, 'etc/owner'), 1234, 5678);
    await rm(join(img, 'etc/link'));
    await symlink('/etc/other', join(img, 'etc/link'));
    await rm(join(img, 'gone'), { recursive: true });
    await rm(join(img, 'becomes-dir'));
    await mkdir(join(img, 'becomes-dir'));
    await writeFile(join(img, 'becomes-dir/inside'), 'i');

    const { entries } = await listChanges(img, org);
    const m = byPath(entries);
    assert.deepEqual(m.get('/opt'), { path: '/opt', change: 'added', type: 'dir', mode: '0755', uid: 0, gid: 0 });
    assert.deepEqual(m.get('/opt/svc/server.js'), { path: '/opt/svc/server.js', change: 'added', type: 'file', mode: '0640', uid: 0, gid: 0, size: 9, sha256: sha256('listen()\n') });
    assert.equal(m.get('/etc/motd')?.change, 'changed');
    assert.equal(m.get('/etc/motd')?.sha256, sha256('a new motd\n'));
    assert.equal(m.get('/etc/same-size')?.sha256, sha256('bbbb'), 'same size, other bytes: found by hashing both');
    assert.equal(m.get('/etc/touched'), undefined, 'new times, same bytes: not a change');
    assert.equal(m.get('/etc/mode')?.mode, '4755');
    assert.deepEqual([m.get('/etc/owner')?.uid, m.get('/etc/owner')?.gid], [1234, 5678]);
    assert.equal(m.get('/etc/link')?.target, '/etc/other');
    assert.deepEqual(m.get('/becomes-dir'), { path: '/becomes-dir', change: 'changed', type: 'dir', mode: '0755', uid: 0, gid: 0 });
    assert.equal(m.get('/becomes-dir/inside')?.change, 'added');
    for (const p of ['/gone', '/gone/f', '/gone/deeper', '/gone/deeper/g']) assert.equal(m.get(p)?.change, 'deleted', p);
    assert.deepEqual(m.get('/gone'), { path: '/gone', change: 'deleted', type: 'dir' });
    assert.equal(m.get('/etc'), undefined, 'a directory whose entries changed is not itself a change');
    assert.equal(m.get('/usr/bin/tool'), undefined);
  });

  it('lists a link to a host file by its text, never following or hashing it; a FIFO is listed, never opened', async () => {
    const untouched = (await listChanges(img, org)).stats.hashed;
    await symlink(join(host, 'id_rsa'), join(img, 'etc/key'));
    await symlink(host, join(img, 'hostdir'));
    execFileSync('mkfifo', [join(img, 'etc/fifo')]);
    const { entries, stats } = await listChanges(img, org);
    const m = byPath(entries);
    assert.deepEqual(m.get('/etc/key'), { path: '/etc/key', change: 'added', type: 'symlink', mode: '0777', uid: 0, gid: 0, target: join(host, 'id_rsa') });
    assert.equal(m.get('/hostdir')?.type, 'symlink');
    assert.equal(m.get('/hostdir/id_rsa'), undefined, 'a link to a directory is not walked');
    assert.equal(m.get('/etc/fifo')?.type, 'fifo');
    assert.equal(stats.hashed, untouched, 'nothing more read than for the untouched copy');
    assert.ok(!JSON.stringify(entries).includes('SECRET'));
  });

  it('names that are not UTF-8, hold a backslash or control characters are listed reversibly', async () => {
    await writeFile(Buffer.from(join(img, 'bad-\xff-name'), 'latin1'), 'x');
    await writeFile(join(img, 'back\\slash'), 'x');
    await writeFile(join(img, 'ctl\x1b[31m'), 'x');
    const { entries } = await listChanges(img, org);
    const paths = entries.map((e) => e.path).sort();
    assert.deepEqual(paths, ['/back\\\\slash', '/bad-\\xff-name', '/ctl\x1b[31m']);
    assert.equal(displayText('/ctl\x1b[31m'), '/ctl\\x1b[31m');
    assert.equal(encodeBytes(Buffer.from([0x61, 0xc3, 0xa9, 0xff, 0x5c])), 'aé\\xff\\\\');
    assert.notEqual(encodeBytes(Buffer.from('\\xff')), encodeBytes(Buffer.from([0xff])));
  });

  it('refuses a mount inside the root rather than listing another file system', async function () {
    const mnt = join(img, 'etc/mnt');
    await mkdir(mnt);
    try {
      execFileSync('mount', ['-t', 'tmpfs', 'tmpfs', mnt]);
    } catch {
      this.skip();
    }
    try {
      await assert.rejects(listChanges(img, org), /another file system/);
    } finally {
      execFileSync('umount', [mnt]);
    }
  });
});

describe('contents: listing, digest, file', () => {
  const entries: Entry[] = [
    { path: '/opt/b', change: 'added', type: 'file', mode: '0644', uid: 0, gid: 0, size: 1, sha256: sha256('b') },
    { path: '/etc/gone', change: 'deleted', type: 'file' },
    { path: '/opt/a', change: 'added', type: 'symlink', mode: '0777', uid: 0, gid: 0, target: 'b' },
  ];

  it('the digest covers the sorted entries and the origin, not the order given nor the image', () => {
    const l = makeListing(IMAGE, ORIGIN, entries);
    assert.deepEqual(l.entries.map((e) => e.path), ['/etc/gone', '/opt/a', '/opt/b']);
    assert.deepEqual(l.counts, { added: 2, changed: 0, deleted: 1 });
    assert.equal(l.contentDigest, makeListing({ ...IMAGE, uuid: ORIGIN.uuid, version: '9' }, ORIGIN, [...entries].reverse()).contentDigest);
    assert.notEqual(l.contentDigest, contentDigest('33333333-3333-4333-8333-333333333333', entries));
    assert.equal(l.contentDigest, `sha256:${sha256(canonicalText(ORIGIN.uuid, entries))}`);
    assert.match(canonicalText(ORIGIN.uuid, entries), /^buildimage-contents 1 origin 1{8}-/);
  });

  it('writes the same bytes for the same listing, and reads them back', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'bi-listing-'));
    try {
      const l = makeListing(IMAGE, ORIGIN, entries);
      assert.deepEqual(await listingBytes(l), await listingBytes(makeListing(IMAGE, ORIGIN, [...entries].reverse())));
      await writeListing(join(dir, 'x.contents.json.gz'), l);
      assert.deepEqual(await readListing(join(dir, 'x.contents.json.gz')), l);
      const text = gunzipSync(await readFile(join(dir, 'x.contents.json.gz'))).toString();
      assert.equal(text.split('\n').length, entries.length + 3, 'one entry per line');
      // A plain JSON listing reads too; one edited by hand does not.
      await writeFile(join(dir, 'plain.json'), text);
      assert.equal((await readListing(join(dir, 'plain.json'))).contentDigest, l.contentDigest);
      await writeFile(join(dir, 'edited.json'), text.replace('"0644"', '"0600"'));
      await assert.rejects(readListing(join(dir, 'edited.json'), 'listing A'), /^UsageError: listing A: its contentDigest does not match/);
      await assert.rejects(writeListing(join(dir, 'x.contents.json.gz'), l), /EEXIST/, 'never over an existing file');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('contents: diff of two listings', () => {
  const f = (path: string, body: string, o: Partial<Entry> = {}): Entry => ({ path, change: 'added', type: 'file', mode: '0644', uid: 0, gid: 0, size: body.length, sha256: sha256(body), ...o });

  it('added, removed, changed (content, mode, owner, type) grouped by top directory', () => {
    const a = makeListing(IMAGE, ORIGIN, [f('/opt/svc/a.js', 'a'), f('/opt/svc/old.js', 'o'), f('/etc/conf', 'c'), f('/etc/owned', 'x'), f('/var/x', 'x'), { path: '/root/gone', change: 'deleted', type: 'file' }]);
    const b = makeListing({ ...IMAGE, version: '2.1' }, ORIGIN, [
      f('/opt/svc/a.js', 'A'),
      f('/opt/svc/new.js', 'n'),
      f('/etc/conf', 'c', { mode: '0600' }),
      f('/etc/owned', 'x', { uid: 100, gid: 100 }),
      { path: '/var/x', change: 'added', type: 'dir', mode: '0755', uid: 0, gid: 0 },
    ]);
    const d = diffListings(a, b, { a: 'a.gz', b: 'b.gz' });
    assert.equal(d.same, false);
    assert.deepEqual(d.counts, { added: 2, removed: 1, changed: 4 });
    assert.deepEqual(d.groups.map((g) => g.top), ['/etc', '/opt', '/root', '/var']);
    const opt = d.groups.find((g) => g.top === '/opt')!;
    assert.deepEqual(opt.added.map((i) => i.path), ['/opt/svc/new.js']);
    assert.deepEqual(opt.removed.map((i) => i.path), ['/opt/svc/old.js']);
    assert.deepEqual(opt.changed.map((i) => [i.path, i.what]), [['/opt/svc/a.js', ['content']]]);
    const etc = d.groups.find((g) => g.top === '/etc')!;
    assert.deepEqual(etc.changed.map((i) => [i.path, i.what]), [['/etc/conf', ['mode']], ['/etc/owned', ['owner']]]);
    // A deleted /root/gone in A, left as in the origin by B: B has it.
    assert.deepEqual(d.groups.find((g) => g.top === '/root')!.added.map((i) => i.path), ['/root/gone']);
    assert.deepEqual(d.groups.find((g) => g.top === '/var')!.changed[0].what, ['type', 'mode']);
  });

  it('one build changes a path the other leaves as in its origin: changed, how unknown; same listings: same', () => {
    const a = makeListing(IMAGE, ORIGIN, [f('/etc/motd', 'm', { change: 'changed' })]);
    const b = makeListing(IMAGE, ORIGIN, []);
    assert.deepEqual(diffListings(a, b).groups[0].changed[0].what, ['origin']);
    const same = diffListings(a, makeListing({ ...IMAGE, uuid: ORIGIN.uuid }, ORIGIN, a.entries));
    assert.equal(same.same, true);
    assert.deepEqual(same.groups, []);
    assert.equal(topOf('/'), '/');
    assert.equal(topOf('/a/b/c'), '/a');
  });
});

describe('host/rootfs clampTimes (SOURCE_DATE_EPOCH)', () => {
  it('refuses to go into a mount inside the root, in one line naming it', async () => {
    const top = await mkdtemp(join(tmpdir(), 'bi-clamp-mnt-'));
    const mnt = join(top, 'root/mnt');
    await mkdir(mnt, { recursive: true });
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', mnt]);
    try {
      await writeFile(join(mnt, 'host-owned'), 'h');
      await assert.rejects(clampTimes(join(top, 'root'), Date.parse('2020-01-01T00:00:00Z') / 1000), (e: Error) =>
        e.message === `${mnt} is on another file system than the image root (a mount?): not clamping times through it`);
      assert.ok((await lstat(join(mnt, 'host-owned'))).mtimeMs > Date.parse('2020-01-01T00:00:00Z'), 'nothing in the mount clamped');
    } finally {
      execFileSync('umount', [mnt]);
      await rm(top, { recursive: true, force: true });
    }
  });

  it('clamps times later than the epoch, inside the root only: a link is set itself, its target (a host file) never', async () => {
    const top = await mkdtemp(join(tmpdir(), 'bi-clamp-'));
    try {
      const root = join(top, 'root');
      await mkdir(join(root, 'd'), { recursive: true });
      await writeFile(join(top, 'host-file'), 'host');
      await writeFile(join(root, 'd/new'), 'n');
      await writeFile(join(root, 'old'), 'o');
      const old = new Date('2001-01-01T00:00:00Z');
      await utimes(join(root, 'old'), old, old);
      await symlink(join(top, 'host-file'), join(root, 'link'));
      const hostBefore = await lstat(join(top, 'host-file'));
      const epoch = Date.parse('2020-01-01T00:00:00Z') / 1000;
      const n = await clampTimes(root, epoch);
      assert.equal(n, 4, 'root, d, d/new, link');
      for (const p of ['', 'd', 'd/new', 'link']) {
        const st = await lstat(join(root, p));
        assert.equal(st.mtimeMs, epoch * 1000, `${p} mtime`);
        assert.equal(st.atimeMs, epoch * 1000, `${p} atime`);
      }
      assert.equal((await lstat(join(root, 'old'))).mtimeMs, old.getTime(), 'older times stay');
      const hostAfter = await lstat(join(top, 'host-file'));
      assert.equal(hostAfter.mtimeMs, hostBefore.mtimeMs, 'the host file behind the link is untouched');
      await lutimes(join(root, 'link'), new Date(), new Date());
      await clampTimes(root, epoch);
      assert.equal((await lstat(join(root, 'link'))).mtimeMs, epoch * 1000);
      // Only the time that is later is clamped; one at the epoch itself is not later.
      const late = new Date('2030-01-01T00:00:00Z');
      const at = new Date(epoch * 1000);
      await utimes(join(root, 'old'), old, late);
      await writeFile(join(root, 'read-late'), 'r');
      await utimes(join(root, 'read-late'), late, old);
      await writeFile(join(root, 'at-epoch'), 'e');
      await utimes(join(root, 'at-epoch'), at, at);
      // (Directories are left out here: reading one may move its access time.)
      await clampTimes(root, epoch);
      const times = async (p: string) => {
        const st = await lstat(join(root, p));
        return [p, st.atimeMs, st.mtimeMs];
      };
      assert.deepEqual(await times('old'), ['old', old.getTime(), epoch * 1000]);
      assert.deepEqual(await times('read-late'), ['read-late', epoch * 1000, old.getTime()]);
      assert.deepEqual(await times('at-epoch'), ['at-epoch', epoch * 1000, epoch * 1000]);
    } finally {
      await rm(top, { recursive: true, force: true });
    }
  });
});
