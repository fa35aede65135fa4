/** eng's branch/stamp/channel/layout rules, content types, and which Manta errors are retried. */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
  readLatestStamp,
  uploadBranch,
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

/** The channel and branch rules read whole: every anchor and alternative matters. */
describe('channel and branch rules (bits-upload.sh)', () => {
  const refused = (fn: () => unknown): string => {
    try {
      fn();
    } catch (err) {
      assert.ok(err instanceof UsageError, String(err));
      return err.message;
    }
    assert.fail('expected a UsageError');
  };

  it('a release build is exactly release- and eight digits, on no try branch', () => {
    for (const b of ['release-20240101', 'release-99999999']) assert.equal(isReleaseBuild(b), true, b);
    for (const b of ['xrelease-20240101', 'release-20240101x', 'release-2024010', 'release-202401011', 'release-', 'Release-20240101', 'release-2024O101', 'master']) {
      assert.equal(isReleaseBuild(b), false, b);
      assert.equal(channelFor(b) === 'staging', false, b);
      assert.deepEqual(pointerNames(b), [`${b}-latest`], b);
    }
    // An empty try branch (TRY_BRANCH= in Jenkins) is no try branch.
    assert.equal(isReleaseBuild('release-20240101', ''), true);
    assert.equal(channelFor('release-20240101', ''), 'staging');
    assert.deepEqual(pointerNames('release-20240101', ''), ['release-20240101-latest', 'latest-release']);
  });

  it('a try branch named like a release branch is still a try build: experimental, its own pointer only', () => {
    assert.equal(isReleaseBuild('master', 'release-20240101'), false);
    assert.equal(channelFor('master', 'release-20240101'), 'experimental');
    assert.deepEqual(pointerNames('master', 'release-20240101'), ['release-20240101-latest']);
    assert.deepEqual(pointerNames('release-20240101', 'feature'), ['feature-latest']);
  });

  it('the try branch wins for the upload branch unless it is empty', () => {
    assert.equal(uploadBranch('master'), 'master');
    assert.equal(uploadBranch('master', ''), 'master');
    assert.equal(uploadBranch('master', 'TRITON-1'), 'TRITON-1');
    assert.equal(channelFor('mantav1', ''), 'dev');
    assert.equal(channelFor('feature', 'mantav1'), 'dev');
    assert.equal(channelFor('masterx'), 'experimental');
  });

  it('channel names: lower-case letter first, then lower-case letters, digits, _ and -', () => {
    for (const c of ['dev', 'staging', 'a', 'release_2024-x9']) assert.equal(checkChannel(c), c);
    for (const c of ['', '9dev', '_dev', '-dev', 'dev!', 'dev staging', 'Dev', 'deV', 'x\n']) {
      assert.equal(refused(() => checkChannel(c)), `channel ${JSON.stringify(c)} is not a valid IMGAPI channel name`, c);
    }
  });

  it('path segments: letter or digit first, then letters, digits, . _ + -', () => {
    for (const v of ['a', '9', 'master-20240101T000000Z-g0123abc', 'a.b_c+d-e', 'A']) assert.equal(checkSegment('stamp', '-t', v), v);
    for (const v of ['.x', '_x', '+x', 'a/b', 'a b', 'a\nb', 'x:y', 'é']) {
      assert.equal(refused(() => checkSegment('branch', '-b', v)), `branch ${JSON.stringify(v)} is not usable in a path (letters, digits, . _ + - only)`, v);
    }
  });

  it('each refusal says what to check', async () => {
    const hint = (fn: () => unknown) => {
      try {
        fn();
      } catch (err) {
        return (err as UsageError).hint;
      }
      assert.fail('expected a UsageError');
    };
    assert.equal(hint(() => checkSegment('branch', '-b', 'a/b')), 'check -b');
    assert.equal(hint(() => checkChannel('A')), 'lowercase letters, digits, _ and -');
    const bits = mkdtempSync(join(tmpdir(), 'bi-stamp-'));
    try {
      mkdirSync(join(bits, 'svc'));
      writeFileSync(join(bits, 'svc', 'latest-build-stamp'), 'a/b');
      await assert.rejects(readLatestStamp(bits, 'svc'), (e: UsageError) => e.hint === 'pass -t');
      rmSync(join(bits, 'svc', 'latest-build-stamp'));
      mkdirSync(join(bits, 'svc', 'latest-build-stamp'));
      await assert.rejects(readLatestStamp(bits, 'svc'), (e: UsageError) => e.hint === 'pass -t' && e.message.endsWith('is not a regular file: not reading a stamp from it'));
    } finally {
      rmSync(bits, { recursive: true, force: true });
    }
  });

  it('-dirty only at the end of a stamp', () => {
    assert.equal(isDirtyStamp('x-dirty'), true);
    assert.equal(isDirtyStamp('dirty-x'), false);
    assert.equal(isDirtyStamp('x-dirtyx'), false);
  });

  it('-d keeps a deeper relative path and drops only trailing slashes', () => {
    assert.equal(mantaBaseDir('u', 'a/b'), '/u/stor/a/b');
    assert.equal(mantaBaseDir('u', '/public/'), '/u/public');
    assert.equal(mantaBaseDir('u', 'a//b///'), '/u/stor/a/b');
  });

  it('content types: every kind bits-upload.sh names, by suffix only', () => {
    const want: Array<[string, string]> = [
      ['a.gz', 'application/gzip'],
      ['a.tgz', 'application/gzip'],
      ['a.gzx', 'application/octet-stream'],
      ['a.bz2', 'application/x-bzip2'],
      ['a.bz2.x', 'application/octet-stream'],
      ['a.xz', 'application/x-xz'],
      ['a.xz.json', 'application/json'],
      ['a.log.json', 'application/json'],
      ['a.txt', 'text/plain'],
      ['a.log', 'text/plain'],
      ['x.pkgaudit', 'text/plain'],
      ['latest-build-stamp', 'text/plain'],
      ['build-environment', 'text/plain'],
      ['SHA256SUMS', 'text/plain'],
      ['x-build-environment', 'application/octet-stream'],
      ['report.html', 'text/html'],
      ['report.htmlx', 'application/octet-stream'],
      ['x.cdx.json', 'application/vnd.cyclonedx+json'],
      ['x.spdx.json', 'application/spdx+json'],
      ['x.json', 'application/json'],
      ['x.manifest', 'application/json'],
      ['x.imgmanifest', 'application/json'],
      ['x.json.bak', 'application/octet-stream'],
      ['junit.xml', 'application/xml'],
      ['x.xmlx', 'application/octet-stream'],
      ['gz', 'application/octet-stream'],
    ];
    for (const [name, type] of want) assert.equal(contentTypeFor(name), type, name);
  });

  describe('readLatestStamp (<bits>/<name>/latest-build-stamp)', () => {
    let bits: string;
    beforeEach(() => {
      bits = mkdtempSync(join(tmpdir(), 'bi-stamp-'));
      mkdirSync(join(bits, 'svc'));
    });
    afterEach(() => rmSync(bits, { recursive: true, force: true }));
    const stampFile = () => join(bits, 'svc', 'latest-build-stamp');

    it('reads the stamp, without its newline', async () => {
      writeFileSync(stampFile(), 'master-20240101T000000Z-g0123abc\n');
      assert.equal(await readLatestStamp(bits, 'svc'), 'master-20240101T000000Z-g0123abc');
    });

    it('no file, or only blanks in it: no stamp', async () => {
      assert.equal(await readLatestStamp(bits, 'svc'), undefined);
      writeFileSync(stampFile(), ' \n');
      assert.equal(await readLatestStamp(bits, 'svc'), undefined);
    });

    it('a stamp that is not one path segment is refused without showing the content', async () => {
      writeFileSync(stampFile(), 'secret/../x\n');
      await assert.rejects(readLatestStamp(bits, 'svc'), (err: Error) => {
        assert.ok(err instanceof UsageError);
        assert.equal(err.message, `${stampFile()} does not hold a stamp (letters, digits, . _ + - only); its content is not shown`);
        return true;
      });
    });

    it('a link or a file larger than 1 KiB is not read', async () => {
      writeFileSync(join(bits, 'key'), 'master-1\n');
      symlinkSync(join(bits, 'key'), stampFile());
      await assert.rejects(readLatestStamp(bits, 'svc'), (err: Error) => err instanceof UsageError && err.message === `${stampFile()} is a symlink: not reading a stamp from it`);
      rmSync(stampFile());
      writeFileSync(stampFile(), 'x'.repeat(1025));
      await assert.rejects(readLatestStamp(bits, 'svc'), (err: Error) => err instanceof UsageError && err.message === `${stampFile()} is larger than 1024 bytes: not reading a stamp from it`);
      writeFileSync(stampFile(), 'x'.repeat(1024));
      assert.equal(await readLatestStamp(bits, 'svc'), 'x'.repeat(1024));
    });

    it('another read error names the path and the code', async () => {
      rmSync(join(bits, 'svc'), { recursive: true });
      writeFileSync(join(bits, 'svc'), 'a file where the name directory goes');
      await assert.rejects(readLatestStamp(bits, 'svc'), (err: Error) => err instanceof UsageError && err.message === `cannot read ${stampFile()}: ENOTDIR`);
    });
  });
});
