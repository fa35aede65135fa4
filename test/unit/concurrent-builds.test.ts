/**
 * Process-wide state that two builds in one process (`build --jobs N`)
 * share: the signal handler (one, however many builds registered it), the
 * interruption (one build stopped alone under --fail-fast, every one by a
 * signal) and the log (each line names the image whose build wrote it).
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import winston from 'winston';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InterruptedError } from '../../src/core/errors.js';
import { digestFile } from '../../src/core/files.js';
import {
  interrupt,
  interruptSignal,
  interruptedBy,
  onForcedExit,
  onInterruptSignals,
  resetInterrupt,
  stopScope,
  withInterruptScope,
} from '../../src/core/interrupt.js';
import { humanFormat, jsonFormat, log, withLogContext } from '../../src/core/log.js';
import { captureLogs } from '../helpers/logs.js';

function quietConsole(): () => void {
  const consoles = log.transports.filter((t) => t instanceof winston.transports.Console);
  consoles.forEach((t) => (t.silent = true));
  return () => consoles.forEach((t) => (t.silent = false));
}

describe('two builds in one process: signals, interruption, log lines', () => {
  afterEach(() => {
    resetInterrupt();
    onForcedExit(undefined);
  });

  it('one SIGTERM with two builds registered stops both and does not force an exit (one handler, not one per build)', () => {
    const loud = quietConsole();
    const logs = captureLogs();
    const forced: string[] = [];
    onForcedExit((e) => forced.push(e.message));
    const before = process.listenerCount('SIGTERM');
    const offA = onInterruptSignals('stopping and cleaning up');
    const offB = onInterruptSignals('stopping and cleaning up');
    try {
      assert.equal(process.listenerCount('SIGTERM'), before + 1, 'one handler for the process');
      process.emit('SIGTERM', 'SIGTERM');
    } finally {
      offA();
      offB();
      logs.stop();
      loud();
    }
    assert.deepEqual(forced, [], 'a single signal is a stop, not a second signal');
    assert.equal(interruptedBy(), 'SIGTERM');
    assert.equal(logs.lines.filter((l) => /SIGTERM received/.test(l)).length, 1, logs.lines.join(''));
    assert.equal(process.listenerCount('SIGTERM'), before);
  });

  it('a scope stopped alone (--fail-fast) aborts its own work only; a signal aborts every scope', async () => {
    const seen: Record<string, boolean> = {};
    let stopA: (() => void) | undefined;
    const a = withInterruptScope(async (scope) => {
      stopA = () => stopScope(scope, 'another image failed (--fail-fast)');
      await sleep(20);
      seen.a = interruptSignal().aborted;
      return interruptedBy();
    });
    const b = withInterruptScope(async () => {
      await sleep(20);
      seen.b = interruptSignal().aborted;
      return interruptedBy();
    });
    stopA!();
    const [ra, rb] = await Promise.all([a, b]);
    assert.deepEqual(seen, { a: true, b: false });
    assert.equal(ra, 'SIGTERM');
    assert.equal(rb, undefined);
    assert.equal(interruptSignal().aborted, false, 'outside any scope: nothing was interrupted');

    const c = withInterruptScope(async () => {
      await sleep(20);
      return interruptSignal().aborted;
    });
    const off = onInterruptSignals('x');
    const loud = quietConsole();
    try {
      process.emit('SIGINT', 'SIGINT');
    } finally {
      off();
      loud();
    }
    assert.equal(await c, true);
  });

  it('a file hashed after a signal (another build\'s seal still walking) fails with the interruption, and does not crash the process', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'bi-digest-'));
    try {
      await writeFile(join(dir, 'f'), 'x'.repeat(100_000));
      interrupt('SIGTERM');
      await assert.rejects(digestFile(join(dir, 'f'), 'sha256'), (e: unknown) => e instanceof InterruptedError && e.message === 'interrupted by SIGTERM');
      // In a scope stopped alone too (--fail-fast), with its own reason.
      resetInterrupt();
      await withInterruptScope(async (scope) => {
        stopScope(scope, 'image x failed (--fail-fast)');
        await assert.rejects(digestFile(join(dir, 'f'), 'sha256'), /^InterruptedError: stopped: image x failed \(--fail-fast\)$/);
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('log lines of concurrent builds carry their image name (human: a prefix; json: a field)', async () => {
    const loud = quietConsole();
    const logs = captureLogs();
    const t = log.transports[log.transports.length - 1];
    t.format = humanFormat;
    try {
      await Promise.all(
        ['api', 'web'].map((image) =>
          withLogContext({ image }, async () => {
            for (let i = 0; i < 3; i++) {
              await sleep(Math.random() * 5);
              log.info(`step ${i} of ${image}`);
            }
          }),
        ),
      );
      log.info('outside');
    } finally {
      logs.stop();
      loud();
    }
    const lines = logs.lines.map((l) => l.trim());
    for (const image of ['api', 'web']) {
      const mine = lines.filter((l) => l.includes(`of ${image}`));
      assert.equal(mine.length, 3);
      for (const l of mine) assert.match(l, new RegExp(`\\] ${image}: step \\d of ${image}$`));
    }
    assert.match(lines.find((l) => l.endsWith('outside'))!, /\] outside$/);
    const rec = jsonFormat.transform({ level: 'info', message: 'm', image: 'api' }) as Record<symbol, string>;
    assert.equal(JSON.parse(rec[Symbol.for('message')]).image, 'api');
  });
});
