/**
 * The README's demo build, once: the small service proto it copies and the
 * `buildimage build` arguments it runs (scripts/demo.ts, and the offline
 * install test, which runs them with an installed buildimage).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** A small Node service laid out as a Triton proto (opt/smartdc/...). */
export async function writeDemoProto(dir: string): Promise<void> {
  const svc = join(dir, 'opt/smartdc/hello');
  await mkdir(join(svc, 'lib'), { recursive: true });
  await mkdir(join(svc, 'node_modules/left-pad'), { recursive: true });
  await mkdir(join(dir, 'opt/smartdc/boot'), { recursive: true });
  await writeFile(join(svc, 'server.js'), "require('http').createServer((q, s) => s.end('hello\\n')).listen(8080);\n");
  await writeFile(join(svc, 'lib/util.js'), 'module.exports = {};\n');
  await writeFile(join(svc, 'node_modules/left-pad/index.js'), "module.exports = (s, n) => String(s).padStart(n);\n");
  await writeFile(join(svc, 'package.json'), JSON.stringify({ name: 'hello', version: '1.0.0' }, null, 2) + '\n');
  await writeFile(join(dir, 'opt/smartdc/boot/setup.sh'), '#!/bin/bash\necho setting up hello\n', { mode: 0o755 });
}

/** The demo image's name. */
export const DEMO_NAME = 'hello';

/** `buildimage build` as eng's Makefile runs it (-i -d -m -p -P -M -S -a -u), on the sample world. */
export function demoBuildArgs(o: { origin: string; proto: string; source: string; datasetRoot: string; outDir: string; version?: string }): string[] {
  const version = o.version ?? `1.0.0-${new Date().toISOString().replace(/[-:]/g, '').slice(0, 15)}Z`;
  return [
    'build',
    '-i', o.origin,
    '-d', o.proto,
    '-m', JSON.stringify({ name: DEMO_NAME, version, description: 'buildimage demo service', tags: { smartdc_service: true } }),
    '-p', 'greeter,webfetch,daemonkit',
    '-P', `${DEMO_NAME}-zfs`, '-M', '-S', 'https://github.com/TritonDataCenter/buildimage', '-a', '-u',
    '--source', o.source, '--dataset-root', o.datasetRoot, '--output-dir', o.outDir,
  ];
}
