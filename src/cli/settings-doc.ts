/**
 * The README's settings table, made from the settings table itself
 * (scripts/render-settings.ts writes it; a unit test fails when the README
 * and the table differ).
 */
import { ENV_SWITCHES, type EnvSwitch } from '../core/env.js';
import { COMMANDS, SETTINGS, defaultFor, envFor, flagName, type CommandId, type Setting, type SettingId } from '../settings/table.js';

export const README_TABLE_START = '<!-- settings: made from src/settings/table.ts by scripts/render-settings.ts (npm run docs); do not edit by hand -->';
export const README_TABLE_END = '<!-- end of settings -->';

const code = (s: string): string => `\`${s.replace(/\|/g, '\\|')}\``;
const cell = (s: string): string => s.replace(/\|/g, '\\|').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** The commands, shortened where a setting is taken by every command or every building one. */
function commandsText(commands: readonly CommandId[]): string {
  if (COMMANDS.every((c) => commands.includes(c))) return 'all';
  return commands.join(', ');
}

function defaultText(id: SettingId): string {
  const s = SETTINGS[id] as Setting;
  if (s.type === 'boolean') return '';
  if (s.shownDefault) return cell(s.shownDefault);
  if (typeof s.default !== 'string' || s.default === '') return '';
  const none = s.commands.filter((c) => defaultFor(id, c) === undefined);
  return `${code(s.default)}${none.length ? ` (${none.join(', ')}: none)` : ''}`;
}

/** The variable, and the commands that take the setting but not from it. */
function envText(id: SettingId): string {
  const s = SETTINGS[id] as Setting;
  if (!s.env) return '';
  const none = s.commands.filter((c) => envFor(id, c) === undefined);
  return `${code(s.env)}${none.length ? ` (${none.join(', ')}: not read)` : ''}${s.type === 'boolean' ? ' (a switch, below)' : ''}`;
}

/**
 * Every switch in the environment, in one table: core/env's ENV_SWITCHES
 * and the boolean settings' variables, all read by core/env's one rule.
 */
export function envSwitchRows(): Array<{ name: string; commands: string; help: string }> {
  const fromTable = (Object.keys(SETTINGS) as SettingId[])
    .filter((id) => (SETTINGS[id] as Setting).type === 'boolean' && (SETTINGS[id] as Setting).env)
    .map((id) => {
      const s = SETTINGS[id] as Setting;
      return { name: s.env!, commands: commandsText(s.commands.filter((c) => envFor(id, c))), help: `\`--${flagName(id)}\`: ${s.help}` };
    });
  const own = (ENV_SWITCHES as readonly EnvSwitch[]).map((e) => ({ name: e.name, commands: e.commands === 'all' ? 'all' : e.commands.join(', '), help: e.help }));
  return [...own, ...fromTable];
}

export function settingsMarkdown(): string {
  const rows = (Object.keys(SETTINGS) as SettingId[]).map((id) => {
    const s = SETTINGS[id] as Setting;
    const flag = [s.char ? code(`-${s.char}`) : undefined, code(`--${flagName(id)}`)].filter(Boolean).join(', ');
    return `| ${flag} | ${commandsText(s.commands)} | ${envText(id)} | ${defaultText(id)} | ${s.config ? code(id) : ''} | ${cell(s.help)} |`;
  });
  const switches = envSwitchRows().map((e) => `| ${code(e.name)} | ${e.commands} | ${cell(e.help)} |`);
  return [
    README_TABLE_START,
    '| flag | commands | env | default | in `--config` | meaning |',
    '|---|---|---|---|---|---|',
    ...rows,
    '',
    'Switches in the environment are on with `1`, `true`, `yes` or `on` and off with `0`, `false`, `no`, `off`, empty or unset',
    '(any case); any other value is an error naming the variable, before the command does anything. Every switch is read',
    'this one way (src/core/env.ts), a flag\'s variable too:',
    '',
    '| env | commands | when on |',
    '|---|---|---|',
    ...switches,
    README_TABLE_END,
  ].join('\n');
}
