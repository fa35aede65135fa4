/**
 * Hostile proto archives (issue 13, item 2): tarballs given to -d or --add
 * whose entries climb out of the image (`../x`, `/etc/x`), write through a
 * symlink (one the archive made, an earlier archive made, or the base
 * image has), hard-link to the host's files, hold device nodes, declare
 * sizes they do not have, stop early, or expand without end. Each is
 * refused with one line naming the archive and the entry; the bait ("the
 * host") is untouched and the build leaves nothing behind. An --add
 * DIR=ARCHIVE whose DIR goes through a link or climbs with ".." is refused too.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { gzipZeros, rawHeader, rawTar, type RawEntry } from '../../testbed/archives.js';
import { cli, errorLines } from '../helpers/cli.js';
import { layBait, type Bait } from '../helpers/hostile.js';
import { assertNoLeaks, mountsUnder } from '../helpers/leaks.js';
import { world, type World } from '../helpers/world.js';

describe('hostile proto archives', function () {
  this.timeout(10 * 60 * 1000);
  let w: World;
  let bait: Bait;
  let n = 0;
  const mf = JSON.stringify({ name: 'hostile-archive', version: '1.0.0' });
  const ok: RawEntry[] = [
    { name: 'root/', type: '5', mode: 0o755 },
    { name: 'root/opt/', type: '5', mode: 0o755 },
    { name: 'root/opt/app.js', data: 'x\n' },
  ];

  before(async () => {
    w = await world();
    bait = await layBait('bait-archive');
  });
  after(async () => {
    await bait.remove();
  });

  async function archive(content: Buffer, gz = true): Promise<string> {
    const p = join(w.dir, `hostile-${++n}.tar${gz ? '.gz' : ''}`);
    await writeFile(p, gz ? gzipSync(content) : content);
    return p;
  }

  /** A build from `archives` (the first as -d, the rest --add) fails with one line matching `re`; nothing changed or left. */
  async function refused(archives: string[], re: RegExp): Promise<void> {
    const out = await w.outDir();
    const args = ['-i', w.base.uuid, '-d', archives[0], ...archives.slice(1).flatMap((a) => ['--add', a]), '-m', mf, '--output-dir', out];
    const r = await cli(args, { env: w.env });
    assert.equal(r.code, 1, `exit 1 (stderr: ${r.stderr})`);
    const lines = errorLines(r);
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0], re);
    assert.doesNotMatch(r.stderr, new RegExp(bait.secretText.trim().slice(0, 30)), 'no bait content in the output');
    await bait.assertUntouched(r.stderr);
    assert.deepEqual(await mountsUnder(bait.dir), []);
    await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir: w.workDir, outputDir: out, context: r.stderr });
  }

  it('names that climb out: ../x, root/../../x, /etc/x', async () => {
    for (const name of ['../x', 'root/../../../x', `${bait.dir}/etc/x`, '/etc/x']) {
      const a = await archive(rawTar([...ok, { name, data: 'pwned\n' }]));
      const why = name.startsWith('/') ? 'is an absolute name' : 'has a "\\.\\." component';
      await refused([a], new RegExp(`archive ${a}: "${name.replace(/\./g, '\\.')}" ${why}: refusing to extract outside the image`));
    }
  });

  it('a symlink, then a file through it: in one archive, across archives, and through the base image\'s own link', async () => {
    const link: RawEntry = { name: 'root/opt/evil', type: '2', linkname: join(bait.dir, 'etc') };
    const through: RawEntry = { name: 'root/opt/evil/passwd', data: 'pwned\n' };
    const msg = (a: string, shown: string, to: string) =>
      new RegExp(`archive ${a}: "${through.name.replace('opt/evil', shown)}" would be written through /${shown}, a symlink in the image \\(to ${to}\\)`);
    const one = await archive(rawTar([...ok, link, through]));
    await refused([one], msg(one, 'opt/evil', join(bait.dir, 'etc')));
    // The link from the first archive, the file from an --add one.
    const first = await archive(rawTar([...ok, link]));
    const second = await archive(rawTar([through]), false);
    await refused([first, second], msg(second, 'opt/evil', join(bait.dir, 'etc')));
    // The sample base image has bin -> ./usr/bin: a file under root/bin/ with no directory entry is not written through it.
    const viaBase = await archive(rawTar([...ok, { name: 'root/bin/passwd', data: 'pwned\n' }]));
    await refused([viaBase], new RegExp(`archive ${viaBase}: "root/bin/passwd" would be written through /bin, a symlink in the image \\(to \\./usr/bin\\)`));
  });

  it('hard links to the host\'s files, or to what is not in the image', async () => {
    for (const linkname of ['/etc/shadow', 'root/../../../../etc/shadow', bait.secret, 'site/x']) {
      const a = await archive(rawTar([...ok, { name: 'root/opt/shadow', type: '1', linkname }]));
      await refused([a], new RegExp(`archive ${a}: "root/opt/shadow" is a hard link to ${JSON.stringify(linkname).replace(/\./g, '\\.')}, outside root/: refusing`));
    }
    const missing = await archive(rawTar([...ok, { name: 'root/opt/shadow', type: '1', linkname: 'root/etc/no-such' }]));
    await refused([missing], /"root\/opt\/shadow" is a hard link to "root\/etc\/no-such", which is not in the image/);
  });

  it('device nodes and FIFOs', async () => {
    for (const [type, what] of [
      ['3', 'character device'],
      ['4', 'block device'],
      ['6', 'FIFO'],
    ]) {
      const a = await archive(rawTar([...ok, { name: 'root/opt/node', type, mode: 0o666 }]));
      await refused([a], new RegExp(`archive ${a}: "root/opt/node" is a ${what}: device nodes and FIFOs are not extracted into an image`));
    }
  });

  it('huge declared sizes: a long name of a terabyte, a file of a petabyte that is not there', async () => {
    const longName = await archive(Buffer.concat([rawHeader({ name: '././@LongLink', type: 'L', size: 2 ** 40, base256Size: true }), Buffer.alloc(4096)]));
    await refused([longName], new RegExp(`archive ${longName}: a GNU long name of [\\d.]+ [KMGT]i?B declared \\(at most 1\\.0 MB\\): refusing`));
    const bigFile = await archive(Buffer.concat([rawTar(ok, { end: false }), rawHeader({ name: 'root/opt/big', size: 2 ** 50, base256Size: true }), Buffer.alloc(8192)]));
    await refused([bigFile], new RegExp(`archive ${bigFile}: "root/opt/big": truncated: the archive ends inside this entry`));
  });

  it('a truncated archive: cut inside an entry, or before its end-of-archive block', async () => {
    const whole = gzipSync(rawTar([...ok, { name: 'root/opt/data', data: 'y'.repeat(100_000) }]));
    const cut = join(w.dir, `hostile-cut-${++n}.tar.gz`);
    await writeFile(cut, whole.subarray(0, Math.floor(whole.length / 2)));
    await refused([cut], new RegExp(`archive ${cut}: its gzip data is corrupt or truncated \\(gzip exit 1: gzip: stdin: unexpected end of file\\)`));
    const noEnd = await archive(rawTar(ok, { end: false }));
    await refused([noEnd], new RegExp(`archive ${noEnd}: truncated: no end-of-archive block`));
  });

  it('--add DIR=ARCHIVE with DIR aimed out through a link an earlier archive planted, or climbing with ".."', async () => {
    const planter = await archive(rawTar([...ok, { name: 'root/opt/evil', type: '2', linkname: join(bait.dir, 'etc') }]));
    const agent = await archive(rawTar([{ name: 'passwd', data: 'pwned\n' }]));
    await refused(
      [planter, `/opt/evil/smartdc=${agent}`],
      new RegExp(`archive ${agent}: its directory /opt/evil/smartdc would be reached through /opt/evil, a symlink in the image \\(to ${bait.dir}/etc\\)`),
    );
    const out = await w.outDir();
    const r = await cli(['-i', w.base.uuid, '-d', planter, '--add', `root/opt/../..${bait.dir}=${agent}`, '-m', mf, '--output-dir', out], { env: w.env });
    assert.equal(r.code, 2, r.stderr);
    assert.equal(errorLines(r).length, 1, r.stderr);
    assert.match(errorLines(r)[0], /--add .*: DIR has a "\.\." component/);
    await bait.assertUntouched(r.stderr);
    await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir: w.workDir, outputDir: out });
  });

  it('a gzip bomb: a file of zeros expanding a thousand times', async () => {
    const zeros = 320 * 2 ** 20;
    const bomb = join(w.dir, `hostile-bomb-${++n}.tar.gz`);
    await writeFile(bomb, Buffer.concat([gzipSync(Buffer.concat([rawTar(ok, { end: false }), rawHeader({ name: 'root/opt/zeros', size: zeros })])), gzipZeros(zeros)]));
    await refused([bomb], new RegExp(`archive ${bomb}: expands to more than 100× its gzip size .*: refusing a compression bomb`));
  });

  it('a -d or --add that is no archive is refused before prepare (exit 2)', async () => {
    const notTar = join(w.dir, 'not-a-tar.tar.gz.txt');
    await writeFile(notTar, 'hello\n'.repeat(200));
    for (const args of [
      ['-d', notTar],
      ['-d', (await archive(rawTar(ok))), '--add', bait.secret],
    ]) {
      const out = await w.outDir();
      const r = await cli(['-i', w.base.uuid, ...args, '-m', mf, '--output-dir', out], { env: w.env });
      assert.equal(r.code, 2, r.stderr);
      const lines = errorLines(r);
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0], /(proto archive \(-d\)|archive \(--add\)) .* is not a tar archive \(plain, gzip, bzip2 or xz\)/);
      assert.doesNotMatch(r.stderr, /== prepare/);
      await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir: w.workDir, outputDir: out });
    }
    await bait.assertUntouched();
  });
});
