/**
 * The bundled sample base images, made on the local pool: a full
 * minimal-64-lts-like image and an incremental triton-origin-like image on
 * top of it (two levels, as Triton's core images are), written as
 * `<stem>.imgmanifest` + `<stem>.zfs.gz` into a directory usable as
 * `--source`.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeAtomic } from '../src/core/files.js';
import { run } from '../src/host/exec.js';
import { OWNER_PROPERTY, type Zfs } from '../src/host/zfs.js';
import type { ImageManifest } from '../src/image/manifest/types.js';
import { sendCompressed } from '../src/image/streams.js';
import { writeOriginLayer, writeZoneDataset } from './zoneroot.js';

export const SAMPLE_BASE_UUID = '5417ab20-3156-4bd6-8d2f-43d5e0a1c001';
export const SAMPLE_ORIGIN_UUID = '5417ab20-3156-4bd6-8d2f-43d5e0a1c002';
const MIN_PLATFORM = { '7.0': '20210826T002459Z' };

export interface SampleImagesOptions {
  zfs: Zfs;
  /** A dataset we may create a scratch child under. */
  datasetRoot: string;
  /** Directory the image files and manifests are written to. */
  outDir: string;
  /** Base URL of the sample package repository (baked into the images' pkgsrc config). */
  repoUrl: string;
  baseUuid?: string;
  originUuid?: string;
  /** Scratch mountpoints go here. */
  tmpDir?: string;
}

export interface SampleImages {
  base: ImageManifest;
  origin: ImageManifest;
  dir: string;
}

/** Set on each scratch dataset itself: destroyOwned takes no child it cannot tell is ours. */
const OWNED = { [OWNER_PROPERTY]: 'image' };

function manifestFor(uuid: string, name: string, version: string, extra: Partial<ImageManifest>): ImageManifest {
  return {
    v: 2,
    uuid,
    owner: '00000000-0000-0000-0000-000000000000',
    name,
    version,
    state: 'active',
    disabled: false,
    public: false,
    published_at: '2025-01-15T10:15:00Z',
    type: 'zone-dataset',
    os: 'smartos',
    ...extra,
  };
}

export async function makeSampleImages(opts: SampleImagesOptions): Promise<SampleImages> {
  const { zfs } = opts;
  const baseUuid = opts.baseUuid ?? SAMPLE_BASE_UUID;
  const originUuid = opts.originUuid ?? SAMPLE_ORIGIN_UUID;
  const scratch = `${opts.datasetRoot}/sample-scratch-${randomUUID().slice(0, 8)}`;
  const tmp = await mkdtemp(join(opts.tmpDir ?? '/var/tmp', 'buildimage-sample-'));
  await mkdir(opts.outDir, { recursive: true });
  try {
    await zfs.create(scratch, { mountpoint: 'none', ...OWNED });

    const baseDs = `${scratch}/base`;
    await zfs.create(baseDs, { mountpoint: join(tmp, 'base'), ...OWNED });
    await writeZoneDataset(join(tmp, 'base'), { repoUrl: opts.repoUrl });
    await zfs.snapshot(`${baseDs}@final`);
    const baseStem = join(opts.outDir, 'minimal-64-lts-sample-24.4.1');
    const baseFile = await sendCompressed(zfs, `${baseDs}@final`, undefined, 'gzip', `${baseStem}.zfs.gz`);
    const base = manifestFor(baseUuid, 'minimal-64-lts-sample', '24.4.1', {
      description: 'Sample SmartOS-like base image with pkgsrc stand-ins (buildimage demo and tests)',
      urn: 'sdc:sdc:minimal-64-lts-sample:24.4.1',
      requirements: { min_platform: MIN_PLATFORM, networks: [{ name: 'net0', description: 'public' }] },
      users: [{ name: 'root' }, { name: 'admin' }],
      generate_passwords: true,
      tags: { role: 'os', group: 'minimal-64-lts-sample' },
      files: [baseFile],
    });
    await writeAtomic(`${baseStem}.imgmanifest`, JSON.stringify(base, null, 2) + '\n');

    const originDs = `${scratch}/origin`;
    await zfs.clone(`${baseDs}@final`, originDs, { mountpoint: join(tmp, 'origin'), ...OWNED });
    await writeOriginLayer(join(tmp, 'origin', 'root'), { repoUrl: opts.repoUrl });
    await zfs.snapshot(`${originDs}@final`);
    const originStem = join(opts.outDir, 'triton-origin-sample-24.4.1');
    const originFile = await sendCompressed(zfs, `${originDs}@final`, `${baseDs}@final`, 'gzip', `${originStem}.zfs.gz`);
    const origin = manifestFor(originUuid, 'triton-origin-sample', '24.4.1', {
      description: 'Sample triton-origin-like image on the sample base (incremental)',
      origin: baseUuid,
      requirements: { min_platform: MIN_PLATFORM },
      tags: {},
      files: [originFile],
    });
    await writeAtomic(`${originStem}.imgmanifest`, JSON.stringify(origin, null, 2) + '\n');
    await writeFile(join(opts.outDir, 'README'), 'Sample images made by buildimage (src/sample/images.ts).\n');
    return { base, origin, dir: opts.outDir };
  } finally {
    if (await zfs.exists(scratch)) await zfs.destroyOwned(scratch);
    await rm(tmp, { recursive: true, force: true });
  }
}

export interface VariantImageOptions {
  zfs: Zfs;
  /** A dataset we may create a scratch child under. */
  datasetRoot: string;
  /** The sample images' directory (makeSampleImages' outDir): the variant starts from its base image. */
  sampleDir: string;
  /** Directory the variant's file and manifest are written to (usable as `--source`). */
  outDir: string;
  uuid?: string;
  name?: string;
  /** Scratch mountpoints go here. */
  tmpDir?: string;
  /** Changes the zone dataset (given its top: `root/`, `config/`) before it is snapshotted and sent. */
  mutate: (top: string) => Promise<void>;
}

/**
 * A full image made from the sample base with `mutate` applied: for tests
 * of what a hostile base image (links where directories belong ...) does.
 */
export async function makeVariantImage(opts: VariantImageOptions): Promise<ImageManifest> {
  const { zfs } = opts;
  const scratch = `${opts.datasetRoot}/variant-scratch-${randomUUID().slice(0, 8)}`;
  const tmp = await mkdtemp(join(opts.tmpDir ?? '/var/tmp', 'buildimage-variant-'));
  await mkdir(opts.outDir, { recursive: true });
  try {
    await zfs.create(scratch, { mountpoint: 'none', ...OWNED });
    const baseFile = join(opts.sampleDir, 'minimal-64-lts-sample-24.4.1.zfs.gz');
    await run('sh', ['-c', 'gzip -dc "$1" | zfs receive -u "$2"', 'sh', baseFile, `${scratch}/base`]);
    await zfs.set(`${scratch}/base`, OWNED);
    const ds = `${scratch}/variant`;
    await zfs.clone(`${scratch}/base@final`, ds, { mountpoint: join(tmp, 'variant'), ...OWNED });
    await opts.mutate(join(tmp, 'variant'));
    await zfs.snapshot(`${ds}@final`);
    const name = opts.name ?? 'variant-sample';
    const stem = join(opts.outDir, `${name}-1.0.0`);
    const file = await sendCompressed(zfs, `${ds}@final`, undefined, 'gzip', `${stem}.zfs.gz`);
    const manifest = manifestFor(opts.uuid ?? randomUUID(), name, '1.0.0', {
      description: 'A variant of the sample base image (tests)',
      requirements: { min_platform: MIN_PLATFORM },
      tags: {},
      files: [file],
    });
    await writeAtomic(`${stem}.imgmanifest`, JSON.stringify(manifest, null, 2) + '\n');
    return manifest;
  } finally {
    if (await zfs.exists(scratch)) await zfs.destroyOwned(scratch);
    await rm(tmp, { recursive: true, force: true });
  }
}
