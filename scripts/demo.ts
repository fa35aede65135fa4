/**
 * The README's end-to-end demo: a file-backed pool (unless
 * BUILDIMAGE_DATASET_ROOT names a dataset), the sample package repository
 * on 127.0.0.1, the two-level sample base images, a small service proto,
 * then a real `buildimage build` run, as Jenkins would run it.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Zfs } from '../src/host/zfs.js';
import { DEMO_NAME, demoBuildArgs, writeDemoProto } from '../testbed/demo.js';
import { makeSampleImages, SAMPLE_ORIGIN_UUID } from '../testbed/images.js';
import { SAMPLE_PACKAGES, writeRepository } from '../testbed/packages.js';
import { ensureFilePool } from '../testbed/pool.js';
import { startRepoServer } from '../testbed/repo-server.js';

const TOP = process.env.BUILDIMAGE_DEMO_DIR ?? '/var/tmp/buildimage-demo';
const PORT = Number(process.env.BUILDIMAGE_DEMO_PORT ?? 8991);
const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

async function main(): Promise<number> {
  const zfs = new Zfs();
  await mkdir(TOP, { recursive: true });
  let datasetRoot = process.env.BUILDIMAGE_DATASET_ROOT;
  if (!datasetRoot) {
    await ensureFilePool('bidemo', join(TOP, 'bidemo.img'), 8);
    datasetRoot = 'bidemo/images';
  }
  if (!(await zfs.exists(datasetRoot))) await zfs.create(datasetRoot);

  const repoDir = join(TOP, 'repo');
  writeRepository(repoDir, SAMPLE_PACKAGES);
  const server = await startRepoServer({ dir: repoDir, port: PORT });
  try {
    const sampleDir = join(TOP, 'sample');
    const marker = join(sampleDir, '.repo-url');
    if (!existsSync(marker) || (await readFile(marker, 'utf8')) !== server.url) {
      console.log(`demo: making the sample base images (packages from ${server.url})`);
      await makeSampleImages({ zfs, datasetRoot, outDir: sampleDir, repoUrl: server.url, tmpDir: TOP });
      await writeFile(marker, server.url);
    }
    const proto = join(TOP, 'proto');
    await writeDemoProto(proto);
    const out = join(TOP, 'out');
    await mkdir(out, { recursive: true });
    const version = `1.0.0-${new Date().toISOString().replace(/[-:]/g, '').slice(0, 15)}Z`;
    const args = demoBuildArgs({ origin: SAMPLE_ORIGIN_UUID, proto, source: sampleDir, datasetRoot, outDir: out, version });
    console.log(`demo: buildimage ${args.map((a) => (/^[\w./:=,@-]+$/.test(a) ? a : `'${a}'`)).join(' ')}`);
    const code = await new Promise<number>((resolve) => {
      const child = spawn(join(REPO_ROOT, 'bin/buildimage'), args, { stdio: 'inherit' });
      child.on('exit', (c, sig) => resolve(c ?? (sig ? 128 : 1)));
    });
    if (code === 0) {
      // The Node the build ran under (bin/buildimage runs `node` from PATH): .ci/run checks it per runtime.
      const info = JSON.parse(await readFile(join(out, `${DEMO_NAME}-zfs-${version}.build-info.json`), 'utf8')) as { tool: { node: string } };
      console.log(`demo: done under node ${info.tool.node}; the image and its manifest are in ${out}`);
    }
    return code;
  } finally {
    await server.close();
  }
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    console.error(`demo: error: ${err.message}`);
    process.exit(1);
  },
);
