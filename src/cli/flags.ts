/**
 * oclif flags made from the settings table. They only carry the text: no
 * defaults and no environment here, because the value comes from the
 * command line, else the definition file, else the environment, else the
 * default (settings/resolve.ts); help shows all of that.
 */
import { Flags, type Interfaces } from '@oclif/core';
import { SETTINGS, defaultFor, flagName, helpFor, settingsOf, type CommandId, type Setting, type SettingId } from '../settings/table.js';

/** The help line: what it does, then default, environment and definition-file key. */
export function describe(id: SettingId, command: CommandId): string {
  const s = SETTINGS[id] as Setting;
  const d = defaultFor(id, command);
  const shown = s.type === 'string' ? (s.shownDefault ?? (typeof d === 'string' && d !== '' ? d : undefined)) : undefined;
  const notes = [
    shown !== undefined ? `default: ${shown}` : undefined,
    s.env ? `env: ${s.env}` : undefined,
    s.config && settingsOf(command).includes('config') ? 'also in --config' : undefined,
  ].filter(Boolean);
  return `${helpFor(id, command)}${notes.length ? ` [${notes.join('; ')}]` : ''}`;
}

/** The command line only carries text (or a switch): parsing is the setting's own. */
type RawFlags = Interfaces.FlagInput<Record<string, string | boolean | undefined>>;

function flagFor(id: SettingId, command: CommandId): RawFlags[string] {
  const s = SETTINGS[id] as Setting;
  const common = { description: describe(id, command), ...(s.char ? { char: s.char as 'a' } : {}), ...(s.aliases ? { aliases: [...s.aliases] } : {}) };
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
