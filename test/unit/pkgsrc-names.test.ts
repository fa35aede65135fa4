import assert from 'node:assert/strict';
import { ExitCode, UsageError } from '../../src/core/errors.js';
import { MAX_PACKAGES, MAX_PACKAGE_NAME_LENGTH, checkPackageName, parsePackageList } from '../../src/pkgsrc/names.js';

function usageError(flag: string): UsageError {
  try {
    parsePackageList(flag);
  } catch (err) {
    assert.ok(err instanceof UsageError, `expected UsageError, got ${String(err)}`);
    assert.equal(err.exitCode, ExitCode.USAGE);
    assert.ok(!err.message.includes('\n'), 'message must be one line');
    return err;
  }
  assert.fail(`expected ${JSON.stringify(flag)} to be rejected`);
}

describe('parsePackageList (-p)', () => {
  const good: Array<[string, string[]]> = [
    ['', []],
    ['coreutils', ['coreutils']],
    ['coreutils,curl,gsed,patch,sudo', ['coreutils', 'curl', 'gsed', 'patch', 'sudo']],
    ['py311-setuptools,p5-Net-SSLeay', ['py311-setuptools', 'p5-Net-SSLeay']],
    ['gcc13-13.2.0nb1,libstdc++', ['gcc13-13.2.0nb1', 'libstdc++']],
    ['a_b.c+d', ['a_b.c+d']],
    ['9base', ['9base']],
    ['curl,sudo,curl,sudo,zsh', ['curl', 'sudo', 'zsh']],
    ['.x', ['.x']],
  ];
  for (const [flag, names] of good) {
    it(`accepts ${JSON.stringify(flag)}`, () => assert.deepEqual(parsePackageList(flag), names));
  }

  const bad: Array<[string, string, RegExp]> = [
    ['shell metacharacters', 'foo;rm', /^invalid package name "foo;rm" in -p: only letters, digits and - _ \. \+ are allowed$/],
    ['dewey pattern >=', 'foo>=1.0', /^invalid package name "foo>=1\.0" in -p: only letters/],
    ['dewey pattern <', 'foo<2', /invalid package name "foo<2"/],
    ['glob', 'py3*-foo', /invalid package name "py3\*-foo"/],
    ['alternatives', 'foo-{1,2}', /invalid package name "foo-\{1"/],
    ['brackets', 'foo-[0-9]', /invalid package name "foo-\[0-9\]"/],
    ['space', 'a, b', /^invalid package name " b" in -p/],
    ['path', '../x', /invalid package name "\.\.\/x"/],
    ['URL', 'http://x/y.tgz', /invalid package name "http:\/\/x\/y\.tgz"/],
    ['newline', 'a\nb', /^invalid package name "a\\nb" in -p/],
    ['dollar', '$(id)', /invalid package name "\$\(id\)"/],
    ['empty middle item', 'a,,b', /^empty package name in -p \(check for ",," or a leading\/trailing ","\)$/],
    ['leading comma', ',a', /^empty package name in -p/],
    ['trailing comma', 'a,', /^empty package name in -p/],
    ['just a comma', ',', /^empty package name in -p/],
    ['leading dash', '-f', /^invalid package name "-f" in -p: it must not start with "-"$/],
    ['leading dash later', 'curl,-U', /invalid package name "-U" in -p: it must not start with "-"/],
    ['dot', '.', /^invalid package name "\." in -p$/],
    ['dot dot', 'a,..', /^invalid package name "\.\." in -p$/],
    ['too long', 'x'.repeat(MAX_PACKAGE_NAME_LENGTH + 1), /^package name "x{40}…" in -p is too long: 256 characters \(max 255\)$/],
  ];
  for (const [what, flag, re] of bad) {
    it(`rejects ${what}`, () => assert.match(usageError(flag).message, re));
  }

  it(`accepts ${MAX_PACKAGES} packages, rejects ${MAX_PACKAGES + 1}`, () => {
    const names = Array.from({ length: MAX_PACKAGES + 1 }, (_, i) => `pkg${i}`);
    assert.equal(parsePackageList(names.slice(0, MAX_PACKAGES).join(',')).length, MAX_PACKAGES);
    assert.match(usageError(names.join(',')).message, /^too many packages in -p: 501 \(max 500\)$/);
  });

  it('counts duplicates toward the limit before removing them (bounded work)', () => {
    assert.match(usageError(Array(MAX_PACKAGES + 1).fill('curl').join(',')).message, /too many packages/);
  });

  it('keeps the original character rule: every printable ASCII character outside [A-Za-z0-9-_.+] is refused, every one inside accepted', () => {
    const allowed = /^[A-Za-z0-9\-_.+]$/;
    for (let code = 0x20; code < 0x7f; code++) {
      const c = String.fromCharCode(code);
      if (c === ',') continue; // the separator
      const name = `a${c}b`;
      if (allowed.test(c)) assert.deepEqual(parsePackageList(name), [name], JSON.stringify(c));
      else assert.match(usageError(name).message, /^invalid package name /, JSON.stringify(c));
    }
    for (const [flag] of good) assert.match(flag, /^[A-Za-z0-9\-_.+,]*$/, 'the accepted table itself stays inside the rule');
  });

  it('keeps a long name at the limit', () => {
    const name = 'x'.repeat(MAX_PACKAGE_NAME_LENGTH);
    assert.deepEqual(parsePackageList(name), [name]);
  });

  it('shows at most 80 characters of a refused name (the error stays one short line)', () => {
    const name = `${'a'.repeat(100)}@${'b'.repeat(100)}`;
    const msg = usageError(name).message;
    assert.equal(msg, `invalid package name "${'a'.repeat(80)}" in -p: only letters, digits and - _ . + are allowed`);
  });
});

describe('checkPackageName (one name, and where it was written)', () => {
  const refusal = (name: string, where?: string): string => {
    try {
      checkPackageName(name, where);
    } catch (err) {
      assert.ok(err instanceof UsageError);
      return err.message;
    }
    assert.fail(`expected ${JSON.stringify(name)} to be refused`);
  };

  it('names the place: an empty name in a lockfile gets no hint about commas', () => {
    assert.equal(refusal('', 'lockfile /w/buildimage.lock'), 'empty package name in lockfile /w/buildimage.lock');
    assert.equal(refusal(''), 'empty package name in -p (check for ",," or a leading/trailing ",")');
  });

  it('uses the place in every refusal', () => {
    assert.match(refusal('-x', 'lockfile L'), /^invalid package name "-x" in lockfile L: it must not start with "-"$/);
    assert.match(refusal('a b', 'lockfile L'), /^invalid package name "a b" in lockfile L: only letters/);
    assert.doesNotThrow(() => checkPackageName('curl', 'lockfile L'));
  });
});
