/**
 * imgapi/import-state `decide()` for the states the table in
 * imgapi-admin.test.ts leaves out (issue 18 item 2): a `failed` image is
 * never resumed, whatever it holds (our file, no file, another channel,
 * disabled), and the order of the checks — name and version, then the
 * file, then the state — decides which reason is given.
 */
import assert from 'node:assert/strict';
import type { ImageManifest } from '../../src/image/manifest/types.js';
import { decide, planSteps, type Want } from '../../src/imgapi/import-state.js';

describe('import decisions: failed and mixed states (unit)', () => {
  const w: Want = { uuid: 'u', name: 'demo', version: '1.0', sha1: 'a'.repeat(40), size: 10, channel: 'dev' };
  const file = { sha1: w.sha1, size: 10, compression: 'gzip' as const };
  const img = (o: Partial<ImageManifest>): ImageManifest => ({ v: 2, uuid: 'u', name: 'demo', version: '1.0', state: 'active', channels: ['dev'], files: [file], ...o });
  const failed = { kind: 'conflict', reason: 'image u is on the server in state "failed"' };

  for (const [what, image] of [
    ['with our file, in our channel', img({ state: 'failed' })],
    ['with our file, in another channel', img({ state: 'failed', channels: ['experimental'] })],
    ['with our file, on a server without channels', img({ state: 'failed', channels: undefined })],
    ['with no file', img({ state: 'failed', files: [] })],
    ['with no file, in another channel', img({ state: 'failed', files: [], channels: ['staging'] })],
    ['with our file, disabled', img({ state: 'failed', disabled: true })],
  ] as const) {
    it(`a failed image ${what} is a conflict, not resumed`, () => {
      assert.deepEqual(decide(image, w), failed);
      assert.deepEqual(planSteps(image, w), { steps: [], end: failed });
    });
  }

  it('the uuid taken by another image is named before its state or file', () => {
    assert.deepEqual(decide(img({ state: 'failed', name: 'other', files: [{ ...file, sha1: 'b'.repeat(40) }] }), w), {
      kind: 'conflict',
      reason: 'image u on the server is other 1.0 (failed), not demo 1.0: the uuid is taken',
    });
    assert.equal((decide(img({ version: '2.0' }), w) as { reason: string }).reason, 'image u on the server is demo 2.0 (active), not demo 1.0: the uuid is taken');
  });

  it('another file is named before the failed state', () => {
    assert.deepEqual(decide(img({ state: 'failed', files: [{ ...file, size: 11 }] }), w), {
      kind: 'conflict',
      reason: `image u is on the server (failed) with a different file: sha1 ${w.sha1}, 11 bytes; ours is sha1 ${w.sha1}, 10 bytes`,
    });
  });

  it('an active image without a file is a conflict; with no state it counts as active', () => {
    assert.deepEqual(decide(img({ files: [] }), w), { kind: 'conflict', reason: 'image u is active on the server but has no file' });
    assert.deepEqual(decide(img({ state: undefined }), w), { kind: 'done', state: 'active' });
    assert.deepEqual(decide(img({ state: undefined, files: undefined }), w), { kind: 'conflict', reason: 'image u is active on the server but has no file' });
  });

  it('an unactivated image in another channel is added to ours before its file and activation', () => {
    assert.deepEqual(decide(img({ state: 'unactivated', channels: ['experimental'] }), w), { kind: 'step', step: 'channel-add', from: 'experimental' });
    assert.deepEqual(
      planSteps(img({ state: 'unactivated', channels: ['experimental'] }), w).steps.map((s) => s.step),
      ['channel-add', 'activate'],
    );
    // An empty channel list is a server without channels.
    assert.deepEqual(decide(img({ channels: [] }), w), { kind: 'done', state: 'active' });
  });
});
