/** Mocha root hooks: tear the shared integration world down once at the end. */
import { teardownWorld } from './world.js';

export const mochaHooks = {
  async afterAll(this: unknown) {
    await teardownWorld();
  },
};
