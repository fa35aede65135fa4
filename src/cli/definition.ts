/**
 * From command-line flags to a checked BuildDefinition. Every input is
 * validated here, before anything runs, with one clear line per problem.
 */
import { stat } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import { COMPRESSIONS } from '../compress.js';
import { UsageError } from '../errors.js';
import { delegatedDataset, isSmartOS } from '../host/platform.js';
import { assertDatasetName } from '../host/zfs.js';
import { DEFAULT_SOURCE, isUrl } from '../images/sources.js';
import { isPlatformStamp, parseManifestInput, type Compression } from '../manifest.js';
import { parsePackageList } from '../pkgsrc-names.js';
import type { BuildDefinition } from '../state.js';

export const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
export const DEFAULT_WORK_DIR = '/var/tmp/buildimage';
export const DEFAULT_OUTPUT_DIR = '/tmp';

export interface BuildFlags {
  image: string;
  dir: string;
  manifest: string;
  packages?: string;
  prefix?: string;
  motd: boolean;
  'source-repo'?: string;
  audit: boolean;
  upgrade: boolean;
  verbose: boolean;
  source?: string;
  channel?: string;
  'dataset-root'?: string;
  'output-dir': string;
  compression: string;
  'min-platform'?: string;
  'work-dir'?: string;
}

/** `90s`, `30m`, `2h`, or a bare number of minutes, to milliseconds. */
export function parseDuration(value: string, what: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(s|m|h)?$/.exec(value.trim());
  const ms = m ? Number(m[1]) * { s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 'm') as 's' | 'm' | 'h'] : NaN;
  if (!Number.isFinite(ms) || ms < 1000 || ms > 7 * 24 * 3_600_000) {
    throw new UsageError(`${what} must be a duration like 90s, 30m or 2h (at least 1s), got ${JSON.stringify(value)}`);
  }
  return ms;
}

const PREFIX_RE = /^[A-Za-z0-9][A-Za-z0-9._+-]*$/;

/** `--min-platform 20210826T002459Z` or `7.0=20210826T002459Z`. */
export function parseMinPlatformFlag(value: string): Record<string, string> {
  const [ver, stamp] = value.includes('=') ? value.split('=', 2) : ['7.0', value];
  if (!/^\d+(\.\d+)*$/.test(ver!) || !isPlatformStamp(stamp)) {
    throw new UsageError(`--min-platform must be a platform stamp like 20210826T002459Z (optionally 7.0=STAMP), got ${JSON.stringify(value)}`);
  }
  return { [ver!]: stamp! };
}

async function checkDir(path: string, what: string): Promise<string> {
  const abs = resolve(path);
  const st = await stat(abs).catch(() => undefined);
  if (!st) throw new UsageError(`${what} ${path} does not exist`);
  if (!st.isDirectory()) throw new UsageError(`${what} ${path} is not a directory`);
  return abs;
}

export async function resolveDatasetRoot(flag: string | undefined, env = process.env): Promise<string> {
  const root = flag ?? env.BUILDIMAGE_DATASET_ROOT ?? (isSmartOS() ? await delegatedDataset() : undefined);
  if (!root) throw new UsageError('--dataset-root is required on this host', 'or set BUILDIMAGE_DATASET_ROOT');
  try {
    assertDatasetName(root, 'dataset root');
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  return root;
}

export function resolveWorkDir(flag: string | undefined, env = process.env): string {
  return resolve(flag ?? env.BUILDIMAGE_WORK_DIR ?? DEFAULT_WORK_DIR);
}

export async function definitionFromFlags(flags: BuildFlags, env = process.env): Promise<BuildDefinition> {
  const imageUuid = flags.image.toLowerCase();
  if (!UUID_RE.test(imageUuid)) throw new UsageError(`-i must be an image uuid, got ${JSON.stringify(flags.image)}`);
  const manifest = parseManifestInput(flags.manifest);
  const packages = flags.packages === undefined ? [] : parsePackageList(flags.packages);
  const prefix = flags.prefix ?? `${manifest.name}-zfs`;
  if (!PREFIX_RE.test(prefix) || prefix.length > 200) {
    throw new UsageError(`-P must be a file name prefix (letters, digits, . _ + -), got ${JSON.stringify(prefix)}`);
  }
  if (!(COMPRESSIONS as readonly string[]).includes(flags.compression)) {
    throw new UsageError(`--compression must be one of ${COMPRESSIONS.join(', ')}`);
  }
  if (flags['source-repo'] !== undefined && /[\n\r]/.test(flags['source-repo'])) {
    throw new UsageError('-S must be a single line');
  }
  const protoDir = await checkDir(flags.dir, 'proto directory (-d)');
  const source = flags.source ?? env.BUILDIMAGE_SOURCE ?? DEFAULT_SOURCE;
  const sourceValue = isUrl(source) ? source : await checkDir(source, 'image source (--source)');
  const outputDir = resolve(flags['output-dir']);
  const outSt = await stat(outputDir).catch(() => undefined);
  if (outSt && !outSt.isDirectory()) throw new UsageError(`output directory ${flags['output-dir']} is not a directory`);
  if (flags.channel !== undefined && !/^[A-Za-z0-9_.-]{1,64}$/.test(flags.channel)) {
    throw new UsageError(`--channel must be a channel name, got ${JSON.stringify(flags.channel)}`);
  }
  const workDir = resolveWorkDir(flags['work-dir'], env);
  if (!isAbsolute(workDir)) throw new UsageError('--work-dir must be absolute');
  return {
    imageUuid,
    protoDir,
    manifest: manifest as BuildDefinition['manifest'],
    packages,
    prefix,
    motd: flags.motd,
    sourceRepo: flags['source-repo'],
    audit: flags.audit,
    upgrade: flags.upgrade,
    source: sourceValue,
    channel: flags.channel,
    datasetRoot: await resolveDatasetRoot(flags['dataset-root'], env),
    outputDir,
    compression: flags.compression as Compression,
    minPlatform: flags['min-platform'] ? parseMinPlatformFlag(flags['min-platform']) : undefined,
    workDir,
    verbose: flags.verbose,
  };
}
