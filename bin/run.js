#!/usr/bin/env node
// eng.git's Makefile runs `buildimage -i ... -d ... -m ...` with no command: that means `build`.
import { readFileSync } from 'node:fs';
import { execute } from '@oclif/core';

const args = process.argv.slice(2);
const first = args[0];
// The bare version, as scripts compare it (`[ "$(buildimage --version)" = 0.1.0 ]`); -V too (-v is --verbose).
if (first === '--version' || first === '-V') {
  process.stdout.write(`${JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version}\n`);
  process.exit(0);
}
if (first !== undefined && first.startsWith('-') && !['--help', '-h'].includes(first)) {
  args.unshift('build');
}
await execute({ dir: import.meta.url, args });
