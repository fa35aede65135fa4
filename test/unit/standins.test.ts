/**
 * The pkgsrc stand-ins, run as real processes against a zone root in a temp
 * directory (PKGSRC_STANDIN_ROOT instead of a chroot) and a sample
 * repository served on 127.0.0.1.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import {
  createPackage,
  SAMPLE_NEWER_PACKAGES,
  SAMPLE_PACKAGES,
  SAMPLE_VULNERABILITIES,
  vulnerabilitiesFile,
  writeRepository,
  type PackageSpec,
} from '../../testbed/packages.js';
import { startRepoServer, type RepoServer } from '../../testbed/repo-server.js';
import { STANDIN_LIB_PATH, STANDIN_PATHS, standinsDir, STANDIN_TOOLS, writeOriginLayer, writeZoneDataset, type StandinTool } from '../../testbed/zoneroot.js';

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

function tool(root: string, name: StandinTool, args: string[], env: Record<string, string> = {}): Promise<Result> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [join(root, STANDIN_PATHS[name]), ...args],
      {
        cwd: root,
        env: { PATH: `${dirname(process.execPath)}:/usr/bin:/bin`, PKGSRC_STANDIN_ROOT: root, ...env },
      },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

const pkgdb = (root: string): string => join(root, 'opt/local/pkg');
const installed = (root: string): string[] =>
  existsSync(pkgdb(root)) ? readdirSync(pkgdb(root)).filter((n) => n.includes('-') && statSync(join(pkgdb(root), n)).isDirectory()).sort() : [];
const mode = (p: string): number => statSync(p).mode & 0o7777;

describe('pkgsrc stand-ins', function () {
  this.timeout(30_000);
  let tmp: string;
  let server: RepoServer;
  let requests: string[];
  let baseTemplate: string;
  let emptyTemplate: string;
  let n = 0;

  /** A fresh copy of a prepared zone dataset; returns its root/. */
  function zone(template: string): string {
    const dest = join(tmp, `zone${++n}`);
    cpSync(template, dest, { recursive: true, verbatimSymlinks: true });
    return join(dest, 'root');
  }

  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'bi-standins-'));
    requests = [];
    const repo = join(tmp, 'repo');
    writeRepository(repo, SAMPLE_PACKAGES);
    writeFileSync(join(repo, 'bad-vulns.gz'), gzipSync(vulnerabilitiesFile(SAMPLE_VULNERABILITIES, { badChecksum: true })));
    server = await startRepoServer({ dir: repo, onRequest: (_m, p) => requests.push(p) });
    baseTemplate = join(tmp, 'base');
    emptyTemplate = join(tmp, 'empty');
    mkdirSync(baseTemplate);
    mkdirSync(emptyTemplate);
    await writeZoneDataset(baseTemplate, { repoUrl: server.url });
    await writeZoneDataset(emptyTemplate, { repoUrl: server.url, preinstalled: [] });
  });

  after(async () => {
    await server?.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  describe('zone dataset', () => {
    it('lays out root/ like a SmartOS zone image, with config/ beside it', () => {
      const root = join(baseTemplate, 'root');
      assert.deepEqual(readdirSync(baseTemplate).sort(), ['config', 'root']);
      assert.deepEqual(readdirSync(join(baseTemplate, 'config')).sort(), ['metadata.json', 'routes.json', 'tags.json']);
      assert.equal(readlinkSync(join(root, 'bin')), './usr/bin');
      for (const d of ['dev', 'lib', 'proc', 'sbin', 'usr']) assert.deepEqual(readdirSync(join(root, d)), [], `${d} is an empty mountpoint`);
      assert.equal(mode(join(root, 'tmp')), 0o1777);
      assert.equal(mode(join(root, 'var/tmp')), 0o1777);
      assert.ok(existsSync(join(root, 'var/log')));
      assert.ok(!existsSync(join(root, 'var/db/pkgin')));
      assert.equal(readFileSync(join(root, 'etc/pkgsrc_version'), 'utf8'), 'release: 2024Q4\narchitecture: x86_64\n');
      assert.match(readFileSync(join(root, 'etc/product'), 'utf8'), /^Name: SmartOS Instance\nImage: minimal-64-lts 24.4.1\n/);
      for (const t of Object.values(STANDIN_PATHS)) assert.equal(mode(join(root, t)), 0o755, t);
      // The launchers share one library folder, installed whole under /opt/local/lib.
      const libDir = join(root, STANDIN_LIB_PATH);
      assert.equal(mode(libDir), 0o755);
      assert.deepEqual(readdirSync(libDir).sort(), readdirSync(join(standinsDir(), 'lib')).filter((f) => f.endsWith('.cjs')).sort());
      assert.ok(readdirSync(libDir).includes('index.cjs'));
      for (const f of readdirSync(libDir)) assert.equal(mode(join(libDir, f)), 0o644, f);
      for (const d of ['opt/local/sbin', 'opt/local/bin']) assert.deepEqual(readdirSync(join(root, d)).filter((f) => f.endsWith('.cjs')), [], d);
      const conf = readFileSync(join(root, 'opt/local/etc/pkg_install.conf'), 'utf8');
      assert.match(conf, new RegExp(`^PKG_PATH=${server.url}/All$`, 'm'));
      assert.match(conf, new RegExp(`^PKGVULNURL=${server.url}/pkg-vulnerabilities.gz$`, 'm'));
      assert.match(readFileSync(join(root, 'opt/local/etc/pkgin/repositories.conf'), 'utf8'), new RegExp(`^${server.url}/All$`, 'm'));
      assert.deepEqual(installed(root), ['greeter-1.0', 'libgreet-1.0']);
      assert.ok(existsSync(join(pkgdb(root), 'pkgdb.byfile.db')));
      assert.deepEqual(installed(join(emptyTemplate, 'root')), []);
    });

    it('runs the launchers from the source tree too (library in lib/ beside them)', async () => {
      for (const t of STANDIN_TOOLS) {
        const r = await new Promise<Result>((resolve) =>
          execFile(process.execPath, [join(standinsDir(), t), t === 'pkgin' ? '-v' : '-V'], (err, stdout, stderr) =>
            resolve({ code: err ? 1 : 0, stdout, stderr }),
          ),
        );
        assert.deepEqual(r, { code: 0, stdout: t === 'pkgin' ? 'pkgin 23.8.1 (pkgsrc stand-in)\n' : '20211115\n', stderr: '' }, t);
      }
    });

    it('builds the origin layer on a copy of the base', async () => {
      const root = zone(baseTemplate);
      const { installed: now } = await writeOriginLayer(root);
      assert.deepEqual(now, ['greeter-1.0', 'gsed-4.8', 'libgreet-1.0', 'sudo-1.9.15p5']);
      assert.match(readFileSync(join(root, 'etc/product'), 'utf8'), /^Image: triton-origin-x86_64-24\.4\.1 /m);
      assert.match(readFileSync(join(root, 'opt/local/etc/triton-origin'), 'utf8'), /^name=triton-origin-x86_64-24\.4\.1$/m);
      assert.match(readFileSync(join(root, 'etc/motd'), 'utf8'), /^ = {2}T R I T O N {2}=\n\n/);
      assert.equal(mode(join(root, 'opt/local/bin/sudo')), 0o4755);
      // Two packages are behind the repository now.
      const up = await tool(root, 'pkgin', ['-y', 'full-upgrade']);
      assert.equal(up.code, 0, up.stderr);
      assert.match(up.stdout, /^2 packages to upgrade:\n {2}greeter-1\.1 gsed-4\.9\n/m);
      assert.deepEqual(installed(root), ['greeter-1.1', 'gsed-4.9', 'libgreet-1.0', 'sudo-1.9.15p5']);
    });
  });

  describe('pkg_add', () => {
    it('installs a package and its dependency from PKG_PATH over HTTP', async () => {
      const root = zone(emptyTemplate);
      const r = await tool(root, 'pkg_add', ['-U', 'greeter']);
      assert.deepEqual(r, { code: 0, stdout: '', stderr: '' });
      assert.deepEqual(installed(root), ['greeter-1.1', 'libgreet-1.0']);
      const local = join(root, 'opt/local');
      assert.equal(readFileSync(join(local, 'bin/greeter'), 'utf8'), '#!/bin/sh\necho "hello, world"\n');
      assert.equal(mode(join(local, 'bin/greeter')), 0o755);
      assert.equal(mode(join(local, 'man/man1/greeter.1')), 0o644);
      assert.equal(readlinkSync(join(local, 'lib/libgreet.so')), 'libgreet.so.1');
      const g = join(pkgdb(root), 'greeter-1.1');
      const modes = Object.fromEntries(readdirSync(g).map((f) => [f, mode(join(g, f))]));
      assert.deepEqual(modes, { '+BUILD_INFO': 0o444, '+COMMENT': 0o444, '+CONTENTS': 0o644, '+DESC': 0o444, '+SIZE_ALL': 0o444, '+SIZE_PKG': 0o444 });
      const lib = join(pkgdb(root), 'libgreet-1.0');
      assert.equal(readFileSync(join(lib, '+REQUIRED_BY'), 'utf8'), 'greeter-1.1\n');
      assert.equal(mode(join(lib, '+REQUIRED_BY')), 0o644);
      assert.equal(readFileSync(join(lib, '+INSTALLED_INFO'), 'utf8'), 'automatic=yes\n');
      const user = await tool(root, 'pkg_info', ['-u']);
      assert.equal(user.stdout, 'greeter-1.1         Prints a friendly greeting\n');
      assert.ok(requests.includes('/All/'), 'listed the repository index');
      assert.ok(requests.includes('/All/greeter-1.1.tgz'));
    });

    it('upgrades with -U, reinstalls identical versions and keeps the dependency records', async () => {
      const root = zone(baseTemplate);
      assert.equal((await tool(root, 'pkg_add', ['greeter-1.1'])).stderr, 'pkg_add: A different version of greeter-1.1 is already installed: greeter-1.0\npkg_add: 1 package addition failed\n');
      const up = await tool(root, 'pkg_add', ['-U', 'greeter']);
      assert.deepEqual(up, { code: 0, stdout: '', stderr: '' });
      assert.deepEqual(installed(root), ['greeter-1.1', 'libgreet-1.0']);
      assert.ok(existsSync(join(root, 'opt/local/share/doc/greeter/NEWS')));
      const lib = join(pkgdb(root), 'libgreet-1.0');
      assert.equal(readFileSync(join(lib, '+REQUIRED_BY'), 'utf8'), 'greeter-1.1\n');
      // Same version again: replaced in place, +REQUIRED_BY and +INSTALLED_INFO carried over.
      const same = await tool(root, 'pkg_add', ['-U', 'libgreet-1.0']);
      assert.deepEqual(same, { code: 0, stdout: '', stderr: '' });
      assert.equal(readFileSync(join(lib, '+REQUIRED_BY'), 'utf8'), 'greeter-1.1\n');
      assert.equal(readFileSync(join(lib, '+INSTALLED_INFO'), 'utf8'), 'automatic=yes\n');
      assert.ok(existsSync(join(root, 'opt/local/lib/libgreet.so.1')));
      const again = await tool(root, 'pkg_add', ['greeter']);
      assert.equal(again.code, 0);
      assert.equal(again.stderr, "pkg_add: package `greeter-1.1' already recorded as installed\n");
    });

    it('fails with the real messages when a package cannot be found', async () => {
      const root = zone(emptyTemplate);
      const one = await tool(root, 'pkg_add', ['-U', 'nosuchpkg']);
      assert.deepEqual(one, { code: 1, stdout: '', stderr: "pkg_add: no pkg found for 'nosuchpkg', sorry.\npkg_add: 1 package addition failed\n" });
      const two = await tool(root, 'pkg_add', ['-U', 'nosuchpkg', 'webfetch', 'alsonot>=2']);
      assert.equal(two.code, 1);
      assert.match(two.stderr, /2 package additions failed\n$/);
      assert.deepEqual(installed(root), ['webfetch-7.65.1']);
      const none = await tool(root, 'pkg_add', []);
      assert.equal(none.code, 1);
      assert.match(none.stderr, /^pkg_add: missing package name\(s\)\nusage: pkg_add /);
    });

    it('runs @exec lines, creates @pkgdir directories and shows +DISPLAY', async () => {
      const root = zone(emptyTemplate);
      const r = await tool(root, 'pkg_add', ['daemonkit']);
      assert.equal(r.code, 0, r.stderr);
      const spool = join(root, 'opt/local/var/spool/daemonkit');
      assert.ok(r.stdout.startsWith(`Executing 'mkdir -p ${spool}'\nExecuting 'touch ${spool}/.installed'\n====`), r.stdout);
      assert.match(r.stdout, /daemonkit: copy/);
      assert.ok(existsSync(join(spool, '.installed')));
    });

    describe('NAME-VERSION (a locked install)', () => {
      let newer: RepoServer;
      let newerTemplate: string;
      let repo: string;
      before(async () => {
        // The sample repository after newer releases: greeter-1.2 (needs libgreet>=1.1), libgreet-1.1, daemonkit-2.4.
        repo = join(tmp, 'repo-newer');
        writeRepository(repo, [...SAMPLE_PACKAGES, ...SAMPLE_NEWER_PACKAGES]);
        newer = await startRepoServer({ dir: repo });
        newerTemplate = join(tmp, 'empty-newer');
        mkdirSync(newerTemplate);
        await writeZoneDataset(newerTemplate, { repoUrl: newer.url, preinstalled: [] });
      });
      after(() => newer?.close());

      it('installs exactly that version though a newer one is in the repository, and downgrades with -U', async () => {
        const root = zone(newerTemplate);
        const latest = await tool(root, 'pkg_add', ['-U', 'greeter']);
        assert.equal(latest.code, 0, latest.stderr);
        assert.deepEqual(installed(root), ['greeter-1.2', 'libgreet-1.1']);
        const back = zone(newerTemplate);
        // Dependencies first with -A, as a locked build installs them: greeter-1.1's libgreet>=1.0 is then met by 1.0.
        assert.deepEqual(await tool(back, 'pkg_add', ['-U', '-A', 'libgreet-1.0']), { code: 0, stdout: '', stderr: '' });
        const locked = await tool(back, 'pkg_add', ['-U', 'greeter-1.1', 'daemonkit-2.3']);
        assert.deepEqual([locked.code, locked.stderr], [0, '']);
        assert.deepEqual(installed(back), ['daemonkit-2.3', 'greeter-1.1', 'libgreet-1.0']);
        assert.equal(readFileSync(join(pkgdb(back), 'libgreet-1.0', '+INSTALLED_INFO'), 'utf8'), 'automatic=yes\n');
        assert.ok(!existsSync(join(pkgdb(back), 'greeter-1.1', '+INSTALLED_INFO')));
        // An older exact version replaces a newer one under -U.
        assert.equal((await tool(back, 'pkg_add', ['-U', 'daemonkit-2.4'])).code, 0);
        assert.deepEqual(installed(back), ['daemonkit-2.4', 'greeter-1.1', 'libgreet-1.0']);
        assert.equal((await tool(back, 'pkg_add', ['-U', 'daemonkit-2.3'])).code, 0);
        assert.deepEqual(installed(back), ['daemonkit-2.3', 'greeter-1.1', 'libgreet-1.0']);
      });

      it('finds no other version for NAME-VERSION, and -n looks up without installing', async () => {
        const root = zone(newerTemplate);
        // greeter-1.1 is not a prefix pattern: greeter-1.10 or greeter-1.1nb1 would not do, and 1.3 is not there.
        const gone = await tool(root, 'pkg_add', ['-U', 'greeter-1.3']);
        assert.deepEqual(gone, { code: 1, stdout: '', stderr: "pkg_add: no pkg found for 'greeter-1.3', sorry.\npkg_add: 1 package addition failed\n" });
        const dry = await tool(root, 'pkg_add', ['-n', '-U', 'daemonkit-2.3', 'webfetch-7.0', 'libgreet-1.0']);
        assert.equal(dry.code, 1);
        assert.deepEqual(dry.stderr.split('\n').filter((l) => l.includes('no pkg found')), ["pkg_add: no pkg found for 'webfetch-7.0', sorry."]);
        assert.deepEqual(installed(root), [], '-n installs nothing');
        assert.ok(!existsSync(join(root, 'opt/local/sbin/daemonkitd')));
      });
    });

    describe('refuses broken or foreign packages', () => {
      let root: string;
      const add = (spec: PackageSpec, opts = {}, args: string[] = []): Promise<Result> => {
        const built = createPackage(join(root, 'var/tmp'), spec, opts);
        return tool(root, 'pkg_add', [...args, `/var/tmp/${built.fileName}`]);
      };
      const base: PackageSpec = { name: 'probe', version: '1.0', comment: 'test', description: 'test', files: [{ path: 'share/probe', content: 'x\n' }] };
      beforeEach(() => {
        root = zone(emptyTemplate);
      });

      it('refuses another OPSYS unless forced', async () => {
        const r = await add({ ...base, opsys: 'Linux' });
        assert.equal(r.code, 1);
        assert.equal(
          r.stderr,
          "pkg_add: Warning: package `probe-1.0' was built for a platform:\n" +
            'pkg_add: Linux/x86_64 5.11 (pkg) vs. SunOS/x86_64 5.11 (this host)\n' +
            'pkg_add: 1 package addition failed\n',
        );
        assert.deepEqual(installed(root), []);
        assert.equal((await add({ ...base, arch: 'aarch64' })).code, 1);
        const forced = await add({ ...base, opsys: 'Linux' }, {}, ['-f']);
        assert.equal(forced.code, 0);
        assert.deepEqual(installed(root), ['probe-1.0']);
      });

      it('only warns about another OS_VERSION', async () => {
        const r = await add({ ...base, osVersion: '5.10' });
        assert.equal(r.code, 0);
        assert.match(r.stderr, /SunOS\/x86_64 5\.10 \(pkg\) vs\. SunOS\/x86_64 5\.11 \(this host\)/);
      });

      it('refuses misordered, incomplete and corrupt archives', async () => {
        const mis = await add(base, { metaOrder: ['+COMMENT', '+CONTENTS', '+DESC', '+BUILD_INFO'] });
        assert.deepEqual(mis, { code: 1, stdout: '', stderr: 'pkg_add: misordered package\npkg_add: 1 package addition failed\n' });
        const noDesc = await add(base, { omitMeta: ['+DESC'] });
        assert.equal(noDesc.code, 1);
        assert.match(noDesc.stderr, /\+DESC/);
        const noInfo = await add(base, { omitMeta: ['+BUILD_INFO'] });
        assert.equal(noInfo.stderr, 'pkg_add: Not all required build information are present.\npkg_add: 1 package addition failed\n');
        const badSum = await add(base, { badMd5For: 'share/probe' });
        assert.equal(badSum.code, 1);
        assert.match(badSum.stderr, /MD5 checksum mismatch for share\/probe/);
        assert.deepEqual(installed(root), []);
      });

      it('honours @pkgcfl conflicts both ways', async () => {
        assert.equal((await add({ ...base, name: 'probe-a' })).code, 0);
        const r = await add({ ...base, name: 'probe-b', conflicts: ['probe-a-[0-9]*'], files: [{ path: 'share/b', content: 'b' }] });
        assert.equal(r.code, 1);
        assert.match(r.stderr, /^pkg_add: Package `probe-b-1\.0' conflicts with `probe-a-\[0-9\]\*', and `probe-a-1\.0' is installed\.$/m);
        const clash = await add({ ...base, name: 'probe-c' });
        assert.match(clash.stderr, /^pkg_add: Conflicting PLIST with probe-a-1\.0: share\/probe$/m);
      });
    });
  });

  describe('pkg_info', () => {
    it('prints the index format and exit codes of the real tool', async () => {
      const root = zone(baseTemplate);
      const long = createPackage(join(root, 'var/tmp'), {
        name: 'averyveryverylongname',
        version: '1.0',
        comment: 'Long name',
        description: 'x',
        files: [{ path: 'share/long', content: 'l' }],
      });
      assert.equal((await tool(root, 'pkg_add', [`var/tmp/${long.fileName}`])).code, 0);
      const r = await tool(root, 'pkg_info', ['-a']);
      assert.equal(r.code, 0);
      assert.deepEqual(r.stdout.split('\n').filter(Boolean).sort(), [
        'averyveryverylongname-1.0 Long name',
        'greeter-1.0         Prints a friendly greeting',
        'libgreet-1.0        Tiny greeting library',
      ]);
      assert.equal((await tool(root, 'pkg_info', [])).stdout, r.stdout);
      assert.deepEqual(await tool(root, 'pkg_info', ['-e', 'greeter']), { code: 0, stdout: 'greeter-1.0\n', stderr: '' });
      assert.deepEqual(await tool(root, 'pkg_info', ['-qe', 'greeter>=1.1']), { code: 1, stdout: '', stderr: '' });
      assert.deepEqual(await tool(root, 'pkg_info', ['-qE', 'libgreet']), { code: 0, stdout: '', stderr: '' });
      assert.deepEqual(await tool(root, 'pkg_info', ['-Q', 'OPSYS', 'greeter']), { code: 0, stdout: 'SunOS\n', stderr: '' });
      assert.deepEqual(await tool(root, 'pkg_info', ['-Q', 'automatic', 'libgreet']), { code: 0, stdout: 'yes\n', stderr: '' });
      assert.deepEqual(await tool(root, 'pkg_info', ['nosuch']), { code: 1, stdout: '', stderr: "pkg_info: can't find package `nosuch'\n" });
      const x = await tool(root, 'pkg_info', ['-X', 'greeter']);
      assert.match(x.stdout, /^PKGNAME=greeter-1\.0\nDEPENDS=libgreet>=1\.0\nCOMMENT=Prints a friendly greeting\nSIZE_PKG=\d+\n/);
      assert.match(x.stdout, /^DESCRIPTION=.*\n\n$/m);
      rmSync(join(pkgdb(root), 'greeter-1.0', '+COMMENT'), { force: true });
      const broken = await tool(root, 'pkg_info', ['-a']);
      assert.equal(broken.code, 2);
      assert.match(broken.stderr, /cannot read meta data file \+COMMENT of package greeter-1\.0/);
      const empty = zone(emptyTemplate);
      assert.deepEqual(await tool(empty, 'pkg_info', ['-a']), { code: 0, stdout: '', stderr: '' });
    });
  });

  describe('pkg_admin', () => {
    it('fetches the vulnerability list and audits installed packages', async () => {
      const root = zone(baseTemplate);
      const missing = await tool(root, 'pkg_admin', ['audit']);
      assert.deepEqual(missing, { code: 1, stdout: '', stderr: 'pkg_admin: Cannot open /opt/local/pkg/pkg-vulnerabilities: No such file or directory\n' });
      assert.deepEqual(await tool(root, 'pkg_admin', ['fetch-pkg-vulnerabilities']), { code: 0, stdout: '', stderr: '' });
      const file = join(pkgdb(root), 'pkg-vulnerabilities');
      assert.deepEqual(readFileSync(file), readFileSync(join(tmp, 'repo/pkg-vulnerabilities.gz')), 'stored as fetched');
      assert.equal(mode(file), 0o644);
      assert.deepEqual(await tool(root, 'pkg_admin', ['audit']), { code: 0, stdout: '', stderr: '' });
      assert.deepEqual(await tool(root, 'pkg_info', ['-a']).then((r) => r.code), 0, 'pkg_info ignores the file in the pkgdb');
      assert.equal((await tool(root, 'pkg_add', ['webfetch-7.64.0'])).code, 0);
      const found = await tool(root, 'pkg_admin', ['audit']);
      assert.deepEqual(found, {
        code: 1,
        stdout: 'Package webfetch-7.64.0 has a remote-code-execution vulnerability, see https://security.example.org/advisories/webfetch-2019-5436\n',
        stderr: '',
      });
      assert.deepEqual(await tool(root, 'pkg_admin', ['fetch-pkg-vulnerabilities', '-u']), { code: 0, stdout: '', stderr: '' });
      assert.equal((await tool(root, 'pkg_admin', ['config-var', 'PKG_DBDIR'])).stdout, '/opt/local/pkg\n');
      assert.equal((await tool(root, 'pkg_admin', ['config-var', 'PKGVULNURL'])).stdout, `${server.url}/pkg-vulnerabilities.gz\n`);
    });

    it('rejects a list whose checksum does not match, keeping the old one', async () => {
      const root = zone(baseTemplate);
      writeFileSync(join(root, 'opt/local/etc/alt.conf'), `PKGVULNURL=${server.url}/bad-vulns.gz\n`);
      const bad = await tool(root, 'pkg_admin', ['-C', '/opt/local/etc/alt.conf', 'fetch-pkg-vulnerabilities']);
      assert.deepEqual(bad, { code: 1, stdout: '', stderr: "pkg_admin: SHA512 hash doesn't match\n" });
      assert.ok(!existsSync(join(pkgdb(root), 'pkg-vulnerabilities')));
      writeFileSync(join(root, 'opt/local/etc/alt.conf'), `PKGVULNURL=${server.url}/nothere.gz\n`);
      const gone = await tool(root, 'pkg_admin', ['-C', '/opt/local/etc/alt.conf', 'fetch-pkg-vulnerabilities']);
      assert.deepEqual(gone, { code: 1, stdout: '', stderr: 'pkg_admin: Could not fetch vulnerability file: Not Found\n' });
    });

    it('rebuilds the file index', async () => {
      const root = zone(baseTemplate);
      const r = await tool(root, 'pkg_admin', ['rebuild']);
      assert.deepEqual(r, {
        code: 0,
        stdout: 'Stored 5 files and 0 explicit directories from 2 packages in /opt/local/pkg/pkgdb.byfile.db.\nDone.\n',
        stderr: '',
      });
    });
  });

  describe('pkgin', () => {
    it('updates, upgrades the older preinstalled package, then has nothing to do', async () => {
      const root = zone(baseTemplate);
      const repoUrl = `${server.url}/All`;
      const up = await tool(root, 'pkgin', ['update']);
      assert.equal(up.code, 0, up.stderr);
      assert.equal(up.stdout, `reading local summary...\nprocessing local summary...\nprocessing remote summary (${repoUrl})...\ndownloading pkg_summary.gz done.\n`);
      assert.ok(existsSync(join(root, 'var/db/pkgin/pkgin.db')));
      assert.ok(statSync(join(root, 'var/db/pkgin/cache')).isDirectory());
      const again = await tool(root, 'pkgin', ['update']);
      assert.equal(again.stdout, `processing remote summary (${repoUrl})...\ndatabase for ${repoUrl} is up-to-date\n`);

      const fug = await tool(root, 'pkgin', ['-y', 'full-upgrade']);
      assert.equal(fug.code, 0, fug.stderr);
      assert.match(fug.stdout, /^calculating dependencies\.\.\.done\.\n\n1 package to upgrade:\n {2}greeter-1\.1\n\n0 to remove, 0 to refresh, 1 to upgrade, 0 to install\n/m);
      assert.match(fug.stdout, /^\[1\/1\] upgrading greeter-1\.1\.\.\.\npkg_install warnings: 0, errors: 0\n/m);
      assert.deepEqual(installed(root), ['greeter-1.1', 'libgreet-1.0']);
      assert.ok(existsSync(join(root, 'var/db/pkgin/cache/greeter-1.1.tgz')));
      assert.ok(!existsSync(join(pkgdb(root), 'greeter-1.1', '+INSTALLED_INFO')), 'kept as a manually installed package');

      const nothing = await tool(root, 'pkgin', ['-y', 'fug']);
      assert.equal(nothing.code, 0);
      assert.match(nothing.stdout, /calculating dependencies\.\.\.done\.\nnothing to do\.\n$/);
    });

    it('installs named packages with their dependencies', async () => {
      const root = zone(emptyTemplate);
      const r = await tool(root, 'pkgin', ['-y', 'install', 'greeter', 'libsigc++']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^3 packages to install:\n {2}libgreet-1\.0 greeter-1\.1 libsigc\+\+-2\.10\.8\n/m);
      assert.deepEqual(installed(root), ['greeter-1.1', 'libgreet-1.0', 'libsigc++-2.10.8']);
      assert.equal(readFileSync(join(pkgdb(root), 'libgreet-1.0', '+INSTALLED_INFO'), 'utf8'), 'automatic=yes\n');
      const none = await tool(root, 'pkgin', ['-y', 'in', 'nosuch']);
      assert.equal(none.code, 1);
      assert.match(none.stdout, /nosuch is not available in the repository\nnothing to do\.\n$/);
    });

    it('refuses to upgrade an empty installation and needs repositories', async () => {
      const root = zone(emptyTemplate);
      const r = await tool(root, 'pkgin', ['-y', 'full-upgrade']);
      assert.equal(r.code, 1);
      assert.equal(r.stderr, 'pkgin: empty local package list.\n');
      rmSync(join(root, 'opt/local/etc/pkgin/repositories.conf'));
      const norepo = await tool(root, 'pkgin', ['update']);
      assert.deepEqual(norepo, {
        code: 1,
        stdout: '',
        stderr: 'pkgin: /opt/local/etc/pkgin/repositories.conf has no repositories or does not exist.\n',
      });
      const bad = await tool(root, 'pkgin', ['update'], { PKG_REPOS: `${server.url}/Nowhere` });
      assert.equal(bad.code, 1);
      assert.match(bad.stderr, /^pkgin: Could not fetch http:\/\/127\.0\.0\.1:\d+\/Nowhere\/pkg_summary\.gz: Not Found\n$/);
    });
  });

  describe('http_proxy', () => {
    let proxy: Server;
    let proxied: string[];
    let proxyUrl: string;

    before(async () => {
      proxied = [];
      // A forward proxy: requires absolute-URI requests and relays them.
      proxy = createServer((req, res) => {
        proxied.push(req.url ?? '');
        if (!/^http:\/\//.test(req.url ?? '')) {
          res.writeHead(400).end();
          return;
        }
        const target = new URL(req.url!);
        const up = request(
          { host: target.hostname, port: target.port, path: target.pathname + target.search, method: req.method, headers: req.headers },
          (r) => {
            res.writeHead(r.statusCode ?? 502, r.headers);
            r.pipe(res);
          },
        );
        up.on('error', () => res.writeHead(502).end());
        req.pipe(up);
      });
      await new Promise<void>((ok) => proxy.listen(0, '127.0.0.1', ok));
      proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
    });

    after(() => new Promise<void>((ok) => proxy.close(() => ok())));

    it('sends every stand-in request through the proxy unless no_proxy says otherwise', async () => {
      const root = zone(baseTemplate);
      const env = { http_proxy: proxyUrl };
      assert.equal((await tool(root, 'pkg_add', ['-U', 'libsigc++'], env)).code, 0);
      assert.ok(proxied.includes(`${server.url}/All/`), proxied.join(' '));
      assert.ok(proxied.includes(`${server.url}/All/libsigc%2B%2B-2.10.8.tgz`), proxied.join(' '));
      assert.equal((await tool(root, 'pkg_admin', ['fetch-pkg-vulnerabilities'], { HTTP_PROXY: proxyUrl })).code, 0);
      assert.ok(proxied.includes(`${server.url}/pkg-vulnerabilities.gz`));
      assert.equal((await tool(root, 'pkgin', ['-y', 'full-upgrade'], env)).code, 0);
      assert.ok(proxied.includes(`${server.url}/All/pkg_summary.gz`));
      assert.ok(proxied.includes(`${server.url}/All/greeter-1.1.tgz`));
      const count = proxied.length;
      assert.equal((await tool(root, 'pkg_add', ['webfetch'], { ...env, no_proxy: 'localhost,127.0.0.1' })).code, 0);
      assert.equal(proxied.length, count, 'no_proxy bypasses the proxy');
      const dead = await tool(root, 'pkg_add', ['daemonkit'], { http_proxy: 'http://127.0.0.1:1' });
      assert.equal(dead.code, 1);
      assert.match(dead.stderr, /no pkg found for 'daemonkit'/);
    });
  });

  describe('repo server', () => {
    it('serves an autoindex, files with Last-Modified, 304s and 404s', async () => {
      const get = async (p: string, headers: Record<string, string> = {}): Promise<Response> => fetch(`${server.url}${p}`, { headers, redirect: 'manual' });
      const index = await get('/All/');
      assert.equal(index.status, 200);
      const html = await index.text();
      assert.match(html, /<title>Index of \/All\/<\/title>/);
      assert.match(html, /<a href="greeter-1\.1\.tgz">greeter-1\.1\.tgz<\/a>/);
      assert.match(html, /<a href="libsigc%2B%2B-2\.10\.8\.tgz">/);
      assert.equal((await get('/All')).status, 301);
      const file = await get('/All/greeter-1.1.tgz');
      assert.equal(file.status, 200);
      const body = Buffer.from(await file.arrayBuffer());
      assert.equal(file.headers.get('content-length'), String(body.length));
      const lm = file.headers.get('last-modified')!;
      assert.ok(lm);
      assert.equal((await get('/All/greeter-1.1.tgz', { 'If-Modified-Since': lm })).status, 304);
      assert.equal((await get('/All/nope.tgz')).status, 404);
      assert.equal((await get('/../../etc/passwd')).status, 404);
      await assert.rejects(startRepoServer({ dir: tmp, host: '0.0.0.0' }), /loopback only/);
    });
  });
});
