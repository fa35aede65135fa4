/** How a publish reads on the console: one line, no bracket groups run together. */
import assert from 'node:assert/strict';
import { renderPublished } from '../../src/cli/render-publish.js';
import type { PublishResult } from '../../src/publish/publish.js';

describe('publish output', () => {
  const result = (unchanged: boolean) =>
    ({
      name: 'demo',
      stamp: 'master-20240501T120000Z-g0123abc',
      destination: '/acct/public/builds/demo/master-20240501T120000Z-g0123abc',
      uploaded: unchanged ? 0 : 3,
      skipped: unchanged ? 3 : 0,
      bytes: 0,
      seconds: 1.5,
      store: { kind: 'manta', description: 'Manta' },
      steps: [{ op: 'pointer', path: '/acct/public/builds/demo/master-latest', target: '/acct/public/builds/demo/master-20240501T120000Z-g0123abc', unchanged }],
    }) as unknown as PublishResult;

  it('says which pointers moved and which were already right, without doubled brackets', () => {
    const rerun = renderPublished(result(true));
    assert.match(rerun, /; master-latest unchanged \(1\.5 s\)$/);
    assert.doesNotMatch(rerun, /\) \(/, 'no two bracket groups in a row');
    assert.match(renderPublished(result(false)), /; master-latest moved \(1\.5 s\)$/);
  });
});
