/** Checks that a build left nothing behind: datasets, mounts, build dirs, temp outputs. */
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { Layout } from '../../src/core/layout.js';
import { parseMountTable, platform } from '../../src/host/platform.js';
import { Zfs } from '../../src/host/zfs.js';
import { isUuid } from '../../src/image/manifest/types.js';

/** Mount points at or below `dir`, as the kernel lists them (the platform's table, read as host/platform reads it). */
export async function mountsUnder(dir: string): Promise<string[]> {
  const table = await readFile(platform().mountTable.path, 'utf8');
  return parseMountTable(table).filter((m) => m === dir || m.startsWith(dir + '/'));
}

export interface LeakCheck {
  datasetRoot: string;
  workDir: string;
  outputDir?: string;
  /** Datasets allowed to stay besides whole imported images (e.g. images received by hand). */
  images?: string[];
  /** Shown on failure (e.g. the build's stderr). */
  context?: string;
}

export async function assertNoLeaks(c: LeakCheck): Promise<void> {
  const zfs = new Zfs();
  const children = await zfs.listChildren(c.datasetRoot);
  const stray: string[] = [];
  for (const ds of children) {
    const name = ds.slice(c.datasetRoot.length + 1);
    const isImageName = isUuid(name);
    // Whole imported images are a cache and may stay (other tests import their own).
    const wholeImage = isImageName && (await zfs.owner(ds)) === 'image' && (await zfs.exists(`${ds}@final`));
    const listed = isImageName && !!c.images?.includes(name) && (await zfs.owner(ds)) !== 'analog';
    if (!wholeImage && !listed) stray.push(ds);
  }
  assert.deepEqual(stray, [], `no stray datasets (analogs, -partial)${c.context ? `\n${c.context}` : ''}`);
  assert.deepEqual(await mountsUnder(c.workDir), [], 'no mounts left under the work dir');
  const builds = await readdir(new Layout(c.datasetRoot, c.workDir).buildsDir).catch(() => []);
  assert.deepEqual(builds, [], 'no build dirs left');
  if (c.outputDir) {
    const temps = (await readdir(c.outputDir).catch(() => [])).filter((n) => n.includes('.partial-') || n.includes('.tmp-'));
    assert.deepEqual(temps, [], 'no temp outputs');
  }
}
