/**
 * Bait for the hostile-input suite: a directory that stands for "the host"
 * (files outside anything a build owns), which hostile inputs point at
 * through links, paths and names. After the attack it must be exactly as it
 * was: nothing written, deleted, chmodded or replaced.
 */
import assert from 'node:assert/strict';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describeTree, diffTrees, type TreeEntry } from './tree.js';
import { TEST_TOP } from './world.js';

export interface Bait {
  /** The bait directory ("the host"). */
  dir: string;
  /** A file standing for a secret (an SSH key): must never be read into an output or uploaded. */
  secret: string;
  /** Its content, to search outputs and uploads for. */
  secretText: string;
  /** Fails if anything under `dir` changed since the bait was laid. */
  assertUntouched(context?: string): Promise<void>;
  remove(): Promise<void>;
}

let count = 0;
/** Every bait this process laid: the root hook removes them at the end, whatever a suite's own after hook did. */
const laid = new Set<string>();

export async function removeBaits(): Promise<void> {
  for (const dir of laid) await rm(dir, { recursive: true, force: true });
  laid.clear();
}

export async function layBait(name = 'bait'): Promise<Bait> {
  const dir = join(TEST_TOP, `${name}-${process.pid}-${++count}`);
  laid.add(dir);
  await rm(dir, { recursive: true, force: true });
  await mkdir(join(dir, 'etc'), { recursive: true });
  await mkdir(join(dir, 'usr/bin'), { recursive: true });
  const secretText = `-----BEGIN OPENSSH PRIVATE KEY----- bait ${process.pid} ${count}\n`;
  const secret = join(dir, 'id_rsa');
  await writeFile(secret, secretText, { mode: 0o600 });
  await writeFile(join(dir, 'etc/passwd'), 'root:x:0:0::/root:/bin/sh\n');
  await writeFile(join(dir, 'usr/bin/tool'), '#!/bin/sh\nexit 0\n', { mode: 0o755 });
  const before: Map<string, TreeEntry> = await describeTree(dir);
  return {
    dir,
    secret,
    secretText,
    async assertUntouched(context?: string) {
      const diffs = diffTrees(before, await describeTree(dir));
      assert.deepEqual(diffs, [], `the host (bait at ${dir}) was changed${context ? `\n${context}` : ''}`);
    },
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}
