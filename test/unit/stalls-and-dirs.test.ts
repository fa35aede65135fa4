/**
 * Issue 12, items 9 and 12: directories on user-given paths are made by a
 * bounded walk; an interruption is answered even by a step that never
 * settles; send and receive streams have a stall limit, not a total one.
 * Small limits by injection, no timed assertions.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { execa } from 'execa';
import winston from 'winston';
import { InterruptedError, UsageError } from '../../src/core/errors.js';
import { ensureDir } from '../../src/core/files.js';
import { interruptedBy, onForcedExit, onInterruptSignals, resetInterrupt, stopOnInterrupt } from '../../src/core/interrupt.js';
import { log } from '../../src/core/log.js';
import { DEFAULT_TIMEOUT_MS, setDefaultTimeout } from '../../src/host/exec.js';
import { Zfs } from '../../src/host/zfs.js';
import { receiveStream, sendCompressed } from '../../src/image/streams.js';

/** Runs `fn` with the console log silenced (signals log warnings). */
async function quietly<T>(fn: () => Promise<T> | T): Promise<T> {
  const consoles = log.transports.filter((t) => t instanceof winston.transports.Console);
  consoles.forEach((t) => (t.silent = true));
  try {
    return await fn();
  } finally {
    consoles.forEach((t) => (t.silent = false));
  }
}

describe('ensureDir: a bounded mkdir -p for user-given paths', () => {
  let dir: string;
  const label = { what: 'output directory', flag: '--output-dir' };
  beforeEach(async () => (dir = await mkdtemp(join(tmpdir(), 'bi-ensuredir-'))));
  afterEach(() => rm(dir, { recursive: true, force: true }));

  async function refused(path: string, why: RegExp): Promise<void> {
    await assert.rejects(ensureDir(path, label), (err: Error) => {
      assert.ok(err instanceof UsageError, `${err.name}: ${err.message}`);
      assert.doesNotMatch(err.message, /\n/);
      assert.match(err.message, new RegExp(`^cannot create output directory ${path.replace(/[/.]/g, '\\$&')} \\(--output-dir\\): `));
      assert.match(err.message, why);
      return true;
    });
  }

  it('makes missing directories, and accepts existing ones and symlinks to directories', async () => {
    await ensureDir(join(dir, 'a/b/c'), label);
    assert.ok((await stat(join(dir, 'a/b/c'))).isDirectory());
    await ensureDir(join(dir, 'a/b/c'), label);
    await symlink(join(dir, 'a'), join(dir, 'link'));
    await ensureDir(join(dir, 'link/b/d'), label);
    assert.ok((await stat(join(dir, 'a/b/d'))).isDirectory());
  });

  it('fails in one line on /proc/nope, where Node\'s recursive mkdir never ends', async () => {
    await refused('/proc/nope', /this file system does not allow it \(ENOENT\)$/);
    await refused('/proc/nope/deeper', /\/proc\/nope: this file system does not allow it \(ENOENT\)$/);
  });

  it('refuses a dangling symlink, a file in the way, and a name too long', async () => {
    await symlink(join(dir, 'nowhere'), join(dir, 'dangling'));
    await refused(join(dir, 'dangling'), /is a dangling symlink \(to .*nowhere\)$/);
    await refused(join(dir, 'dangling/sub'), /dangling: is a dangling symlink/);
    assert.equal(await stat(join(dir, 'nowhere')).catch(() => 'absent'), 'absent', 'nothing made at the link target');
    await writeFile(join(dir, 'file'), 'x');
    await refused(join(dir, 'file'), /exists and is not a directory$/);
    await refused(join(dir, 'file/sub'), /file: exists and is not a directory$/);
    await symlink(join(dir, 'file'), join(dir, 'tofile'));
    await refused(join(dir, 'tofile/sub'), /is a symlink to .*file, which is not a directory$/);
    await refused(join(dir, 'x'.repeat(300)), /name too long \(ENAMETOOLONG\)$/);
  });

  it('refuses a directory it may not write (as a user without the right)', async function () {
    if (process.getuid?.() === 0) {
      // Root writes anywhere; a read-only file system says no to root too.
      await refused('/proc/sys/nope', /\(E[A-Z]+\)$/);
      return;
    }
    await mkdir(join(dir, 'locked'));
    await chmod(join(dir, 'locked'), 0o500);
    await refused(join(dir, 'locked/sub'), /permission denied \(EACCES\)$/);
  });
});

describe('interrupts: answered whatever the step is doing', () => {
  afterEach(() => {
    resetInterrupt();
    onForcedExit(undefined);
  });

  it('stopOnInterrupt throws the interruption when the step never settles, after the grace', async () => {
    await quietly(async () => {
      const off = onInterruptSignals('stopping for the test');
      try {
        const never = new Promise<void>(() => undefined);
        const stopped = stopOnInterrupt(never, 50);
        process.emit('SIGTERM', 'SIGTERM');
        await assert.rejects(stopped, (err: Error) => err instanceof InterruptedError && /interrupted by SIGTERM/.test(err.message));
      } finally {
        off();
      }
    });
  });

  it('stopOnInterrupt passes a step\'s own outcome through, interrupted or not', async () => {
    assert.equal(await stopOnInterrupt(Promise.resolve(7), 50), 7);
    await assert.rejects(stopOnInterrupt(Promise.reject(new Error('its own')), 50), /its own/);
  });

  it('SIGHUP interrupts as SIGTERM does (exit 129); a second signal exits at once', async () => {
    await quietly(async () => {
      const exits: InterruptedError[] = [];
      onForcedExit((err) => exits.push(err));
      const off = onInterruptSignals('stopping for the test');
      try {
        process.emit('SIGHUP', 'SIGHUP');
        assert.equal(interruptedBy(), 'SIGHUP');
        assert.equal(exits.length, 0, 'the first signal stops and cleans up, it does not exit');
        process.emit('SIGTERM', 'SIGTERM');
      } finally {
        off();
      }
      assert.equal(exits.length, 1);
      assert.equal(exits[0].exitCode, 129);
      assert.match(exits[0].message, /^interrupted by SIGHUP \(SIGTERM received again\)$/);
      assert.match(exits[0].hint ?? '', /buildimage clean/);
    });
  });

  it('a stop that outlives its deadline exits', async () => {
    await quietly(async () => {
      const exited = new Promise<InterruptedError>((resolve) => onForcedExit(resolve));
      const off = onInterruptSignals('stopping for the test', { deadlineMs: 50 });
      try {
        process.emit('SIGINT', 'SIGINT');
        const err = await exited;
        assert.equal(err.exitCode, 130);
        assert.match(err.message, /^interrupted by SIGINT \(still stopping 0s after SIGINT\)$/);
      } finally {
        off();
      }
    });
  });
});

describe('send and receive streams: a stall limit, not a total timeout', () => {
  let dir: string;
  let zfs: Zfs;
  const payload = randomBytes(6 * 64 * 1024);
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'bi-stall-'));
    // Stand-ins for `zfs send` and `zfs receive` (only the streams' timing is under test):
    // ZFS_SEND_MODE=slow sends in six chunks 0.15 s apart; stall sends one and hangs.
    await writeFile(join(dir, 'payload'), payload);
    const zfsStandin = join(dir, 'zfs');
    await writeFile(
      zfsStandin,
      [
        '#!/bin/sh',
        'case "$1" in',
        // abort: as zfs-fuse's zfs when its reader goes away: send until the pipe breaks, then die by SIGABRT.
        `send) if [ "$ZFS_SEND_MODE" = abort ]; then trap '' PIPE TERM; while dd if=${join(dir, 'payload')} bs=65536 2>/dev/null; do :; done; kill -ABRT $$; fi`,
        `      for i in 0 1 2 3 4 5; do dd if=${join(dir, 'payload')} bs=65536 skip=$i count=1 2>/dev/null; sleep 0.15;`,
        '      if [ "$ZFS_SEND_MODE" = stall ]; then exec sleep 60; fi; done ;;',
        'receive) exec cat > "$ZFS_RECEIVED" ;;',
        'esac',
        '',
      ].join('\n'),
      { mode: 0o755 },
    );
    zfs = new Zfs(zfsStandin);
  });
  after(() => rm(dir, { recursive: true, force: true }));
  beforeEach(() => setDefaultTimeout(200));
  afterEach(() => {
    setDefaultTimeout(DEFAULT_TIMEOUT_MS);
    delete process.env.ZFS_SEND_MODE;
    delete process.env.ZFS_RECEIVED;
  });

  it('a send slower than the step timeout but never idle finishes', async () => {
    process.env.ZFS_SEND_MODE = 'slow';
    const out = join(dir, 'slow.zfs.gz');
    const file = await sendCompressed(zfs, 'pool/x@final', undefined, 'gzip', out, { stallMs: 2000 });
    assert.ok(file.size > 0);
    assert.deepEqual((await import('node:zlib')).gunzipSync(await readFile(out)), payload);
  });

  it('a send that stops sending fails after the stall limit, in one line', async () => {
    process.env.ZFS_SEND_MODE = 'stall';
    await assert.rejects(sendCompressed(zfs, 'pool/x@final', undefined, 'gzip', join(dir, 'stall.zfs.gz'), { stallMs: 300 }), (err: Error) => {
      assert.match(err.message, /^sending pool\/x@final stalled: no data for 0\.3s$/);
      return true;
    });
  });

  it('a full output disk is named as the cause, not the zfs send that died of the closed pipe after it', async () => {
    process.env.ZFS_SEND_MODE = 'abort';
    const full = join(dir, 'full');
    await mkdir(full);
    await execa('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', full]);
    try {
      await assert.rejects(sendCompressed(zfs, 'pool/x@final', undefined, 'none', join(full, 'img.zfs')), (err: Error) => {
        assert.equal(err.message, `no space left writing ${join(full, 'img.zfs')}`);
        return true;
      });
    } finally {
      await execa('umount', [full]);
    }
  });

  /** A source that gives `chunks` one by one, `gapMs` apart, then ends (or, with `hang`, never does). */
  function trickle(chunks: Buffer[], gapMs: number, hang = false): Readable {
    const r = new Readable({ read: () => undefined });
    let i = 0;
    const next = (): void => {
      if (i < chunks.length) {
        r.push(chunks[i++]);
        setTimeout(next, gapMs);
      } else if (!hang) r.push(null);
    };
    next();
    return r;
  }

  function gzipChunks(): Buffer[] {
    const gz = gzipSync(payload);
    const size = Math.ceil(gz.length / 8);
    return Array.from({ length: 8 }, (_, i) => gz.subarray(i * size, (i + 1) * size));
  }

  it('a receive slower than the step timeout but never idle finishes', async () => {
    process.env.ZFS_RECEIVED = join(dir, 'received');
    await receiveStream(zfs, 'pool/x-partial', trickle(gzipChunks(), 100), 'gzip', {}, 'slow');
    assert.deepEqual(await readFile(join(dir, 'received')), payload);
  });

  it('a receive whose source stops fails after the stall limit, in one line', async () => {
    process.env.ZFS_RECEIVED = join(dir, 'received-stall');
    const chunks = gzipChunks().slice(0, 3);
    await assert.rejects(receiveStream(zfs, 'pool/x-partial', trickle(chunks, 20, true), 'gzip', {}, 'stuck', { stallMs: 300 }), (err: Error) => {
      assert.match(err.message, /^image stuck: receive stalled: no data for 0\.3s$/);
      return true;
    });
  });
});
