/**
 * A command's settings from where they can come, in this order: the command
 * line, the build definition file (`--config`), the environment, the
 * default. Each value passes through its setting's parser on the way, so
 * it arrives checked and typed.
 */
import { dirname, resolve } from 'node:path';
import { z } from 'zod';
import { checkEnvSwitches, parseSwitch } from '../core/env.js';
import { UsageError } from '../core/errors.js';
import { log } from '../core/log.js';
import { parseInputJson, readInputFile } from './input-file.js';
import {
  IMAGE_NAME_RE,
  IMAGE_NAME_RULE,
  SETTINGS,
  defaultFor,
  envFor,
  flagName,
  label,
  settingsOf,
  type CommandId,
  type ConfigKey,
  type Setting,
  type StringSetting,
  type SettingId,
  type Settings,
} from './table.js';

type Ids<C extends CommandId> = { [K in SettingId]: C extends Settings[K]['commands'][number] ? K : never }[SettingId];

type ValueOf<S> = S extends { type: 'boolean' } ? boolean : S extends { parse: (text: string, label: string) => infer T } ? T : never;

type NoDefaultIn<S, C> = S extends { per: infer P } ? (C extends keyof P ? (P[C] extends { default: null } ? true : false) : false) : false;

type Always<S, C> = S extends { type: 'boolean' } ? true : S extends { default: string } ? (NoDefaultIn<S, C> extends true ? false : true) : false;

/** A command's settings, typed from the table: set (a default, or false for switches) or possibly undefined. */
export type Resolved<C extends CommandId> = {
  -readonly [K in Ids<C>]: Always<Settings[K], C> extends true ? ValueOf<Settings[K]> : ValueOf<Settings[K]> | undefined;
};

/** One image of a definition with several (`"images"`): its name and the keys it sets itself. */
export interface DefinitionImage {
  name: string;
  values: Record<string, unknown>;
}

/** A build definition file, read and checked against the table's keys. */
export interface DefinitionFile {
  path: string;
  /** The top level: one image's keys, or with `images` the defaults they share. */
  values: Record<string, unknown>;
  /** `"images"`: several images, each a name and the keys it overrides. */
  images?: DefinitionImage[];
  /** Set when `values` are one image's, its own keys over the shared ones: messages name the image. */
  image?: string;
}

const configIds = (Object.keys(SETTINGS) as SettingId[]).filter((id) => (SETTINGS[id] as Setting).config);

/** At most this many images in one definition. */
export const MAX_IMAGES = 100;

/** The keys one image may set: every setting with a `config` entry (so a setting added to the table is per image too). */
const imageKeys = Object.fromEntries(configIds.map((id) => [id, (SETTINGS[id] as Setting).config!.schema.describe((SETTINGS[id] as Setting).help)]));

const ImageEntrySchema = z
  .object({
    name: z
      .string({ required_error: 'is missing: every image has a name' })
      .regex(IMAGE_NAME_RE, `must be an image name (${IMAGE_NAME_RULE})`)
      .describe('the image\'s handle: `--only NAME`, its state file, its log lines'),
    ...Object.fromEntries(Object.entries(imageKeys).map(([k, v]) => [k, v.optional()])),
  })
  .strict();

/**
 * The keys buildimage.json may have: every setting with a `config` entry,
 * none required; or, with `"images"`, those as the defaults of several
 * images, each of which may set any of them again (the manifest merged
 * key by key, every other key replaced).
 */
export const DefinitionFileSchema = z
  .object({
    $schema: z.string().max(1000).describe('the JSON Schema of this file (buildimage.schema.json), for editors'),
    ...imageKeys,
    images: z
      .array(ImageEntrySchema)
      .min(1, 'must list at least one image')
      .max(MAX_IMAGES, `may list at most ${MAX_IMAGES} images`)
      .superRefine((list, ctx) => {
        const seen = new Set<string>();
        for (const [i, img] of list.entries()) {
          if (seen.has(img.name)) ctx.addIssue({ code: z.ZodIssueCode.custom, path: [i, 'name'], message: `${JSON.stringify(img.name)} names two images` });
          else seen.add(img.name);
        }
      })
      .describe('several images built from this one file: the top-level keys are their shared defaults'),
  })
  .partial()
  .strict();

/** The most a definition file may hold. */
const MAX_DEFINITION_BYTES = 1024 * 1024;

/** Keys starting with "//" are comments: dropped from an object. */
function withoutComments(json: unknown): unknown {
  if (!json || typeof json !== 'object' || Array.isArray(json)) return json;
  return Object.fromEntries(Object.entries(json).filter(([k]) => !k.startsWith('//')));
}

/** A key or a path from the file, as a message shows it: bounded. */
function shown(k: string | number): string {
  const t = String(k);
  return t.length > 60 ? `${JSON.stringify(t.slice(0, 60))}…` : JSON.stringify(t);
}

export function loadDefinitionFile(path: string): DefinitionFile {
  const what = `--config ${path}`;
  const text = readInputFile(path, MAX_DEFINITION_BYTES, what, 'run `buildimage init` to write one');
  const json = withoutComments(parseInputJson(text, what));
  // Each image's "//" keys are comments too.
  if (json && typeof json === 'object' && Array.isArray((json as { images?: unknown }).images)) {
    const top = json as { images: unknown[] };
    top.images = top.images.map(withoutComments);
  }
  const parsed = DefinitionFileSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    // images.3.name → images[3].name
    const where = issue.path.map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i ? '.' : ''}${p.length > 60 ? `${p.slice(0, 60)}…` : p}`)).join('');
    const keys = issue.code === 'unrecognized_keys' ? issue.keys : [];
    const what =
      issue.code === 'unrecognized_keys'
        ? `${where ? `${where}: ` : ''}unknown key ${keys.slice(0, 3).map(shown).join(', ')}${keys.length > 3 ? ` and ${keys.length - 3} more` : ''}`
        : `${where || 'top level'}: ${issue.message}`;
    // The flag names are the keys of the file and of each image; inside a key's value (scripts[0]) they are not.
    const atKeys = where === '' || /^images\[\d+\]$/.test(where);
    throw new UsageError(
      `--config ${path}: ${what}`,
      atKeys ? `keys are build's long flag names: ${configIds.join(', ')}${where ? ', and an image\'s "name"' : ', "images"'}` : undefined,
    );
  }
  const { images, $schema: _schema, ...values } = parsed.data;
  if (!images) return { path, values };
  return { path, values, images: images.map(({ name, ...own }) => ({ name, values: own })) };
}

/**
 * One image's view of a definition with several: its own keys over the
 * shared ones, the manifest merged key by key (the image's win).
 */
export function imageDefinitionFile(file: DefinitionFile, name: string): DefinitionFile {
  const img = file.images?.find((i) => i.name === name);
  if (!img) throw new UsageError(`--config ${file.path} has no image ${JSON.stringify(name)}`);
  const values: Record<string, unknown> = { ...file.values, ...img.values };
  const top = file.values.manifest as Record<string, unknown> | undefined;
  const own = img.values.manifest as Record<string, unknown> | undefined;
  if (top && own) values.manifest = { ...top, ...own };
  return { path: file.path, values, image: name };
}

/** How messages name a key of the definition file: `"prefix" in --config buildimage.json`. */
export function fileLabel(key: string, file: DefinitionFile | string): string {
  return `"${key}" in --config ${typeof file === 'string' ? file : file.path}`;
}

export interface ResolveOptions {
  env?: NodeJS.ProcessEnv;
  /** The build definition file; read from `--config` when the command takes it and this is not given. */
  file?: DefinitionFile;
  /** Resolve only these (e.g. logging, before anything else can fail). */
  only?: readonly SettingId[];
  /** Leave these out (the caller resolves them itself). */
  skip?: readonly SettingId[];
}

/** Where a resolved value came from: the label it was parsed under, and the command line's value. */
interface Origin {
  label: string;
  line?: unknown;
}

async function resolveOne(id: SettingId, command: CommandId, flags: Record<string, unknown>, env: NodeJS.ProcessEnv, file?: DefinitionFile): Promise<{ value: unknown } & Origin> {
  const s = SETTINGS[id] as Setting;
  const given = flags[flagName(id)];
  const inFile = file?.values[id];
  const lab = label(id);
  const envName = envFor(id, command);
  const fromEnv = envName ? env[envName] : undefined;
  // From the environment: name the variable the user set, and the flag it stands for.
  const envLabel = `${envName} (${lab})`;
  if (s.type === 'boolean') {
    if (given !== undefined) return { value: given, label: lab, line: given };
    if (inFile !== undefined) return { value: inFile, label: fileLabel(id, file!) };
    return fromEnv !== undefined ? { value: parseSwitch(fromEnv, envName!), label: envLabel } : { value: false, label: lab };
  }
  // A repeatable flag (`multiple`) comes as several texts: each parsed into a list, the lists joined in order.
  const parse = (t: string | string[], l: string): unknown => (Array.isArray(t) ? t.flatMap((x) => s.parse(x, l) as unknown[]) : s.parse(t, l));
  const fromLine = typeof given === 'string' || Array.isArray(given) ? parse(given as string | string[], lab) : undefined;
  const fromFile = inFile === undefined ? undefined : parse((s.config as ConfigKey<unknown>).toText(inFile, dirname(resolve(file!.path))), fileLabel(id, file!));
  if (fromLine !== undefined && fromFile !== undefined && s.merge) return { value: s.merge(fromFile, fromLine), label: lab, line: fromLine };
  if (fromLine !== undefined) return { value: fromLine, label: lab, line: fromLine };
  if (fromFile !== undefined) return { value: fromFile, label: fileLabel(id, file!) };
  if (fromEnv) return { value: s.parse(fromEnv, envLabel), label: envLabel };
  const d = defaultFor(id, command) as StringSetting['default'];
  const text = typeof d === 'function' ? await d() : d;
  return { value: text === undefined ? undefined : s.parse(text, lab), label: lab };
}

/** One setting's value for `command`; throws a UsageError naming the flag (or the variable, or the file's key) when the text does not parse. */
export async function resolveSetting(
  id: SettingId,
  command: CommandId,
  flags: Record<string, unknown>,
  env: NodeJS.ProcessEnv,
  file?: DefinitionFile,
): Promise<unknown> {
  return (await resolveOne(id, command, flags, env, file)).value;
}

/** On a resolved object: the definition file it was resolved from (kept by a spread, left out of JSON). */
const FILE = Symbol('definition file');

/** The definition file `resolveSettings` read (or was given) for these settings. */
export function definitionFileOf(resolved: object): DefinitionFile | undefined {
  return (resolved as Record<symbol, DefinitionFile | undefined>)[FILE];
}

/** On a resolved object, one symbol key per setting: kept by a spread that merges two, left out of JSON and Object.keys. */
const ORIGIN = Object.fromEntries((Object.keys(SETTINGS) as SettingId[]).map((id) => [id, Symbol(`origin of ${id}`)])) as Record<SettingId, symbol>;

/**
 * How a message names where a resolved setting came from: `-P`,
 * `"prefix" in --config F`, `BUILDIMAGE_STATE (--state)`; and the command
 * line's own value (before a merge with the file's).
 */
export function originOf(resolved: object, id: SettingId): Origin {
  return ((resolved as Record<symbol, Origin | undefined>)[ORIGIN[id]]) ?? { label: label(id) };
}

export async function resolveSettings<C extends CommandId>(command: C, flags: Record<string, unknown>, o: ResolveOptions = {}): Promise<Resolved<C>> {
  const env = o.env ?? process.env;
  // Environment switches (X_INSECURE=...) are read one way; a bad one fails here, before any work.
  if (!o.only) checkEnvSwitches(command, env);
  const ids = settingsOf(command).filter((id) => (!o.only || o.only.includes(id)) && !o.skip?.includes(id));
  const out: Record<string | symbol, unknown> = {};
  let file = o.file;
  if (!file && ids.includes('config')) {
    // --config, else ./buildimage.json when there is one.
    const config = (await resolveSetting('config', command, flags, env)) as string | undefined;
    if (config !== undefined) {
      if (flags.config === undefined) log.info(`build definition: ${config} (no --config given; it is the default here)`);
      file = loadDefinitionFile(config);
    }
  }
  for (const id of ids) {
    const { value, ...origin } = id === 'config' ? { value: file?.path, label: label(id) } : await resolveOne(id, command, flags, env, file);
    out[id] = value;
    out[ORIGIN[id]] = origin;
  }
  if (file) out[FILE] = file;
  return out as Resolved<C>;
}

/** The value, or the one-line error every command gives for a missing required setting. */
export function required<T>(id: SettingId, value: T | undefined, configPath?: string): T {
  if (value !== undefined) return value;
  const s = SETTINGS[id] as Setting;
  const lab = label(id);
  const what = s.required?.what ?? id;
  const where = [s.config && configPath ? `"${id}" in --config ${configPath}` : undefined, s.env ? `set ${s.env}` : undefined].filter(Boolean);
  throw new UsageError(`missing ${lab} (${what})`, `pass ${lab} ${s.required?.example ?? 'VALUE'}${where.length ? `, or ${where.join(', or ')}` : ''}`);
}
