/**
 * A failure in each stage: a non-zero exit, one clear line, and nothing
 * left behind (no dataset, mount, mountpoint, build dir or temp output).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { copyFile, mkdir, readFile, readdir, rename, rm, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../../src/host/exec.js';
import { cli, errorLines, type CliResult } from '../helpers/cli.js';
import { assertNoLeaks } from '../helpers/leaks.js';
import { world, type World } from '../helpers/world.js';

describe('failures leave nothing behind', function () {
  this.timeout(5 * 60 * 1000);
  let w: World;
  let proto: string;
  const mf = JSON.stringify({ name: 'fail', version: '1.0.0' });

  before(async () => {
    w = await world();
    proto = join(w.dir, 'proto-fail');
    await mkdir(join(proto, 'opt/x'), { recursive: true });
    await writeFile(join(proto, 'opt/x/a'), 'a');
  });

  async function expectFailure(r: CliResult, re: RegExp, out?: string, images?: string[]): Promise<void> {
    assert.equal(r.code, 1, `exit code 1 (stderr: ${r.stderr})`);
    const lines = errorLines(r);
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0], re);
    assert.doesNotMatch(r.stderr, /\n\s+at .*\(/, 'no stack trace');
    await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir: w.workDir, outputDir: out, images });
    if (out) assert.deepEqual(await readdir(out), [], 'no outputs from a failed build');
  }

  /** A copy of the sample base image under a new uuid, with `mutate` applied to its manifest and file. */
  async function variantSource(mutate: (m: Record<string, any>, file: string) => Promise<string | void>): Promise<{ dir: string; uuid: string }> {
    const dir = join(w.dir, `variant-${randomUUID().slice(0, 8)}`);
    await mkdir(dir);
    const uuid = randomUUID();
    const m = JSON.parse(await readFile(join(w.sampleDir, 'minimal-64-lts-sample-24.4.1.imgmanifest'), 'utf8'));
    m.uuid = uuid;
    const file = join(dir, 'img.zfs.gz');
    await copyFile(join(w.sampleDir, 'minimal-64-lts-sample-24.4.1.zfs.gz'), file);
    const renamed = await mutate(m, file);
    if (renamed) {
      await rename(file, join(dir, renamed));
    }
    await writeFile(join(dir, 'img.imgmanifest'), JSON.stringify(m));
    return { dir, uuid };
  }

  const known = () => [w.base.uuid, w.origin.uuid];

  it('prepare: unknown base image', async () => {
    const out = await w.outDir();
    const uuid = randomUUID();
    const r = await cli(['-i', uuid, '-d', proto, '-m', mf, '--output-dir', out], { env: w.env });
    await expectFailure(r, new RegExp(`image ${uuid} not found in ${w.sampleDir}`), out, known());
  });

  it('prepare: image file whose sha1 does not match its manifest', async () => {
    const v = await variantSource(async (m) => {
      m.files[0].sha1 = '0123456789abcdef0123456789abcdef01234567';
    });
    const out = await w.outDir();
    const r = await cli(['-i', v.uuid, '-d', proto, '-m', mf, '--output-dir', out, '--source', v.dir], { env: w.env });
    await expectFailure(r, new RegExp(`image ${v.uuid}: sha1: expected 0123456789abcdef0123456789abcdef01234567, got [0-9a-f]{40}`), out, known());
  });

  it('prepare: truncated image file', async () => {
    const v = await variantSource(async (_m, file) => {
      await truncate(file, 1000);
    });
    const out = await w.outDir();
    const r = await cli(['-i', v.uuid, '-d', proto, '-m', mf, '--output-dir', out, '--source', v.dir], { env: w.env });
    await expectFailure(r, new RegExp(`image ${v.uuid}: size: expected \\d+ bytes, got 1000`), out, known());
  });

  it('prepare: image file with the wrong compression', async () => {
    const v = await variantSource(async (m) => {
      m.files[0].compression = 'bzip2';
      return 'img.zfs.bz2';
    });
    const out = await w.outDir();
    const r = await cli(['-i', v.uuid, '-d', proto, '-m', mf, '--output-dir', out, '--source', v.dir], { env: w.env });
    await expectFailure(r, new RegExp(`import of image ${v.uuid} failed: .*invalid stream.*not bzip2-compressed as its manifest says`), out, known());
  });

  it('assemble: a proto the copy cannot handle (a fifo)', async () => {
    const bad = join(w.dir, 'proto-fifo');
    await mkdir(join(bad, 'opt'), { recursive: true });
    await run('mkfifo', [join(bad, 'opt/pipe')]);
    const out = await w.outDir();
    const r = await cli(['-i', w.origin.uuid, '-d', bad, '-m', mf, '--output-dir', out], { env: w.env });
    await expectFailure(r, /special file/, out, known());
  });

  it('pkgadd: a package that does not exist (mounts are undone)', async () => {
    const out = await w.outDir();
    const r = await cli(['-i', w.origin.uuid, '-d', proto, '-m', mf, '-p', 'nosuchpkg', '--output-dir', out], { env: w.env });
    await expectFailure(r, /pkg_add -U nosuchpkg failed \(exit 1\): .*no pkg found for 'nosuchpkg'/, out, known());
  });

  it('seal: a full output directory', async () => {
    const out = join(w.dir, 'tiny-out');
    await mkdir(out, { recursive: true });
    await run('mount', ['-t', 'tmpfs', '-o', 'size=8k', 'tmpfs', out]);
    try {
      const r = await cli(['-i', w.origin.uuid, '-d', proto, '-m', mf, '-p', 'webfetch', '--output-dir', out, '--compression', 'none'], { env: w.env });
      await expectFailure(r, /seal failed|writing .* failed|ENOSPC|no space/i, out, known());
    } finally {
      await run('umount', [out]);
      await rm(out, { recursive: true, force: true });
    }
  });
});
