/** The package lock's rules (pkgsrc/lock) and where the lockfile lives (settings/lockfile). */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import {
  checkLockFits,
  goneFromRepository,
  installSteps,
  lockDifferences,
  lockText,
  parseLock,
  patternBases,
  recordedPath,
  resolvedLock,
  type PackageLock,
} from '../../src/pkgsrc/lock.js';
import { parseSummaryDepends } from '../../src/pkgsrc/tools.js';
import { lockfilePath, readLockfile, writeLockfile } from '../../src/settings/lockfile.js';

const lock = (packages: PackageLock['packages'], o: Partial<PackageLock> = {}): PackageLock => ({
  lockfileVersion: 1,
  upgrade: false,
  requested: [],
  packages,
  ...o,
});

describe('package lock', () => {
  describe('resolvedLock', () => {
    it('locks what pkgadd added or changed and each -p package, dependencies named, automatic marked, sorted', () => {
      const l = resolvedLock({
        before: ['greeter-1.0', 'libgreet-1.0', 'gsed-4.8', 'sudo-1.9.15p5'],
        after: ['greeter-1.2', 'libgreet-1.1', 'gsed-4.8', 'sudo-1.9.15p5', 'daemonkit-2.3'],
        user: ['greeter-1.2', 'gsed-4.8', 'sudo-1.9.15p5', 'daemonkit-2.3'],
        requested: ['greeter', 'daemonkit', 'gsed'],
        depends: new Map([['greeter-1.2', ['libgreet>=1.1']], ['daemonkit-2.3', ['sudo-[0-9]*']]]),
        repository: 'https://user:secret@pkgsrc.example.org/2024Q4/All;/var/pkgs',
        origin: '5417ab20-3156-4bd6-8d2f-43d5e0a1c002',
        upgrade: false,
      });
      assert.equal(
        lockText(l),
        `${JSON.stringify(
          {
            lockfileVersion: 1,
            repository: 'https://pkgsrc.example.org/2024Q4/All;/var/pkgs',
            origin: '5417ab20-3156-4bd6-8d2f-43d5e0a1c002',
            upgrade: false,
            requested: ['daemonkit', 'greeter', 'gsed'],
            packages: [
              // sudo is a dependency in the base, unchanged: not locked, not a locked dependency.
              { name: 'daemonkit', version: '2.3' },
              { name: 'greeter', version: '1.2', depends: ['libgreet'] },
              // gsed was asked for and already there: locked at the version the image has.
              { name: 'gsed', version: '4.8' },
              { name: 'libgreet', version: '1.1', automatic: true },
            ],
          },
          null,
          2,
        )}\n`,
      );
    });

    it('fails when a -p package is not installed after pkg_add', () => {
      assert.throws(
        () => resolvedLock({ before: [], after: ['greeter-1.1'], user: [], requested: ['webfetch'], depends: new Map(), upgrade: false }),
        /^BuildError: package webfetch \(-p\) is not installed after pkg_add$/,
      );
    });

    it('takes `name-version` in -p as the exact package, not a prefix', () => {
      const l = resolvedLock({ before: [], after: ['webfetch-7.64.0', 'web-1.0'], user: ['webfetch-7.64.0', 'web-1.0'], requested: ['webfetch-7.64.0', 'web'], depends: new Map(), upgrade: false });
      assert.deepEqual(l.packages.map((p) => `${p.name}-${p.version}`).sort(), ['web-1.0', 'webfetch-7.64.0']);
    });
  });

  describe('installSteps', () => {
    it('puts every package after the locked packages it depends on, -A runs together', () => {
      const l = lock([
        { name: 'app', version: '1', depends: ['libb'] },
        { name: 'liba', version: '1', automatic: true },
        { name: 'libb', version: '2', automatic: true, depends: ['liba'] },
        { name: 'tool', version: '3' },
      ]);
      assert.deepEqual(installSteps(l), [
        { automatic: true, pkgnames: ['liba-1'] },
        { automatic: false, pkgnames: ['tool-3'] },
        { automatic: true, pkgnames: ['libb-2'] },
        { automatic: false, pkgnames: ['app-1'] },
      ]);
    });

    it('still installs every package of a dependency cycle', () => {
      const l = lock([
        { name: 'a', version: '1', depends: ['b'] },
        { name: 'b', version: '1', depends: ['a'] },
      ]);
      assert.deepEqual(installSteps(l), [{ automatic: false, pkgnames: ['a-1', 'b-1'] }]);
    });
  });

  it('patternBases: dewey, glob, exact and alternates', () => {
    assert.deepEqual(patternBases('libgreet>=1.0'), ['libgreet']);
    assert.deepEqual(patternBases('nodejs>=18<19'), ['nodejs']);
    assert.deepEqual(patternBases('libgreet-[0-9]*'), ['libgreet']);
    assert.deepEqual(patternBases('py311-foo-1.2'), ['py311-foo']);
    assert.deepEqual(patternBases('{mysql,mariadb}-client>=5'), ['mysql-client', 'mariadb-client']);
    assert.deepEqual(patternBases('plain'), ['plain']);
  });

  it('parseSummaryDepends reads pkg_info -Xa blocks', () => {
    const text = 'PKGNAME=greeter-1.1\nDEPENDS=libgreet>=1.0\nCOMMENT=x\n\nPKGNAME=libgreet-1.0\nCOMMENT=y\n\n';
    assert.deepEqual([...parseSummaryDepends(text)], [['greeter-1.1', ['libgreet>=1.0']], ['libgreet-1.0', []]]);
  });

  it('goneFromRepository names only locked packages pkg_add could not find, in lock order', () => {
    const l = lock([{ name: 'daemonkit', version: '2.3' }, { name: 'greeter', version: '1.1' }]);
    const stderr = "pkg_add: no pkg found for 'greeter-1.1', sorry.\npkg_add: Missing dependency libgreet>=1.0\npkg_add: no pkg found for 'evil; rm -rf /', sorry.\npkg_add: no pkg found for 'daemonkit-2.3', sorry.\n";
    assert.deepEqual(goneFromRepository(l, stderr), ['daemonkit-2.3', 'greeter-1.1']);
    assert.deepEqual(goneFromRepository(l, ''), []);
  });

  it('lockDifferences: another version, a missing one, an extra one', () => {
    const l = lock([{ name: 'greeter', version: '1.1' }, { name: 'daemonkit', version: '2.3' }]);
    assert.deepEqual(lockDifferences(l, ['libgreet-1.0'], ['greeter-1.1', 'daemonkit-2.3', 'libgreet-1.0']), []);
    assert.deepEqual(lockDifferences(l, ['libgreet-1.0'], ['greeter-1.2', 'libgreet-1.1']), ['greeter-1.2 instead of greeter-1.1', 'daemonkit-2.3 missing', 'libgreet-1.1 not locked']);
  });

  it('checkLockFits names what -p added or dropped, and a different -u', () => {
    const l = lock([{ name: 'greeter', version: '1.1' }], { requested: ['greeter'] });
    checkLockFits(l, { packages: ['greeter'], upgrade: false }, 'lockfile L');
    assert.throws(() => checkLockFits(l, { packages: ['greeter', 'webfetch'], upgrade: false }, 'lockfile L'), /^UsageError: the package list \(-p\) has webfetch, which lockfile L does not lock$/);
    assert.throws(() => checkLockFits(l, { packages: [], upgrade: false }, 'lockfile L'), /^UsageError: lockfile L locks greeter, which the package list \(-p\) no longer has$/);
    assert.throws(() => checkLockFits(l, { packages: ['greeter'], upgrade: true }, 'lockfile L'), /was made without -u \(pkgin full-upgrade\) and this build is with it/);
  });

  it('parseLock drops credentials from the repository and reads what lockText writes', () => {
    const l = parseLock({ ...lock([{ name: 'libsigc++', version: '2.10.8' }], { requested: ['libsigc++'] }), repository: 'http://u:p@h/All?token=t' }, 'L');
    assert.equal(l.repository, 'http://h/All?token=…');
    assert.deepEqual(parseLock(JSON.parse(lockText(l)), 'L'), l);
    assert.equal(recordedPath('https://a:b@x/All;https://y/All'), 'https://x/All;https://y/All');
  });

  describe('settings/lockfile', () => {
    it('lives beside the definition: buildimage.lock.json, NAME.lock.json, else the current directory; --lock-file wins', () => {
      assert.equal(lockfilePath(undefined, '/c/buildimage.json'), '/c/buildimage.lock.json');
      assert.equal(lockfilePath(undefined, '/c/images/web.json'), '/c/images/web.lock.json');
      assert.equal(lockfilePath(undefined, 'sub/buildimage.json'), resolve('sub/buildimage.lock.json'));
      assert.equal(lockfilePath(undefined, undefined), resolve('buildimage.lock.json'));
      assert.equal(lockfilePath('/x/my.lock', '/c/buildimage.json'), '/x/my.lock');
    });

    it('writes the sorted text and reads it back against the package list', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'bi-lock-'));
      try {
        const path = join(dir, 'buildimage.lock.json');
        const l = lock([{ name: 'greeter', version: '1.1' }, { name: 'daemonkit', version: '2.3' }], { requested: ['greeter', 'daemonkit'] });
        await writeLockfile(path, l);
        assert.equal(readFileSync(path, 'utf8'), lockText(l));
        assert.deepEqual(readLockfile(path, { packages: ['daemonkit', 'greeter'], upgrade: false }).packages.map((p) => p.name), ['daemonkit', 'greeter']);
        await assert.rejects(writeLockfile(dir, l), /^UsageError: cannot write lockfile .*: it is a directory$/);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
});
