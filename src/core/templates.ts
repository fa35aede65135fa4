/**
 * The files under templates/ (shipped with the package): motd, build
 * definitions, Jenkinsfiles, the eng Makefile fragment. Placeholders are
 * `@@NAME@@` (Groovy and shell own `${}`); a line holding only a
 * placeholder that is empty is dropped, so optional lines disappear.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from './package.js';

/** The package's templates/ directory. */
export function templatesDir(): string {
  return join(packageRoot(), 'templates');
}

export function readTemplate(rel: string): string {
  return readFileSync(join(templatesDir(), rel), 'utf8');
}

const PLACEHOLDER = /@@([A-Z0-9_]+)@@/g;

export function fill(text: string, values: Record<string, string | undefined>): string {
  const missing = new Set<string>();
  const out = text
    .split('\n')
    .filter((line) => {
      const only = /^\s*@@([A-Z0-9_]+)@@\s*$/.exec(line);
      return !only || values[only[1]] !== '';
    })
    .map((line) =>
      line.replace(PLACEHOLDER, (_, key: string) => {
        const v = values[key];
        if (v === undefined) missing.add(key);
        return v ?? '';
      }),
    )
    .join('\n');
  if (missing.size) throw new Error(`template values missing: ${[...missing].join(', ')}`);
  return out;
}
