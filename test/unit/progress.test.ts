/** Progress lines (log and TTY live line) and the log formats. */
import assert from 'node:assert/strict';
import sinon from 'sinon';
import { humanFormat, jsonFormat, setLiveLine } from '../../src/core/log.js';
import { captureRecords } from '../helpers/logs.js';
import { byteProgress, formatBytes, formatProgress, formatRate, startProgress } from '../../src/core/progress.js';

type Captured = ReturnType<typeof captureRecords>;
const capture = captureRecords;

const MESSAGE = Symbol.for('message');

describe('log formats', () => {
  it('human lines carry elapsed seconds; only warn/error are tagged', () => {
    const line = (level: string, message: string) => (humanFormat.transform({ level, message }) as Record<symbol, string>)[MESSAGE];
    assert.match(line('info', 'hello'), /^\[\s*\d+\.\d+s\] hello$/);
    assert.match(line('debug', '  | child output'), /^\[\s*\d+\.\d+s\] {3}\| child output$/);
    assert.match(line('warn', 'careful'), /^\[\s*\d+\.\d+s\] WARN: careful$/);
    assert.match(line('error', 'bad'), /^\[\s*\d+\.\d+s\] ERROR: bad$/);
  });

  it('json lines are one object with time, elapsed, level, message and fields', () => {
    const out = (jsonFormat.transform({ level: 'info', message: 'copy: 3 files', progress: 'copy', count: 3 }) as Record<symbol, string>)[MESSAGE];
    const obj = JSON.parse(out);
    assert.equal(obj.level, 'info');
    assert.equal(obj.message, 'copy: 3 files');
    assert.equal(obj.progress, 'copy');
    assert.equal(obj.count, 3);
    assert.ok(!Number.isNaN(Date.parse(obj.time)));
    assert.equal(typeof obj.elapsed, 'number');
  });
});

describe('progress', () => {
  let clock: sinon.SinonFakeTimers;
  let cap: Captured;
  beforeEach(() => {
    clock = sinon.useFakeTimers({ now: 1_000_000, toFake: ['Date', 'setInterval', 'clearInterval'] });
    cap = capture();
  });
  afterEach(() => {
    cap.stop();
    clock.restore();
  });

  it('formats bytes with total, percentage, rate and ETA', () => {
    assert.equal(formatProgress(50e6, 200e6, 10), '50.0 MB of 200.0 MB (25%), 5.0 MB/s, ETA 30s');
    assert.equal(formatProgress(5e6, undefined, 2), '5.0 MB, 2.5 MB/s');
    assert.equal(formatProgress(300e3, 4.2e6, 2), '300.0 kB of 4.2 MB (7%), 150.0 kB/s, ETA 26s');
  });

  it('prints sizes in decimal units, MB from one MB up', () => {
    assert.equal(formatBytes(0), '0 B');
    assert.equal(formatBytes(512), '512 B');
    assert.equal(formatBytes(1536), '1.5 kB');
    assert.equal(formatBytes(999_999), '1.0 MB');
    assert.equal(formatBytes(3 * 1024 ** 3), '3221.2 MB');
    assert.equal(formatRate(10e6, 2), '5.0 MB/s');
    assert.equal(formatRate(10e6, 0), '0 B/s');
  });

  it('without a TTY logs at most one line per interval, with fields for --log-format json', () => {
    const p = startProgress('send', { unit: 'bytes', total: 100e6, live: false, everyMs: 5000 });
    p.update(1e6);
    clock.tick(1000);
    p.update(2e6);
    assert.equal(cap.infos.length, 0, 'nothing before the interval');
    clock.tick(4000);
    p.update(20e6);
    clock.tick(1000);
    p.update(30e6);
    p.done();
    assert.equal(cap.infos.length, 1);
    assert.equal(cap.infos[0].message, 'send: 20.0 MB of 100.0 MB (20%), 4.0 MB/s, ETA 20s');
    assert.equal(cap.infos[0].progress, 'send');
    assert.equal(cap.infos[0].count, 20e6);
    assert.equal(cap.infos[0].total, 100e6);
  });

  it('counts files with bytes for the copy', () => {
    const p = startProgress('copy', { unit: 'files', live: false, everyMs: 1000 });
    clock.tick(2000);
    p.update(120, { bytes: 8e6 });
    p.done();
    assert.equal(cap.infos[0].message, 'copy: 120 files, 8.0 MB, 4.0 MB/s');
    assert.equal(cap.infos[0].bytes, 8e6);
  });

  it('a heartbeat reports a quiet command, with its last output line', () => {
    const p = startProgress('pkg_add', { unit: 'lines', heartbeat: true, live: false, everyMs: 5000 });
    p.update(1, { note: 'greeter-1.1: installing' });
    clock.tick(5000);
    clock.tick(5000);
    p.done();
    clock.tick(20000);
    assert.deepEqual(
      cap.infos.map((i) => i.message),
      ['pkg_add: 5s, 1 lines of output, greeter-1.1: installing', 'pkg_add: 10s, 1 lines of output, greeter-1.1: installing'],
      'one line per interval while running, none after done()',
    );
  });

  it('on a TTY draws one self-overwriting line and removes it when done', () => {
    const writes: string[] = [];
    const stub = sinon.stub(process.stderr, 'write').callsFake((chunk: string | Uint8Array) => {
      writes.push(String(chunk));
      return true;
    });
    try {
      const p = startProgress('upload', { unit: 'bytes', total: 10e6, live: true });
      clock.tick(300);
      p.update(5e6);
      clock.tick(100);
      p.update(6e6); // throttled
      clock.tick(300);
      p.update(7e6);
      p.done();
    } finally {
      stub.restore();
      setLiveLine(undefined);
    }
    assert.deepEqual(writes, [
      'upload: 5.0 MB of 10.0 MB (50%), 16.7 MB/s, ETA 1s',
      '\r\x1b[K',
      'upload: 7.0 MB of 10.0 MB (70%), 10.0 MB/s, ETA 1s',
      '\r\x1b[K',
    ]);
    assert.equal(cap.infos.length, 0, 'no log lines for a live line');
  });

  it('byteProgress (the image sources\' callback) logs like the rest', () => {
    process.env.BUILDIMAGE_NO_LIVE = '1';
    const cb = byteProgress('image 1234', 10e6, 1000);
    delete process.env.BUILDIMAGE_NO_LIVE;
    clock.tick(1000);
    cb(5e6);
    assert.equal(cap.infos[0].message, 'image 1234: 5.0 MB of 10.0 MB (50%), 5.0 MB/s, ETA 1s');
  });
});
