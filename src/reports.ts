/**
 * The build-info report (`<prefix>-<version>.build-info.json`) beside the
 * image: what went in (base image, proto and its git commit, packages,
 * flags), what made it (tool, host) and how long it took, so an image in
 * IMGAPI can be traced back to its build.
 */
import { readFileSync } from 'node:fs';
import { arch, hostname, platform, release } from 'node:os';
import { z } from 'zod';
import { run } from './host/exec.js';
import { isSmartOS, unameV } from './host/platform.js';
import type { ImageManifest } from './manifest.js';
import { writeAtomic, type BuildState } from './state.js';

let version: string | undefined;

/** This tool's version, from its package.json. */
export function toolVersion(): string {
  version ??= (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  return version;
}

const GitInfo = z.object({
  dir: z.string(),
  commit: z.string(),
  branch: z.string().optional(),
  dirty: z.boolean(),
  remote: z.string().optional(),
});
export type GitInfo = z.infer<typeof GitInfo>;

export const BuildInfoSchema = z.object({
  buildInfoVersion: z.literal(1),
  image: z.object({
    uuid: z.string(),
    name: z.string(),
    version: z.string(),
    file: z.object({ sha1: z.string(), size: z.number(), compression: z.string() }),
  }),
  base: z.object({
    uuid: z.string(),
    name: z.string(),
    version: z.string(),
    sha1: z.string().optional(),
    /** Images imported for this build (the base and any missing origins). */
    imported: z.array(z.string()),
  }),
  proto: z.object({ path: z.string(), git: GitInfo.optional() }),
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
  }),
  /** What pkg_info -a listed in the image. */
  packages: z.array(z.object({ name: z.string(), comment: z.string() })),
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

/** `git -C dir ARGS` output, or undefined when git fails (not a repo, no such remote...). */
async function git(dir: string, ...args: string[]): Promise<string | undefined> {
  // safe.directory: a root build reads a checkout owned by the Jenkins user.
  const r = await run('git', ['-c', 'safe.directory=*', '-C', dir, ...args], { okExitCodes: [0, 1, 2, 128, 129], timeoutMs: 30_000 });
  return r.exitCode === 0 ? r.stdout.trim() : undefined;
}

/** The `origin` remote's URL without credentials, if any. */
export async function gitRemote(dir: string): Promise<string | undefined> {
  const url = await git(dir, 'remote', 'get-url', 'origin').catch(() => undefined);
  return url?.replace(/\/\/[^/@]*@/, '//') || undefined;
}

/** The git checkout `dir` is in, if any (git missing or not a repo: undefined). */
export async function gitInfo(dir: string): Promise<GitInfo | undefined> {
  try {
    const top = await git(dir, 'rev-parse', '--show-toplevel');
    const commit = top && (await git(dir, 'rev-parse', 'HEAD'));
    if (!top || !commit) return undefined;
    const branch = await git(dir, 'rev-parse', '--abbrev-ref', 'HEAD');
    const status = await git(dir, 'status', '--porcelain', '--untracked-files=no');
    const remote = await gitRemote(dir);
    return {
      dir: top,
      commit,
      ...(branch && branch !== 'HEAD' ? { branch } : {}),
      dirty: !!status,
      ...(remote ? { remote } : {}),
    };
  } catch {
    return undefined;
  }
}

export async function buildInfo(state: BuildState, manifest: ImageManifest, env: NodeJS.ProcessEnv = process.env): Promise<BuildInfo> {
  const def = state.definition;
  const base = state.base!;
  const baseFile = (base.manifest as { files?: Array<{ sha1?: string }> }).files?.[0];
  const git = (await gitInfo(def.protoDir)) ?? (await gitInfo(process.cwd()));
  const ci = Object.fromEntries(CI_VARS.filter((k) => env[k]).map((k) => [k, env[k]!]));
  const timings = Object.fromEntries(Object.entries(state.timings).filter(([k]) => k !== 'seal'));
  const { sha1, size, compression } = manifest.files![0]!;
  return {
    buildInfoVersion: 1,
    image: { uuid: manifest.uuid, name: manifest.name, version: manifest.version, file: { sha1, size, compression } },
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
    },
    packages: state.packagesInstalled ?? [],
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
export async function writeBuildInfo(path: string, state: BuildState, manifest: ImageManifest): Promise<void> {
  await writeAtomic(path, JSON.stringify(await buildInfo(state, manifest), null, 2) + '\n');
}
