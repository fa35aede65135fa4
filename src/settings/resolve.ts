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

/** A build definition file, read and checked against the table's keys. */
export interface DefinitionFile {
  path: string;
  values: Record<string, unknown>;
}

const configIds = (Object.keys(SETTINGS) as SettingId[]).filter((id) => (SETTINGS[id] as Setting).config);

/** The keys buildimage.json may have: every setting with a `config` entry, none required. */
export const DefinitionFileSchema = z
  .object(Object.fromEntries(configIds.map((id) => [id, (SETTINGS[id] as Setting).config!.schema])))
  .partial()
  .strict();

/** The most a definition file may hold. */
const MAX_DEFINITION_BYTES = 1024 * 1024;

export function loadDefinitionFile(path: string): DefinitionFile {
  const what = `--config ${path}`;
  const text = readInputFile(path, MAX_DEFINITION_BYTES, what, 'run `buildimage init` to write one');
  let json = parseInputJson(text, what);
  // Keys starting with "//" are comments.
  if (json && typeof json === 'object' && !Array.isArray(json)) {
    json = Object.fromEntries(Object.entries(json).filter(([k]) => !k.startsWith('//')));
  }
  const parsed = DefinitionFileSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue.path.join('.') || 'top level';
    const what = issue.code === 'unrecognized_keys' ? `unknown key ${issue.keys.map((k) => JSON.stringify(k)).join(', ')}` : `${where}: ${issue.message}`;
    throw new UsageError(`--config ${path}: ${what}`, `keys are build's long flag names: ${configIds.join(', ')}`);
  }
  return { path, values: parsed.data };
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
