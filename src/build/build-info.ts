/**
 * The build-info report (`<prefix>-<version>.build-info.json`) beside the
 * image: what went in (base image, proto and its git commit, packages,
 * flags), what made it (tool, host) and how long it took, so an image in
 * IMGAPI can be traced back to its build.
 */
import { arch, hostname, platform, release } from 'node:os';
import { z } from 'zod';
import { toolVersion } from '../core/package.js';
import { GitInfoSchema, gitInfo, type GitInfo } from '../host/git.js';
import { isSmartOS, unameV } from '../host/platform.js';
import type { ImageManifest } from '../image/manifest/types.js';
import { sha2File, writeAtomic } from '../core/files.js';
import { recordedUrl } from '../core/redact.js';
import { recordedDefinition } from '../settings/definition.js';
import { PackageCacheStatsSchema } from '../pkgsrc/mirror.js';
import type { BuildState } from './state.js';

export const BuildInfoSchema = z.object({
  buildInfoVersion: z.literal(1),
  image: z.object({
    uuid: z.string(),
    name: z.string(),
    version: z.string(),
    /** sha1 as the manifest has it (IMGAPI); sha256 and sha512 from the same pass as it was written. */
    file: z.object({ sha1: z.string(), sha256: z.string().optional(), sha512: z.string().optional(), size: z.number(), compression: z.string() }),
  }),
  /** Every other output seal wrote before this report, by its key in the build's outputs (build/owned). */
  outputs: z.record(z.object({ sha256: z.string(), sha512: z.string(), size: z.number() })).optional(),
  base: z.object({
    uuid: z.string(),
    name: z.string(),
    version: z.string(),
    sha1: z.string().optional(),
    /** Images imported for this build (the base and any missing origins). */
    imported: z.array(z.string()),
  }),
  proto: z.object({ path: z.string(), git: GitInfoSchema.optional() }),
  /** The build definition's choices (the flags). */
  inputs: z.object({
    packages: z.array(z.string()),
    upgrade: z.boolean(),
    audit: z.boolean(),
    motd: z.boolean(),
    compression: z.string(),
    source: z.string(),
    channel: z.string().optional(),
    minPlatform: z.record(z.string()).optional(),
    /** The scripts run in the image (--run), in order: file name, path and sha256 of what ran. */
    scripts: z.array(z.object({ name: z.string(), path: z.string(), sha256: z.string() })).optional(),
  }),
  /** The contents listing beside the image: its content digest (over what the image adds, changes and deletes) and counts. */
  contents: z.object({ digest: z.string(), added: z.number(), changed: z.number(), deleted: z.number() }).optional(),
  /** What pkg_info -a listed in the image. */
  packages: z.array(z.object({ name: z.string(), comment: z.string() })),
  /** What the package cache did in pkgadd: packages from the cache and downloaded (pkgsrc/mirror). */
  packageCache: PackageCacheStatsSchema.optional(),
  tool: z.object({ name: z.literal('buildimage'), version: z.string(), node: z.string() }),
  host: z.object({ platform: z.string(), release: z.string(), uname: z.string().optional(), arch: z.string(), hostname: z.string() }),
  /** Jenkins' own variables, when it ran there. */
  ci: z.record(z.string()).optional(),
  build: z.object({
    id: z.string(),
    startedAt: z.string(),
    sealedAt: z.string(),
    /** Seconds per stage that finished before seal. */
    timings: z.record(z.number()),
  }),
});
export type BuildInfo = z.infer<typeof BuildInfoSchema>;

const CI_VARS = ['BUILD_URL', 'JOB_NAME', 'BUILD_NUMBER', 'BRANCH_NAME', 'GIT_COMMIT', 'GIT_BRANCH', 'NODE_NAME', 'WORKSPACE', 'STAMP'];

/** What seal knows beyond the state and manifest: the image's other digests, the other outputs', the checkout. */
export interface SealFacts {
  image?: { sha256: string; sha512: string };
  outputs?: Record<string, OutputDigest>;
  git?: GitInfo;
}
export interface OutputDigest {
  sha256: string;
  sha512: string;
  size: number;
}

/** The checkout the build came from: the proto's, else the working directory's (host/git: no hook of it runs). */
export async function buildGit(state: BuildState): Promise<GitInfo | undefined> {
  return (await gitInfo(state.definition.protoDir)) ?? (await gitInfo(process.cwd()));
}

/** sha256 and sha512 of each file, one read each; a file that is not there is left out. */
export async function outputDigests(files: Record<string, string | undefined>): Promise<Record<string, OutputDigest>> {
  const out: Record<string, OutputDigest> = {};
  for (const [key, path] of Object.entries(files)) {
    if (!path) continue;
    const d = await sha2File(path).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw err;
    });
    if (d) out[key] = d;
  }
  return out;
}

export async function buildInfo(state: BuildState, manifest: ImageManifest, env: NodeJS.ProcessEnv = process.env, facts: SealFacts = {}): Promise<BuildInfo> {
  // Published (Manta, Jenkins archives): every value as recorded, without credentials.
  const def = recordedDefinition(state.definition);
  const base = state.base!;
  const baseFile = (base.manifest as { files?: Array<{ sha1?: string }> }).files?.[0];
  const git = 'git' in facts ? facts.git : await buildGit(state);
  const ci = Object.fromEntries(CI_VARS.filter((k) => env[k]).map((k) => [k, recordedUrl(env[k]!)]));
  const timings = Object.fromEntries(Object.entries(state.timings).filter(([k]) => k !== 'seal'));
  const { sha1, size, compression } = manifest.files![0];
  return {
    buildInfoVersion: 1,
    image: { uuid: manifest.uuid, name: manifest.name, version: manifest.version, file: { sha1, ...(facts.image ?? {}), size, compression } },
    ...(facts.outputs ? { outputs: facts.outputs } : {}),
    base: { uuid: base.uuid, name: base.name, version: base.version, ...(baseFile?.sha1 ? { sha1: baseFile.sha1 } : {}), imported: base.imported },
    proto: { path: def.protoDir, ...(git ? { git } : {}) },
    inputs: {
      packages: def.packages,
      upgrade: def.upgrade,
      audit: def.audit,
      motd: def.motd,
      compression: def.compression,
      source: def.source,
      ...(def.channel ? { channel: def.channel } : {}),
      ...(def.minPlatform ? { minPlatform: def.minPlatform } : {}),
      ...(def.scripts?.length ? { scripts: def.scripts.map((x) => ({ name: x.name, path: x.path, sha256: x.sha256 })) } : {}),
    },
    ...(state.contents ? { contents: state.contents } : {}),
    packages: state.packagesInstalled ?? [],
    ...(state.packageCache ? { packageCache: state.packageCache } : {}),
    tool: { name: 'buildimage', version: toolVersion(), node: process.version },
    host: {
      platform: platform(),
      release: release(),
      ...(isSmartOS() ? { uname: await unameV().catch(() => '') } : {}),
      arch: arch(),
      hostname: hostname(),
    },
    ...(Object.keys(ci).length ? { ci } : {}),
    build: { id: state.buildId, startedAt: state.createdAt, sealedAt: new Date().toISOString(), timings },
  };
}

/** Writes the report to `path` (seal's temp name; it renames it into place with the rest). */
export async function writeBuildInfo(path: string, state: BuildState, manifest: ImageManifest, facts: SealFacts = {}): Promise<void> {
  await writeAtomic(path, JSON.stringify(await buildInfo(state, manifest, process.env, facts), null, 2) + '\n');
}
