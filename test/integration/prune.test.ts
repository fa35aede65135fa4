/**
 * `images` and `prune` on real ZFS (issue 16 item 4), on a dataset root of
 * their own, in a pool of their own (the shared world's images stay for the
 * other tests, and an incremental receive cannot find its origin there): prepare
 * records its use on the sample chain (origin → base); prune destroys only
 * what no build used within --keep-days, no one is cloned from, buildimage
 * created and no one holds; children first; a build after it imports again.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { lstat, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { installImage } from '../../src/base/install.js';
import { openSource } from '../../src/base/open.js';
import { formatUse, listImages, pruneImages, type PruneResult } from '../../src/base/cache.js';
import { ImagesResultSchema, PruneResultSchema } from '../../src/cli/schemas.js';
import { Layout } from '../../src/core/layout.js';
import { run } from '../../src/host/exec.js';
import { acquireLock } from '../../src/host/lock.js';
import { withRetry } from '../../src/core/retry.js';
import { isBusyError, LAST_USED_PROPERTY, OWNER_PROPERTY } from '../../src/host/zfs.js';
import { cli, type CliResult } from '../helpers/cli.js';
import { assertNoLeaks } from '../helpers/leaks.js';
import { ownPool, world, type World } from '../helpers/world.js';

const DAY = 24 * 3600 * 1000;

describe('images and prune', function () {
  this.timeout(10 * 60 * 1000);
  let w: World;
  let own: Awaited<ReturnType<typeof ownPool>>;
  let root: string;
  let workDir: string;
  let layout: Layout;
  let env: Record<string, string>;
  let proto: string;
  let base: string;
  let origin: string;

  before(async () => {
    w = await world();
    base = w.base.uuid;
    origin = w.origin.uuid;
    own = await ownPool('prune');
    root = `${own.pool}/images`;
    await w.zfs.create(root);
    workDir = join(w.dir, `work-prune-${randomUUID().slice(0, 8)}`);
    layout = new Layout(root, workDir);
    env = { BUILDIMAGE_DATASET_ROOT: root, BUILDIMAGE_WORK_DIR: workDir, BUILDIMAGE_SOURCE: w.sampleDir };
    proto = join(w.dir, 'proto-prune');
    await mkdir(join(proto, 'opt'), { recursive: true });
    await writeFile(join(proto, 'opt/f'), 'f');
  });
  after(async () => {
    await own?.destroy();
    await rm(workDir, { recursive: true, force: true });
  });

  /** prepare on the sample origin: installs (or reuses) the chain and leaves an analog cloned from it. */
  async function prepare(): Promise<{ r: CliResult; state: string; buildId: string }> {
    const state = join(w.dir, `prune-${randomUUID().slice(0, 8)}.json`);
    const out = await w.outDir();
    const mf = JSON.stringify({ name: 'prune-test', version: '1.0.0' });
    const r = await cli(['prepare', '-i', origin, '-d', proto, '-m', mf, '--state', state, '--output-dir', out], { env });
    assert.equal(r.code, 0, r.stderr);
    return { r, state, buildId: JSON.parse(await readFile(state, 'utf8')).buildId };
  }

  async function clean(state: string): Promise<void> {
    const r = await cli(['clean', '--state', state], { env });
    assert.equal(r.code, 0, r.stderr);
  }

  /** As if build `build` had used the image `daysAgo` days ago. */
  async function usedDaysAgo(uuid: string, daysAgo: number, build = randomUUID()): Promise<void> {
    await w.zfs.set(layout.imageDataset(uuid), { [LAST_USED_PROPERTY]: formatUse({ at: new Date(Date.now() - daysAgo * DAY).toISOString(), build, image: 'old@1' }) });
  }

  const action = (r: PruneResult, uuid: string) => r.images.find((e) => e.uuid === uuid);

  async function prune(args: string[]): Promise<{ r: CliResult; result: PruneResult }> {
    const r = await cli(['prune', ...args, '--json'], { env });
    assert.equal(r.code, 0, r.stderr);
    const parsed = PruneResultSchema.safeParse(JSON.parse(r.stdout));
    assert.ok(parsed.success, r.stdout);
    return { r, result: parsed.data };
  }

  it('images lists what prepare installed, with its last use; prune keeps what a live analog is cloned from', async () => {
    const { state, buildId } = await prepare();
    const r = await cli(['images', '--json'], { env });
    assert.equal(r.code, 0, r.stderr);
    const listed = ImagesResultSchema.parse(JSON.parse(r.stdout));
    assert.deepEqual(listed.images.map((i) => i.uuid).sort(), [base, origin].sort());
    const b = listed.images.find((i) => i.uuid === base)!;
    const o = listed.images.find((i) => i.uuid === origin)!;
    assert.deepEqual([b.name, b.version, o.name, o.version], [w.base.name, w.base.version, w.origin.name, w.origin.version]);
    for (const i of [b, o]) {
      assert.equal(i.createdByBuildimage, true);
      assert.equal(i.lastUsed?.build, buildId, `${i.uuid}: last used by the build`);
      assert.equal(i.lastUsed?.image, 'prune-test@1.0.0');
      assert.ok(Math.abs(Date.parse(i.lastUsed.at) - Date.now()) < 10 * 60 * 1000);
      assert.ok(i.used > 0 && i.referenced > 0);
    }
    assert.equal(o.origin, base);
    assert.deepEqual(b.originOf, [{ dataset: layout.imageDataset(origin), kind: 'image' }]);
    assert.deepEqual(o.originOf, [{ dataset: layout.analogDataset(buildId), kind: 'analog', build: buildId }]);
    const human = await cli(['images'], { env });
    assert.match(human.stdout, new RegExp(`${origin}  triton-origin-sample@24.4.1 .* used  installed by buildimage`));
    assert.match(human.stdout, new RegExp(`last used .* by build ${buildId} \\(prune-test@1.0.0\\)`));

    // Old, but a live analog is cloned from the origin, and the origin from the base.
    await usedDaysAgo(base, 400);
    await usedDaysAgo(origin, 400);
    const { result } = await prune(['--keep-days', '0']);
    assert.equal(action(result, origin)?.action, 'keep');
    assert.match(action(result, origin)!.reason, new RegExp(`origin of live analog ${layout.analogDataset(buildId)} \\(build ${buildId}\\)`));
    assert.equal(action(result, base)?.action, 'keep');
    assert.match(action(result, base)!.reason, new RegExp(`origin of image ${layout.imageDataset(origin)}`));
    assert.ok(await w.zfs.exists(`${layout.imageDataset(origin)}@final`));
    await clean(state);
  });

  it('keeps one used within --keep-days, and its origin; "now" injected', async () => {
    const { state } = await prepare();
    await clean(state);
    // Just used: kept with the default 30 days ten days later, gone (children first) forty days later.
    const r10 = await pruneImages(w.zfs, layout, { now: new Date(Date.now() + 10 * DAY), dryRun: true });
    assert.deepEqual(r10.images.map((e) => e.action), ['keep', 'keep']);
    assert.match(action(r10, origin)!.reason, /used .* by build .*: within 30 days/);
    const r40 = await pruneImages(w.zfs, layout, { now: new Date(Date.now() + 40 * DAY), dryRun: true });
    assert.deepEqual(r40.images.map((e) => e.action), ['destroy', 'destroy']);
    assert.equal(r40.freed, r40.images.reduce((a, e) => a + e.used, 0));
    assert.ok(await w.zfs.exists(layout.imageDataset(base)), 'a dry run destroys nothing');

    // The origin used lately, the base long ago: the base stays as the origin of a kept image.
    await usedDaysAgo(origin, 2);
    await usedDaysAgo(base, 90);
    const { result } = await prune(['--keep-days', '7']);
    assert.equal(action(result, origin)?.action, 'keep');
    assert.match(action(result, origin)!.reason, /within 7 days/);
    assert.equal(action(result, base)?.action, 'keep');
    assert.match(action(result, base)!.reason, /origin of image/);
    assert.deepEqual(result.removed, []);
    const human = await cli(['prune', '--keep-days', '7'], { env });
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, /^prune: nothing to destroy; 2 kept \(keep days: 7\)$/m);
  });

  it('keeps an image it did not create (received by plain zfs receive) and skips one whose lock is held', async () => {
    const foreign = randomUUID();
    await run('sh', ['-c', 'gzip -dc "$1" | zfs receive -u "$2"', 'sh', join(w.sampleDir, 'minimal-64-lts-sample-24.4.1.zfs.gz'), layout.imageDataset(foreign)]);
    await usedDaysAgo(base, 400);
    await usedDaysAgo(origin, 400);
    const lock = await acquireLock(layout.importLock(origin), { purpose: 'test: an import' });
    try {
      const { result } = await prune(['--keep-days', '0']);
      assert.equal(action(result, foreign)?.action, 'keep');
      assert.match(action(result, foreign)!.reason, /not created by buildimage .*never pruned/);
      assert.equal(action(result, origin)?.action, 'skip');
      assert.match(action(result, origin)!.reason, new RegExp(`import lock is held by pid ${process.pid}`));
      assert.equal(action(result, base)?.action, 'keep', 'the origin of a skipped image');
    } finally {
      await lock.release();
    }
    assert.ok(await w.zfs.exists(`${layout.imageDataset(foreign)}@final`), 'not ours: never destroyed');
    assert.ok(await w.zfs.exists(`${layout.imageDataset(origin)}@final`));
    await withRetry(() => run('zfs', ['destroy', '-r', layout.imageDataset(foreign)]), { attempts: 10, firstDelayMs: 200, retryable: isBusyError });
  });

  it('prunes a whole unused chain in one run (children first), its kept manifests and our -partial leftovers; a build then imports again', async () => {
    await usedDaysAgo(base, 40);
    await usedDaysAgo(origin, 40);
    // -partial leftovers: one our receive journal names, one nobody's.
    const ours = layout.partialDataset(randomUUID());
    const theirs = layout.partialDataset(randomUUID());
    await w.zfs.create(ours);
    await w.zfs.create(theirs);
    await writeFile(layout.receiveJournal(layout.partialUuid(ours)!), `${ours}\n`);
    for (const u of [base, origin]) assert.ok(await lstat(layout.installedManifest(u)));

    const dry = await prune(['--dry-run']);
    assert.deepEqual(dry.result.images.map((e) => [e.uuid, e.action]).sort(), [[base, 'destroy'], [origin, 'destroy']].sort());
    assert.ok(await w.zfs.exists(layout.imageDataset(base)));
    const human = await cli(['prune', '--dry-run'], { env });
    assert.match(human.stdout, new RegExp(`^would destroy ${origin} \\(triton-origin-sample@24.4.1, .*\\): last used .* by build .* \\(old@1\\); no one's origin$`, 'm'));
    assert.match(human.stdout, /^prune: 2 images would be destroyed, .* to free; 0 kept/m);

    const { result } = await prune([]);
    assert.deepEqual(result.images.map((e) => e.action), ['destroy', 'destroy']);
    assert.ok(result.freed > 0);
    for (const u of [base, origin]) {
      assert.equal(await w.zfs.exists(layout.imageDataset(u)), false, `${u} destroyed`);
      assert.equal(await lstat(layout.installedManifest(u)).catch(() => undefined), undefined, `${u}'s kept manifest removed`);
    }
    assert.deepEqual(result.partials.find((p) => p.dataset === ours)?.action, 'destroy');
    assert.deepEqual(result.partials.find((p) => p.dataset === theirs)?.action, 'keep');
    assert.equal(await w.zfs.exists(ours), false);
    assert.equal(await w.zfs.exists(theirs), true, 'a -partial no journal of ours names stays');
    await withRetry(() => run('zfs', ['destroy', theirs]), { attempts: 10, firstDelayMs: 200, retryable: isBusyError });

    const again = await prune([]);
    assert.deepEqual(again.result.images, []);
    // A whole build: it imports the chain again.
    const out = await w.outDir();
    const r = await cli(['-i', origin, '-d', proto, '-m', JSON.stringify({ name: 'after-prune', version: '1.0.0' }), '--output-dir', out], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, new RegExp(`importing image ${base}`));
    assert.match(r.stderr, new RegExp(`importing image ${origin}`));
    const listed = await listImages(w.zfs, layout);
    assert.deepEqual(listed.images.map((i) => i.lastUsed?.image), ['after-prune@1.0.0', 'after-prune@1.0.0']);
    await assertNoLeaks({ datasetRoot: root, workDir, outputDir: out });
  });

  it('an install onto an installed origin holds that origin too: it waits for a prune, and installs the chain again when the origin went', async () => {
    // The chain installed, then the top one gone: the next install receives onto the base.
    await installImage({ zfs: w.zfs, layout, source: () => openSource(w.sampleDir) }, origin);
    await w.zfs.destroyOwned(layout.imageDataset(origin));
    await rm(layout.installedManifest(origin), { force: true });
    const pruning = await acquireLock(layout.importLock(base), { purpose: 'test: a prune' });
    let done = false;
    const installing = installImage({ zfs: w.zfs, layout, source: () => openSource(w.sampleDir) }, origin).finally(() => (done = true));
    try {
      await sleep(3000);
      assert.equal(done, false, 'the install waits for the base it receives onto');
      assert.equal(await w.zfs.exists(layout.partialDataset(origin)), false, 'nothing received onto it meanwhile');
      await w.zfs.destroyOwned(layout.imageDataset(base));
    } finally {
      await pruning.release();
    }
    const res = await installing;
    assert.deepEqual(res.imported, [base, origin], 'the base installed again, then the image');
    assert.ok(await w.zfs.exists(`${layout.imageDataset(origin)}@final`));
  });

  it('an image whose owner property is inherited, not set on it, is not ours', async () => {
    const look = randomUUID();
    // The property set on the dataset root: every image below would inherit it.
    await w.zfs.set(root, { [OWNER_PROPERTY]: 'image' });
    try {
      await w.zfs.create(layout.imageDataset(look));
      await w.zfs.snapshot(`${layout.imageDataset(look)}@final`);
      const r = await pruneImages(w.zfs, layout, { keepDays: 0 });
      assert.equal(action(r, look)?.action, 'keep');
      assert.ok(await w.zfs.exists(layout.imageDataset(look)));
    } finally {
      await run('zfs', ['inherit', OWNER_PROPERTY, root]);
      await withRetry(() => run('zfs', ['destroy', '-r', layout.imageDataset(look)]), { attempts: 10, firstDelayMs: 200, retryable: isBusyError });
    }
  });
});
