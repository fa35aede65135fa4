/**
 * A command's settings from where they can come, in this order: the command
 * line, the build definition file (`--config`), the environment, the
 * default. Each value passes through its setting's parser on the way, so
 * it arrives checked and typed.
 */
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { z } from 'zod';
import { checkEnvSwitches, parseSwitch } from '../core/env.js';
import { UsageError } from '../core/errors.js';
import {
  SETTINGS,
  defaultFor,
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

export async function loadDefinitionFile(path: string): Promise<DefinitionFile> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message;
    throw new UsageError(`cannot read --config ${path}: ${why}`, 'run `buildimage init` to write one');
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
  const parsed = DefinitionFileSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue.path.join('.') || 'top level';
    const what = issue.code === 'unrecognized_keys' ? `unknown key ${issue.keys.map((k) => JSON.stringify(k)).join(', ')}` : `${where}: ${issue.message}`;
    throw new UsageError(`--config ${path}: ${what}`, `keys are build's long flag names: ${configIds.join(', ')}`);
  }
  return { path, values: parsed.data };
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

/** One setting's value for `command`; throws a UsageError naming the flag when the text does not parse. */
export async function resolveSetting(
  id: SettingId,
  command: CommandId,
  flags: Record<string, unknown>,
  env: NodeJS.ProcessEnv,
  file?: DefinitionFile,
): Promise<unknown> {
  const s = SETTINGS[id] as Setting;
  const given = flags[flagName(id)];
  const inFile = file?.values[id];
  if (s.type === 'boolean') {
    const fromEnv = s.env ? env[s.env] : undefined;
    return given ?? inFile ?? (fromEnv !== undefined ? parseSwitch(fromEnv, s.env!) : false);
  }
  const lab = label(id);
  // A repeatable flag (`multiple`) comes as several texts: each parsed into a list, the lists joined in order.
  const parse = (t: string | string[]): unknown => (Array.isArray(t) ? t.flatMap((x) => s.parse(x, lab) as unknown[]) : s.parse(t, lab));
  const fromLine = typeof given === 'string' || Array.isArray(given) ? parse(given as string | string[]) : undefined;
  const fromFile = inFile === undefined ? undefined : parse((s.config as ConfigKey<unknown>).toText(inFile, dirname(resolve(file!.path))));
  if (fromLine !== undefined && fromFile !== undefined && s.merge) return s.merge(fromFile, fromLine);
  if (fromLine !== undefined) return fromLine;
  if (fromFile !== undefined) return fromFile;
  const fromEnv = s.env ? env[s.env] : undefined;
  // From the environment: name the variable the user set, and the flag it stands for.
  if (fromEnv) return s.parse(fromEnv, `${s.env} (${lab})`);
  const d = defaultFor(id, command) as StringSetting['default'];
  const text = typeof d === 'function' ? await d() : d;
  return text === undefined ? undefined : s.parse(text, lab);
}

export async function resolveSettings<C extends CommandId>(command: C, flags: Record<string, unknown>, o: ResolveOptions = {}): Promise<Resolved<C>> {
  const env = o.env ?? process.env;
  // Environment switches (X_INSECURE=...) are read one way; a bad one fails here, before any work.
  if (!o.only) checkEnvSwitches(command, env);
  const ids = settingsOf(command).filter((id) => (!o.only || o.only.includes(id)) && !o.skip?.includes(id));
  const config = flags.config;
  const file = o.file ?? (ids.includes('config') && typeof config === 'string' ? await loadDefinitionFile(config) : undefined);
  const out: Record<string, unknown> = {};
  for (const id of ids) out[id] = await resolveSetting(id, command, flags, env, file);
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
