/**
 * oclif flags made from the settings table. Each declares its environment
 * variable (`env`) and how help shows its default (`defaultHelp`), so that
 * help prints them the one oclif way, `[default: 30m, env: X]`. They carry
 * only the text: the value comes from the command line, else the
 * definition file, else the environment, else the default
 * (settings/resolve.ts), so oclif itself must not read the environment or
 * fill in a default (`forParsing`).
 */
import { Flags, type Interfaces } from '@oclif/core';
import { SETTINGS, defaultFor, envFor, flagName, helpFor, settingsOf, type CommandId, type Setting, type SettingId } from '../settings/table.js';

/** The default as help shows it: as the user would write it (30m, not 1800000). */
export function shownDefault(id: SettingId, command: CommandId): string | undefined {
  const s = SETTINGS[id] as Setting;
  const d = defaultFor(id, command);
  if (s.type !== 'string') return undefined;
  // A computed default says what it computes; a per-command "none" shows none.
  if (s.per?.[command] && 'default' in s.per[command] && d === undefined) return undefined;
  return s.shownDefault ?? (typeof d === 'string' && d !== '' ? d : undefined);
}

/** The help text: what it does, and whether buildimage.json may hold it (default and env are oclif's own metadata). */
export function describe(id: SettingId, command: CommandId): string {
  const s = SETTINGS[id] as Setting;
  return `${helpFor(id, command)}${s.config && settingsOf(command).includes('config') ? ' [also in --config]' : ''}`;
}

/** The command line only carries text (or a switch): parsing is the setting's own. */
type RawFlags = Interfaces.FlagInput<Record<string, string | boolean | undefined>>;

function flagFor(id: SettingId, command: CommandId): RawFlags[string] {
  const s = SETTINGS[id] as Setting;
  const env = envFor(id, command);
  const shown = shownDefault(id, command);
  const common = {
    description: describe(id, command),
    ...(s.char ? { char: s.char as 'a' } : {}),
    ...(s.aliases ? { aliases: [...s.aliases] } : {}),
    ...(env ? { env } : {}),
    ...(shown !== undefined ? { defaultHelp: () => Promise.resolve(shown) } : {}),
  };
  if (s.type === 'boolean') return Flags.boolean(common);
  const opts = { ...common, ...(s.options ? { options: [...s.options] } : {}) };
  // Repeatable (--add A --add B): oclif gives the texts as a list.
  if (s.multiple) return Flags.string({ ...opts, multiple: true }) as unknown as RawFlags[string];
  return Flags.string(opts) as RawFlags[string];
}

/** Every flag `command` takes, keyed by long flag name. */
export function flagsFor(command: CommandId): RawFlags {
  return Object.fromEntries(settingsOf(command).map((id) => [flagName(id), flagFor(id, command)]));
}

/**
 * The flags as oclif's parser is to see them: without `env`, so that it
 * reads no variable itself (its reading of a boolean, `isTruthy`, is not
 * core/env's, and a variable must not win over buildimage.json).
 */
export function forParsing<F extends Interfaces.FlagInput>(flags: F | undefined): F | undefined {
  if (!flags) return flags;
  return Object.fromEntries(Object.entries(flags).map(([name, f]) => [name, { ...f, env: undefined }])) as unknown as F;
}
