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
// `COMMAND -h` is `help COMMAND` (the same text), so that an unknown COMMAND gets the one error line of `help`.
const end = args.indexOf('--');
const asked = (end < 0 ? args : args.slice(0, end)).some((a) => a === '--help' || a === '-h');
if (asked && args[0] !== undefined && !args[0].startsWith('-') && args[0] !== 'help') {
  args.splice(0, args.length, 'help', args[0]);
}
await execute({ dir: import.meta.url, args });
