/**
 * The README's settings table, made from the settings table itself
 * (scripts/render-settings.ts writes it; a unit test fails when the README
 * and the table differ).
 */
import { ENV_SWITCHES, type EnvSwitch } from '../core/env.js';
import { COMMANDS, SETTINGS, defaultFor, flagName, type CommandId, type Setting, type SettingId } from '../settings/table.js';

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

export function settingsMarkdown(): string {
  const rows = (Object.keys(SETTINGS) as SettingId[]).map((id) => {
    const s = SETTINGS[id] as Setting;
    const flag = [s.char ? code(`-${s.char}`) : undefined, code(`--${flagName(id)}`)].filter(Boolean).join(', ');
    return `| ${flag} | ${commandsText(s.commands)} | ${s.env ? code(s.env) : ''} | ${defaultText(id)} | ${s.config ? code(id) : ''} | ${cell(s.help)} |`;
  });
  const switches = (ENV_SWITCHES as readonly EnvSwitch[]).map(
    (e) => `| ${code(e.name)} | ${e.commands === 'all' ? 'all' : e.commands.join(', ')} | ${cell(e.help)} |`,
  );
  return [
    README_TABLE_START,
    '| flag | commands | env | default | in `--config` | meaning |',
    '|---|---|---|---|---|---|',
    ...rows,
    '',
    'Switches in the environment are on with `1`, `true`, `yes` or `on` and off with `0`, `false`, `no`, `off`, empty or unset',
    '(any case); any other value is an error naming the variable, before the command does anything:',
    '',
    '| env | commands | when on |',
    '|---|---|---|',
    ...switches,
    README_TABLE_END,
  ].join('\n');
}
