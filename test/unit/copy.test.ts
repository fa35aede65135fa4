import assert from 'node:assert/strict';
import { chmod, chown, link, lstat, mkdir, mkdtemp, readFile, readlink, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BuildError, UsageError } from '../../src/core/errors.js';
import { copyTree, currentUmask, isNoSpace, WorkerPool } from '../../src/host/copy.js';
import type { Job } from '../../src/host/copy-worker.js';
import { buildDefinition } from '../../src/settings/definition.js';
import { resolveSettings } from '../../src/settings/resolve.js';

const UUID = '41bd4100-eb86-409a-85b0-e649aadf6f62';

describe('copyTree: proto dir into an image root', () => {
  let top: string;
  let src: string;
  let root: string;
  beforeEach(async () => {
    top = await mkdtemp(join(tmpdir(), 'bi-copy-'));
    src = join(top, 'proto');
    root = join(top, 'root');
    await mkdir(join(src, 'opt/smartdc/svc/empty'), { recursive: true });
    await writeFile(join(src, 'opt/smartdc/svc/app.js'), 'console.log(1)\n');
    await writeFile(join(src, 'opt/smartdc/svc/run.sh'), '#!/bin/sh\n');
    await chmod(join(src, 'opt/smartdc/svc/run.sh'), 0o4755);
    await chown(join(src, 'opt/smartdc/svc/app.js'), 1234, 5678);
    await symlink('app.js', join(src, 'opt/smartdc/svc/link.js'));
    await link(join(src, 'opt/smartdc/svc/app.js'), join(src, 'opt/smartdc/svc/hard.js'));
    await utimes(join(src, 'opt/smartdc/svc/app.js'), new Date(1e12), new Date(1.5e12));
    await mkdir(join(root, 'usr/bin'), { recursive: true });
    await symlink('./usr/bin', join(root, 'bin'));
  });
  afterEach(() => rm(top, { recursive: true, force: true }));

  it('preserves modes, owners, mtimes, symlinks, hardlinks and empty dirs', async () => {
    let progress = 0;
    const stats = await copyTree(src, root, { onProgress: () => progress++ });
    // What the build reports: the root, opt, smartdc, svc and empty; app.js and run.sh (25 bytes); hard.js linked.
    assert.deepEqual(stats, { files: 2, dirs: 5, symlinks: 1, hardlinks: 1, bytes: 25 });
    assert.ok(progress > 0);
    const d = join(root, 'opt/smartdc/svc');
    assert.equal(await readFile(join(d, 'app.js'), 'utf8'), 'console.log(1)\n');
    const app = await stat(join(d, 'app.js'));
    assert.equal(app.uid, 1234);
    assert.equal(app.gid, 5678);
    assert.equal(app.mtimeMs, 1.5e12);
    assert.equal((await stat(join(d, 'run.sh'))).mode & 0o7777, 0o4755);
    assert.equal(await readlink(join(d, 'link.js')), 'app.js');
    assert.equal((await stat(join(d, 'hard.js'))).ino, app.ino);
    assert.ok((await stat(join(d, 'empty'))).isDirectory());
    // Same tree as rsync's view of it (content, links, modes).
    const list = (dir: string) => execFileSync('find', ['.', '-printf', '%p %y %m %U %G %l\n'], { cwd: dir }).toString().split('\n').sort();
    assert.deepEqual(list(join(root, 'opt')), list(join(src, 'opt')));
  });

  it('keeps an image directory link and fills its target inside the root', async () => {
    await mkdir(join(src, 'bin'));
    await writeFile(join(src, 'bin/tool'), 't');
    await copyTree(src, root);
    assert.ok((await lstat(join(root, 'bin'))).isSymbolicLink());
    assert.equal(await readFile(join(root, 'usr/bin/tool'), 'utf8'), 't');
  });

  it('never writes through an absolute directory link to the host', async () => {
    const host = join(top, 'host');
    await mkdir(host);
    await symlink(host, join(root, 'opt'));
    await copyTree(src, root);
    assert.deepEqual(execFileSync('find', [host]).toString().trim(), host);
    // The link pointed nowhere inside the image: like rsync, a real directory replaces it.
    assert.ok((await lstat(join(root, 'opt'))).isDirectory());
    assert.ok((await stat(join(root, 'opt/smartdc/svc/app.js'))).isFile());
  });

  it('replaces an existing file without touching its other hardlinks in the image', async () => {
    await mkdir(join(root, 'opt/smartdc/svc'), { recursive: true });
    await writeFile(join(root, 'other'), 'base');
    await link(join(root, 'other'), join(root, 'opt/smartdc/svc/app.js'));
    await copyTree(src, root);
    assert.equal(await readFile(join(root, 'other'), 'utf8'), 'base');
  });

  it('keeps modes the umask would clear, set-id and sticky bits, owners of files, dirs and links, and big files', async () => {
    const d = join(src, 'opt/modes');
    await mkdir(join(d, 'shared'), { recursive: true });
    await chmod(join(d, 'shared'), 0o3777);
    await mkdir(join(d, 'locked'));
    await writeFile(join(d, 'locked/f'), 'x');
    await chmod(join(d, 'locked'), 0o500);
    await writeFile(join(d, 'open'), 'o', { mode: 0o666 });
    await chmod(join(d, 'open'), 0o666);
    await writeFile(join(d, 'sgid'), 's');
    await chown(join(d, 'sgid'), 0, 5);
    await chmod(join(d, 'sgid'), 0o2755);
    await chown(join(d, 'locked'), 77, 88);
    await symlink('open', join(d, 'lnk'));
    execFileSync('chown', ['-h', '123:456', join(d, 'lnk')]);
    const big = Buffer.alloc(3 * 1024 * 1024 + 17, 7);
    await writeFile(join(d, 'big'), big);
    await writeFile(join(d, 'empty'), '');
    await mkdir(join(d, 'a'));
    await link(join(d, 'big'), join(d, 'a/big-link'));
    const old = process.umask(0o077);
    try {
      const stats = await copyTree(src, root);
      assert.equal(stats.hardlinks, 2);
      // Reading the umask sets it for a moment: the copy puts it back (what the build writes next obeys it).
      assert.equal(process.umask(0o077), 0o077);
    } finally {
      process.umask(old);
    }
    const r = join(root, 'opt/modes');
    assert.equal((await stat(join(r, 'shared'))).mode & 0o7777, 0o3777);
    const locked = await stat(join(r, 'locked'));
    assert.equal(locked.mode & 0o7777, 0o500);
    assert.equal(`${locked.uid}:${locked.gid}`, '77:88');
    assert.equal((await stat(join(r, 'open'))).mode & 0o7777, 0o666);
    const sg = await stat(join(r, 'sgid'));
    assert.equal(sg.mode & 0o7777, 0o2755);
    assert.equal(sg.gid, 5);
    const l = await lstat(join(r, 'lnk'));
    assert.equal(`${l.uid}:${l.gid}`, '123:456');
    assert.ok((await readFile(join(r, 'big'))).equals(big));
    assert.equal((await stat(join(r, 'a/big-link'))).ino, (await stat(join(r, 'big'))).ino);
    assert.equal((await stat(join(r, 'empty'))).size, 0);
    // Directory mtimes survive their own entries being created (Node sets times to the microsecond).
    assert.ok(Math.abs((await stat(join(r, 'a'))).mtimeMs - (await stat(join(d, 'a'))).mtimeMs) < 0.002);
    const find = (dir: string, format: string) => execFileSync('find', ['.', '-printf', format], { cwd: dir }).toString().split('\n').filter(Boolean).sort();
    assert.deepEqual(find(r, '%p %y %m %U %G %s %l\n'), find(d, '%p %y %m %U %G %s %l\n'));
    // Node sets times from a double of seconds, so a copy's times are equal within a few microseconds,
    // not to the nanosecond: comparing printed digits flaked whenever the two fell either side of a digit.
    const times = (dir: string) => new Map(find(dir, '%p %T@\n').map((l) => [l.split(' ')[0], Number(l.split(' ')[1])] as const));
    const copied = times(r);
    for (const [path, t] of times(d)) assert.ok(Math.abs(copied.get(path)! - t) < 1e-5, `${path} mtime ${copied.get(path)} vs ${t}`);
  });

  it('a directory made inside a setgid image directory gets the proto\'s mode and group, and so does all in it', async () => {
    // Such a directory inherits the setgid bit and the group, as does what is made in it; rsync -a sets both back.
    await mkdir(join(root, 'opt'));
    await chown(join(root, 'opt'), 0, 77);
    await chmod(join(root, 'opt'), 0o2755);
    await copyTree(src, root);
    const list = (dir: string) => execFileSync('find', ['.', '-printf', '%p %y %m %U %G %l\n'], { cwd: dir }).toString().split('\n').sort();
    assert.deepEqual(list(join(root, 'opt')), list(join(src, 'opt')));
  });

  it('replaces an image file or link by the proto\'s, and refuses a proto file where the image has a directory', async () => {
    await mkdir(join(root, 'opt/smartdc/svc'), { recursive: true });
    await writeFile(join(root, 'opt/smartdc/svc/link.js'), 'was a file');
    await symlink('nowhere', join(root, 'opt/smartdc/svc/app.js'));
    await copyTree(src, root);
    assert.equal(await readlink(join(root, 'opt/smartdc/svc/link.js')), 'app.js');
    assert.equal(await readFile(join(root, 'opt/smartdc/svc/app.js'), 'utf8'), 'console.log(1)\n');
    await rm(join(root, 'opt/smartdc/svc/app.js'));
    await mkdir(join(root, 'opt/smartdc/svc/app.js'));
    await assert.rejects(copyTree(src, root), /is a directory in the image but not in the proto/);
  });

  /** Runs `body` with a small tmpfs (mount options `opts`) mounted on the image root. */
  async function onTmpfs(opts: string, body: () => Promise<void>): Promise<void> {
    execFileSync('mount', ['-t', 'tmpfs', '-o', opts, 'tmpfs', root]);
    try {
      await body();
    } finally {
      execFileSync('umount', [root]);
    }
  }

  it('a full image file system is named as such, with the proto file that did not fit and a hint', async () => {
    await writeFile(join(src, 'big'), Buffer.alloc(256 * 1024, 1));
    await onTmpfs('size=64k', () =>
      assert.rejects(copyTree(src, root), (e: Error) => {
        assert.ok(e instanceof BuildError);
        assert.equal(e.message, `no space left copying ${join(src, 'big')} into the image`);
        assert.equal(e.hint, "the dataset root's pool or quota is full");
        return true;
      }),
    );
  });

  it('any other failure to write names the path and the system\'s reason', async () => {
    // Files only, copied by the workers (a directory would fail in the walk itself, at mkdir).
    await rm(join(src, 'opt'), { recursive: true });
    await writeFile(join(src, 'f'), 'x');
    await onTmpfs('ro', () =>
      assert.rejects(copyTree(src, root), (e: Error) => {
        assert.ok(e instanceof BuildError);
        assert.match(e.message, new RegExp(`^copy failed at ${join(src, 'f')}: EROFS: read-only file system, open '${join(root, 'f')}'$`));
        assert.equal(e.hint, undefined);
        return true;
      }),
    );
  });

  it('isNoSpace: ENOSPC, and EDQUOT (a quota) whether Node names it or only numbers it, as a worker reports it', () => {
    assert.equal(isNoSpace(Object.assign(new Error('x'), { code: 'ENOSPC', errno: -28 })), true);
    assert.equal(isNoSpace({ path: '/p', message: 'x', errno: -28 }), true);
    assert.equal(isNoSpace({ path: '/p', message: 'x', code: 'EDQUOT' }), true);
    assert.equal(isNoSpace({ path: '/p', message: 'Unknown system error -122', code: 'Unknown system error -122', errno: -122 }), true);
    assert.equal(isNoSpace({ path: '/p', message: 'x', code: 'EIO', errno: -5 }), false);
    assert.equal(isNoSpace(undefined), false);
  });

  it('refuses special files, in one line naming the file', async () => {
    execFileSync('mkfifo', [join(src, 'opt/fifo')]);
    await assert.rejects(copyTree(src, root), (e: Error) => e instanceof BuildError && e.message === `copy failed: ${join(src, 'opt/fifo')} is a special file (device, fifo or socket), not supported in a proto dir`);
  });

  it('a name that is not UTF-8 is named as such in one line with a hint, not as a missing file', async () => {
    await writeFile(Buffer.from(`${join(src, 'opt')}/caf\xe9.txt`, 'latin1'), 'x');
    await assert.rejects(copyTree(src, root), (e: Error) => {
      assert.ok(e instanceof BuildError);
      assert.equal(e.message, `copy failed at ${join(src, 'opt')}/caf\uFFFD.txt: a name in the proto that is not UTF-8 (shown with \uFFFD) cannot be copied`);
      assert.equal(e.hint, 'rename it to UTF-8');
      return true;
    });
  });

  it('a setgid image root, or a setgid directory an image link points to: what the copy puts there is the proto\'s owner and group', async () => {
    // What the kernel gives a new entry in a setgid directory is its group; the copy must set the proto's back.
    await chown(root, 0, 77);
    await chmod(root, 0o2755);
    await writeFile(join(src, 'top.txt'), 'top\n');
    await mkdir(join(root, 'data'));
    await chown(join(root, 'data'), 0, 88);
    await chmod(join(root, 'data'), 0o2775);
    await symlink('data', join(root, 'var'));
    await mkdir(join(src, 'var'));
    await writeFile(join(src, 'var/v.txt'), 'v\n');
    await copyTree(src, root);
    for (const p of ['top.txt', 'data/v.txt', 'opt/smartdc/svc/run.sh']) {
      const st = await lstat(join(root, p));
      assert.deepEqual([p, st.uid, st.gid], [p, 0, 0]);
    }
    assert.equal((await lstat(join(root, 'opt/smartdc/svc/app.js'))).gid, 5678);
    assert.equal((await lstat(join(root, 'var'))).isSymbolicLink(), true, 'the image link stays');
  });

  it('a proto directory with a mode the umask would not give (0750, 0700) has it in the image', async () => {
    await mkdir(join(src, 'private/inner'), { recursive: true });
    await chmod(join(src, 'private'), 0o750);
    await chmod(join(src, 'private/inner'), 0o700);
    await copyTree(src, root);
    assert.equal((await stat(join(root, 'private'))).mode & 0o7777, 0o750);
    assert.equal((await stat(join(root, 'private/inner'))).mode & 0o7777, 0o700);
  });

  it('after a failure no more work is handed out: most of what the walk queued behind it is never copied', async () => {
    // One worker: it holds two batches of 16 when the first one fails at the fifo; the other ~200 files are never sent.
    execFileSync('mkfifo', [join(src, 'fifo')]);
    await mkdir(join(src, 'many'));
    for (let i = 0; i < 230; i++) await writeFile(join(src, `many/${i}`), '');
    await assert.rejects(copyTree(src, root, { concurrency: 1 }), /fifo is a special file/);
    const copied = execFileSync('find', [root, '-type', 'f']).toString().split('\n').filter(Boolean).length;
    assert.ok(copied <= 32, `${copied} files copied after the failure`);
  });

  it('fails clearly on a missing or non-directory proto', async () => {
    await assert.rejects(copyTree(join(top, 'nope'), root), (e: Error) => e.message === `proto directory ${join(top, 'nope')} does not exist`);
    const file = join(src, 'opt/smartdc/svc/app.js');
    await assert.rejects(copyTree(file, root), (e: Error) => e.message === `proto directory ${file} is not a directory`);
  });

  it('a symlinked proto dir (-d) is refused before prepare, as the copy refuses it (issue 12, item 16)', async () => {
    const linked = join(top, 'proto-link');
    await symlink(src, linked);
    const env = { BUILDIMAGE_DATASET_ROOT: 'p/x' };
    const mf = '{"name":"a","version":"1"}';
    const want = new RegExp(`proto directory .*proto-link is a symlink \\(to ${src}\\): pass the directory itself`);
    const definition = async (dir: string) => buildDefinition(await resolveSettings('build', { dir, manifest: mf, image: UUID }, { env }));
    await assert.rejects(definition(linked), (e: Error) => e instanceof UsageError && want.test(e.message));
    await assert.rejects(copyTree(linked, root), want);
    // The directory itself passes both.
    assert.equal((await definition(src)).protoDir, src);
  });
});

describe('WorkerPool', () => {
  it('a worker that dies (here on a job it cannot read) ends drain with its error instead of hanging', async () => {
    const pool = new WorkerPool(2, { umask: currentUmask(), uid: 0, gid: 0 }, () => undefined);
    try {
      pool.add(null as unknown as Job);
      await pool.drain();
      assert.ok(pool.error instanceof Error, JSON.stringify(pool.error));
    } finally {
      await pool.close();
    }
  });
});
