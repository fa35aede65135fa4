/** eng's branch/stamp/channel/layout rules, content types, and which Manta errors are retried. */
import assert from 'node:assert/strict';
import { UsageError } from '../../src/core/errors.js';
import { Backoff, DEFAULT_RETRY } from '../../src/core/retry.js';
import { encodeMantaPath, mantaRetryable, MantaError } from '../../src/manta/client.js';
import {
  channelFor,
  checkChannel,
  checkSegment,
  contentTypeFor,
  isDirtyStamp,
  isReleaseBuild,
  mantaBaseDir,
  pointerNames,
} from '../../src/publish/bits.js';

describe('publish rules (unit)', () => {
  it('channel: staging for release-YYYYMMDD builds, dev for master/mantav1, else experimental', () => {
    assert.equal(channelFor('release-20240101'), 'staging');
    assert.equal(channelFor('release-20240101', 'feature'), 'experimental');
    assert.equal(channelFor('release-2024'), 'experimental');
    assert.equal(channelFor('release-20240101-hotfix'), 'experimental');
    assert.equal(channelFor('master'), 'dev');
    assert.equal(channelFor('mantav1'), 'dev');
    assert.equal(channelFor('master', 'TRITON-123'), 'experimental');
    assert.equal(channelFor('feature', 'master'), 'dev');
    assert.equal(checkChannel('staging'), 'staging');
    assert.throws(() => checkChannel('Staging'), UsageError);
  });

  it('pointers: <try||branch>-latest, plus latest-release only for the same release rule as staging', () => {
    assert.deepEqual(pointerNames('master'), ['master-latest']);
    assert.deepEqual(pointerNames('master', 'feat'), ['feat-latest']);
    assert.deepEqual(pointerNames('release-20240101'), ['release-20240101-latest', 'latest-release']);
    assert.deepEqual(pointerNames('release-foo'), ['release-foo-latest']);
    assert.equal(isReleaseBuild('release-20240101', 'x'), false);
  });

  it('a try branch named release-YYYYMMDD is no release build: the rule reads the branch (-b), never the try branch (-B)', () => {
    for (const b of ['master', 'feature', 'release-20240101', 'release-foo']) {
      assert.equal(isReleaseBuild(b, 'release-20240101'), false, b);
      assert.deepEqual(pointerNames(b, 'release-20240101'), ['release-20240101-latest'], b);
    }
    assert.equal(channelFor('master', 'release-20240101'), 'experimental');
    assert.equal(channelFor('feature', 'release-20240101'), 'experimental');
    // The try branch's name still names its pointer, and master/mantav1 as a try branch still mean dev.
    assert.equal(channelFor('release-20240101', 'mantav1'), 'dev');
    assert.equal(isReleaseBuild('release-20240101'), true);
    assert.equal(isReleaseBuild('release-20240101', ''), true, 'an empty -B is no try branch');
  });

  it('-d: absolute is under /<user>, relative under /<user>/stor', () => {
    assert.equal(mantaBaseDir('Joyent_Dev', '/public/builds/imgapi'), '/Joyent_Dev/public/builds/imgapi');
    assert.equal(mantaBaseDir('Joyent_Dev', 'builds/imgapi/'), '/Joyent_Dev/stor/builds/imgapi');
    assert.equal(mantaBaseDir('u', '/stor//a/'), '/u/stor/a');
  });

  it('stamps and names must be single path segments; -dirty is detected', () => {
    assert.equal(checkSegment('stamp', '-t', 'master-20240101T000000Z-g0123abc'), 'master-20240101T000000Z-g0123abc');
    for (const bad of ['feature/x', '..', '', 'a b', '-x']) assert.throws(() => checkSegment('branch', '-b', bad), UsageError, bad);
    assert.ok(isDirtyStamp('master-20240101T000000Z-g0123abc-dirty'));
    assert.ok(!isDirtyStamp('master-20240101T000000Z-g0123abc'));
  });

  it('content types by file name', () => {
    assert.equal(contentTypeFor('x-zfs-1.zfs.gz'), 'application/gzip');
    assert.equal(contentTypeFor('x-pkg-1.tar.gz'), 'application/gzip');
    assert.equal(contentTypeFor('x.tgz'), 'application/gzip');
    assert.equal(contentTypeFor('md5sums.txt'), 'text/plain');
    assert.equal(contentTypeFor('build.log'), 'text/plain');
    assert.equal(contentTypeFor('x.imgmanifest'), 'application/json');
    assert.equal(contentTypeFor('npm-ls.json'), 'application/json');
    assert.equal(contentTypeFor('latest-build-stamp'), 'text/plain');
    assert.equal(contentTypeFor('x.zfs.xz'), 'application/x-xz');
    assert.equal(contentTypeFor('x.iso'), 'application/octet-stream');
  });

  it('Manta paths are encoded per segment', () => {
    assert.equal(encodeMantaPath('/u/stor/a b/c+d/é/'), '/u/stor/a%20b/c%2Bd/%C3%A9');
    assert.equal(encodeMantaPath('/u//stor/./x'), '/u/stor/x');
    assert.throws(() => encodeMantaPath('u/stor'));
  });

  it('retries only what Manta says is safe', () => {
    const e = (status: number | undefined, code: string, ra?: number): MantaError => new MantaError('PUT', '/p', code, status, undefined, ra);
    for (const [err, retry] of [
      [e(500, 'InternalError'), true],
      [e(503, 'InternalError', 30_000), true],
      [e(408, 'UploadTimeout'), true],
      [e(409, 'ConcurrentRequest'), true],
      [e(409, 'DirectoryLimitExceeded'), false],
      [e(400, 'ContentMD5Mismatch'), true],
      [e(400, 'InvalidUpdate'), false],
      [e(404, 'DirectoryDoesNotExist'), false],
      [e(401, 'InvalidAlgorithm'), false],
      [e(403, 'KeyDoesNotExist'), false],
      [e(412, 'PreconditionFailed'), false],
      [e(507, 'NotEnoughSpace'), false],
      [e(undefined, 'ECONNRESET'), true],
      [e(undefined, 'Stalled'), true],
      [e(undefined, 'CERT_HAS_EXPIRED'), false],
      [new Error('x'), false],
    ] as const) {
      assert.equal(mantaRetryable(err), retry, (err).message);
    }
    // Manta's Retry-After rides in the error and lengthens the wait, within the policy's cap.
    assert.equal(new Backoff(DEFAULT_RETRY).next(e(503, 'InternalError', 30_000)), 30_000);
    assert.equal(new Backoff(DEFAULT_RETRY).next(e(503, 'InternalError', 600_000)), 60_000);
    assert.equal(new Backoff(DEFAULT_RETRY).next(e(503, 'InternalError', 0)), 1000);
  });
});
