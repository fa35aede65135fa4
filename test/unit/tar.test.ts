import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmod, chown, link, lstat, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { copyTree } from '../../src/host/copy.js';
import { extractArchives, parseAddArchive } from '../../src/image/extract.js';
import { UsageError } from '../../src/core/errors.js';
import { SETTINGS } from '../../src/settings/table.js';
import { TarReader, openArchive, sniffCompression, type TarEntry } from '../../src/image/tar.js';
import { SUFFIX, gtarCreate, paxEntry, rawTar, type TarCompression, type TarFormat } from '../../testbed/archives.js';
import { describeTree, diffTrees } from '../helpers/tree.js';

/** Every entry of an archive, with a sha1 of each file's data. */
async function readAll(path: string): Promise<Array<Omit<TarEntry, 'offset' | 'atime' | 'mtime' | 'flag'> & { sha1?: string }>> {
  const a = await openArchive(path);
  const r = new TarReader(a.stream, path);
  const out = [];
  try {
    for (let e = await r.next(); e; e = await r.next()) {
      const { offset: _o, atime: _a, mtime: _m, flag: _f, ...rest } = e;
      const h = createHash('sha1');
      for await (const c of r.data()) h.update(c);
      out.push({ ...rest, ...(e.type === 'file' ? { sha1: h.digest('hex') } : {}) });
    }
  } catch (err) {
    await a.close(false);
    throw err;
  }
  await a.close(true);
  return out;
}

const sha1 = (s: string) => createHash('sha1').update(s).digest('hex');
const LONG_DIR = `root/opt/${'d'.repeat(60)}/${'e'.repeat(60)}`;
const LONG_FILE = `${'f'.repeat(86)}.js`;

describe('tar reader (image/tar)', () => {
  let top: string;
  let proto: string;
  before(async () => {
    top = await mkdtemp(join(tmpdir(), 'bi-tar-'));
    proto = join(top, 'proto');
    await mkdir(join(proto, LONG_DIR), { recursive: true });
    await mkdir(join(proto, 'site'), { recursive: true });
    await writeFile(join(proto, 'root/opt/app.js'), 'console.log(1)\n');
    await writeFile(join(proto, LONG_DIR, LONG_FILE), 'long\n');
    await writeFile(join(proto, 'root/opt/suid'), '#!/bin/sh\n');
    await chown(join(proto, 'root/opt/suid'), 1234, 5678);
    await chmod(join(proto, 'root/opt/suid'), 0o4755);
    await symlink('app.js', join(proto, 'root/opt/link.js'));
    await link(join(proto, 'root/opt/app.js'), join(proto, 'root/opt/hard.js'));
    await writeFile(join(proto, 'site/x'), 'site\n');
  });
  after(() => rm(top, { recursive: true, force: true }));

  // ustar holds names up to 255 bytes (prefix + name); pax and GNU any length (pax records, GNU ././@LongLink).
  for (const format of ['ustar', 'pax', 'gnu'] as TarFormat[]) {
    it(`reads ${format}: names (long ones too), types, modes with set-id bits, owners, link targets, data`, async () => {
      const file = gtarCreate(proto, join(top, `${format}.tar`), { format, compression: 'none', members: ['root', 'site'] });
      const es = await readAll(file);
      const by = new Map(es.map((e) => [e.name.replace(/\/$/, ''), e]));
      const long = by.get(`${LONG_DIR}/${LONG_FILE}`);
      assert.ok(long, `the ${LONG_DIR.length + LONG_FILE.length + 1}-byte name is read whole: ${[...by.keys()].join(' ')}`);
      assert.equal(long.sha1, sha1('long\n'));
      assert.equal(by.get('root/opt/app.js')?.sha1, sha1('console.log(1)\n'));
      const suid = by.get('root/opt/suid')!;
      assert.deepEqual([suid.mode, suid.uid, suid.gid], [0o4755, 1234, 5678]);
      assert.deepEqual([by.get('root/opt/link.js')?.type, by.get('root/opt/link.js')?.linkname], ['symlink', 'app.js']);
      const hard = by.get('root/opt/hard.js')?.type === 'hardlink' ? by.get('root/opt/hard.js')! : by.get('root/opt/app.js')!;
      assert.equal(hard.type, 'hardlink');
      assert.match(hard.linkname, /^root\/opt\/(app|hard)\.js$/);
      assert.equal(by.get('root/opt')?.type, 'dir');
      assert.equal(by.get('site/x')?.sha1, sha1('site\n'));
    });
  }

  it('reads pax long names and link names from hand-made pax headers', async () => {
    const longName = `root/${'p/'.repeat(200)}file`;
    const longLink = `/${'t'.repeat(300)}`;
    const file = join(top, 'pax-hand.tar');
    await writeFile(
      file,
      rawTar([
        paxEntry({ path: longName, uid: '4000000', mtime: '1700000000.25' }),
        { name: 'short-ignored', data: 'x\n' },
        paxEntry({ linkpath: longLink }),
        { name: 'root/l', type: '2' },
      ]),
    );
    const es = await readAll(file);
    assert.deepEqual(
      es.map((e) => [e.name, e.type, e.uid, e.linkname]),
      [
        [longName, 'file', 4000000, ''],
        ['root/l', 'symlink', 0, longLink],
      ],
    );
  });

  for (const c of ['none', 'gzip', 'bzip2', 'xz'] as TarCompression[]) {
    it(`reads a ${c === 'none' ? 'plain' : c} archive (told by its magic bytes, not its name)`, async () => {
      const file = gtarCreate(proto, join(top, `c${SUFFIX[c]}`), { compression: c, members: ['root'] });
      const a = await openArchive(file);
      assert.equal(a.compression, c);
      await a.close(true);
      const es = await readAll(file);
      assert.equal(es.find((e) => e.name === 'root/opt/app.js')?.sha1, sha1('console.log(1)\n'));
    });
  }

  it('sniffs compressions', () => {
    assert.equal(sniffCompression(Buffer.from([0x1f, 0x8b, 8])), 'gzip');
    assert.equal(sniffCompression(Buffer.from('BZh91AY')), 'bzip2');
    assert.equal(sniffCompression(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0, 0])), 'xz');
    assert.equal(sniffCompression(Buffer.from('root/')), 'none');
  });

  it('refuses an archive without its end-of-archive block, and one cut inside an entry', async () => {
    const noEnd = join(top, 'noend.tar');
    await writeFile(noEnd, rawTar([{ name: 'root/a', data: 'a\n' }], { end: false }));
    await assert.rejects(readAll(noEnd), /truncated: no end-of-archive block/);
    const cut = join(top, 'cut.tar');
    await writeFile(cut, rawTar([{ name: 'root/a', data: 'a'.repeat(2000) }]).subarray(0, 1024));
    await assert.rejects(readAll(cut), /"root\/a": truncated: the archive ends inside this entry \(2000 bytes declared\)/);
  });
});

describe('extractArchives: archives into an image root', () => {
  let top: string;
  before(async () => {
    top = await mkdtemp(join(tmpdir(), 'bi-extract-'));
  });
  after(() => rm(top, { recursive: true, force: true }));

  it('a release tarball plus two agent tarballs gives the tree a copy of the merged root/ gives (owners root:root, set-id kept)', async () => {
    const mk = async (name: string, files: Record<string, string>) => {
      const d = join(top, name);
      for (const [p, content] of Object.entries(files)) {
        await mkdir(join(d, p, '..'), { recursive: true });
        await writeFile(join(d, p), content);
      }
      return d;
    };
    const release = await mk('release', { 'root/opt/smartdc/svc/app.js': 'v1\n', 'root/opt/smartdc/svc/shared.js': 'release\n', 'site/README': 'x' });
    await chown(join(release, 'root/opt/smartdc/svc/app.js'), 1000, 1000);
    await chmod(join(release, 'root/opt/smartdc/svc/app.js'), 0o4755);
    await symlink('svc/app.js', join(release, 'root/opt/smartdc/app'));
    const agent1 = await mk('agent1', { 'root/opt/smartdc/agents/lib/node_modules/config-agent/index.js': 'ca\n', 'root/opt/smartdc/svc/shared.js': 'agent1 wins\n' });
    const agent2 = await mk('agent2', { 'root/opt/smartdc/agents/lib/node_modules/registrar/index.js': 'reg\n' });
    const tars = [
      gtarCreate(release, join(top, 'release.tar.gz'), { members: ['root', 'site'] }),
      gtarCreate(agent1, join(top, 'agent1.tar.bz2'), { compression: 'bzip2', format: 'pax', members: ['root'] }),
      gtarCreate(agent2, join(top, 'agent2.tar.xz'), { compression: 'xz', format: 'ustar', members: ['root'] }),
    ];
    // The equivalent directory: the three root/s merged, later wins, chowned to root (set-id bits put back, as ours keeps them).
    const merged = join(top, 'merged');
    await mkdir(merged);
    for (const d of [release, agent1, agent2]) await copyTree(join(d, 'root'), merged);
    const { execFileSync } = await import('node:child_process');
    execFileSync('chown', ['-R', '0:0', merged]);
    await chmod(join(merged, 'opt/smartdc/svc/app.js'), 0o4755);
    const fromDir = join(top, 'img-dir');
    const fromTars = join(top, 'img-tars');
    await mkdir(fromDir);
    await mkdir(fromTars);
    await copyTree(merged, fromDir);
    const stats = await extractArchives(tars, fromTars);
    assert.equal(stats.archives, 3);
    assert.equal(stats.ignored, 2, 'site/ and site/README');
    assert.deepEqual(diffTrees(await describeTree(fromDir), await describeTree(fromTars)), []);
  });
});

describe('extractArchives: --add DIR=ARCHIVE (an archive without root/, extracted whole under DIR)', () => {
  let top: string;
  let agent: string;
  before(async () => {
    top = await mkdtemp(join(tmpdir(), 'bi-extract-dir-'));
    // As config-agent's prebuilt tarball: no root/, eng extracts it into $(STAGEDIR)/root/opt/smartdc.
    const d = join(top, 'agent');
    await mkdir(join(d, 'config-agent/lib'), { recursive: true });
    await writeFile(join(d, 'config-agent/lib/agent.js'), 'agent\n');
    await link(join(d, 'config-agent/lib/agent.js'), join(d, 'config-agent/lib/hard.js'));
    await symlink('lib/agent.js', join(d, 'config-agent/main.js'));
    agent = gtarCreate(d, join(top, 'config-agent.tar.gz'), { members: ['config-agent'] });
  });
  after(() => rm(top, { recursive: true, force: true }));

  it('parses ARCHIVE, DIR=ARCHIVE (only the first "=" splits; root/opt is /opt) and =ARCHIVE', () => {
    assert.deepEqual(parseAddArchive('/x/a.tgz'), { path: '/x/a.tgz' });
    assert.deepEqual(parseAddArchive('/opt/smartdc=/x/a=b.tgz'), { path: '/x/a=b.tgz', dir: '/opt/smartdc' });
    assert.deepEqual(parseAddArchive('root/opt/smartdc=a.tgz'), parseAddArchive('/opt/smartdc/=a.tgz'));
    assert.deepEqual(parseAddArchive('root=a.tgz'), { path: 'a.tgz', dir: '/' });
    assert.deepEqual(parseAddArchive('=/ws/label=x/a.tgz'), { path: '/ws/label=x/a.tgz' });
    assert.deepEqual(parseAddArchive('.=a.tgz'), { path: 'a.tgz' }, "eng's stage dir itself: root/ is the image");
  });

  it('buildimage.json "add": strings as on the command line and { archive, dir }, archives relative to the file', () => {
    const add = SETTINGS.add;
    const texts = add.config.toText(['root/opt=a.tgz', 'b.tgz', { archive: 'c.tgz', dir: '/opt/smartdc' }, { archive: '/x/d=e.tgz' }], '/ws/label=x');
    assert.deepEqual(
      [texts].flat().flatMap((t) => add.parse(t, 'add')),
      [
        { path: '/ws/label=x/a.tgz', dir: '/opt' },
        { path: '/ws/label=x/b.tgz' },
        { path: '/ws/label=x/c.tgz', dir: '/opt/smartdc' },
        { path: '/x/d=e.tgz' },
      ],
    );
  });

  for (const bad of ['/opt/../etc=a.tgz', 'root/..=a.tgz', 'opt/smartdc=a.tgz', '/opt=']) {
    it(`refuses ${JSON.stringify(bad)} at parse time (a usage error, exit 2)`, () => {
      assert.throws(
        () => parseAddArchive(bad),
        (e: unknown) => e instanceof UsageError && e.exitCode === 2 && !e.message.includes('\n'),
      );
    });
  }

  it('an archive without root/ added at /opt/smartdc lands there whole (hard and symbolic links too, missing dirs made 0755 root:root)', async () => {
    const img = join(top, 'img1');
    await mkdir(img);
    const stats = await extractArchives([parseAddArchive(`/opt/smartdc=${agent}`)], img);
    assert.equal(stats.ignored, 0);
    const st = await lstat(join(img, 'opt/smartdc/config-agent/lib/hard.js'));
    assert.equal(st.nlink, 2);
    assert.equal(await readFile(join(img, 'opt/smartdc/config-agent/main.js'), 'utf8'), 'agent\n');
    const made = await lstat(join(img, 'opt/smartdc'));
    assert.deepEqual([made.isDirectory(), made.mode & 0o7777, made.uid, made.gid], [true, 0o755, 0, 0]);
  });

  it('into a setgid image directory: files and made directories are root:root, not the image directory\'s group, as a copy of the same tree', async () => {
    // The image's /opt is setgid with group 77: what the kernel gives a new entry there is that group and, for a directory, the bit.
    const src = join(top, 'sgid-src');
    await mkdir(join(src, 'root/opt/svc/lib'), { recursive: true });
    await writeFile(join(src, 'root/opt/svc/lib/a.js'), 'a\n');
    await writeFile(join(src, 'root/opt/top.js'), 't\n');
    const tar = gtarCreate(src, join(top, 'sgid.tar'), { compression: 'none', members: ['root/opt/svc/lib/a.js', 'root/opt/top.js'] });
    const withSetgidOpt = async (name: string) => {
      const img = join(top, name);
      await mkdir(join(img, 'opt'), { recursive: true });
      await chown(join(img, 'opt'), 0, 77);
      await chmod(join(img, 'opt'), 0o2755);
      return img;
    };
    const img = await withSetgidOpt('sgid-img');
    await extractArchives([tar], img);
    const got = async (p: string) => {
      const st = await lstat(join(img, p));
      return [p, st.mode & 0o7777, st.uid, st.gid];
    };
    assert.deepEqual(await got('opt/top.js'), ['opt/top.js', 0o644, 0, 0]);
    // Only the file is in the archive: its directories are made, 0755 root:root.
    assert.deepEqual(await got('opt/svc'), ['opt/svc', 0o755, 0, 0]);
    assert.deepEqual(await got('opt/svc/lib'), ['opt/svc/lib', 0o755, 0, 0]);
    assert.deepEqual(await got('opt/svc/lib/a.js'), ['opt/svc/lib/a.js', 0o644, 0, 0]);
    // With its directories in the archive too, the tree a copy of root/ gives.
    const whole = gtarCreate(src, join(top, 'sgid-whole.tar'), { compression: 'none', members: ['root'] });
    const fromTar = await withSetgidOpt('sgid-img-whole');
    const fromDir = await withSetgidOpt('sgid-img-dir');
    await extractArchives([whole], fromTar);
    await copyTree(join(src, 'root'), fromDir);
    assert.deepEqual(diffTrees(await describeTree(fromDir), await describeTree(fromTar)), []);
    assert.equal((await lstat(join(fromTar, 'opt/svc/lib/a.js'))).gid, 0);
  });

  it('root/opt/smartdc=ARCHIVE gives the tree /opt/smartdc=ARCHIVE gives', async () => {
    const a = join(top, 'img-a');
    const b = join(top, 'img-b');
    await mkdir(a);
    await mkdir(b);
    await extractArchives([parseAddArchive(`root/opt/smartdc=${agent}`)], a);
    await extractArchives([parseAddArchive(`/opt/smartdc=${agent}`)], b);
    assert.deepEqual(diffTrees(await describeTree(a), await describeTree(b)), []);
  });

  it('refuses a DIR reached through a symlink in the image (one an earlier archive planted), with one line', async () => {
    const img = join(top, 'img-link');
    const outside = join(top, 'outside');
    await mkdir(img);
    await mkdir(outside);
    const d = join(top, 'planter');
    await mkdir(join(d, 'root'), { recursive: true });
    await symlink(outside, join(d, 'root/opt'));
    const planter = gtarCreate(d, join(top, 'planter.tar'), { compression: 'none', members: ['root'] });
    await assert.rejects(
      extractArchives([planter, parseAddArchive(`/opt/smartdc=${agent}`)], img),
      (e: Error) => /its directory \/opt\/smartdc would be reached through \/opt, a symlink in the image/.test(e.message) && !e.message.includes('\n'),
    );
    assert.deepEqual(await readdir(outside), []);
  });
});
