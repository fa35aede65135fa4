import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { spawn } from 'node:child_process';
import { mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { HashCounter, VerifyingStream } from '../../src/image/streams.js';
import { acquireLock, lockHeld } from '../../src/host/lock.js';
import { chrootProxyEnv, parsePkgInfo } from '../../src/pkgsrc/tools.js';
import { renderMotd } from '../../src/build/stages/assemble.js';
import { parseMinPlatform } from '../../src/settings/table.js';
import sinon from 'sinon';
import winston from 'winston';
import { InterruptedError } from '../../src/core/errors.js';
import { readAtMost, readSmallFile } from '../../src/core/files.js';
import { interrupt, interruptedBy, interruptSignal, onInterruptSignals, resetInterrupt } from '../../src/core/interrupt.js';
import { log } from '../../src/core/log.js';
import { Backoff, retryLine, withRetry } from '../../src/core/retry.js';
import { captureLogs } from '../helpers/logs.js';

function sink(): { stream: Writable; chunks: Buffer[] } {
  const chunks: Buffer[] = [];
  return { chunks, stream: new Writable({ write: (c, _e, cb) => (chunks.push(c), cb()) }) };
}

describe('streams: hashing and verification', () => {
  const data = Buffer.from('a'.repeat(100_000) + 'end');
  const sha1 = createHash('sha1').update(data).digest('hex');

  it('HashCounter counts and hashes in one pass', async () => {
    const h = new HashCounter({ md5: true });
    await pipeline(Readable.from([data.subarray(0, 10), data.subarray(10)]), h, sink().stream);
    assert.deepEqual(h.digest(), { sha1, size: data.length, md5: createHash('md5').update(data).digest('base64') });
  });

  it('VerifyingStream passes good bytes whole', async () => {
    const out = sink();
    await pipeline(Readable.from([data.subarray(0, 7), data.subarray(7)]), new VerifyingStream({ sha1, size: data.length }, (d) => new Error(d)), out.stream);
    assert.deepEqual(Buffer.concat(out.chunks), data);
  });

  it('VerifyingStream withholds the last chunk on a sha1 or size mismatch', async () => {
    for (const [exp, re] of [
      [{ sha1: '0'.repeat(40), size: data.length }, /sha1: expected 0{40}, got/],
      [{ sha1, size: data.length + 1 }, /size: expected/],
      [{ sha1, size: 5 }, /more than the expected 5/],
    ] as const) {
      const out = sink();
      await assert.rejects(pipeline(Readable.from([data.subarray(0, 7), data.subarray(7)]), new VerifyingStream(exp, (d) => new Error(d)), out.stream), re);
      assert.ok(Buffer.concat(out.chunks).length < data.length);
    }
  });
});

describe('lock files', () => {
  let dir: string;
  beforeEach(async () => (dir = await mkdtemp(join(tmpdir(), 'bi-lock-'))));
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('excludes a second holder until released, and says it waits', async () => {
    const path = join(dir, 'x.lock');
    const a = await acquireLock(path);
    assert.equal(await lockHeld(path), true);
    let waited = false;
    const b = acquireLock(path, { pollMs: 20, onWait: () => (waited = true) });
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(waited, true);
    await a.release();
    const lb = await b;
    await lb.release();
    assert.equal(await lockHeld(path), false);
  });

  it('breaks a lock whose process is gone (kill -9)', async () => {
    const child = spawn('sleep', ['10']);
    const path = join(dir, 'stale.lock');
    await writeFile(path, JSON.stringify({ pid: child.pid, host: (await import('node:os')).hostname(), since: '' }));
    child.kill('SIGKILL');
    await new Promise((r) => child.on('exit', r));
    const l = await acquireLock(path, { timeoutMs: 2000 });
    assert.equal(JSON.parse(await readFile(path, 'utf8')).pid, process.pid);
    await l.release();
  });

  it('times out with a clear message', async () => {
    const path = join(dir, 't.lock');
    const a = await acquireLock(path);
    await assert.rejects(acquireLock(path, { timeoutMs: 100, pollMs: 20 }), /timed out waiting for lock/);
    await a.release();
  });
});

describe('pkgsrc helpers', () => {
  it('parses pkg_info -a index lines, sorted', () => {
    const out = 'zlib-1.3               General purpose data compression library\ncurl-8.1.0          Command line tool\nverylongpackagename-19.0 A comment\n\n';
    assert.deepEqual(parsePkgInfo(out), [
      { name: 'curl-8.1.0', comment: 'Command line tool' },
      { name: 'verylongpackagename-19.0', comment: 'A comment' },
      { name: 'zlib-1.3', comment: 'General purpose data compression library' },
    ]);
  });

  it('resolves proxy host names for use in the chroot, keeps IPs and no_proxy', async () => {
    const env = await chrootProxyEnv({ http_proxy: 'http://localhost:3128', https_proxy: 'http://10.1.2.3:8080/', no_proxy: '.local' });
    assert.equal(env.http_proxy, 'http://127.0.0.1:3128');
    assert.equal(env.https_proxy, 'http://10.1.2.3:8080/');
    assert.equal(env.no_proxy, '.local');
    await assert.rejects(chrootProxyEnv({ http_proxy: 'http://no-such-host.invalid:1' }), /cannot resolve proxy host no-such-host.invalid/);
  });

  it('renders the original motd', () => {
    assert.equal(
      renderMotd({ name: 'imgapi', version: '1.2', sourceRepo: 'https://github.com/TritonDataCenter/sdc-imgapi', origin: { name: 'triton-origin', version: '24.4.1' } }),
      ' =  T R I T O N  =\n\n    imgapi (1.2)\n    https://github.com/TritonDataCenter/sdc-imgapi\n    triton-origin@24.4.1\n\n',
    );
  });

  it('parses --min-platform', () => {
    assert.deepEqual(parseMinPlatform('20210826T002459Z'), { '7.0': '20210826T002459Z' });
    assert.deepEqual(parseMinPlatform('7.0=20210826T002459Z'), { '7.0': '20210826T002459Z' });
    assert.throws(() => parseMinPlatform('yesterday'), /platform stamp/);
  });
});

describe('withRetry', () => {
  const quiet = { onRetry: () => {} };
  afterEach(() => resetInterrupt());

  it('retries only what it is told, a bounded number of times', async () => {
    let n = 0;
    await assert.rejects(
      withRetry(async () => { n++; throw new Error('dataset is busy'); }, { attempts: 3, firstDelayMs: 1, retryable: () => true, ...quiet }),
      /busy/,
    );
    assert.equal(n, 3);
    n = 0;
    await assert.rejects(withRetry(async () => { n++; throw new Error('no'); }, { attempts: 3, firstDelayMs: 1, retryable: () => false }));
    assert.equal(n, 1);
    assert.equal(await withRetry(async (a) => (a < 2 ? Promise.reject(new Error('x')) : 'ok'), { attempts: 3, firstDelayMs: 1, retryable: () => true, ...quiet }), 'ok');
  });

  it('logs one warning per retry in the one retry format, unless given its own onRetry', async () => {
    assert.equal(retryLine(new Error('PUT /a: 503\n  busy'), 1, 5, 1500), 'PUT /a: 503 busy; retrying in 1.5 s (attempt 2 of 5)');
    assert.equal(retryLine('moved on', 2, 5, 0), 'moved on; retrying now (attempt 3 of 5)');
    const consoles = log.transports.filter((t) => t instanceof winston.transports.Console);
    consoles.forEach((t) => (t.silent = true));
    const logs = captureLogs();
    const seen: Array<[number, number]> = [];
    try {
      await assert.rejects(withRetry(async () => { throw new Error('boom'); }, { attempts: 3, firstDelayMs: 100, maxDelayMs: 100, retryable: () => true }));
      await assert.rejects(withRetry(async () => { throw new Error('hook'); }, { attempts: 2, firstDelayMs: 1, retryable: () => true, onRetry: (_e, a, d) => seen.push([a, d]) }));
    } finally {
      logs.stop();
      consoles.forEach((t) => (t.silent = false));
    }
    assert.deepEqual(
      logs.lines.filter((l) => l.includes('retrying')).map((l) => l.replace(/^\[[^\]]*\] /, '').trim()),
      ['WARN: boom; retrying in 0.1 s (attempt 2 of 3)', 'WARN: boom; retrying in 0.1 s (attempt 3 of 3)'],
    );
    assert.deepEqual(seen, [[1, 1]]);
  });

  it('doubles the wait up to its cap; a Retry-After in the error lengthens a wait, within its own cap', () => {
    const b = new Backoff({ attempts: 9, firstDelayMs: 100, maxDelayMs: 300 });
    assert.deepEqual([b.next(), b.next(), b.next(), b.next()], [100, 200, 300, 300]);
    b.reset();
    assert.equal(b.next(Object.assign(new Error('x'), { retryAfterMs: 250 })), 250, 'capped by maxDelayMs when no maxRetryAfterMs');
    assert.equal(b.next(Object.assign(new Error('x'), { retryAfterMs: 900 })), 300);
    const c = new Backoff({ attempts: 9, firstDelayMs: 100, maxDelayMs: 300, maxRetryAfterMs: 2000 });
    assert.equal(c.next(Object.assign(new Error('x'), { retryAfterMs: 0 })), 100, 'never shorter than the backoff');
    assert.equal(c.next(Object.assign(new Error('x'), { retryAfterMs: 1500 })), 1500);
    assert.equal(c.next(Object.assign(new Error('x'), { retryAfterMs: 60_000 })), 2000);
  });

  it('starts no retry that would end past the time budget', async () => {
    // Each try takes 30 ms on the clock withRetry reads (Date, faked; its waits are real 40 ms):
    // fails at 30, 30+40 <= 100 waits; at 60, 60+40 <= 100 waits; at 90, 90+40 > 100 gives up.
    const clock = sinon.useFakeTimers({ toFake: ['Date'] });
    try {
      let n = 0;
      const waits: number[] = [];
      await assert.rejects(
        withRetry(
          async () => {
            n++;
            clock.tick(30);
            throw new Error('down');
          },
          { attempts: 100, firstDelayMs: 40, maxDelayMs: 40, budgetMs: 100, retryable: () => true, onRetry: (_e, _a, ms) => waits.push(ms) },
        ),
        /down/,
      );
      assert.equal(n, 3);
      assert.deepEqual(waits, [40, 40]);
    } finally {
      clock.restore();
    }
  });

  it('SIGINT/SIGTERM cut a wait short and the interruption is thrown; a retry started after one (cleanup) runs on', async () => {
    const t0 = Date.now();
    // A 10-minute wait: cut short, it ends a hundred times sooner whatever the machine's load.
    const p = withRetry(async () => { throw new Error('busy'); }, { attempts: 5, firstDelayMs: 600_000, maxDelayMs: 600_000, retryable: () => true, ...quiet });
    setTimeout(() => interrupt('SIGTERM'), 20);
    await assert.rejects(p, (e: InterruptedError) => e instanceof InterruptedError && e.signal === 'SIGTERM');
    assert.ok(Date.now() - t0 < 6_000, 'stopped long before the wait would end');
    assert.equal(await withRetry(async (a) => (a < 3 ? Promise.reject(new Error('busy')) : 'cleaned'), { attempts: 3, firstDelayMs: 5, retryable: () => true, ...quiet }), 'cleaned');
  });
});

describe('onInterruptSignals', () => {
  afterEach(() => resetInterrupt());

  it('logs "<signal> received: <message>" and sets the interruption until uninstalled', () => {
    const before = process.listenerCount('SIGTERM');
    const consoles = log.transports.filter((t) => t instanceof winston.transports.Console);
    consoles.forEach((t) => (t.silent = true));
    const logs = captureLogs();
    const off = onInterruptSignals('stopping for the test');
    try {
      assert.equal(process.listenerCount('SIGTERM'), before + 1);
      process.emit('SIGTERM', 'SIGTERM');
    } finally {
      off();
      logs.stop();
      consoles.forEach((t) => (t.silent = false));
    }
    assert.equal(interruptedBy(), 'SIGTERM');
    assert.ok(interruptSignal().aborted);
    assert.ok(logs.lines.some((l) => /WARN: SIGTERM received: stopping for the test$/m.test(l)), logs.lines.join(''));
    assert.equal(process.listenerCount('SIGTERM'), before);
  });
});

describe('readAtMost / readSmallFile: bounded reads', () => {
  let dir: string;
  before(async () => (dir = await mkdtemp(join(tmpdir(), 'bi-bounded-'))));
  after(() => rm(dir, { recursive: true, force: true }));

  it('reads a file whole below the bound, and one byte past the bound at most (across chunks)', async () => {
    const big = Buffer.alloc(200 * 1024, 7);
    await writeFile(join(dir, 'big'), big);
    const fh = await open(join(dir, 'big'), 'r');
    try {
      assert.equal((await readAtMost(fh, 150 * 1024)).length, 150 * 1024 + 1);
    } finally {
      await fh.close();
    }
    const fh2 = await open(join(dir, 'big'), 'r');
    try {
      assert.deepEqual(await readAtMost(fh2, 1024 * 1024), big);
    } finally {
      await fh2.close();
    }
  });

  it('readSmallFile gives the text below its bound and refuses a larger file, naming the bound', async () => {
    await writeFile(join(dir, 'stamp'), 'master-20250101T000000Z\n');
    assert.equal(await readSmallFile(join(dir, 'stamp'), 64), 'master-20250101T000000Z\n');
    await assert.rejects(readSmallFile(join(dir, 'stamp'), 8), /is larger than 8 bytes/);
  });
});
