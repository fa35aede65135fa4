/**
 * The integration tests' world, made once per test run: a file-backed pool
 * (or BUILDIMAGE_TEST_DATASET_ROOT on a host with a pool), the sample
 * package repository served on 127.0.0.1, and the two-level sample images.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Layout } from '../../src/core/layout.js';
import { run } from '../../src/host/exec.js';
import { Zfs } from '../../src/host/zfs.js';
import { pidAlive } from '../../src/host/lock.js';
import type { ImageManifest } from '../../src/image/manifest/types.js';
import { makeSampleImages } from '../../testbed/images.js';
import { SAMPLE_PACKAGES, writeRepository } from '../../testbed/packages.js';
import { destroyFilePool, ensureFilePool } from '../../testbed/pool.js';
import { startRepoServer, type RepoServer } from '../../testbed/repo-server.js';
import type { ImgapiTestServer } from '../servers/imgapi-server.js';

export const TEST_TOP = '/var/tmp/buildimage-test';

export interface World {
  zfs: Zfs;
  pool?: string;
  datasetRoot: string;
  dir: string;
  sampleDir: string;
  workDir: string;
  repoUrl: string;
  repoDir: string;
  base: ImageManifest;
  origin: ImageManifest;
  /** Environment for the CLI: dataset root, work dir, source. */
  env: Record<string, string>;
  /** A fresh output directory. */
  outDir(): Promise<string>;
}

let current: Promise<World> | undefined;
let server: RepoServer | undefined;
let created: { pool?: string; file?: string; dir?: string } = {};

/** Pools of earlier test runs that were killed: FAULTED or orphaned, they block names and space. */
async function reapStalePools(): Promise<void> {
  const r = await run('zpool', ['list', '-H', '-o', 'name'], { okExitCodes: [0, 1] });
  for (const name of r.stdout.split('\n')) {
    const m = /^bitest(\d+)([a-z]*)$/.exec(name.trim());
    if (m && !pidAlive(Number(m[1]))) await destroyFilePool(name.trim(), join(TEST_TOP, `${name.trim()}.img`)).catch(() => undefined);
  }
}

async function make(): Promise<World> {
  const zfs = new Zfs();
  const dir = join(TEST_TOP, `run-${process.pid}`);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  created.dir = dir;
  let datasetRoot = process.env.BUILDIMAGE_TEST_DATASET_ROOT;
  let pool: string | undefined;
  if (!datasetRoot) {
    await reapStalePools();
    pool = `bitest${process.pid}`;
    created.pool = pool;
    created.file = join(TEST_TOP, `${pool}.img`);
    await ensureFilePool(pool, created.file, 8);
    datasetRoot = `${pool}/images`;
  } else {
    datasetRoot = `${datasetRoot}/t${randomUUID().slice(0, 8)}`;
  }
  await zfs.create(datasetRoot);
  const repoDir = join(dir, 'repo');
  writeRepository(repoDir, SAMPLE_PACKAGES);
  server = await startRepoServer({ dir: repoDir });
  const sampleDir = join(dir, 'sample');
  const images = await makeSampleImages({ zfs, datasetRoot, outDir: sampleDir, repoUrl: server.url, tmpDir: dir });
  const workDir = join(dir, 'work');
  let outs = 0;
  return {
    zfs,
    pool,
    datasetRoot,
    dir,
    sampleDir,
    workDir,
    repoUrl: server.url,
    repoDir,
    base: images.base,
    origin: images.origin,
    env: { BUILDIMAGE_DATASET_ROOT: datasetRoot, BUILDIMAGE_WORK_DIR: workDir, BUILDIMAGE_SOURCE: sampleDir },
    outDir: async () => {
      const d = join(dir, `out-${++outs}`);
      await mkdir(d, { recursive: true });
      return d;
    },
  };
}

export function world(): Promise<World> {
  current ??= make();
  return current;
}

export async function teardownWorld(): Promise<void> {
  if (!current) return;
  await current.catch(() => undefined);
  await server?.close();
  if (created.pool) await destroyFilePool(created.pool, created.file);
  if (created.dir) await rm(created.dir, { recursive: true, force: true });
  current = undefined;
  created = {};
}

/**
 * Removes every imported image so the next build imports again: dependents
 * first (an image received onto its origin is a clone of the origin's
 * @final, and ZFS refuses to destroy an origin before its clones).
 */
export async function forgetImports(w: World): Promise<void> {
  let left = await w.zfs.listChildren(w.datasetRoot);
  while (left.length) {
    const cloned = new Set(
      (await w.zfs.origins(w.datasetRoot.split('/')[0])).flatMap((d) => (d.origin && left.some((l) => d.name === l || d.name.startsWith(`${l}/`)) ? [d.origin.split('@')[0]] : [])));
    const leaves = left.filter((ds) => !cloned.has(ds));
    if (!leaves.length) throw new Error(`forgetImports: ${left.join(', ')} are each other's origins`);
    for (const ds of leaves) await w.zfs.destroyOwned(ds);
    left = left.filter((ds) => !leaves.includes(ds));
  }
  await rm(new Layout(w.datasetRoot, w.workDir).lockDir, { recursive: true, force: true });
}

/**
 * A file-backed pool of the test's own, `bitest<pid><tag>` (reaped as the
 * world's when its process is gone): for tests whose datasets must not meet
 * the world's (`zfs receive` of an incremental stream finds its origin by
 * GUID anywhere in the pool, so the same image installed twice is shared).
 */
export async function ownPool(tag: string, sizeGiB = 2): Promise<{ pool: string; destroy(): Promise<void> }> {
  if (!/^[a-z]+$/.test(tag)) throw new Error(`pool tag ${tag}: lower-case letters only`);
  const pool = `bitest${process.pid}${tag}`;
  const file = join(TEST_TOP, `${pool}.img`);
  await ensureFilePool(pool, file, sizeGiB);
  return { pool, destroy: () => destroyFilePool(pool, file) };
}

export interface VerifyPool {
  pool: string;
  /** Receives a gzip'd image file as `<pool>/<name>`, mounted at `mountpoint` when given. */
  receive(file: string, name: string, mountpoint?: string): Promise<void>;
  destroy(): Promise<void>;
}

/**
 * A second pool holding only the sample origin chain, to check that an
 * image receives onto its origins alone (as on a compute node).
 */
export async function verifyPoolWithChain(w: World): Promise<VerifyPool> {
  const pool = `bitest${process.pid}rx`;
  const file = join(TEST_TOP, `${pool}.img`);
  await ensureFilePool(pool, file, 2);
  const receive = async (f: string, name: string, mountpoint?: string) => {
    await run('sh', ['-c', 'gzip -dc "$1" | zfs receive -u "$2"', 'sh', f, `${pool}/${name}`]);
    if (mountpoint) {
      await w.zfs.set(`${pool}/${name}`, { mountpoint });
      await w.zfs.mount(`${pool}/${name}`);
    }
  };
  await receive(join(w.sampleDir, 'minimal-64-lts-sample-24.4.1.zfs.gz'), w.base.uuid);
  await receive(join(w.sampleDir, 'triton-origin-sample-24.4.1.zfs.gz'), w.origin.uuid);
  return { pool, receive, destroy: () => destroyFilePool(pool, file) };
}

/** The sample chain served by a test IMGAPI under new uuids (so a build imports it anew), in `channels`. */
export async function serveSampleChain(
  server: ImgapiTestServer,
  w: World,
  o: { channels?: string[]; state?: 'active' | 'unactivated' } = {},
): Promise<{ base: string; origin: string }> {
  const channels = o.channels ?? ['dev'];
  const read = async (stem: string) => JSON.parse(await readFile(join(w.sampleDir, `${stem}.imgmanifest`), 'utf8')) as ImageManifest;
  const base = await read('minimal-64-lts-sample-24.4.1');
  const origin = await read('triton-origin-sample-24.4.1');
  base.uuid = randomUUID();
  origin.uuid = randomUUID();
  origin.origin = base.uuid;
  await server.addImage(base, join(w.sampleDir, 'minimal-64-lts-sample-24.4.1.zfs.gz'), { channels });
  await server.addImage(origin, join(w.sampleDir, 'triton-origin-sample-24.4.1.zfs.gz'), { channels, state: o.state ?? 'active' });
  return { base: base.uuid, origin: origin.uuid };
}
