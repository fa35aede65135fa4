#!/usr/bin/env node
// eng.git's Makefile runs `buildimage -i ... -d ... -m ...` with no command: that means `build`.
import { execute } from '@oclif/core';

const args = process.argv.slice(2);
const first = args[0];
if (first !== undefined && first.startsWith('-') && !['--help', '-h', '--version'].includes(first)) {
  args.unshift('build');
}
await execute({ dir: import.meta.url, args });
