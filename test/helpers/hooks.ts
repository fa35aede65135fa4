/**
 * Mocha root hooks, once at the end: tear the shared integration world
 * down, remove every bait laid, then fail the run if anything this process
 * named after its pid is still under the test directory (a suite that
 * leaks its temp files shows).
 */
import { readdir } from 'node:fs/promises';
import { removeBaits } from './hostile.js';
import { teardownWorld, TEST_TOP } from './world.js';

export const mochaHooks = {
  async afterAll(this: unknown) {
    await teardownWorld();
    await removeBaits();
    const mine = new RegExp(`-${process.pid}(-|$)`);
    const left = (await readdir(TEST_TOP).catch(() => [] as string[])).filter((n) => mine.test(n));
    if (left.length) throw new Error(`left behind in ${TEST_TOP}: ${left.join(', ')}`);
  },
};
