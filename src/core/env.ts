/**
 * Switches in the environment (`X_INSECURE=1`), read one way everywhere:
 * 1, true, yes, on = on; 0, false, no, off, empty or unset = off (any
 * case); anything else is a one-line error naming the variable, so a
 * typo or `=0` never turns TLS verification off. The README lists them
 * (made from ENV_SWITCHES by npm run docs).
 */
import { UsageError } from './errors.js';

export interface EnvSwitch {
  readonly name: string;
  /** The commands that read it ('all': every command). */
  readonly commands: readonly string[] | 'all';
  readonly help: string;
}

/** Every switch buildimage reads from the environment. */
export const ENV_SWITCHES = [
  { name: 'BUILDIMAGE_INSECURE', commands: ['build', 'prepare', 'doctor'], help: 'no TLS verification of an https --source (IMGAPI)' },
  { name: 'IMGADM_INSECURE', commands: ['build', 'prepare', 'doctor'], help: "imgadm's name for BUILDIMAGE_INSECURE" },
  { name: 'MANTA_TLS_INSECURE', commands: ['publish', 'doctor'], help: 'no TLS verification of Manta (node-manta)' },
  { name: 'UPDATES_IMGADM_INSECURE', commands: ['publish', 'doctor'], help: 'no TLS verification of the updates IMGAPI (updates-imgadm)' },
  { name: 'BITS_UPLOAD_ALLOW_DIRTY', commands: ['publish'], help: 'publish a `-dirty` stamp (bits-upload.sh)' },
  { name: 'ENGBLD_BITS_UPLOAD_ALLOW_DIRTY', commands: ['publish'], help: "eng's name for BITS_UPLOAD_ALLOW_DIRTY" },
  { name: 'BUILDIMAGE_NO_LIVE', commands: 'all', help: 'no redrawn progress line on a TTY' },
] as const satisfies readonly EnvSwitch[];

export type EnvSwitchName = (typeof ENV_SWITCHES)[number]['name'];

const ON = new Set(['1', 'true', 'yes', 'on']);
const OFF = new Set(['', '0', 'false', 'no', 'off']);

/** Every switch `command` reads, parsed now: a bad value fails the command before it does anything. */
export function checkEnvSwitches(command: string, env: NodeJS.ProcessEnv = process.env): void {
  for (const s of ENV_SWITCHES as readonly EnvSwitch[]) {
    if (s.commands === 'all' || s.commands.includes(command)) envSwitch(s.name as EnvSwitchName, env);
  }
}

/** A switch's text as a boolean; `label` names where it came from (the variable, or a flag). */
export function parseSwitch(value: string, label: string): boolean {
  const v = value.trim().toLowerCase();
  if (ON.has(v)) return true;
  if (OFF.has(v)) return false;
  throw new UsageError(`${label} must be 1, true, yes or on (or 0, false, no, off, empty), got ${JSON.stringify(value.slice(0, 40))}`);
}

/** The switch `name` in `env`: unset = off. */
export function envSwitch(name: EnvSwitchName, env: NodeJS.ProcessEnv = process.env): boolean {
  const v = env[name];
  return v === undefined ? false : parseSwitch(v, name);
}
