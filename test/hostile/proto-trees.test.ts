/**
 * Hostile proto trees (issue 12): links out of the tree (absolute,
 * relative, `..`-named), set-id files, hard links to files outside, device
 * nodes, FIFOs and sockets, and a symlinked -d. What the proto holds goes
 * into the image as it is (links as links, never followed on the host);
 * what cannot be copied safely is refused with one line; the bait ("the
 * host") is untouched and nothing is left behind.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmod, chown, link, lstat, mkdir, readFile, readlink, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { cli, errorLines } from '../helpers/cli.js';
import { layBait, type Bait } from '../helpers/hostile.js';
import { assertNoLeaks, mountsUnder } from '../helpers/leaks.js';
import { world, type World } from '../helpers/world.js';

const climbTo = (abs: string) => '../'.repeat(24) + abs.slice(1);

describe('hostile proto trees', function () {
  this.timeout(10 * 60 * 1000);
  let w: World;
  let bait: Bait;
  let n = 0;
  const mf = JSON.stringify({ name: 'hostile-proto', version: '1.0.0' });

  before(async () => {
    w = await world();
    bait = await layBait('bait-proto');
  });
  after(async () => {
    await bait.remove();
  });

  async function freshProto(): Promise<string> {
    const proto = join(w.dir, `proto-hostile-${++n}`);
    await mkdir(join(proto, 'opt/svc'), { recursive: true });
    await writeFile(join(proto, 'opt/svc/app.js'), 'x\n');
    return proto;
  }

  it('links out of the tree are copied as links, set-id bits and owners kept, hard links to outside files copied as files', async () => {
    const proto = await freshProto();
    const svc = join(proto, 'opt/svc');
    const links: Record<string, string> = {
      'opt/svc/abs-file': bait.secret,
      'opt/svc/abs-dir': bait.dir,
      'opt/svc/rel-out': climbTo(join(bait.dir, 'etc')),
      'opt/svc/dotdot': '..',
      'opt/svc/..hidden': '/',
      'opt/svc/...': '../../../..',
      'etc/passwd': join(bait.dir, 'etc/passwd'),
    };
    await mkdir(join(proto, 'etc'));
    for (const [p, target] of Object.entries(links)) await symlink(target, join(proto, p));
    await mkdir(join(svc, '..d'));
    await writeFile(join(svc, '..d/f'), 'in a ..-named dir\n');
    await writeFile(join(svc, 'suid'), '#!/bin/sh\n');
    await chown(join(svc, 'suid'), 0, 0);
    await chmod(join(svc, 'suid'), 0o4755);
    await writeFile(join(svc, 'sgid-other'), '#!/bin/sh\n');
    await chown(join(svc, 'sgid-other'), 4321, 4321);
    await chmod(join(svc, 'sgid-other'), 0o2711);
    // A hard link to a file outside the tree (the host's secret), and a pair inside it.
    await link(bait.secret, join(svc, 'hard-out'));
    await link(join(svc, 'app.js'), join(svc, 'app-hard.js'));

    const out = await w.outDir();
    const state = join(w.dir, `proto-state-${n}.json`);
    let r = await cli(['prepare', '-i', w.base.uuid, '-d', proto, '-m', mf, '--output-dir', out, '--state', state, '--json'], { env: w.env });
    assert.equal(r.code, 0, r.stderr);
    const root = join(JSON.parse(r.stdout).analog.mountpoint, 'root');
    try {
      r = await cli(['assemble', '--state', state], { env: w.env });
      assert.equal(r.code, 0, r.stderr);
      for (const [p, target] of Object.entries(links)) {
        assert.ok((await lstat(join(root, p))).isSymbolicLink(), `${p} is a link in the image`);
        assert.equal(await readlink(join(root, p)), target, `${p} keeps its target`);
      }
      assert.equal(await readFile(join(root, 'opt/svc/..d/f'), 'utf8'), 'in a ..-named dir\n');
      const suid = await stat(join(root, 'opt/svc/suid'));
      assert.equal(suid.mode & 0o7777, 0o4755);
      assert.equal(suid.uid, 0);
      const sgid = await stat(join(root, 'opt/svc/sgid-other'));
      assert.equal(sgid.mode & 0o7777, 0o2711);
      assert.deepEqual([sgid.uid, sgid.gid], [4321, 4321]);
      // The outside file's content is what the proto holds; its copy is the image's own file.
      const rootDev = (await stat(root)).dev;
      const hardOut = await stat(join(root, 'opt/svc/hard-out'));
      assert.equal(hardOut.dev, rootDev, 'a file in the dataset');
      assert.equal(hardOut.nlink, 1, 'not linked to anything outside the image');
      const a = await stat(join(root, 'opt/svc/app.js'));
      const b = await stat(join(root, 'opt/svc/app-hard.js'));
      assert.equal(a.ino, b.ino, 'the proto\'s own hard links stay linked');
      assert.equal(a.dev, rootDev);
      // Nothing was written through a link: the base's own etc/passwd was replaced by the link, the bait kept.
      await bait.assertUntouched(r.stderr);
    } finally {
      r = await cli(['clean', '--state', state], { env: w.env });
      assert.equal(r.code, 0, r.stderr);
      await rm(join(svc, 'hard-out'));
    }
    await bait.assertUntouched();
    await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir: w.workDir, outputDir: out });
  });

  it('the whole build with such links succeeds and touches nothing outside', async () => {
    const proto = await freshProto();
    await symlink(bait.dir, join(proto, 'opt/svc/host'));
    await symlink(climbTo(bait.secret), join(proto, 'opt/svc/key'));
    await mkdir(join(proto, 'var/db'), { recursive: true });
    await symlink(bait.dir, join(proto, 'var/db/pkgin'));
    const out = await w.outDir();
    const r = await cli(['-i', w.base.uuid, '-d', proto, '-m', mf, '--output-dir', out, '-M'], { env: w.env });
    assert.equal(r.code, 0, r.stderr);
    await bait.assertUntouched(r.stderr);
    assert.deepEqual(await mountsUnder(bait.dir), []);
    await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir: w.workDir, outputDir: out, context: r.stderr });
  });

  it('device nodes, FIFOs and sockets are refused with one line naming the file', async () => {
    const kinds: Array<[string, (p: string) => Promise<void>]> = [
      ['char device', async (p) => void execFileSync('mknod', [p, 'c', '1', '3'])],
      ['block device', async (p) => void execFileSync('mknod', [p, 'b', '7', '0'])],
      ['fifo', async (p) => void execFileSync('mkfifo', [p])],
      [
        'socket',
        (p) =>
          new Promise<void>((resolve, reject) => {
            const s = createServer();
            s.on('error', reject);
            // Closing the server unlinks its socket file: keep a hard link to it.
            s.listen(p, () => {
              link(p, `${p}.kept`).then(() => s.close(() => resolve()), reject);
            });
          }),
      ],
    ];
    for (const [kind, make] of kinds) {
      const proto = await freshProto();
      const special = join(proto, 'opt/svc/special');
      await make(special);
      const bad = kind === 'socket' ? `${special}.kept` : special;
      const out = await w.outDir();
      const r = await cli(['-i', w.base.uuid, '-d', proto, '-m', mf, '--output-dir', out], { env: w.env });
      assert.equal(r.code, 1, `${kind}: exit 1 (stderr: ${r.stderr})`);
      const lines = errorLines(r);
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0], new RegExp(`copy failed: ${bad} is a special file`), kind);
      await bait.assertUntouched(r.stderr);
      await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir: w.workDir, outputDir: out, context: r.stderr });
    }
  });

  it('a symlinked -d is refused before prepare (issue 12, item 16), whether it points at a proto or at the host', async () => {
    const proto = await freshProto();
    const viaLink = join(w.dir, `proto-link-${n}`);
    await symlink(proto, viaLink);
    const toHost = join(w.dir, `proto-host-${n}`);
    await symlink(bait.dir, toHost);
    for (const [d, target] of [
      [viaLink, proto],
      [toHost, bait.dir],
    ]) {
      const out = await w.outDir();
      const r = await cli(['-i', w.base.uuid, '-d', d, '-m', mf, '--output-dir', out], { env: w.env });
      assert.equal(r.code, 2, r.stderr);
      const lines = errorLines(r);
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0], new RegExp(`proto directory \\(-d\\) ${d} is a symlink \\(to ${target}\\): pass the directory itself`));
      assert.doesNotMatch(r.stderr, /== prepare/, 'refused before prepare');
      await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir: w.workDir, outputDir: out });
    }
    await bait.assertUntouched();
  });
});
