/**
 * build/owned, checkedOutputs against a state file edited by hand: its
 * definition's prefix is only a string there, so the output names seal
 * would give can lead out of the output dir or below it. What publish
 * uploads must be directly in the output dir whatever the state says.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { StateError } from '../../src/core/errors.js';
import { checkedOutputs, outputPaths } from '../../src/build/owned.js';
import { newState } from '../../src/build/state.js';
import { sampleDefinition } from './state.test.js';

const ID = '0b5e4f7c-1111-4222-8333-944455556666';

describe('build/owned: outputs of a hand-edited state', () => {
  let top: string;
  beforeEach(() => (top = mkdtempSync(join(tmpdir(), 'bi-owned-'))));
  afterEach(() => rmSync(top, { recursive: true, force: true }));

  it('refuses outputs a prefix puts outside the output dir or below it, though seal would name them so', async () => {
    mkdirSync(join(top, 'sub'));
    for (const [prefix, where] of [
      ['../elsewhere', join(dirname(top), 'elsewhere')],
      ['sub/x', join(top, 'sub', 'x')],
    ]) {
      const s = newState({ ...sampleDefinition, outputDir: top, prefix }, ID);
      const want = outputPaths(s.definition);
      assert.ok(want.image.startsWith(where), want.image);
      s.outputs = { image: want.image, manifest: want.manifest };
      await assert.rejects(checkedOutputs(s), (err: Error) => {
        assert.ok(err instanceof StateError, String(err));
        assert.equal(
          err.message,
          `state file of build ${ID} names output (image) ${want.image}, which this build does not own (not directly in the output dir ${top}); nothing was done`,
        );
        return true;
      }, prefix);
    }
  });
});
