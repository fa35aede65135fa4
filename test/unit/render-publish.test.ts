/** How a publish reads on the console: one line, no bracket groups run together. */
import assert from 'node:assert/strict';
import { renderPlan, renderPublished } from '../../src/cli/render-publish.js';
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

  it('-L (a local directory) says copy where Manta says upload: plan lines, the plan summary, the result', () => {
    const step = { op: 'upload', path: '/out/s/demo/x.zfs.gz', rel: 'demo/x.zfs.gz', size: 2_000_000, md5: 'm' };
    const r = (kind: 'manta' | 'local') => ({ ...result(false), dryRun: true, bytes: 2_000_000, store: { kind, description: kind }, steps: [step] }) as unknown as PublishResult;
    assert.match(renderPlan(r('local')), /\n {2}copy {6}\/out\/s\/demo\/x\.zfs\.gz \(2\.0 MB\)\ndry run: 3 to copy \(2\.0 MB\)/);
    assert.match(renderPlan(r('manta')), /\n {2}upload {4}\/out\/s\/demo\/x\.zfs\.gz \(2\.0 MB\)\ndry run: 3 to upload \(2\.0 MB\)/);
    assert.match(renderPublished(r('local')), /: 3 copied \(2\.0 MB\), 0 already there;/);
    assert.match(renderPublished(r('manta')), /: 3 uploaded \(2\.0 MB\), 0 already there;/);
  });
});
