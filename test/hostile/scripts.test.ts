/**
 * Hostile scripts (issue 17, items 1 and 4), through the real CLI as root.
 * A script is named on the command line or in buildimage.json and read when
 * the build is defined: a link, a FIFO, a device, a directory, a huge or a
 * missing file is one error line naming the flag or the file's key, exit 2,
 * before anything is made, and its text (or a link's target's) is never
 * echoed. In the image, a link planted where the script is put is not
 * followed; and a careless script that deletes /usr, writes /usr, /lib,
 * /sbin, /dev, /proc/sys or through /proc/1/root, remounts, or makes device
 * nodes changes nothing of the host (the bait stands for it).
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readListing } from '../../src/contents/file.js';
import { run } from '../../src/host/exec.js';
import { MAX_SCRIPT_BYTES } from '../../src/settings/scripts.js';
import { cli, errorLines, type CliResult } from '../helpers/cli.js';
import { layBait, type Bait } from '../helpers/hostile.js';
import { assertNoLeaks } from '../helpers/leaks.js';
import { world, type World } from '../helpers/world.js';

function assertRefused(r: CliResult, code: number, why: RegExp): void {
  assert.equal(r.code, code, `exit ${code}\n${r.stderr}`);
  const lines = errorLines(r);
  assert.equal(lines.length, 1, `one error line\n${r.stderr}`);
  assert.match(lines[0], why, r.stderr);
}

/** The kernel log, when this host lets root read it. */
async function kernelLog(): Promise<string | undefined> {
  const r = await run('dmesg', [], { okExitCodes: [0, 1] }).catch(() => undefined);
  return r && r.exitCode === 0 ? r.stdout : undefined;
}

describe('hostile: scripts', function () {
  this.timeout(10 * 60 * 1000);
  let w: World;
  let bait: Bait;
  let dir: string;
  let proto: string;
  let out: string;
  const mf = JSON.stringify({ name: 'hscript', version: '1.0.0' });
  const args = (...more: string[]) => ['-i', w.origin.uuid, '-d', proto, '-m', mf, '--output-dir', out, ...more];

  before(async () => {
    w = await world();
    bait = await layBait('scripts-bait');
    dir = join(w.dir, 'hostile-scripts');
    await rm(dir, { recursive: true, force: true });
    proto = join(dir, 'proto');
    await mkdir(join(proto, 'opt/h'), { recursive: true });
    await writeFile(join(proto, 'opt/h/f'), 'f\n');
    out = await w.outDir();
  });
  after(async () => {
    await bait?.assertUntouched();
    await bait?.remove();
  });

  async function refusedAtDefinition(r: CliResult, why: RegExp): Promise<void> {
    assertRefused(r, 2, why);
    assert.ok(!r.stderr.includes(bait.secretText.trim()), 'the secret is never echoed');
    await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir: w.workDir, outputDir: out, context: r.stderr });
  }

  it('a script path that is a link (to a secret), a FIFO, /dev/zero, a directory, huge or missing: one line naming --run, exit 2, nothing made', async () => {
    const link = join(dir, 'link.sh');
    await symlink(bait.secret, link);
    await refusedAtDefinition(await cli(args('--run', link), { env: w.env }), /script \(--run\) .*link\.sh: it is a symbolic link/);

    const fifo = join(dir, 'fifo.sh');
    await run('mkfifo', [fifo]);
    await refusedAtDefinition(await cli(args('--run', fifo), { env: w.env, timeoutMs: 120_000 }), /script \(--run\) .*fifo\.sh: not a regular file/);
    await refusedAtDefinition(await cli(args('--run', '/dev/zero'), { env: w.env, timeoutMs: 120_000 }), /script \(--run\) \/dev\/zero: not a regular file/);
    await refusedAtDefinition(await cli(args('--run', dir), { env: w.env }), /not a regular file/);

    const huge = join(dir, 'huge.sh');
    await writeFile(huge, Buffer.alloc(MAX_SCRIPT_BYTES + 1, 0x23));
    await refusedAtDefinition(await cli(args('--run', huge), { env: w.env }), new RegExp(`script \\(--run\\) .*huge\\.sh is larger than ${MAX_SCRIPT_BYTES} bytes`));

    await refusedAtDefinition(await cli(args('--run', join(dir, 'missing.sh')), { env: w.env }), /script \(--run\) .*missing\.sh: no such file/);
  });

  it('in buildimage.json: a link is named by its key; a bad variable name or a non-string value is refused', async () => {
    const link = join(dir, 'cfg-link.sh');
    await symlink(bait.secret, link);
    const config = join(dir, 'buildimage.json');
    await writeFile(config, JSON.stringify({ scripts: ['cfg-link.sh'] }));
    await refusedAtDefinition(await cli(args('--config', config), { env: w.env }), /script \("scripts" in --config .*buildimage\.json\) .*cfg-link\.sh: it is a symbolic link/);

    await writeFile(join(dir, 'ok.sh'), '#!/bin/sh\n');
    await writeFile(config, JSON.stringify({ scripts: [{ path: 'ok.sh', env: { '1BAD': 'x' } }] }));
    await refusedAtDefinition(await cli(args('--config', config), { env: w.env }), /"scripts" in --config .*: "1BAD" is not a variable name/);
    await writeFile(config, JSON.stringify({ scripts: [{ path: 'ok.sh', env: { A: 1 } }] }));
    await refusedAtDefinition(await cli(args('--config', config), { env: w.env }), /--config .*buildimage\.json: scripts/);
    await writeFile(config, JSON.stringify({ scripts: [{ path: 'ok.sh', run: 'rm -rf /' }] }));
    await refusedAtDefinition(await cli(args('--config', config), { env: w.env }), /--config .*buildimage\.json: scripts\[0\]: unknown key "run"$/);
  });

  it('a link planted in the image where the script is put is not followed: the build fails, the host is untouched', async () => {
    const planted = join(dir, 'proto-planted');
    await mkdir(join(planted, 'opt'), { recursive: true });
    await symlink(join(bait.dir, 'etc/passwd'), join(planted, '.buildimage-script-1'));
    const script = join(dir, 'plain.sh');
    await writeFile(script, '#!/bin/sh\necho hello\n');
    const o = await w.outDir();
    const r = await cli(['-i', w.origin.uuid, '-d', planted, '-m', mf, '--output-dir', o, '--run', script], { env: w.env });
    assertRefused(r, 1, /^buildimage: error: cannot put script plain\.sh into the image: \/\.buildimage-script-1 is already there \(not followed, not replaced\)$/);
    await bait.assertUntouched(r.stderr);
    await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir: w.workDir, outputDir: o, context: r.stderr });
  });

  it('a careless script that writes outside the image changes nothing of the host', async () => {
    const mark = `buildimage-hostile-${process.pid}`;
    const domainBefore = await readFile('/proc/sys/kernel/domainname', 'utf8');
    const script = join(dir, 'careless.sh');
    await writeFile(
      script,
      [
        '#!/bin/sh',
        // Should /usr be writable after all, stop before deleting it.
        'if touch /usr/.buildimage-rw-probe 2>/dev/null; then rm -f /usr/.buildimage-rw-probe; echo "/usr is writable" >&2; exit 9; fi',
        'rm -rf /usr/* /lib/* /sbin/* 2>/dev/null',
        'echo x > /usr/x; echo x > /lib/x; echo x > /sbin/x',
        'mount -o remount,rw /usr && echo x > /usr/x-after-remount',
        'mount -o remount,rw /proc && echo x > /proc/sys/kernel/domainname',
        // The private /dev: device nodes are not the host\'s, new files vanish with it.
        'echo "$MARK" > /dev/kmsg',
        'touch "/dev/$MARK"; mkdir "/dev/$MARK.d"',
        'mknod /tmp/disk b 7 0 && echo "made a block device"',
        // /proc is this namespace\'s and read-only.
        'echo "$MARK" > /proc/sys/kernel/domainname',
        'echo pwned > "/proc/1/root$BAIT/etc/passwd"',
        'echo pwned > "/proc/1/root$BAIT/new-file"',
        'cat "/proc/1/root$BAIT/id_rsa" > /etc/stolen',
        'echo "attempts done"',
        'exit 0',
        '',
      ].join('\n'),
    );
    const o = await w.outDir();
    const r = await cli(['-i', w.origin.uuid, '-d', proto, '-m', mf, '--output-dir', o, '--run', JSON.stringify({ path: script, env: { MARK: mark, BAIT: bait.dir } })], { env: w.env });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /careless\.sh: attempts done/);
    assert.doesNotMatch(r.stderr, /made a block device/);
    await bait.assertUntouched(r.stderr);
    assert.ok(!existsSync(join(bait.dir, 'new-file')));
    for (const p of ['/usr/x', '/lib/x', '/sbin/x', '/usr/x-after-remount', `/dev/${mark}`, `/dev/${mark}.d`]) assert.ok(!existsSync(p), `${p} on the host`);
    assert.ok(existsSync('/usr/bin/sh') && existsSync('/usr/sbin/chroot'), 'the host /usr is whole');
    assert.equal(await readFile('/proc/sys/kernel/domainname', 'utf8'), domainBefore, 'the host domain name is unchanged');
    const klog = await kernelLog();
    if (klog !== undefined) assert.ok(!klog.includes(mark), 'nothing written to the host kernel log');
    await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir: w.workDir, outputDir: o, context: r.stderr });
    // What the script saw: no secret, a /dev of its own.
    const listing = await readListing(join(o, 'hscript-zfs-1.0.0.contents.json.gz'));
    const stolen = listing.entries.find((e) => e.path === '/etc/stolen');
    assert.equal(stolen && 'size' in stolen ? stolen.size : undefined, 0, 'the secret did not reach the image');
  });
});
