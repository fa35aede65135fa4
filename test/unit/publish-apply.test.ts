/**
 * publish/apply.ts on its own (issue 18 items 2 and 3): a real plan
 * (publish/plan over a temp bits dir) carried out against real stores,
 * the -L store over a temp dir and the local Manta server, no stub. Look
 * before every write: same MD5 skip, any other content stop before the
 * first upload (one conflict is enough, equal sizes do not make equal
 * files), a directory or link where a file goes, an object Manta answers
 * without Content-MD5; build outputs staged by hard link, or copied when
 * the link would cross file systems (a real tmpfs).
 */
import assert from 'node:assert/strict';
import { createHash, createPrivateKey, randomBytes } from 'node:crypto';
import { lstat, mkdir, mkdtemp, readFile, readdir, readlink, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import winston from 'winston';
import { PublishError } from '../../src/core/errors.js';
import { log } from '../../src/core/log.js';
import { keyObjectSigner } from '../../src/http/signature.js';
import { ImgapiAdminClient } from '../../src/imgapi/admin.js';
import { MantaClient } from '../../src/manta/client.js';
import { runPlan, type ApplyReport } from '../../src/publish/apply.js';
import { LocalStore } from '../../src/publish/local-store.js';
import { MantaStore } from '../../src/publish/manta-store.js';
import { makePlan, type PlanInput, type PublishPlan } from '../../src/publish/plan.js';
import type { Store } from '../../src/publish/store.js';
import { UpdatesImporter } from '../../src/publish/updates.js';
import { mountAdminApi, writes } from '../servers/imgapi-admin.js';
import { startImgapiServer, type ImgapiTestServer } from '../servers/imgapi-server.js';
import { testManifest } from '../helpers/manifests.js';
import { MantaTestServer } from '../servers/manta-server.js';
import { nodeRsaKey } from '../servers/ssh-keys.js';
import { rejection } from '../helpers/rejection.js';
import { captureRecords } from '../helpers/logs.js';

const md5hex = (b: Buffer | string): string => createHash('md5').update(b).digest('hex');
const STAMP = 'master-20240501T120000Z-g0123abc';

/** Every path under `top` (relative, sorted), links marked with their target. */
async function tree(top: string): Promise<string[]> {
  const out: string[] = [];
  const visit = async (rel: string): Promise<void> => {
    for (const e of await readdir(join(top, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isSymbolicLink()) out.push(`${r} -> ${await readlink(join(top, r))}`);
      else if (e.isDirectory()) {
        out.push(`${r}/`);
        await visit(r);
      } else out.push(r);
    }
  };
  await visit('');
  return out.sort();
}

describe('publish apply (unit, real stores)', function () {
  this.timeout(30_000);
  const consoles = log.transports.filter((t) => t instanceof winston.transports.Console);
  before(() => consoles.forEach((t) => (t.silent = true)));
  after(() => consoles.forEach((t) => (t.silent = false)));

  let dir: string;
  let bits: string;
  const files: Record<string, Buffer> = {
    'demo/a.txt': Buffer.from('alpha\n'),
    'demo/b.bin': randomBytes(3000),
    'demo/sub/c.txt': Buffer.from('charlie\n'),
  };
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'bi-publish-apply-'));
    bits = join(dir, 'bits');
    for (const [rel, body] of Object.entries(files)) {
      await mkdir(join(bits, rel, '..'), { recursive: true });
      await writeFile(join(bits, rel), body);
    }
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  const plan = (baseDir: string, o: Partial<PlanInput> = {}): Promise<PublishPlan> =>
    makePlan({ name: 'demo', branch: 'master', stamp: STAMP, channel: 'dev', bitsDir: bits, baseDir, ...o });

  /** Same length as `b`, other bytes. */
  const sameSize = (b: Buffer): Buffer => Buffer.from(b.map((x) => x ^ 0xff));

  describe('-L: the local store over a directory', () => {
    let base: string;
    let dest: string;
    beforeEach(() => {
      base = join(dir, 'store/builds/demo');
      dest = join(base, STAMP);
    });

    it('publishes every file, the sums, the pointer and artifacts.txt, each a step of the result; a rerun skips everything and writes nothing', async () => {
      const r = await runPlan(await plan(base), new LocalStore(base), { dryRun: false });
      assert.equal(r.uploaded, 3);
      assert.equal(r.skipped, 0);
      assert.equal(r.conflicts, 0);
      assert.equal(r.bytes, Object.values(files).reduce((a, b) => a + b.length, 0));
      for (const [rel, body] of Object.entries(files)) assert.deepEqual(await readFile(join(dest, rel)), body, rel);
      assert.equal(await readFile(join(dest, 'md5sums.txt'), 'utf8'), Object.keys(files).sort().map((rel) => `${md5hex(files[rel])}  ${rel}\n`).join(''));
      assert.equal(await readlink(join(base, 'master-latest')), STAMP);
      assert.deepEqual(
        (await readFile(join(bits, 'artifacts.txt'), 'utf8')).trim().split('\n'),
        [...Object.keys(files).sort().map((rel) => join(dest, rel)), join(dest, 'md5sums.txt'), join(dest, 'SHA256SUMS'), join(base, 'master-latest')],
      );
      // What the publish result (--json) lists.
      assert.deepEqual(
        r.steps.filter((s) => s.op === 'upload'),
        Object.keys(files)
          .sort()
          .map((rel) => ({ op: 'upload', path: join(dest, rel), rel, size: files[rel].length, md5: createHash('md5').update(files[rel]).digest('base64') })),
      );
      assert.deepEqual(r.steps.at(-1), { op: 'artifacts', path: join(bits, 'artifacts.txt') });
      const inodes = await Promise.all(Object.keys(files).map(async (rel) => (await stat(join(dest, rel))).ino));
      const again = await runPlan(await plan(base), new LocalStore(base), { dryRun: false });
      assert.deepEqual([again.uploaded, again.skipped, again.conflicts, again.bytes], [0, 3, 0, 0]);
      assert.deepEqual(again.steps.filter((s) => s.op !== 'skip' && s.op !== 'artifacts').map((s) => s.op), ['pointer']);
      assert.deepEqual(
        again.steps.filter((s) => s.op === 'skip'),
        Object.keys(files)
          .sort()
          .map((rel) => ({ op: 'skip', path: join(dest, rel), rel, reason: 'already published with the same MD5' })),
      );
      assert.deepEqual(await Promise.all(Object.keys(files).map(async (rel) => (await stat(join(dest, rel))).ino)), inodes, 'nothing rewritten');
    });

    it('a file already there with the same size but another MD5 is a conflict: nothing is uploaded, no pointer moves', async () => {
      const theirs = sameSize(files['demo/b.bin']);
      await mkdir(join(dest, 'demo'), { recursive: true });
      await writeFile(join(dest, 'demo/b.bin'), theirs);
      const err = await rejection(runPlan(await plan(base), new LocalStore(base), { dryRun: false }));
      assert.ok(err instanceof PublishError, err.message);
      assert.equal(err.message, `${join(dest, 'demo/b.bin')} exists with MD5 ${md5hex(theirs)}, local ${md5hex(files['demo/b.bin'])} (${join(bits, 'demo/b.bin')})`);
      // Every file is looked at before anything is written: no file, and not the missing demo/sub/ either.
      assert.deepEqual(await tree(join(dir, 'store')), ['builds/', 'builds/demo/', `builds/demo/${STAMP}/`, `builds/demo/${STAMP}/demo/`, `builds/demo/${STAMP}/demo/b.bin`]);
      assert.deepEqual(await readFile(join(dest, 'demo/b.bin')), theirs, 'the published file is never overwritten');
      await assert.rejects(stat(join(bits, 'artifacts.txt')));
    });

    it('one conflict is enough to stop the run; more are counted in the one line', async () => {
      await mkdir(join(dest, 'demo/sub'), { recursive: true });
      await writeFile(join(dest, 'demo/a.txt'), 'ALPHA\n');
      const one = await rejection(runPlan(await plan(base), new LocalStore(base), { dryRun: false }));
      assert.ok(one instanceof PublishError);
      assert.match(one.message, /demo\/a\.txt exists with MD5 [0-9a-f]{32}, local [0-9a-f]{32} \(.*\)$/);
      assert.ok(!one.message.includes('more'), one.message);
      assert.deepEqual(await tree(dest), ['demo/', 'demo/a.txt', 'demo/sub/']);
      await writeFile(join(dest, 'demo/sub/c.txt'), 'x');
      const two = await rejection(runPlan(await plan(base), new LocalStore(base), { dryRun: false }));
      assert.match(two.message, /demo\/a\.txt exists with MD5 .* \(and 1 more\)$/);
      assert.equal((two as PublishError).hint, 'published bits are never overwritten; build again with a new stamp');
    });

    it('--dry-run counts the conflicts and writes nothing, not even artifacts.txt', async () => {
      await mkdir(join(dest, 'demo'), { recursive: true });
      await writeFile(join(dest, 'demo/a.txt'), 'ALPHA\n');
      await writeFile(join(dest, 'demo/b.bin'), files['demo/b.bin']);
      const before = await tree(join(dir, 'store'));
      const r: ApplyReport = await runPlan(await plan(base), new LocalStore(base), { dryRun: true });
      assert.deepEqual([r.uploaded, r.skipped, r.conflicts], [1, 1, 1]);
      assert.deepEqual(
        r.steps.filter((s) => ['upload', 'skip', 'conflict'].includes(s.op)).map((s) => `${s.op} ${(s as { rel: string }).rel}`),
        ['conflict demo/a.txt', 'skip demo/b.bin', 'upload demo/sub/c.txt'],
      );
      assert.deepEqual(await tree(join(dir, 'store')), before);
      await assert.rejects(stat(join(bits, 'artifacts.txt')));
    });

    it('a directory or a link where a file goes is a conflict; a link\'s target is never written', async () => {
      const victim = join(dir, 'victim');
      await writeFile(victim, 'host file');
      await mkdir(join(dir, 'elsewhere'));
      await mkdir(join(dest, 'demo/sub'), { recursive: true });
      const cases: Array<[string, () => Promise<void>, string]> = [
        ['demo/a.txt', () => mkdir(join(dest, 'demo/a.txt')), 'exists and is a directory, not a file'],
        ['demo/a.txt', () => symlink(victim, join(dest, 'demo/a.txt')), `exists and is a link, not a file`],
        ['demo/a.txt', () => symlink('nowhere', join(dest, 'demo/a.txt')), 'exists and is a link, not a file'],
        ['demo/a.txt', () => symlink(join(dir, 'elsewhere'), join(dest, 'demo/a.txt')), 'exists and is a directory, not a file'],
      ];
      for (const [rel, make, reason] of cases) {
        await make();
        const err = await rejection(runPlan(await plan(base), new LocalStore(base), { dryRun: false }));
        assert.ok(err instanceof PublishError, err.message);
        assert.equal(err.message, `${join(dest, rel)} ${reason}`);
        const dry = await runPlan(await plan(base), new LocalStore(base), { dryRun: true });
        assert.equal(dry.conflicts, 1);
        await rm(join(dest, rel), { recursive: true });
      }
      assert.equal(await readFile(victim, 'utf8'), 'host file');
      assert.deepEqual(await readdir(join(dir, 'elsewhere')), []);
      assert.deepEqual(await tree(dest), ['demo/', 'demo/sub/']);
    });

    it('--dry-run makes no directory and stages nothing, yet lists what it would do', async () => {
      const out = join(dir, 'out');
      await mkdir(out);
      await writeFile(join(out, 'demo-zfs-1.zfs.gz'), 'image');
      const r = await runPlan(await plan(base, { outputs: [join(out, 'demo-zfs-1.zfs.gz')] }), new LocalStore(base), { dryRun: true });
      assert.deepEqual(
        r.steps.map((s) => `${s.op} ${s.path}`),
        [
          `stage ${join(bits, 'demo/demo-zfs-1.zfs.gz')}`,
          `mkdir ${join(dir, 'store')}`,
          `mkdir ${join(dir, 'store/builds')}`,
          `mkdir ${base}`,
          `mkdir ${dest}`,
          `mkdir ${join(dest, 'demo')}`,
          `mkdir ${join(dest, 'demo/sub')}`,
          ...['a.txt', 'b.bin', 'demo-zfs-1.zfs.gz', 'sub/c.txt'].map((f) => `upload ${join(dest, 'demo', f)}`),
          `put ${join(dest, 'md5sums.txt')}`,
          `put ${join(dest, 'SHA256SUMS')}`,
          `pointer ${join(base, 'master-latest')}`,
          `artifacts ${join(bits, 'artifacts.txt')}`,
        ],
      );
      assert.deepEqual([r.uploaded, r.skipped, r.conflicts, r.bytes], [4, 0, 0, 5 + Object.values(files).reduce((a, b) => a + b.length, 0)]);
      await assert.rejects(stat(join(dir, 'store')));
      await assert.rejects(stat(join(bits, 'demo/demo-zfs-1.zfs.gz')));
    });

    it('an md5sums.txt or SHA256SUMS that differs is replaced, not a conflict; a moved pointer is moved back', async () => {
      await runPlan(await plan(base), new LocalStore(base), { dryRun: false });
      await writeFile(join(dest, 'md5sums.txt'), 'a subdirectory publish\n');
      await writeFile(join(dest, 'SHA256SUMS'), 'other\n');
      await rm(join(base, 'master-latest'));
      await symlink('elsewhere', join(base, 'master-latest'));
      const r = await runPlan(await plan(base), new LocalStore(base), { dryRun: false });
      assert.equal(r.conflicts, 0);
      assert.deepEqual(
        r.steps.filter((s) => s.op === 'put' || s.op === 'pointer'),
        [
          { op: 'put', path: join(dest, 'md5sums.txt'), what: 'md5sums' },
          { op: 'put', path: join(dest, 'SHA256SUMS'), what: 'sha256sums' },
          { op: 'pointer', path: join(base, 'master-latest'), target: dest, unchanged: false },
        ],
      );
      const sums = await readFile(join(dest, 'md5sums.txt'), 'utf8');
      assert.equal(sums, Object.keys(files).sort().map((rel) => `${md5hex(files[rel])}  ${rel}\n`).join(''));
      assert.match(await readFile(join(dest, 'SHA256SUMS'), 'utf8'), /^[0-9a-f]{64} {2}demo\/a\.txt\n/);
      assert.equal(await readlink(join(base, 'master-latest')), STAMP);
      const again = await runPlan(await plan(base), new LocalStore(base), { dryRun: false });
      assert.deepEqual(again.steps.filter((s) => s.op === 'pointer'), [{ op: 'pointer', path: join(base, 'master-latest'), target: dest, unchanged: true }]);
      assert.deepEqual(again.steps.filter((s) => s.op === 'put'), []);
    });

    it('says each step on the log: at info when it is done, at debug as "dry run:" when it would be', async () => {
      const out = join(dir, 'out');
      await mkdir(out);
      await writeFile(join(out, 'o.txt'), 'o');
      const p = await plan(base, { outputs: [join(out, 'o.txt')] });
      const lines = async (dryRun: boolean): Promise<string[]> => {
        const c = captureRecords();
        try {
          await runPlan(p, new LocalStore(base), { dryRun });
        } finally {
          c.stop();
        }
        return c.infos.filter((r) => r.level === (dryRun ? 'debug' : 'info') || r.level === 'warn').map((r) => `${String(r.level)} ${String(r.message)}`);
      };
      const pointer = join(base, 'master-latest');
      const dry = await lines(true);
      assert.deepEqual(dry, [
        `debug dry run: staged ${join(out, 'o.txt')} as ${join(bits, 'demo/o.txt')}`,
        ...[join(dir, 'store'), join(dir, 'store/builds'), base, dest, join(dest, 'demo'), join(dest, 'demo/sub')].map((d) => `debug dry run: mkdir ${d}`),
        ...['demo/a.txt', 'demo/b.bin', 'demo/o.txt', 'demo/sub/c.txt'].map((f) => `debug dry run: copy ${f}`),
        `debug dry run: wrote ${join(dest, 'md5sums.txt')}`,
        `debug dry run: wrote ${join(dest, 'SHA256SUMS')}`,
        `debug dry run: ${pointer} → ${dest}`,
        `debug dry run: listed 7 paths in ${join(bits, 'artifacts.txt')}`,
      ]);
      const real = await lines(false);
      assert.equal(real[0], `info staged ${join(out, 'o.txt')} as ${join(bits, 'demo/o.txt')}`);
      assert.match(real.find((l) => l.includes('a.txt')) ?? '', new RegExp(`^info copying demo/a\\.txt \\(6 B\\) to ${dest}/demo/a\\.txt$`));
      assert.match(real.find((l) => l.includes('a.txt') && !l.includes('copying')) ?? '', /^info copied demo\/a\.txt: 6 B in \d+\.\d s, .+$/);
      assert.equal(real.at(-1), `info listed 7 paths in ${join(bits, 'artifacts.txt')}`);
      const again = await lines(false);
      assert.deepEqual(again, [
        ...['demo/a.txt', 'demo/b.bin', 'demo/o.txt', 'demo/sub/c.txt'].map((f) => `info skip ${f}: already published with the same MD5`),
        `info ${pointer} already points at ${dest}`,
        `info listed 7 paths in ${join(bits, 'artifacts.txt')}`,
      ]);
    });

    it('a file where a directory goes stops the run before any upload', async () => {
      await mkdir(join(dest), { recursive: true });
      await writeFile(join(dest, 'demo'), 'a file');
      const err = await rejection(runPlan(await plan(base), new LocalStore(base), { dryRun: false }));
      assert.ok(err instanceof PublishError);
      assert.equal(err.message, `${join(dest, 'demo')} exists and is not a directory`);
      assert.deepEqual(await tree(dest), ['demo']);
    });

    describe('build outputs (--state) staged into <bits>/<name>/', () => {
      const image = randomBytes(5000);
      let out: string;
      beforeEach(async () => {
        out = join(dir, 'out');
        await mkdir(out);
      });

      it('by a hard link on the same file system', async () => {
        await writeFile(join(out, 'demo-zfs-1.zfs.gz'), image);
        const r = await runPlan(await plan(base, { outputs: [join(out, 'demo-zfs-1.zfs.gz')] }), new LocalStore(base), { dryRun: false });
        assert.deepEqual(r.steps.filter((s) => s.op === 'stage').map((s) => s.path), [join(bits, 'demo/demo-zfs-1.zfs.gz')]);
        assert.equal((await stat(join(bits, 'demo/demo-zfs-1.zfs.gz'))).ino, (await stat(join(out, 'demo-zfs-1.zfs.gz'))).ino);
        assert.deepEqual(await readFile(join(dest, 'demo/demo-zfs-1.zfs.gz')), image);
      });

      it('a staged file already in place with the same bytes is left as it is; other bytes there are replaced by the output', async () => {
        await writeFile(join(out, 'demo-zfs-1.zfs.gz'), image);
        await writeFile(join(bits, 'demo/demo-zfs-1.zfs.gz'), image);
        const copy = (await stat(join(bits, 'demo/demo-zfs-1.zfs.gz'))).ino;
        const p = () => plan(base, { outputs: [join(out, 'demo-zfs-1.zfs.gz')] });
        const r = await runPlan(await p(), new LocalStore(base), { dryRun: false });
        assert.deepEqual(r.steps.filter((s) => s.op === 'stage'), []);
        assert.equal((await stat(join(bits, 'demo/demo-zfs-1.zfs.gz'))).ino, copy, 'not staged again');
        // Same size, other bytes (a stale copy from an earlier build): staged again, and what is published is the output.
        await rm(join(dir, 'store'), { recursive: true });
        await writeFile(join(bits, 'demo/demo-zfs-1.zfs.gz'), sameSize(image));
        const r2 = await runPlan(await p(), new LocalStore(base), { dryRun: false });
        assert.deepEqual(r2.steps.filter((s) => s.op === 'stage'), [{ op: 'stage', path: join(bits, 'demo/demo-zfs-1.zfs.gz'), from: join(out, 'demo-zfs-1.zfs.gz') }]);
        assert.equal((await stat(join(bits, 'demo/demo-zfs-1.zfs.gz'))).ino, (await stat(join(out, 'demo-zfs-1.zfs.gz'))).ino);
        assert.deepEqual(await readFile(join(dest, 'demo/demo-zfs-1.zfs.gz')), image);
        // Another size: staged again too.
        await rm(join(dir, 'store'), { recursive: true });
        await rm(join(bits, 'demo/demo-zfs-1.zfs.gz'));
        await writeFile(join(bits, 'demo/demo-zfs-1.zfs.gz'), 'short');
        assert.equal((await runPlan(await p(), new LocalStore(base), { dryRun: false })).steps.filter((s) => s.op === 'stage').length, 1);
        assert.deepEqual(await readFile(join(bits, 'demo/demo-zfs-1.zfs.gz')), image);
      });

      it('an output that cannot be staged (the bits file is a directory) fails naming both, leaving no temp file', async () => {
        await writeFile(join(out, 'x.txt'), 'x');
        const p = await plan(base, { outputs: [join(out, 'x.txt')] });
        await mkdir(join(bits, 'demo/x.txt/inner'), { recursive: true });
        const err = await rejection(runPlan(p, new LocalStore(base), { dryRun: false }), PublishError);
        assert.match(err.message, new RegExp(`^cannot put ${join(out, 'x.txt')} into ${join(bits, 'demo')}: `));
        assert.deepEqual((await readdir(join(bits, 'demo'))).filter((n) => n.includes('.partial-')), []);
        await assert.rejects(stat(join(dir, 'store')), 'nothing published');
      });

      it('by a copy when the link would cross file systems (the output dir a tmpfs), left whole and staged once', async () => {
        await execa('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', out]);
        try {
          await writeFile(join(out, 'demo-zfs-1.zfs.gz'), image);
          const from = await stat(join(out, 'demo-zfs-1.zfs.gz'));
          assert.notEqual(from.dev, (await stat(bits)).dev, 'a real second file system');
          const r = await runPlan(await plan(base, { outputs: [join(out, 'demo-zfs-1.zfs.gz')] }), new LocalStore(base), { dryRun: false });
          assert.equal(r.steps.filter((s) => s.op === 'stage').length, 1);
          const staged = await lstat(join(bits, 'demo/demo-zfs-1.zfs.gz'));
          assert.ok(staged.isFile());
          assert.equal(staged.nlink, 1, 'a copy, not a link');
          assert.equal(staged.size, image.length);
          assert.deepEqual(await readFile(join(bits, 'demo/demo-zfs-1.zfs.gz')), image);
          assert.deepEqual(await readFile(join(dest, 'demo/demo-zfs-1.zfs.gz')), image);
          assert.deepEqual((await readdir(join(bits, 'demo'))).filter((n) => n.includes('.partial-')), [], 'no temp file left');
          // A rerun finds the copy in place: nothing staged again, nothing uploaded.
          const again = await runPlan(await plan(base, { outputs: [join(out, 'demo-zfs-1.zfs.gz')] }), new LocalStore(base), { dryRun: false });
          assert.deepEqual([again.steps.filter((s) => s.op === 'stage').length, again.uploaded], [0, 0]);
          assert.equal((await stat(join(bits, 'demo/demo-zfs-1.zfs.gz'))).ino, staged.ino);
        } finally {
          await execa('umount', [out]);
        }
      });
    });
  });

  describe('-p: imports into the updates IMGAPI after the bits (the test IMGAPI)', () => {
    const key = nodeRsaKey();
    let server: ImgapiTestServer;
    let base: string;
    const image = randomBytes(2000);
    const sha1 = createHash('sha1').update(image).digest('hex');
    let manifest: ReturnType<typeof testManifest>;
    const importer = (uploadFile: boolean): UpdatesImporter =>
      new UpdatesImporter({
        client: new ImgapiAdminClient({ url: server.url, user: 'mg', signer: keyObjectSigner(createPrivateKey(key.pem), 'test'), channel: 'dev', retry: { attempts: 1 } }),
        uploadFile,
        retry: { attempts: 1, firstDelayMs: 1, maxDelayMs: 1, maxRetryAfterMs: 1 },
      });
    beforeEach(async () => {
      server = await startImgapiServer();
      mountAdminApi(server, { authkeys: { mg: [key.pubLine] } });
      base = join(dir, 'store/builds/demo');
      manifest = testManifest({ name: 'demo', version: '1', published_at: '2024-05-01T12:00:00.000Z' }, image);
    });
    afterEach(() => server.close());
    const withImage = async (suffix: string): Promise<void> => {
      await writeFile(join(bits, 'demo/demo-zfs-1.imgmanifest'), JSON.stringify(manifest));
      await writeFile(join(bits, `demo/demo-zfs-1${suffix}`), image);
    };

    it('the published image is imported, added with its file and activated in the plan\'s channel; a rerun finds it there', async () => {
      await withImage('.zfs.gz');
      const p = await plan(base, { imports: true, channel: 'staging' });
      const c = captureRecords();
      let dry;
      try {
        dry = await runPlan(p, new LocalStore(base), { dryRun: true, importer: importer(true) });
      } finally {
        c.stop();
      }
      assert.ok(c.infos.some((r) => r.message === `dry run: import ${manifest.uuid}: not on the server: import, add-file, activate`), 'the import step is said');
      const planned = dry.steps.find((s) => s.op === 'import');
      assert.deepEqual({ ...planned, calls: undefined }, { op: 'import', uuid: manifest.uuid, path: join(base, STAMP, 'demo/demo-zfs-1.zfs.gz'), channel: 'staging', action: 'import', detail: 'not on the server: import, add-file, activate', calls: undefined });
      assert.equal((planned as { calls: string[] }).calls.length, 3);
      assert.deepEqual(writes(server), [], 'a dry run writes nothing to IMGAPI');
      const r = await runPlan(p, new LocalStore(base), { dryRun: false, importer: importer(true) });
      assert.deepEqual(r.steps.filter((s) => s.op === 'import').map((s) => (s as { action: string }).action), ['imported']);
      assert.deepEqual(writes(server), ['AdminImportImage', 'AddImageFile', 'ActivateImage']);
      const got = server.store.get(manifest.uuid)!;
      assert.deepEqual([got.raw.state, got.raw.channels, got.files[0].sha1, got.files[0].size, got.files[0].compression], ['active', ['staging'], sha1, image.length, 'gzip']);
      const again = await runPlan(p, new LocalStore(base), { dryRun: false, importer: importer(true) });
      assert.deepEqual(again.steps.filter((s) => s.op === 'import').map((s) => (s as { action: string; calls?: string[] }).action + ' ' + String(s.calls)), ['already there undefined']);
      assert.deepEqual(writes(server).length, 3);
    });

    it('a .sh image goes in uncompressed (compression none)', async () => {
      await withImage('.sh');
      await runPlan(await plan(base, { imports: true }), new LocalStore(base), { dryRun: false, importer: importer(true) });
      assert.equal(server.store.get(manifest.uuid)!.files[0].compression, 'none');
    });

    it('a dry run of an import that would go through counts no conflict', async () => {
      await withImage('.zfs.gz');
      const dry = await runPlan(await plan(base, { imports: true }), new LocalStore(base), { dryRun: true, importer: importer(true) });
      assert.equal(dry.steps.find((s) => s.op === 'import')?.action, 'import');
      assert.equal(dry.conflicts, 0);
    });

    it('an import conflict in a dry run is counted with the file conflicts', async () => {
      await withImage('.zfs.gz');
      const other = randomBytes(100);
      await server.addImage({ ...manifest, files: [{ sha1: createHash('sha1').update(other).digest('hex'), size: other.length, compression: 'gzip' }] }, other, { channels: ['dev'] });
      const dry = await runPlan(await plan(base, { imports: true }), new LocalStore(base), { dryRun: true, importer: importer(true) });
      assert.equal(dry.conflicts, 1);
      assert.deepEqual(dry.steps.filter((s) => s.op === 'conflict' || (s.op === 'import' && s.action === 'conflict')).length, 1);
    });

    it('without an importer, or from -L without --upload-file, -p fails after the bits are published, naming why', async () => {
      await withImage('.zfs.gz');
      const none = await rejection(runPlan(await plan(base, { imports: true }), new LocalStore(base), { dryRun: false }), PublishError);
      assert.equal(none.message, '-p: no updates IMGAPI importer configured');
      assert.deepEqual(await readFile(join(base, STAMP, 'demo/demo-zfs-1.zfs.gz')), image);
      const local = await rejection(runPlan(await plan(base, { imports: true }), new LocalStore(base), { dryRun: false, importer: importer(false) }), PublishError);
      assert.match(local.message, /importing into updates IMGAPI needs the image in Manta \(not -L\)/);
      assert.ok(!writes(server).includes('AddImageFileFromUrl'), writes(server).join(' '));
    });
  });

  describe('Manta: the local Manta server', () => {
    const USER = 'Joyent_Dev';
    const base = `/${USER}/stor/builds/demo`;
    const dest = `${base}/${STAMP}`;
    let srv: MantaTestServer;
    let store: Store;
    before(async () => {
      const key = nodeRsaKey();
      srv = await MantaTestServer.start({ [USER]: { keys: [key.pubLine] } });
      const signer = keyObjectSigner(createPrivateKey(key.pem), 'test key');
      store = new MantaStore(new MantaClient({ url: srv.url, user: USER, signer, retry: { attempts: 1, firstDelayMs: 1, maxDelayMs: 1, maxRetryAfterMs: 1 } }));
    });
    after(async () => {
      store.close();
      await srv.close();
    });
    let seen = 0;
    beforeEach(() => {
      seen = srv.requests.length;
    });
    const objectPuts = (): string[] => srv.requests.slice(seen).filter((q) => q.method === 'PUT' && q.committed && !String(q.headers['content-type']).includes('type=directory')).map((q) => q.path);

    it('same size, another MD5: a conflict, nothing uploaded', async () => {
      const theirs = sameSize(files['demo/a.txt']);
      await srv.seed(`${dest}/demo/a.txt`, theirs);
      const err = await rejection(runPlan(await plan(base), store, { dryRun: false }));
      assert.ok(err instanceof PublishError);
      assert.equal(err.message, `${dest}/demo/a.txt exists with MD5 ${md5hex(theirs)}, local ${md5hex(files['demo/a.txt'])} (${join(bits, 'demo/a.txt')})`);
      assert.deepEqual(objectPuts(), []);
      assert.deepEqual(await srv.read(`${dest}/demo/a.txt`), theirs);
    });

    it('an object Manta answers without Content-MD5 is a conflict (its content cannot be compared), also in a dry run', async () => {
      const d2 = `${base}/nomd5`;
      await srv.seed(`${d2}/demo/a.txt`, files['demo/a.txt'], 'text/plain', { noMd5: true });
      const head = await (store as MantaStore).client.head(`${d2}/demo/a.txt`);
      assert.deepEqual(head, { type: 'object', size: files['demo/a.txt'].length, contentType: 'text/plain' }, 'the server really answers without an MD5');
      const dry = await runPlan(await plan(base, { stamp: 'nomd5' }), store, { dryRun: true });
      assert.equal(dry.conflicts, 1);
      assert.deepEqual(dry.steps.find((s) => s.op === 'conflict'), { op: 'conflict', path: `${d2}/demo/a.txt`, rel: 'demo/a.txt', reason: 'exists and has no MD5' });
      const err = await rejection(runPlan(await plan(base, { stamp: 'nomd5' }), store, { dryRun: false }));
      assert.equal(err.message, `${d2}/demo/a.txt exists and has no MD5`);
      assert.deepEqual(objectPuts(), []);
    });

    it('a directory where a file goes is a conflict; an object where a directory goes stops the run (PutDirectory would replace it)', async () => {
      const d3 = `${base}/dirs`;
      await srv.seed(`${d3}/demo/a.txt/inner`, 'x');
      const err = await rejection(runPlan(await plan(base, { stamp: 'dirs' }), store, { dryRun: false }));
      assert.equal(err.message, `${d3}/demo/a.txt exists and is a directory, not a file`);
      const d4 = `${base}/objs`;
      await srv.seed(`${d4}/demo/sub`, 'an object');
      const e2 = await rejection(runPlan(await plan(base, { stamp: 'objs' }), store, { dryRun: false }));
      assert.equal(e2.message, `${d4}/demo/sub exists and is not a directory`);
      assert.match((e2 as PublishError).hint ?? '', /check -d \(the upload base directory\), or remove the object/);
      assert.equal(srv.entry(`${d4}/demo/sub`)?.type, 'object', 'not replaced by a directory');
      assert.deepEqual(objectPuts(), []);
    });

    it('a new stamp: one HEAD per level up to a directory that exists, none under what the run made; each object with its MD5 and type', async () => {
      const fresh = `/${USER}/stor/fresh/demo`;
      const r = await runPlan(await plan(fresh, { stamp: 'one' }), store, { dryRun: false });
      assert.equal(r.uploaded, 3);
      const heads = (): string[] => srv.requests.slice(seen).filter((q) => q.method === 'HEAD').map((q) => q.path);
      assert.deepEqual(heads(), [fresh, `/${USER}/stor/fresh`, `${fresh}/master-latest`]);
      const mkdirs = srv.requests.slice(seen).filter((q) => q.method === 'PUT' && String(q.headers['content-type']).includes('type=directory')).map((q) => q.path);
      assert.deepEqual(mkdirs, [`/${USER}/stor/fresh`, fresh, `${fresh}/one`, `${fresh}/one/demo`, `${fresh}/one/demo/sub`]);
      const puts = srv.requests.slice(seen).filter((q) => q.method === 'PUT' && q.committed && !String(q.headers['content-type']).includes('type=directory'));
      assert.deepEqual(
        puts.map((q) => [q.path, q.headers['content-type']]),
        [
          [`${fresh}/one/demo/a.txt`, 'text/plain'],
          [`${fresh}/one/demo/b.bin`, 'application/octet-stream'],
          [`${fresh}/one/demo/sub/c.txt`, 'text/plain'],
          [`${fresh}/one/md5sums.txt`, 'text/plain'],
          [`${fresh}/one/SHA256SUMS`, 'text/plain'],
          [`${fresh}/master-latest`, 'text/plain'],
        ],
      );
      // The files go with the MD5 of the plan (Manta refuses a body that does not match it).
      assert.deepEqual(
        puts.slice(0, 3).map((q) => q.headers['content-md5']),
        Object.keys(files).sort().map((rel) => createHash('md5').update(files[rel]).digest('base64')),
      );
      // Another stamp under the same base: the base is looked at once, as is the new stamp.
      seen = srv.requests.length;
      await runPlan(await plan(fresh, { stamp: 'two' }), store, { dryRun: false });
      assert.deepEqual(heads(), [fresh, `${fresh}/two`, `${fresh}/master-latest`]);
      // Two new directories side by side under one that exists: it is found once, then known with its parents.
      const sibling = `/${USER}/stor/fresh/other`;
      seen = srv.requests.length;
      await runPlan(await plan(sibling, { stamp: 'three' }), store, { dryRun: false });
      assert.deepEqual(heads(), [sibling, `/${USER}/stor/fresh`, `${sibling}/master-latest`]);
    });

    it('a clean run uploads each file once with its MD5; a rerun only looks', async () => {
      const d5 = 'clean';
      const r = await runPlan(await plan(base, { stamp: d5 }), store, { dryRun: false });
      assert.equal(r.uploaded, 3);
      for (const [rel, body] of Object.entries(files)) assert.deepEqual(await srv.read(`${base}/${d5}/${rel}`), body);
      assert.equal((await srv.read(`${base}/master-latest`)).toString(), `${base}/${d5}\n`);
      seen = srv.requests.length;
      const again = await runPlan(await plan(base, { stamp: d5 }), store, { dryRun: false });
      assert.deepEqual([again.uploaded, again.skipped], [0, 3]);
      assert.deepEqual(srv.requests.slice(seen).filter((q) => q.method !== 'HEAD'), []);
    });
  });
});
