/**
 * The sample packages must be real pkgsrc binary packages: checked here by
 * reading them back with the host's tar(1), and the vulnerability file with
 * the stand-in's own parser.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import {
  compareVersions,
  createPackage,
  META_ORDER,
  SAMPLE_PACKAGES,
  SAMPLE_VULNERABILITIES,
  sampleSpec,
  vulnerabilitiesFile,
  writeRepository,
  type PackageSpec,
} from '../../testbed/packages.js';
import { standinLibMain } from '../../testbed/zoneroot.js';

interface StandinLib {
  pkgMatch(pattern: string, pkg: string): boolean;
  versionCompare(a: string, b: string): number;
  parseVulnerabilities(text: string): Array<{ pattern: string; type: string; url: string }>;
}
const lib = createRequire(import.meta.url)(standinLibMain()) as StandinLib;

function tarList(file: string): string[] {
  return execFileSync('/usr/bin/tar', ['-tzf', file], { encoding: 'utf8' }).split('\n').filter(Boolean);
}

function tarCat(file: string, member: string): Buffer {
  return execFileSync('/usr/bin/tar', ['-xzOf', file, member]);
}

describe('sample packages', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'bi-pkgs-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('puts metadata first in pkg_create order, then the payload in +CONTENTS order', () => {
    const pkg = createPackage(dir, sampleSpec('daemonkit-2.3'));
    assert.equal(pkg.fileName, 'daemonkit-2.3.tgz');
    const members = tarList(pkg.file);
    const meta = members.filter((m) => m.startsWith('+'));
    assert.deepEqual(members.slice(0, meta.length), meta, 'metadata members come first');
    assert.deepEqual(meta, ['+CONTENTS', '+COMMENT', '+DESC', '+DISPLAY', '+BUILD_INFO', '+SIZE_PKG', '+SIZE_ALL']);
    const order = META_ORDER as readonly string[];
    assert.deepEqual([...meta].sort((a, b) => order.indexOf(a) - order.indexOf(b)), meta);
    const contents = tarCat(pkg.file, '+CONTENTS').toString();
    const plistFiles = contents.split('\n').filter((l) => l && !l.startsWith('@') && !l.startsWith('+'));
    assert.deepEqual(members.slice(meta.length), plistFiles);
  });

  it('writes a +CONTENTS that follows the packing-list grammar', () => {
    const pkg = createPackage(dir, { ...sampleSpec('greeter-1.1'), buildDepends: ['libgreet-1.0'] });
    const lines = tarCat(pkg.file, '+CONTENTS').toString().split('\n');
    assert.equal(lines.pop(), '', 'ends with a newline');
    assert.equal(lines[0], '@cwd /opt/local');
    assert.equal(lines[1], '@name greeter-1.1');
    assert.deepEqual(lines.slice(2, 4), ['@blddep libgreet-1.0', '@pkgdep libgreet>=1.0']);
    const cwdDot = lines.indexOf('@cwd .');
    assert.ok(cwdDot > 0);
    for (let i = 4; i < cwdDot; i++) {
      const l = lines[i];
      if (l.startsWith('@')) continue;
      const next = lines[i + 1];
      const m = /^@comment MD5:([0-9a-f]{32})$/.exec(next);
      assert.ok(m, `file ${l} is followed by its MD5 (got ${next})`);
      assert.equal(m[1], createHash('md5').update(tarCat(pkg.file, l)).digest('hex'));
    }
    const tail = lines.slice(cwdDot + 1);
    const ignored: string[] = [];
    for (let i = 0; i < tail.length; i += 2) {
      assert.equal(tail[i], '@ignore');
      ignored.push(tail[i + 1]);
    }
    assert.deepEqual(ignored, ['+COMMENT', '+DESC', '+BUILD_INFO', '+SIZE_PKG', '+SIZE_ALL']);
  });

  it('records symlinks with @comment Symlink: and stores them as tar symlinks', () => {
    const pkg = createPackage(dir, sampleSpec('libgreet-1.0'));
    const contents = tarCat(pkg.file, '+CONTENTS').toString().split('\n');
    const i = contents.indexOf('lib/libgreet.so');
    assert.equal(contents[i + 1], '@comment Symlink:libgreet.so.1');
    const verbose = execFileSync('/usr/bin/tar', ['-tvzf', pkg.file], { encoding: 'utf8' });
    assert.match(verbose, /^lrwxrwxrwx .* lib\/libgreet\.so -> libgreet\.so\.1$/m);
    assert.match(verbose, /^-rwxr-xr-x .* lib\/libgreet\.so\.1$/m);
  });

  it('writes +BUILD_INFO sorted with the platform variables pkg_add requires', () => {
    const pkg = createPackage(dir, { ...sampleSpec('webfetch-7.65.1'), opsys: 'Linux', osVersion: '6.1' });
    const bi = tarCat(pkg.file, '+BUILD_INFO').toString().trimEnd().split('\n');
    assert.deepEqual(bi, [...bi].sort());
    assert.ok(bi.includes('OPSYS=Linux'));
    assert.ok(bi.includes('OS_VERSION=6.1'));
    assert.ok(bi.includes('MACHINE_ARCH=x86_64'));
    assert.ok(bi.some((l) => /^PKGTOOLS_VERSION=\d{8}$/.test(l)));
    assert.equal(tarCat(pkg.file, '+SIZE_PKG').toString(), `${pkg.sizePkg}\n`);
  });

  it('can write deliberately broken archives for negative tests', () => {
    const spec: PackageSpec = { ...sampleSpec('libsigc++-2.10.8') };
    const bad = createPackage(dir, spec, { metaOrder: ['+COMMENT', '+CONTENTS', '+DESC', '+BUILD_INFO'], fileName: 'mis.tgz' });
    assert.deepEqual(tarList(bad.file).slice(0, 2), ['+COMMENT', '+CONTENTS']);
    const noDesc = createPackage(dir, spec, { omitMeta: ['+DESC'], fileName: 'nodesc.tgz' });
    assert.ok(!tarList(noDesc.file).includes('+DESC'));
  });

  it('writes a repository with a pkg_summary that matches the archives', () => {
    const repoDir = join(dir, 'repo');
    const repo = writeRepository(repoDir, SAMPLE_PACKAGES);
    assert.equal(repo.packages.length, SAMPLE_PACKAGES.length);
    const summary = gunzipSync(readFileSync(repo.summaryFile)).toString();
    const blocks = summary.split('\n\n').filter(Boolean);
    assert.equal(blocks.length, SAMPLE_PACKAGES.length);
    const names = blocks.map((b) => /^PKGNAME=(.*)$/m.exec(b)![1]);
    assert.deepEqual(names, [...names].sort());
    for (const b of blocks) {
      const get = (k: string): string[] => b.split('\n').filter((l) => l.startsWith(`${k}=`)).map((l) => l.slice(k.length + 1));
      const file = join(repo.packagesDir, get('FILE_NAME')[0]);
      assert.equal(Number(get('FILE_SIZE')[0]), readFileSync(file).length);
      for (const k of ['BUILD_DATE', 'CATEGORIES', 'COMMENT', 'DESCRIPTION', 'MACHINE_ARCH', 'OPSYS', 'OS_VERSION', 'PKGPATH', 'PKGTOOLS_VERSION', 'SIZE_PKG']) {
        assert.ok(get(k).length, `${names[blocks.indexOf(b)]} has ${k}`);
      }
    }
    assert.match(summary, /^PKGNAME=greeter-1\.1\nDEPENDS=libgreet>=1\.0\n/m);
    // +SIZE_ALL covers the dependency closure; @blddep names the exact package.
    const greeter = repo.packages.find((p) => p.pkgname === 'greeter-1.1')!;
    const libgreet = repo.packages.find((p) => p.pkgname === 'libgreet-1.0')!;
    assert.equal(greeter.meta['+SIZE_ALL'], `${greeter.sizePkg + libgreet.sizePkg}\n`);
    assert.match(greeter.meta['+CONTENTS'], /^@blddep libgreet-1\.0\n@pkgdep libgreet>=1\.0$/m);
    // Deterministic output.
    const again = writeRepository(join(dir, 'repo2'), SAMPLE_PACKAGES);
    assert.deepEqual(readFileSync(again.summaryFile), readFileSync(repo.summaryFile));
    assert.deepEqual(readFileSync(again.packages[0].file), readFileSync(repo.packages[0].file));
  });

  it('writes a pkg-vulnerabilities file whose SHA512 checksum pkg_admin accepts', () => {
    const text = vulnerabilitiesFile(SAMPLE_VULNERABILITIES);
    assert.match(text, /^# \$NetBSD.*\n#\n#FORMAT 1\.1\.0\n/);
    assert.match(text, /^#CHECKSUM SHA512 [0-9a-f]{128}$/m);
    assert.deepEqual(lib.parseVulnerabilities(text), SAMPLE_VULNERABILITIES);
    assert.deepEqual(lib.parseVulnerabilities(vulnerabilitiesFile(SAMPLE_VULNERABILITIES, { pgpWrap: true })), SAMPLE_VULNERABILITIES);
    assert.throws(() => lib.parseVulnerabilities(vulnerabilitiesFile(SAMPLE_VULNERABILITIES, { badChecksum: true })), /SHA512 hash doesn't match/);
    assert.throws(() => lib.parseVulnerabilities(text.replace('webfetch<7.65.0', 'webfetch<7.66.0')), /SHA512 hash doesn't match/);
    assert.throws(() => lib.parseVulnerabilities(text.replace('#FORMAT 1.1.0', '#FORMAT 1.2.0')), /Input #FORMAT/);
    assert.throws(() => lib.parseVulnerabilities(text.replace('#\n#FORMAT', '# comment\n#FORMAT')), /Invalid header/);
  });

  it('orders versions the way pkgsrc does, in the builder and in the stand-ins alike', () => {
    const ascending = ['1.0alpha1', '1.0beta2', '1.0rc1', '1.0', '1.0nb1', '1.0nb2', '1.0pl1', '1.0.2', '1.2', '1.2e', '1.10', '7.64.0', '7.65.1'];
    for (let i = 0; i + 1 < ascending.length; i++) {
      const [a, b] = [ascending[i], ascending[i + 1]];
      assert.equal(compareVersions(a, b), -1, `${a} < ${b}`);
      assert.equal(lib.versionCompare(a, b), -1, `stand-in: ${a} < ${b}`);
      assert.equal(lib.versionCompare(b, a), 1);
    }
    for (const [a, b] of [['1.0', '1.0.0'], ['1.2e', '1.2.5'], ['1.9.15p', '1.9.15.16'], ['1.0pl1', '1.0.1']]) {
      assert.equal(compareVersions(a, b), 0, `${a} == ${b}`);
      assert.equal(lib.versionCompare(a, b), 0, `stand-in: ${a} == ${b}`);
    }
  });

  it('matches package patterns like pkg_match()', () => {
    const yes: Array<[string, string]> = [
      ['greeter', 'greeter-1.1'],
      ['greeter>=1.0', 'greeter-1.1'],
      ['greeter>=1.0<1.1', 'greeter-1.0nb3'],
      ['greeter-1.*', 'greeter-1.1'],
      ['{greeter,webfetch}>=1', 'webfetch-7.64.0'],
      ['libsigc++', 'libsigc++-2.10.8'],
      ['libsigc++>=2.10', 'libsigc++-2.10.8'],
      ['sudo<1.9.15p6', 'sudo-1.9.15p5'],
      ['greeter-1.1', 'greeter-1.1'],
    ];
    const no: Array<[string, string]> = [
      ['greeter', 'greeter-extras-1.0'],
      ['greeter>=1.0<1.1', 'greeter-1.1'],
      ['greet', 'greeter-1.1'],
      ['sudo<1.9.5p2', 'sudo-1.9.15p5'],
      ['greeter-1.0', 'greeter-1.0nb1'],
    ];
    for (const [p, n] of yes) assert.equal(lib.pkgMatch(p, n), true, `${p} matches ${n}`);
    for (const [p, n] of no) assert.equal(lib.pkgMatch(p, n), false, `${p} does not match ${n}`);
  });
});
