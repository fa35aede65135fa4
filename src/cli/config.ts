/**
 * The build definition file (`--config buildimage.json`, written by
 * `buildimage init`): defaults for build's flags, kept in the component's
 * repo. Keys are build's long flag names; a flag on the command line wins;
 * `-m` is merged over the file's "manifest" and `--image-version` sets the
 * version (it changes every build: STAMP). Relative paths are relative to
 * the file.
 */
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { UsageError } from '../errors.js';
import { isUrl } from '../images/sources.js';
import { parseManifestInput } from '../manifest.js';
import { DEFAULT_OUTPUT_DIR, type BuildFlags } from './definition.js';

export const ConfigSchema = z
  .object({
    image: z.string(),
    dir: z.string(),
    manifest: z.record(z.unknown()),
    packages: z.union([z.array(z.string()), z.string()]),
    prefix: z.string(),
    motd: z.boolean(),
    'source-repo': z.string(),
    audit: z.boolean(),
    upgrade: z.boolean(),
    source: z.string(),
    channel: z.string(),
    'output-dir': z.string(),
    compression: z.enum(['gzip', 'bzip2', 'xz', 'none']),
    'min-platform': z.string(),
  })
  .partial()
  .strict();
export type BuildConfig = z.infer<typeof ConfigSchema>;

/** Build's flags as parsed: nothing required yet, no defaults applied. */
export type RawBuildFlags = Partial<Omit<BuildFlags, 'verbose'>> & { verbose: boolean; config?: string; 'image-version'?: string };

export async function loadConfig(path: string): Promise<BuildConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read --config ${path}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`, 'run `buildimage init` to write one');
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`--config ${path} is not valid JSON: ${(err as Error).message}`);
  }
  // Keys starting with "//" are comments.
  if (json && typeof json === 'object' && !Array.isArray(json)) {
    json = Object.fromEntries(Object.entries(json).filter(([k]) => !k.startsWith('//')));
  }
  const parsed = ConfigSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const where = issue.path.join('.') || 'top level';
    const what = issue.code === 'unrecognized_keys' ? `unknown key ${issue.keys.map((k) => JSON.stringify(k)).join(', ')}` : `${where}: ${issue.message}`;
    throw new UsageError(`--config ${path}: ${what}`, `keys are build's long flag names: ${Object.keys(ConfigSchema.shape).join(', ')}`);
  }
  return parsed.data;
}

/** The -m text as an object, with the manifest parser's own errors for bad JSON. */
function manifestObject(text: string): Record<string, unknown> {
  try {
    const v: unknown = JSON.parse(text);
    if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    /* parseManifestInput says what is wrong */
  }
  parseManifestInput(text);
  throw new UsageError('manifest (-m) must be a JSON object');
}

/** Command line over config file over defaults: the complete flags definitionFromFlags takes. */
export async function withConfig(flags: RawBuildFlags): Promise<BuildFlags> {
  const path = flags.config;
  const cfg = path ? await loadConfig(path) : {};
  const base = path ? dirname(resolve(path)) : process.cwd();
  const rel = (p: string | undefined) => (p === undefined || isAbsolute(p) ? p : resolve(base, p));
  const from = path ? ` (or "%s" in --config ${path})` : '';

  const image = flags.image ?? cfg.image;
  if (!image) throw new UsageError('missing -i (the base image uuid)', `pass -i UUID${from.replace('%s', 'image')}`);
  const dir = flags.dir ?? rel(cfg.dir);
  if (!dir) throw new UsageError('missing -d (the proto directory)', `pass -d DIR${from.replace('%s', 'dir')}`);

  let manifest = flags.manifest;
  if (cfg.manifest || flags['image-version'] !== undefined) {
    manifest = JSON.stringify({
      ...cfg.manifest,
      ...(flags.manifest !== undefined ? manifestObject(flags.manifest) : {}),
      ...(flags['image-version'] !== undefined ? { version: flags['image-version'] } : {}),
    });
  }
  if (manifest === undefined) throw new UsageError('missing -m (the image manifest JSON)', `pass -m '{"name":…,"version":…}'${from.replace('%s', 'manifest')}`);

  const packages = flags.packages ?? (Array.isArray(cfg.packages) ? (cfg.packages.length ? cfg.packages.join(',') : undefined) : cfg.packages);
  const source = flags.source ?? (cfg.source && !isUrl(cfg.source) ? rel(cfg.source) : cfg.source);
  return {
    ...flags,
    image,
    dir,
    manifest,
    packages,
    prefix: flags.prefix ?? cfg.prefix,
    motd: flags.motd ?? cfg.motd ?? false,
    'source-repo': flags['source-repo'] ?? cfg['source-repo'],
    audit: flags.audit ?? cfg.audit ?? false,
    upgrade: flags.upgrade ?? cfg.upgrade ?? false,
    source,
    channel: flags.channel ?? cfg.channel,
    'output-dir': flags['output-dir'] ?? rel(cfg['output-dir']) ?? DEFAULT_OUTPUT_DIR,
    compression: flags.compression ?? cfg.compression ?? 'gzip',
    'min-platform': flags['min-platform'] ?? cfg['min-platform'],
  };
}
