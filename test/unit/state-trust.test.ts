/**
 * Issue 12, items 3, 7 and 14 at the unit level: state files written 0600
 * and refused when another user could have written them; temp files never
 * written through a link planted at a guessable name; work dirs another
 * user could change refused; the lock a second writer of a state file meets.
 */
import assert from 'node:assert/strict';
import { chmod, chown, lstat, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StateError } from '../../src/core/errors.js';
import { moveInto, writeAtomic } from '../../src/core/files.js';
import { tryLock } from '../../src/host/lock.js';
import { checkPrivateDir, resolveInside, trustedUids, uidOf } from '../../src/host/trusted.js';
import { newState, StateFile } from '../../src/build/state.js';
import { sampleDefinition } from './state.test.js';

const isRoot = process.getuid?.() === 0;

describe('state files and temp files (issue 12)', () => {
  let dir: string;
  beforeEach(async () => (dir = await mkdtemp(join(tmpdir(), 'bi-trust-'))));
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('a state file is written 0600', async () => {
    const sf = new StateFile(join(dir, 's.json'), newState(sampleDefinition));
    await sf.save();
    assert.equal((await stat(sf.path)).mode & 0o777, 0o600);
  });

  it('a state file that is a symlink, world-writable or not a file is refused in one line', async () => {
    const sf = new StateFile(join(dir, 'real.json'), newState(sampleDefinition));
    await sf.save();
    await symlink(sf.path, join(dir, 'link.json'));
    await assert.rejects(StateFile.load(join(dir, 'link.json')), (e: unknown) => e instanceof StateError && /link\.json is a symlink/.test(e.message));
    await chmod(sf.path, 0o666);
    await assert.rejects(StateFile.load(sf.path), (e: unknown) => e instanceof StateError && /is writable by others \(mode 0666\)/.test(e.message));
    await mkdir(join(dir, 'dir.json'));
    await assert.rejects(StateFile.load(join(dir, 'dir.json')), /cannot read state file .*dir\.json: not a regular file/);
  });

  it('writeAtomic never writes through a link planted at its old temp name (<path>.tmp-<pid>)', async () => {
    const bait = join(dir, 'bait');
    await writeFile(bait, 'secret');
    const path = join(dir, 'out.json');
    await symlink(bait, `${path}.tmp-${process.pid}`);
    await writeAtomic(path, 'new');
    assert.equal(await readFile(bait, 'utf8'), 'secret', 'the bait was written through the link');
    assert.ok((await lstat(path)).isFile(), 'the result is a file, not the planted link');
    assert.equal(await readFile(path, 'utf8'), 'new');
    assert.deepEqual((await readdir(dir)).filter((n) => n.includes('.tmp-') && n !== `out.json.tmp-${process.pid}`), [], 'no temp left');
  });

  it('moveInto across filesystems never copies through a link planted at its old temp name', async function () {
    if (!(await stat('/dev/shm').catch(() => undefined))) this.skip();
    const dst = await mkdtemp(join('/dev/shm', 'bi-trust-'));
    try {
      const src = join(dir, 'r.json');
      await writeFile(src, 'report');
      const bait = join(dir, 'bait');
      await writeFile(bait, 'secret');
      const dest = join(dst, 'out.json');
      await symlink(bait, `${dest}.tmp-${process.pid}`);
      await moveInto(src, dest);
      assert.equal(await readFile(bait, 'utf8'), 'secret', 'the bait was written through the link');
      assert.equal(await readFile(dest, 'utf8'), 'report');
    } finally {
      await rm(dst, { recursive: true, force: true });
    }
  });

  it('a second tryLock gets the holder, not the lock', async () => {
    const path = join(dir, 's.json.lock');
    const a = await tryLock(path, 'first');
    assert.ok('release' in a);
    const b = await tryLock(path, 'second');
    assert.ok(!('release' in b));
    assert.equal(b.holder?.pid, process.pid);
    await a.release();
    const c = await tryLock(path);
    assert.ok('release' in c);
    await c.release();
  });
});

describe('checkPrivateDir (the work dir)', () => {
  let dir: string;
  beforeEach(async () => (dir = await mkdtemp(join(tmpdir(), 'bi-trust-'))));
  afterEach(() => rm(dir, { recursive: true, force: true }));
  const check = (p: string, subdirs?: string[]) => checkPrivateDir(p, { what: 'work dir', hint: 'pass another --work-dir', subdirs });

  it('accepts a missing dir under a private one, and a private one', async () => {
    await check(join(dir, 'work/deeper'));
    await mkdir(join(dir, 'work'), { mode: 0o755 });
    await check(join(dir, 'work'), ['locks', 'builds']);
  });

  it('refuses a dir writable by others or its group, and one below it', async () => {
    await mkdir(join(dir, 'work/builds'), { recursive: true });
    await chmod(join(dir, 'work'), 0o777);
    await assert.rejects(check(join(dir, 'work')), /work dir .*\/work is writable by others \(mode 0777\)/);
    await assert.rejects(check(join(dir, 'work/builds/x')), /work\/builds\/x: .*\/work is writable by others/);
    await chmod(join(dir, 'work'), 0o775);
    await assert.rejects(check(join(dir, 'work')), /is writable by its group/);
  });

  it('accepts a sticky world-writable dir above (like /var/tmp) but not as the work dir itself', async () => {
    await mkdir(join(dir, 'tmp/work'), { recursive: true });
    await chmod(join(dir, 'tmp'), 0o1777);
    await check(join(dir, 'tmp/work'));
    await assert.rejects(check(join(dir, 'tmp')), /is writable by others \(mode 1777\)/);
  });

  it('refuses a dir owned by another user, and a symlinked part', async function () {
    if (!isRoot) this.skip();
    await mkdir(join(dir, 'work/locks'), { recursive: true });
    await chown(join(dir, 'work'), 12345, 12345);
    await assert.rejects(check(join(dir, 'work')), /is owned by uid 12345, not root or you/);
    await chown(join(dir, 'work'), 0, 0);
    await mkdir(join(dir, 'elsewhere'));
    await symlink(join(dir, 'elsewhere'), join(dir, 'work/builds'));
    await assert.rejects(check(join(dir, 'work'), ['locks', 'builds']), /work\/builds is a symlink/);
    // A link to a dir another user owns: checked as resolved too.
    await chown(join(dir, 'elsewhere'), 12345, 12345);
    await symlink(join(dir, 'elsewhere'), join(dir, 'linked-work'));
    await assert.rejects(check(join(dir, 'linked-work')), /elsewhere is owned by uid 12345/);
  });
});

describe('resolveInside', () => {
  let dir: string;
  beforeEach(async () => (dir = await mkdtemp(join(tmpdir(), 'bi-trust-'))));
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('keeps paths inside, refuses .., relative paths and links that leave', async () => {
    await mkdir(join(dir, 'out/sub'), { recursive: true });
    await mkdir(join(dir, 'host'));
    await symlink(join(dir, 'host'), join(dir, 'out/link'));
    await symlink(join(dir, 'out/sub'), join(dir, 'out/inner'));
    assert.equal(await resolveInside(join(dir, 'out'), join(dir, 'out/a')), join(dir, 'out/a'));
    assert.equal(await resolveInside(join(dir, 'out'), join(dir, 'out/inner/a')), join(dir, 'out/sub/a'));
    assert.equal(await resolveInside(join(dir, 'out'), join(dir, 'out/missing/a')), join(dir, 'out/missing/a'));
    assert.equal(await resolveInside(join(dir, 'out'), `${dir}/out/../host/a`), undefined);
    assert.equal(await resolveInside(join(dir, 'out'), join(dir, 'out/link/a')), undefined);
    assert.equal(await resolveInside(join(dir, 'out'), join(dir, 'host/a')), undefined);
    assert.equal(await resolveInside(join(dir, 'out'), 'out/a'), undefined);
    assert.equal(await resolveInside(join(dir, 'out'), join(dir, 'out')), undefined, 'the dir itself is not inside it');
  });
});

describe('trusted owners: root, you, and whoever ran you', () => {
  let dir: string;
  let passwd: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'bi-passwd-'));
    passwd = join(dir, 'passwd');
    await writeFile(passwd, 'root:x:0:0:root:/root:/bin/bash\njenkins:x:4301:4301::/home/jenkins:/bin/bash\nbad:x:nope:1::/:/bin/sh\n');
  });
  after(() => rm(dir, { recursive: true, force: true }));
  const own = process.getuid?.() ?? 0;

  it('through sudo: SUDO_UID', () => {
    assert.deepEqual(trustedUids({ SUDO_UID: '4242', LOGNAME: 'jenkins' }, passwd).sort(), [...new Set([0, own, 4242])].sort());
  });

  it('through pfexec (no SUDO_UID, uid 0): the user LOGNAME names', () => {
    assert.ok(trustedUids({ LOGNAME: 'jenkins' }, passwd).includes(4301));
    assert.equal(uidOf('jenkins', passwd), 4301);
  });

  it('nobody else: an unknown or malformed user, LOGNAME root, no passwd file', () => {
    for (const env of [{ LOGNAME: 'nobody-here' }, { LOGNAME: 'bad' }, { LOGNAME: 'root' }, {}]) {
      assert.deepEqual(trustedUids(env, passwd).sort(), [...new Set([0, own])].sort(), JSON.stringify(env));
    }
    assert.equal(uidOf('jenkins', join(dir, 'missing')), undefined);
  });
});
