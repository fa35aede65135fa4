// @ts-check
/**
 * Writes oclif.manifest.json (part of `npm run build`). Without it oclif
 * imports every command module at startup to learn their flags, so a
 * `build` loaded publish's HTTP client too: ~15 MB of RSS and ~0.1 s for
 * nothing. With it, a run imports only the command it runs. The file is
 * derived from dist/commands, like dist/ itself, and is not committed.
 *
 * Plain JavaScript run by node, so the package build (tsconfig.build.json:
 * src/ and commands/ only) needs nothing from scripts/ compiled.
 */
import { Plugin } from '@oclif/core';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const plugin = new Plugin({ root, isRoot: true, type: 'core', ignoreManifest: true, errorOnManifestCreate: true });
await plugin.load();
writeFileSync(join(root, 'oclif.manifest.json'), JSON.stringify(plugin.manifest, null, 2) + '\n');
console.log(`oclif.manifest.json: ${Object.keys(plugin.manifest.commands).join(', ')}`);
