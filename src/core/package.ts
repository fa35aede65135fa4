/**
 * The installed package: its root directory (package.json, templates/) and
 * version. Found by walking up from this file, so it holds from src/ under
 * ts-node-like runs and from dist/ alike, however deep the build puts it.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The JSON Schema of buildimage.json, at the package's top (npm run docs writes it; init's `$schema` names it). */
export const DEFINITION_SCHEMA_FILE = 'buildimage.schema.json';

let root: string | undefined;
let version: string | undefined;

export function packageRoot(): string {
  if (root) return root;
  for (let dir = dirname(fileURLToPath(import.meta.url)); dir !== dirname(dir); dir = dirname(dir)) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'buildimage') return (root = dir);
  }
  throw new Error('cannot find buildimage\'s package.json above ' + fileURLToPath(import.meta.url));
}

/** This tool's version, from its package.json. */
export function toolVersion(): string {
  version ??= (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;
  return version;
}

/** The User-Agent every HTTP client sends. */
export function userAgent(): string {
  return `buildimage/${toolVersion()} (node/${process.versions.node})`;
}
