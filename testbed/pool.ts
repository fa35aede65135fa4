/**
 * A file-backed ZFS pool for the demo and the tests, on hosts with no pool
 * of their own. zfs-fuse re-imports the pools in its cache at start; one
 * whose file is gone shows FAULTED and blocks the name until destroyed.
 */
import { mkdir, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { run } from '../src/host/exec.js';
import { log } from '../src/core/log.js';

export async function poolHealth(name: string): Promise<string | undefined> {
  const r = await run('zpool', ['list', '-H', '-o', 'health', name], { okExitCodes: [0, 1] });
  return r.exitCode === 0 ? r.stdout.trim() : undefined;
}

/** Creates pool `name` on `file` (sparse, `sizeGiB`) unless it is already there and healthy. */
export async function ensureFilePool(name: string, file: string, sizeGiB = 4): Promise<void> {
  const health = await poolHealth(name);
  if (health === 'ONLINE') return;
  if (health) {
    log.info(`pool ${name} is ${health}; destroying it to reuse the name`);
    await run('zpool', ['destroy', '-f', name]);
  }
  await mkdir(dirname(file), { recursive: true });
  if (!(await stat(file).catch(() => undefined))) await writeFile(file, '');
  await truncate(file, sizeGiB * 1024 ** 3);
  await run('zpool', ['create', '-f', '-m', `/${name}`, name, file]);
}

export async function destroyFilePool(name: string, file?: string): Promise<void> {
  if (await poolHealth(name)) {
    let lastErr: unknown;
    for (let i = 0; i < 10; i++) {
      try {
        await run('zpool', ['destroy', '-f', name], { uninterruptible: true });
        lastErr = undefined;
        break;
      } catch (err) {
        lastErr = err;
        await new Promise((r) => setTimeout(r, 500 * (i + 1)));
      }
    }
    if (lastErr) throw lastErr as Error;
  }
  if (file) await rm(file, { force: true });
}
