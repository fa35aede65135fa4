/**
 * publish/plan.ts on its own (issue 18 items 2 and 3): what a bits dir
 * becomes, from real files in a temp dir. Subdirectory arguments (inside
 * the bits dir only, normalised, no duplicates), temp files of a killed
 * copy (`.partial-`) and artifacts.txt never published, image manifests
 * without a uuid refused, which image file beside a manifest is its image,
 * the release rule for pointers. The store side is publish-apply.test.ts.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { PublishError, UsageError } from '../../src/core/errors.js';
import { makePlan, type PlannedFile, type PlanInput, type PublishPlan } from '../../src/publish/plan.js';
import { captureRecords } from '../helpers/logs.js';
import { testManifest } from '../helpers/manifests.js';
import { rejection } from '../helpers/rejection.js';

const md5hex = (b: Buffer | string): string => createHash('md5').update(b).digest('hex');

describe('publish plan (unit)', () => {
  let dir: string;
  let bits: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'bi-publish-plan-'));
    bits = join(dir, 'bits');
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  const input = (o: Partial<PlanInput> = {}): PlanInput => ({ name: 'demo', branch: 'master', stamp: 's1', channel: 'dev', bitsDir: bits, baseDir: '/u/stor/b', ...o });
  const rels = (p: PublishPlan): string[] => p.files.map((f) => f.rel);
  async function put(files: Record<string, string | Buffer>): Promise<void> {
    for (const [rel, body] of Object.entries(files)) {
      await mkdir(join(bits, rel, '..'), { recursive: true });
      await writeFile(join(bits, rel), body);
    }
  }

  describe('subdirectory arguments (bits-upload.sh\'s trailing arguments)', () => {
    beforeEach(() =>
      put({
        'top.txt': 'top',
        'a/x.txt': 'ax',
        'a/b/y.txt': 'aby',
        'c/z.txt': 'cz',
        'c/d/w.txt': 'cdw',
      }),
    );

    it('none: the whole bits dir, each file at <base>/<stamp>/<its path in the bits dir>', async () => {
      const p = await makePlan(input());
      assert.deepEqual(rels(p), ['a/b/y.txt', 'a/x.txt', 'c/d/w.txt', 'c/z.txt', 'top.txt']);
      assert.deepEqual(
        p.files.map((f) => f.remote),
        rels(p).map((r) => `/u/stor/b/s1/${r}`),
      );
      assert.deepEqual(p.dirs, ['/u/stor/b', '/u/stor/b/s1', '/u/stor/b/s1/a', '/u/stor/b/s1/a/b', '/u/stor/b/s1/c', '/u/stor/b/s1/c/d']);
    });

    it('only the named subdirectories, recursively, keeping their path under the stamp; md5sums.txt lists only those', async () => {
      const p = await makePlan(input({ subdirs: ['a'] }));
      assert.deepEqual(rels(p), ['a/b/y.txt', 'a/x.txt']);
      assert.deepEqual(
        p.files.map((f) => f.remote),
        ['/u/stor/b/s1/a/b/y.txt', '/u/stor/b/s1/a/x.txt'],
      );
      assert.deepEqual(p.dirs, ['/u/stor/b', '/u/stor/b/s1/a', '/u/stor/b/s1/a/b']);
      assert.equal(p.md5sums.body, `${md5hex('aby')}  a/b/y.txt\n${md5hex('ax')}  a/x.txt\n`);
      assert.equal(p.md5sums.remote, '/u/stor/b/s1/md5sums.txt');
    });

    it('spellings of the same directory (trailing slash, ./, a/../) and overlapping ones plan each file once', async () => {
      const p = await makePlan(input({ subdirs: ['a/', './a/b', 'c/d/../d', 'a'] }));
      assert.deepEqual(rels(p), ['a/b/y.txt', 'a/x.txt', 'c/d/w.txt']);
      assert.deepEqual(p.dirs, ['/u/stor/b', '/u/stor/b/s1/a', '/u/stor/b/s1/a/b', '/u/stor/b/s1/c/d']);
      assert.equal(p.md5sums.body.split('\n').filter(Boolean).length, 3);
      // "." is the bits dir itself.
      assert.deepEqual(rels(await makePlan(input({ subdirs: ['.'] }))), rels(await makePlan(input())));
    });

    it('a subdirectory outside the bits dir (.., ../x, a/../.., an absolute path) is a usage error, and nothing outside is read', async () => {
      // A file beside the bits dir that a walk of ".." would find.
      await writeFile(join(dir, 'outside.txt'), 'host file');
      for (const s of ['..', '../', '../bits/a', 'a/../..', 'a/b/../../..', '/etc', join(bits, 'a')]) {
        const err = await rejection(makePlan(input({ subdirs: [s] })));
        assert.ok(err instanceof UsageError, `${s}: ${err.message}`);
        assert.equal(err.message, `subdirectory ${s} is not inside the bits directory`);
      }
    });

    it('a subdirectory that is missing or a file is a usage error naming it', async () => {
      const missing = await rejection(makePlan(input({ subdirs: ['nope'] })));
      assert.ok(missing instanceof UsageError);
      assert.equal(missing.message, `${join(bits, 'nope')} is not a directory`);
      const file = await rejection(makePlan(input({ subdirs: ['a', 'top.txt'] })));
      assert.equal(file.message, `${join(bits, 'top.txt')} is not a directory`);
      const under = await rejection(makePlan(input({ subdirs: ['top.txt/x'] })));
      assert.equal(under.message, `${join(bits, 'top.txt/x')} is not a directory`);
    });
  });

  it('temp files of a killed copy (.partial-) and artifacts.txt at the top are never published', async () => {
    await put({
      'demo/keep.txt': 'k',
      'demo/demo-zfs-1.zfs.gz.partial-4242': 'half an image',
      'demo/.partial-x': 'p',
      'demo/sub.partial-9/inside.txt': 'in a temp dir',
      'artifacts.txt': 'last run',
      'demo/artifacts.txt': 'a file of the component, published',
    });
    const p = await makePlan(input());
    assert.deepEqual(rels(p), ['demo/artifacts.txt', 'demo/keep.txt']);
    assert.ok(!p.md5sums.body.includes('partial'));
    assert.ok(!p.dirs.some((d) => d.includes('partial')), p.dirs.join(' '));
    assert.equal(p.artifactsFile, join(bits, 'artifacts.txt'));
  });

  describe('image manifests', () => {
    const image = randomBytes(4096);
    const base = testManifest({ name: 'demo', version: '1' }, image);
    const mf = (o: Record<string, unknown> = {}): string => JSON.stringify({ ...base, ...o });

    it('an image manifest with no uuid is refused before anything is published (bits-upload.sh skipped it and exited 0)', async () => {
      const noUuid = JSON.parse(mf()) as Record<string, unknown>;
      delete noUuid.uuid;
      await put({ 'demo/demo-zfs-1.zfs.gz': image, 'demo/demo-zfs-1.imgmanifest': JSON.stringify(noUuid) });
      for (const imports of [false, true]) {
        const err = await rejection(makePlan(input({ imports })));
        assert.ok(err instanceof UsageError, err.message);
        assert.match(err.message, /^image manifest demo\/demo-zfs-1\.imgmanifest: "uuid" is missing/);
      }
      // With -p a .manifest is an image manifest too (bits-upload.sh's rule); without -p it is only a file.
      await rm(join(bits, 'demo/demo-zfs-1.imgmanifest'));
      await put({ 'demo/demo-zfs-1.manifest': JSON.stringify(noUuid) });
      assert.match((await rejection(makePlan(input({ imports: true })))).message, /^image manifest demo\/demo-zfs-1\.manifest: "uuid" is missing/);
      assert.deepEqual(rels(await makePlan(input())), ['demo/demo-zfs-1.manifest', 'demo/demo-zfs-1.zfs.gz']);
    });

    describe('which file is the image when several sit beside its manifest', () => {
      const other = randomBytes(4096);
      const manifest = JSON.parse(mf()) as { uuid: string };

      it('the one whose size and sha1 are the manifest\'s files[0], whatever its name; the others are only published', async () => {
        await put({ 'demo/demo-zfs-1.imgmanifest': mf(), 'demo/demo-zfs-1.zfs.gz': other, 'demo/demo-zfs-1.zfs.xz': image, 'demo/demo-zfs-1.tgz': other });
        const c = captureRecords();
        let p: PublishPlan;
        try {
          p = await makePlan(input({ imports: true }));
        } finally {
          c.stop();
        }
        assert.equal(p.imports.length, 1);
        assert.equal(p.imports[0].uuid, manifest.uuid);
        assert.equal(p.imports[0].image.rel, 'demo/demo-zfs-1.zfs.xz');
        assert.equal(p.imports[0].compression, undefined);
        assert.deepEqual(rels(p), ['demo/demo-zfs-1.imgmanifest', 'demo/demo-zfs-1.tgz', 'demo/demo-zfs-1.zfs.gz', 'demo/demo-zfs-1.zfs.xz']);
        const warned = c.infos.filter((r) => r.level === 'warn').map((r) => String(r.message));
        assert.deepEqual(warned, ['image manifest demo/demo-zfs-1.imgmanifest: its image is demo/demo-zfs-1.zfs.xz; not its image: demo/demo-zfs-1.zfs.gz, demo/demo-zfs-1.tgz']);
      });

      it('two with the manifest\'s bytes: the first in bits-upload.sh\'s order (.zfs.gz, then buildimage\'s other compressions, .sh, .tgz, .tar.gz)', async () => {
        await put({ 'demo/demo-zfs-1.imgmanifest': mf(), 'demo/demo-zfs-1.sh': image, 'demo/demo-zfs-1.tar.gz': image });
        const p = await makePlan(input({ imports: true }));
        assert.equal(p.imports[0].image.rel, 'demo/demo-zfs-1.sh');
        assert.equal(p.imports[0].compression, 'none');
        await put({ 'demo/demo-zfs-1.zfs.bz2': image });
        assert.equal((await makePlan(input({ imports: true }))).imports[0].image.rel, 'demo/demo-zfs-1.zfs.bz2');
        await put({ 'demo/demo-zfs-1.zfs.gz': image });
        assert.equal((await makePlan(input({ imports: true }))).imports[0].image.rel, 'demo/demo-zfs-1.zfs.gz');
      });

      it('none of them the manifest\'s: refused, naming each (and without -p too: the manifest is checked against its image)', async () => {
        await put({ 'demo/demo-zfs-1.imgmanifest': mf(), 'demo/demo-zfs-1.zfs.gz': other, 'demo/demo-zfs-1.sh': Buffer.concat([image, Buffer.from('x')]) });
        for (const imports of [true, false]) {
          const err = await rejection(makePlan(input({ imports })));
          assert.ok(err instanceof UsageError, err.message);
          assert.equal(
            err.message,
            `image manifest demo/demo-zfs-1.imgmanifest: no file beside it is its image (files[0]: ${image.length} bytes, sha1 ${createHash('sha1').update(image).digest('hex')}): demo/demo-zfs-1.zfs.gz has sha1 ${createHash('sha1').update(other).digest('hex')}, demo/demo-zfs-1.sh is ${image.length + 1} bytes`,
          );
        }
      });
    });
  });

  describe('what is not a regular file in the bits dir', () => {
    const warnings = async (i: PlanInput): Promise<{ p: PublishPlan; warned: string[] }> => {
      const c = captureRecords();
      try {
        const p = await makePlan(i);
        return { p, warned: c.infos.filter((r) => r.level === 'warn').map((r) => String(r.message)) };
      } finally {
        c.stop();
      }
    };

    it('symlinks (to a file, to a directory, dangling) are never followed nor published, and are named in one warning', async () => {
      await put({ 'demo/x.txt': 'x', 'secret/id_rsa': 'KEY', 'secret/inner.txt': 'in' });
      await symlink(join(bits, 'secret/id_rsa'), join(bits, 'demo/key'));
      await symlink(join(bits, 'secret'), join(bits, 'demo/dir'));
      await symlink('nowhere', join(bits, 'demo/dangling'));
      const { p, warned } = await warnings(input({ subdirs: ['demo'] }));
      assert.deepEqual(rels(p), ['demo/x.txt']);
      assert.deepEqual(p.dirs, ['/u/stor/b', '/u/stor/b/s1/demo']);
      assert.deepEqual(warned, [`not publishing 3 symlinks in ${bits} (only regular files are published): demo/dangling, demo/dir, demo/key`]);
      await rm(join(bits, 'demo/dir'));
      await rm(join(bits, 'demo/dangling'));
      assert.deepEqual((await warnings(input({ subdirs: ['demo'] }))).warned, [`not publishing 1 symlink in ${bits} (only regular files are published): demo/key`]);
    });

    it('FIFOs are not published (nor opened), and are named in one warning', async () => {
      await put({ 'demo/x.txt': 'x' });
      await execa('mkfifo', [join(bits, 'demo/pipe')]);
      const { p, warned } = await warnings(input());
      assert.deepEqual(rels(p), ['demo/x.txt']);
      assert.deepEqual(warned, [`not publishing 1 special file(s) (FIFO, socket, device) in ${bits}: demo/pipe`]);
      await execa('mkfifo', [join(bits, 'demo/another')]);
      const two = await warnings(input());
      assert.deepEqual(two.warned, [`not publishing 2 special file(s) (FIFO, socket, device) in ${bits}: demo/another, demo/pipe`]);
    });

    it('only regular files: no warning at all', async () => {
      await put({ 'demo/x.txt': 'x' });
      assert.deepEqual((await warnings(input())).warned, []);
    });

    it('a subdirectory argument through a symlink is refused, naming the link', async () => {
      await put({ 'real/x.txt': 'x', 'real/deeper/y.txt': 'y' });
      await symlink(join(bits, 'real'), join(bits, 'alias'));
      for (const [s, at] of [
        ['alias', 'alias'],
        ['alias/deeper', 'alias'],
      ]) {
        const err = await rejection(makePlan(input({ subdirs: [s] })), UsageError);
        assert.equal(err.message, `subdirectory ${s}: ${at} is a symlink; publish does not follow links inside the bits directory`);
        assert.equal(err.hint, 'name the real directory, or copy the files in');
      }
      await symlink(join(bits, 'real/deeper'), join(bits, 'real/link'));
      assert.equal((await rejection(makePlan(input({ subdirs: ['real/link'] })), UsageError)).message, `subdirectory real/link: real/link is a symlink; publish does not follow links inside the bits directory`);
      // The real path is fine, a missing one is not a directory.
      assert.deepEqual(rels(await makePlan(input({ subdirs: ['real/deeper'] }))), ['real/deeper/y.txt']);
      assert.equal((await rejection(makePlan(input({ subdirs: ['real/nope'] })), UsageError)).hint, 'check the subdirectory arguments');
    });

    it('an empty bits dir, or a missing one, is a usage error', async () => {
      await mkdir(join(bits, 'demo/empty'), { recursive: true });
      const empty = await rejection(makePlan(input()), UsageError);
      assert.equal(empty.message, `nothing to publish: no files in ${bits}`);
      assert.equal(empty.hint, 'check -D and -n');
      const missing = await rejection(makePlan(input({ bitsDir: join(dir, 'nope') })), UsageError);
      assert.equal(missing.message, `bits directory ${join(dir, 'nope')} does not exist`);
      assert.equal(missing.hint, 'check -D, or run the build first');
      await writeFile(join(dir, 'afile'), 'x');
      assert.equal((await rejection(makePlan(input({ bitsDir: join(dir, 'afile') })), UsageError)).message, `bits directory ${join(dir, 'afile')} does not exist`);
      // An empty subdirectory list is the whole bits dir.
      await put({ 'demo/x.txt': 'x' });
      assert.deepEqual(rels(await makePlan(input({ subdirs: [] }))), ['demo/x.txt']);
    });
  });

  describe('build outputs (--state): staged into <bits>/<name>/', () => {
    let out: string;
    beforeEach(async () => {
      out = join(dir, 'out');
      await mkdir(out);
    });

    it('each output is planned at <name>/<its name>, read from where it is, staged to the bits dir', async () => {
      await put({ 'other/o.txt': 'o' });
      await writeFile(join(out, 'demo-zfs-1.zfs.gz'), 'image bytes');
      await writeFile(join(out, 'demo-zfs-1.imgmanifest.txt'), 'notes');
      const p = await makePlan(input({ outputs: [join(out, 'demo-zfs-1.zfs.gz'), join(out, 'demo-zfs-1.imgmanifest.txt')] }));
      assert.deepEqual(p.staged, [
        { from: join(out, 'demo-zfs-1.zfs.gz'), to: join(bits, 'demo/demo-zfs-1.zfs.gz') },
        { from: join(out, 'demo-zfs-1.imgmanifest.txt'), to: join(bits, 'demo/demo-zfs-1.imgmanifest.txt') },
      ]);
      const f = p.files.find((x) => x.rel === 'demo/demo-zfs-1.zfs.gz') as PlannedFile;
      assert.deepEqual(
        { local: f.local, source: f.source, remote: f.remote, size: f.size, md5hex: f.md5hex, contentType: f.contentType },
        { local: join(bits, 'demo/demo-zfs-1.zfs.gz'), source: join(out, 'demo-zfs-1.zfs.gz'), remote: '/u/stor/b/s1/demo/demo-zfs-1.zfs.gz', size: 11, md5hex: md5hex('image bytes'), contentType: 'application/gzip' },
      );
      const o = p.files.find((x) => x.rel === 'other/o.txt') as PlannedFile;
      assert.deepEqual([o.local, o.source, o.contentType], [join(bits, 'other/o.txt'), join(bits, 'other/o.txt'), 'text/plain']);
      assert.deepEqual(p.dirs, ['/u/stor/b', '/u/stor/b/s1', '/u/stor/b/s1/demo', '/u/stor/b/s1/other']);
      assert.equal(p.md5sums.body, `${md5hex('notes')}  demo/demo-zfs-1.imgmanifest.txt\n${md5hex('image bytes')}  demo/demo-zfs-1.zfs.gz\n${md5hex('o')}  other/o.txt\n`);
    });

    it('outputs into a bits dir that has <name>/ already: its files and the outputs, the directory once', async () => {
      await put({ 'demo/old.txt': 'old' });
      await writeFile(join(out, 'new.txt'), 'new');
      const p = await makePlan(input({ outputs: [join(out, 'new.txt')] }));
      assert.deepEqual(rels(p), ['demo/new.txt', 'demo/old.txt']);
      assert.deepEqual(p.dirs, ['/u/stor/b', '/u/stor/b/s1', '/u/stor/b/s1/demo']);
      // Only outputs, no bits dir content: <name>/ is still a directory to make.
      await rm(join(bits, 'demo'), { recursive: true });
      assert.deepEqual((await makePlan(input({ outputs: [join(out, 'new.txt')] }))).dirs, ['/u/stor/b', '/u/stor/b/s1', '/u/stor/b/s1/demo']);
    });

    it('a missing output, or one that is not a regular file, is refused', async () => {
      await mkdir(bits);
      const missing = await rejection(makePlan(input({ outputs: [join(out, 'gone.zfs.gz')] })), PublishError);
      assert.equal(missing.message, `build output ${join(out, 'gone.zfs.gz')} is missing; only regular files are published`);
      await writeFile(join(dir, 'target'), 'x');
      await symlink(join(dir, 'target'), join(out, 'link.zfs.gz'));
      await mkdir(join(out, 'adir'));
      for (const name of ['link.zfs.gz', 'adir']) {
        const err = await rejection(makePlan(input({ outputs: [join(out, name)] })), PublishError);
        assert.equal(err.message, `build output ${join(out, name)} is not a regular file; only regular files are published`);
      }
    });

    it('<bits>/<name> a symlink or a file: outputs are not staged through it', async () => {
      await writeFile(join(out, 'x.txt'), 'x');
      await mkdir(join(dir, 'elsewhere'));
      await mkdir(bits);
      await symlink(join(dir, 'elsewhere'), join(bits, 'demo'));
      const link = await rejection(makePlan(input({ outputs: [join(out, 'x.txt')] })), PublishError);
      assert.equal(link.message, `${join(bits, 'demo')} is not a directory (a symlink); build outputs are not staged through it`);
      await rm(join(bits, 'demo'));
      await writeFile(join(bits, 'demo'), 'a file');
      const file = await rejection(makePlan(input({ outputs: [join(out, 'x.txt')] })), PublishError);
      assert.equal(file.message, `${join(bits, 'demo')} is not a directory (a file); build outputs are not staged through it`);
      // Without outputs, the same bits dir plans (the link is only warned about, the file published).
      assert.deepEqual(rels(await makePlan(input())), ['demo']);
    });

    it('a file changed by beforeCheck (the signed provenance) is hashed again; the others are not', async () => {
      await mkdir(bits);
      await writeFile(join(out, 'prov.json'), 'unsigned');
      await writeFile(join(out, 'img.zfs.gz'), 'image');
      let seen: string[] = [];
      const p = await makePlan(
        input({
          outputs: [join(out, 'prov.json'), join(out, 'img.zfs.gz')],
          beforeCheck: async (files) => {
            seen = files.map((f) => f.rel);
            await writeFile(join(out, 'prov.json'), 'signed, longer');
            return files.filter((f) => f.rel === 'demo/prov.json');
          },
        }),
      );
      assert.deepEqual(seen, ['demo/img.zfs.gz', 'demo/prov.json']);
      const prov = p.files.find((f) => f.rel === 'demo/prov.json') as PlannedFile;
      assert.deepEqual([prov.size, prov.md5hex, prov.sha256], [14, md5hex('signed, longer'), createHash('sha256').update('signed, longer').digest('hex')]);
      assert.equal(prov.md5, createHash('md5').update('signed, longer').digest('base64'));
      assert.match(p.md5sums.body, new RegExp(`^${md5hex('signed, longer')}  demo/prov\\.json$`, 'm'));
      assert.match(p.sha256sums.body, new RegExp(`^${createHash('sha256').update('signed, longer').digest('hex')}  demo/prov\\.json$`, 'm'));
      // A changed output that is no longer a regular file is refused, named as the build output it is.
      const swapped = await rejection(
        makePlan(
          input({
            outputs: [join(out, 'prov.json')],
            beforeCheck: async (files) => {
              await rm(join(out, 'prov.json'));
              await symlink(join(out, 'img.zfs.gz'), join(out, 'prov.json'));
              return files;
            },
          }),
        ),
        PublishError,
      );
      assert.match(swapped.message, new RegExp(`^build output ${join(out, 'prov.json')} .*; only regular files are published$`));
    });
  });

  it('md5sums.txt and SHA256SUMS check every file with md5sum -c and sha256sum -c in the stamp dir, odd names included', async () => {
    const names = ['demo/plain.txt', 'demo/back\\slash.txt', 'demo/new\nline.txt', 'demo/cr\rname.txt', 'demo/sp ace.txt'];
    await put(Object.fromEntries(names.map((n, i) => [n, `body ${i}`])));
    const p = await makePlan(input());
    assert.equal(p.sha256sums.remote, '/u/stor/b/s1/SHA256SUMS');
    // The bits dir stands in for the stamp directory: the same relative paths.
    await writeFile(join(dir, 'md5sums.txt'), p.md5sums.body);
    await writeFile(join(dir, 'SHA256SUMS'), p.sha256sums.body);
    for (const [tool, file] of [
      ['md5sum', 'md5sums.txt'],
      ['sha256sum', 'SHA256SUMS'],
    ]) {
      const r = await execa(tool, ['-c', '--strict', join(dir, file)], { cwd: bits, reject: false });
      assert.equal(r.exitCode, 0, `${tool}: ${r.stdout} ${r.stderr}`);
      assert.equal(r.stdout.split('\n').filter((l) => l.endsWith(': OK')).length, names.length, r.stdout);
    }
    // What GNU coreutils itself writes for these names.
    const gnu = await execa('md5sum', [...names].sort(), { cwd: bits });
    assert.equal(p.md5sums.body, `${gnu.stdout}\n`);
  });

  it('no try branch: the plan has none; without -p no imports, even with a valid image manifest', async () => {
    const image = randomBytes(2048);
    await put({ 'demo/demo-zfs-1.zfs.gz': image, 'demo/demo-zfs-1.imgmanifest': JSON.stringify(testManifest({ name: 'demo', version: '1' }, image)) });
    const p = await makePlan(input());
    assert.ok(!('tryBranch' in p), 'no tryBranch key');
    assert.deepEqual(p.imports, []);
    assert.deepEqual([p.name, p.stamp, p.branch, p.channel, p.bitsDir, p.baseDir, p.stampDir], ['demo', 's1', 'master', 'dev', bits, '/u/stor/b', '/u/stor/b/s1']);
    assert.deepEqual(p.pointers, [{ remote: '/u/stor/b/master-latest', target: '/u/stor/b/s1' }]);
    assert.equal((await makePlan(input({ imports: true }))).imports.length, 1);
  });

  describe('pointers and channel come from the branch, never from the try branch\'s name', () => {
    beforeEach(() => put({ 'demo/x.txt': 'x' }));

    it('a release build moves <branch>-latest and latest-release', async () => {
      const p = await makePlan(input({ branch: 'release-20240101' }));
      assert.deepEqual(
        p.pointers.map((x) => x.remote),
        ['/u/stor/b/release-20240101-latest', '/u/stor/b/latest-release'],
      );
      assert.ok(p.pointers.every((x) => x.target === '/u/stor/b/s1'));
    });

    it('a try branch named release-YYYYMMDD is not a release build: only its own pointer', async () => {
      const p = await makePlan(input({ branch: 'master', tryBranch: 'release-20240101' }));
      assert.deepEqual(
        p.pointers.map((x) => x.remote),
        ['/u/stor/b/release-20240101-latest'],
      );
      assert.equal(p.tryBranch, 'release-20240101');
    });
  });
});
