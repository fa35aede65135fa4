/**
 * Hostile inputs of `images` and `prune` (issue 16 item 4): what they read
 * is ZFS's word (user properties anyone with `zfs set` wrote, datasets named
 * like images) and the work dir (kept manifests, receive journals). Garbage,
 * huge and future last-used values are no record (and never echoed); a
 * uuid-named dataset the tool did not create, or whose ownership is only
 * inherited, stays; a kept manifest that is a link or huge is never
 * followed, and the link (not its target) goes with its image; the manifest
 * dir a link to the host stops prune before anything; a dataset root that
 * is a pool root is walked as any other. Nothing outside the tool's own is
 * ever destroyed, and the host (bait) is as it was.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { lstat, mkdir, readFile, rm, symlink, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { installImage } from '../../src/base/install.js';
import { openSource } from '../../src/base/open.js';
import { ImagesResultSchema, PruneResultSchema } from '../../src/cli/schemas.js';
import { Layout } from '../../src/core/layout.js';
import { withRetry } from '../../src/core/retry.js';
import { run } from '../../src/host/exec.js';
import { isBusyError, LAST_USED_PROPERTY, OWNER_PROPERTY } from '../../src/host/zfs.js';
import { cli, errorLines, type CliResult } from '../helpers/cli.js';
import { layBait, type Bait } from '../helpers/hostile.js';
import { assertNoLeaks } from '../helpers/leaks.js';
import { ownPool, world, type World } from '../helpers/world.js';

const destroy = (ds: string) => withRetry(() => run('zfs', ['destroy', '-r', ds]), { attempts: 10, firstDelayMs: 200, retryable: isBusyError });

describe('hostile: images and prune', function () {
  this.timeout(10 * 60 * 1000);
  let w: World;
  let bait: Bait;
  let own: Awaited<ReturnType<typeof ownPool>>;
  let root: string;
  let workDir: string;
  let layout: Layout;
  let env: Record<string, string>;

  before(async () => {
    w = await world();
    bait = await layBait('bait-prune');
    own = await ownPool('hprune');
    root = `${own.pool}/images`;
    await w.zfs.create(root);
    workDir = join(w.dir, `work-hprune-${randomUUID().slice(0, 8)}`);
    layout = new Layout(root, workDir);
    env = { BUILDIMAGE_DATASET_ROOT: root, BUILDIMAGE_WORK_DIR: workDir, BUILDIMAGE_SOURCE: w.sampleDir };
  });
  after(async () => {
    await own?.destroy();
    await rm(workDir, { recursive: true, force: true });
    await bait.remove();
  });

  /** The sample chain installed on the test's root, as prepare installs it. */
  const install = () => installImage({ zfs: w.zfs, layout, source: () => openSource(w.sampleDir) }, w.origin.uuid);

  async function json<T>(args: string[], schema: { parse(x: unknown): T }): Promise<{ r: CliResult; out: T }> {
    const r = await cli([...args, '--json'], { env });
    assert.equal(r.code, 0, r.stderr);
    return { r, out: schema.parse(JSON.parse(r.stdout)) };
  }

  it('--keep-days that is not a small whole number: one usage line, nothing destroyed', async () => {
    await install();
    for (const v of ['-1', '1e3', 'abc', '99999999', '3.5', ' 7x']) {
      const r = await cli(['prune', '--keep-days', v], { env });
      assert.equal(r.code, 2, `${v}: ${r.stderr}`);
      assert.equal(errorLines(r).length, 1, r.stderr);
      assert.match(errorLines(r)[0], /--keep-days must be a whole number of days from 0 to 36500/);
    }
    assert.ok(await w.zfs.exists(`${layout.imageDataset(w.base.uuid)}@final`));
  });

  it('garbage, huge, multi-line and future last-used values: no record, never echoed; the image is judged by its install time', async () => {
    await install();
    const ds = layout.imageDataset(w.origin.uuid);
    const future = `9999-12-31T23:59:59.000Z ${randomUUID()} forever@1`;
    const values = [
      'garbage; $(rm -rf /) `id`',
      'x'.repeat(7000),
      // A record, then lines that read like other properties (zfs get prints a value's newlines as they are).
      `2001-01-01T00:00:00.000Z ${randomUUID()} old@1\nused\t0\ncreation\t0`,
      '2024-13-45T99:99:99.000Z 00000000-0000-0000-0000-000000000000 bad@1',
      future,
    ];
    for (const v of values) {
      await w.zfs.set(ds, { [LAST_USED_PROPERTY]: v });
      const { r, out } = await json(['images'], ImagesResultSchema);
      const img = out.images.find((i) => i.uuid === w.origin.uuid)!;
      if (v.startsWith('2001')) {
        assert.equal(img.lastUsed?.at, '2001-01-01T00:00:00.000Z', 'the first line is the value');
        assert.ok(img.used > 0, 'a line in the value is not the used property');
        assert.notEqual(img.installed, new Date(0).toISOString());
      } else {
        assert.equal(img.lastUsed, null, JSON.stringify(v.slice(0, 40)));
      }
      assert.ok(!r.stdout.includes('rm -rf') && !r.stdout.includes('x'.repeat(100)) && !r.stdout.includes('forever'), 'never echoed');
      // Installed just now, so kept for 30 days whatever the garbage says; the future record gives it no forever.
      const p = await json(['prune', '--dry-run'], PruneResultSchema);
      const e = p.out.images.find((i) => i.uuid === w.origin.uuid)!;
      if (!v.startsWith('2001')) assert.match(e.reason, /installed .*, no recorded use: within 30 days/);
      assert.ok(!p.r.stdout.includes('rm -rf') && !p.r.stdout.includes('forever'));
    }
    await w.zfs.set(ds, { [LAST_USED_PROPERTY]: future });
    const { out } = await json(['prune', '--keep-days', '0'], PruneResultSchema);
    assert.deepEqual(out.images.map((e) => e.action), ['destroy', 'destroy'], 'a future record does not keep an unused image');
    await assertNoLeaks({ datasetRoot: root, workDir });
  });

  it('a dataset named like an image that the tool did not create, or whose ownership is only inherited, is never destroyed', async () => {
    await install();
    const foreign = layout.imageDataset(randomUUID());
    await run('sh', ['-c', 'gzip -dc "$1" | zfs receive -u "$2"', 'sh', join(w.sampleDir, 'minimal-64-lts-sample-24.4.1.zfs.gz'), foreign]);
    // Our property with another value, and a child that inherits ours from its parent.
    const otherValue = layout.imageDataset(randomUUID());
    await w.zfs.create(otherValue, { [OWNER_PROPERTY]: 'not-image' });
    await w.zfs.snapshot(`${otherValue}@final`);
    await w.zfs.set(root, { [OWNER_PROPERTY]: 'image' });
    const inherited = layout.imageDataset(randomUUID());
    await w.zfs.create(inherited);
    await w.zfs.snapshot(`${inherited}@final`);
    // A manifest kept for the foreign one: a name does not make it ours.
    await mkdir(layout.manifestDir, { recursive: true });
    try {
      const { out } = await json(['prune', '--keep-days', '0'], PruneResultSchema);
      for (const ds of [foreign, otherValue, inherited]) {
        const e = out.images.find((i) => i.dataset === ds);
        assert.equal(e?.action, 'keep', ds);
        assert.match(e.reason, /not created by buildimage/);
        assert.ok(await w.zfs.exists(`${ds}@final`), `${ds} survives`);
      }
      assert.equal(out.images.filter((e) => e.action === 'destroy').length, 2, 'our own unused chain goes');
    } finally {
      await run('zfs', ['inherit', OWNER_PROPERTY, root]);
      for (const ds of [foreign, otherValue, inherited]) await destroy(ds).catch(() => undefined);
    }
    await assertNoLeaks({ datasetRoot: root, workDir });
  });

  it('a kept manifest that is a link to the host or huge: not followed, not read whole; the link goes with its image, its target stays', async () => {
    await install();
    const linked = layout.installedManifest(w.origin.uuid);
    const huge = layout.installedManifest(w.base.uuid);
    await rm(linked, { force: true });
    await symlink(bait.secret, linked);
    await rm(huge, { force: true });
    await writeFile(huge, '{"uuid": "');
    await truncate(huge, 512 * 1024 * 1024);
    const { r, out } = await json(['images'], ImagesResultSchema);
    assert.deepEqual(out.images.map((i) => [i.name, i.version]), [['-', '-'], ['-', '-']]);
    assert.match(r.stderr, /ignoring .*\.imgmanifest: is a symlink/);
    assert.doesNotMatch(r.stdout + r.stderr, /OPENSSH|BEGIN/, 'the secret is never echoed');
    const p = await json(['prune', '--keep-days', '0'], PruneResultSchema);
    assert.deepEqual(p.out.images.map((e) => e.action), ['destroy', 'destroy']);
    assert.deepEqual(p.out.removed.sort(), [linked, huge].sort());
    for (const f of [linked, huge]) assert.equal(await lstat(f).catch(() => undefined), undefined);
    await bait.assertUntouched(p.r.stderr);
    await assertNoLeaks({ datasetRoot: root, workDir });
  });

  it('the manifest dir a link to the host: one error line before anything is destroyed', async () => {
    await install();
    const real = `${layout.manifestDir}.real`;
    await rm(real, { recursive: true, force: true });
    await run('mv', [layout.manifestDir, real]);
    // The host holds a file named like a kept manifest: prune must not remove it.
    await writeFile(join(bait.dir, `${w.origin.uuid}.imgmanifest`), 'host file\n');
    await symlink(bait.dir, layout.manifestDir);
    try {
      const r = await cli(['prune', '--keep-days', '0'], { env });
      assert.equal(r.code, 1, r.stderr);
      assert.equal(errorLines(r).length, 1, r.stderr);
      assert.match(errorLines(r)[0], /work dir .*images is a symlink/);
      for (const u of [w.base.uuid, w.origin.uuid]) assert.ok(await w.zfs.exists(`${layout.imageDataset(u)}@final`), 'nothing destroyed');
      assert.equal(await readFile(join(bait.dir, `${w.origin.uuid}.imgmanifest`), 'utf8'), 'host file\n');
    } finally {
      await rm(layout.manifestDir, { force: true });
      await rm(join(bait.dir, `${w.origin.uuid}.imgmanifest`), { force: true });
      await run('mv', [real, layout.manifestDir]);
    }
    await bait.assertUntouched();
  });

  it('a -partial whose receive journal is a link, or names another dataset, is not ours: kept', async () => {
    const a = layout.partialDataset(randomUUID());
    const b = layout.partialDataset(randomUUID());
    await w.zfs.create(a);
    await w.zfs.create(b);
    await mkdir(layout.lockDir, { recursive: true });
    await writeFile(join(bait.dir, 'journal'), `${a}\n`);
    await symlink(join(bait.dir, 'journal'), layout.receiveJournal(layout.partialUuid(a)!));
    await writeFile(layout.receiveJournal(layout.partialUuid(b)!), `${a}\n`);
    try {
      const { out } = await json(['prune', '--keep-days', '0'], PruneResultSchema);
      for (const ds of [a, b]) assert.equal(out.partials.find((p) => p.dataset === ds)?.action, 'keep', ds);
      assert.ok((await w.zfs.exists(a)) && (await w.zfs.exists(b)));
    } finally {
      await rm(layout.receiveJournal(layout.partialUuid(a)!), { force: true });
      await rm(layout.receiveJournal(layout.partialUuid(b)!), { force: true });
      await rm(join(bait.dir, 'journal'), { force: true });
      await destroy(a);
      await destroy(b);
    }
    await bait.assertUntouched();
  });

  it('a dataset root that is a pool root: only what the tool created there goes; the images below other roots stay', async () => {
    await install();
    const pool = own.pool;
    const foreign = `${pool}/${randomUUID()}`;
    await w.zfs.create(foreign);
    await w.zfs.snapshot(`${foreign}@final`);
    const ours = `${pool}/${randomUUID()}`;
    await w.zfs.create(ours);
    await w.zfs.snapshot(`${ours}@final`);
    await w.zfs.markOwned(ours, 'image');
    const below = await w.zfs.listChildren(root);
    try {
      const r = await cli(['prune', '--keep-days', '0', '--dataset-root', pool, '--json'], { env });
      assert.equal(r.code, 0, r.stderr);
      const out = PruneResultSchema.parse(JSON.parse(r.stdout));
      assert.deepEqual(out.images.filter((e) => e.action === 'destroy').map((e) => e.dataset), [ours]);
      assert.equal(out.images.find((e) => e.dataset === foreign)?.action, 'keep');
      assert.ok(await w.zfs.exists(`${foreign}@final`));
      assert.deepEqual(await w.zfs.listChildren(root), below, 'the images below the other root are untouched');
      assert.equal(below.length, 2);
      assert.ok(await w.zfs.exists(root));
    } finally {
      await destroy(foreign);
      await destroy(ours).catch(() => undefined);
    }
  });
});
