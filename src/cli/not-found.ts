/**
 * An unknown command (`buildimage asemble`): oclif's `command_not_found`
 * hook. It answers as every command fails, through BaseCommand: one error
 * line with the closest command ("did you mean"), or with --json one error
 * object, and the usage exit code. It never runs the guess.
 */
import type { Hook, Interfaces } from '@oclif/core';
import { UsageError } from '../core/errors.js';
import { BaseCommand } from './base.js';

/** Edit distance, a swap of two neighbours counting as one edit (`biuld` → `build`). */
function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}

/** The command `typed` most likely meant: the only one it begins, else the nearest within a few edits. */
export function closestCommand(typed: string, ids: readonly string[]): string | undefined {
  const t = typed.toLowerCase();
  const prefixed = ids.filter((id) => t.length >= 2 && id.startsWith(t));
  if (prefixed.length === 1) return prefixed[0];
  const [best] = ids.map((id) => ({ id, d: distance(t, id) })).sort((x, y) => x.d - y.d || x.id.localeCompare(y.id));
  return best && best.d <= Math.max(2, Math.floor(t.length / 3)) ? best.id : undefined;
}

/** The one error for a command that does not exist (here, and in `help NAME`). */
export function unknownCommand(typed: string, config: Interfaces.Config): UsageError {
  const ids = config.commands.filter((c) => !c.hidden).map((c) => c.id);
  const guess = closestCommand(typed, ids);
  return new UsageError(`unknown command ${JSON.stringify(typed.slice(0, 60))}${guess ? `; did you mean ${guess}?` : ''}`, `${config.bin} help lists the commands`);
}

const hook: Hook<'command_not_found'> = async function (opts) {
  const err = unknownCommand(opts.id, opts.config);
  // A command of its own, so the error goes out as every command's does (--json included).
  class NotFound extends BaseCommand {
    static override id = opts.id;
    run(): Promise<void> {
      return Promise.reject(err);
    }
  }
  await NotFound.run(opts.argv ?? [], opts.config);
};

export default hook;
