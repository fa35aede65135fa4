/**
 * Writes the README's settings table from src/settings/table.ts (between
 * its markers); a unit test fails when the two differ. Run: npm run docs
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { README_TABLE_END, README_TABLE_START, settingsMarkdown } from '../src/cli/settings-doc.js';
import { packageRoot } from '../src/core/package.js';

/** The README with its settings table made anew. */
export function readmeWithSettings(readme: string): string {
  const start = readme.indexOf(README_TABLE_START);
  const end = readme.indexOf(README_TABLE_END);
  if (start < 0 || end < start) throw new Error('README.md has no settings table markers');
  return readme.slice(0, start) + settingsMarkdown() + readme.slice(end + README_TABLE_END.length);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const path = join(packageRoot(), 'README.md');
  writeFileSync(path, readmeWithSettings(readFileSync(path, 'utf8')));
  console.log('wrote the settings table in README.md');
}
