/**
 * ImgapiSource against the local IMGAPI: manifests (active or not), and
 * file streams that survive drops and stalls by resuming with Range, byte
 * for byte, or fail with one clear line when they cannot.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { VerifyingStream } from '../../src/image/streams.js';
import { BuildError, InterruptedError } from '../../src/core/errors.js';
import { ImgapiSource, type ImgapiSourceOptions } from '../../src/base/imgapi-source.js';
import { interrupt, resetInterrupt } from '../../src/core/interrupt.js';
import { log } from '../../src/core/log.js';
import type { ImageManifest } from '../../src/image/manifest/types.js';
import { testManifest } from '../helpers/manifests.js';
import { ImgapiTestServer, startImgapiServer } from '../servers/imgapi-server.js';

const sha1 = (b: Buffer): string => createHash('sha1').update(b).digest('hex');

/** Reads the whole stream; `pauseMs` makes a slow consumer that pauses between chunks. */
async function drain(stream: Readable, pauseMs = 0): Promise<Buffer> {
  const chunks: Buffer[] = [];
  await pipeline(
    stream,
    new Writable({
      highWaterMark: 1024,
      write(c: Buffer, _e, cb) {
        chunks.push(c);
        if (pauseMs) setTimeout(cb, pauseMs);
        else cb();
      },
    }),
  );
  return Buffer.concat(chunks);
}

describe('ImgapiSource', function () {
  this.timeout(20_000);
  let server: ImgapiTestServer;
  const data = randomBytes(1_000_000);
  let m: ImageManifest;
  let silent: boolean;

  const source = (opts: Partial<ImgapiSourceOptions> = {}): ImgapiSource =>
    new ImgapiSource({
      url: server.url,
      env: {},
      retry: { attempts: 3, firstDelayMs: 5, maxDelayMs: 20 },
      timeoutMs: 2_000,
      stallTimeoutMs: 2_000,
      resumeDelayMs: 5,
      resumeMaxDelayMs: 20,
      ...opts,
    });
  const fileRequests = (): Array<{ range?: string; ifRange?: string; status?: number }> =>
    server.requestsTo('GetImageFile').map((r) => ({
      ...(r.headers.range ? { range: String(r.headers.range) } : {}),
      ...(r.headers['if-range'] ? { ifRange: String(r.headers['if-range']) } : {}),
      status: r.status,
    }));

  before(() => {
    silent = log.silent ?? false;
    log.silent = true;
  });
  after(() => (log.silent = silent));
  beforeEach(async () => {
    server = await startImgapiServer();
    m = testManifest({}, data);
    await server.addImage(m, data);
  });
  afterEach(() => server.close());

  describe('getManifest', () => {
    it('returns the served manifest; refuses a non-active one only when asked', async () => {
      const origin = testManifest({ version: '1' });
      await server.addImage(origin, undefined, { state: 'unactivated' });
      const s = source();
      assert.equal(s.description, server.url);
      const got = await s.getManifest(m.uuid, { requireActive: true });
      assert.deepEqual(got.files, m.files);
      assert.equal(got.state, 'active');
      assert.equal((await s.getManifest(origin.uuid)).state, 'unactivated');
      await assert.rejects(s.getManifest(origin.uuid, { requireActive: true }), (err: Error) => {
        assert.ok(err instanceof BuildError);
        assert.equal(err.message, `IMGAPI ${server.url}: image ${origin.uuid} (base-64-lts@1) is not active (state unactivated)`);
        return true;
      });
    });

    it('404 names the image and the source', async () => {
      const uuid = randomUUID();
      await assert.rejects(source({ channel: 'release' }).getManifest(uuid), {
        message: `IMGAPI ${server.url}: image ${uuid} not found (ResourceNotFound)`,
      });
      assert.equal(source({ channel: 'release' }).description, `${server.url} (channel release)`);
    });
  });

  describe('openFile', () => {
    it('streams the file byte-exact and reports progress', async () => {
      const progress: number[] = [];
      const out = await drain(await source().openFile(m, { onProgress: (n) => progress.push(n) }));
      assert.equal(sha1(out), m.files![0].sha1);
      assert.equal(progress.at(-1), data.length);
      assert.ok(progress.every((n, i) => i === 0 || n > progress[i - 1]));
      assert.deepEqual(fileRequests(), [{ status: 200 }]);
    });

    it('serves a file kept on disk by the server too', async () => {
      const dir = await mkdtemp(join(tmpdir(), 'bi-imgapi-'));
      try {
        const path = join(dir, 'f.zfs.gz');
        await writeFile(path, data);
        const m2 = testManifest({}, data);
        await server.addImage(m2, path);
        server.addFault({ kind: 'drop', afterBytes: 123_457, route: 'GetImageFile' });
        assert.equal(sha1(await drain(await source().openFile(m2))), sha1(data));
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });

    it('resumes after a dropped connection with Range: bytes=N- and If-Range, no byte twice or missed', async () => {
      server.addFault({ kind: 'drop', afterBytes: 300_001, route: 'GetImageFile' });
      const out = await drain(await source().openFile(m));
      assert.equal(out.length, data.length);
      assert.equal(sha1(out), m.files![0].sha1);
      assert.deepEqual(fileRequests(), [{ status: 200 }, { range: 'bytes=300001-', ifRange: m.files![0].sha1, status: 206 }]);
    });

    it('resumes again and again while each connection brings bytes', async () => {
      server.addFault({ kind: 'drop', afterBytes: 150_000, route: 'GetImageFile', times: 6 });
      const out = await drain(await source({ resumeRetries: 1 }).openFile(m));
      assert.equal(sha1(out), sha1(data));
      assert.deepEqual(
        fileRequests().map((r) => r.range),
        [undefined, 'bytes=150000-', 'bytes=300000-', 'bytes=450000-', 'bytes=600000-', 'bytes=750000-', 'bytes=900000-'],
      );
    });

    it('treats a stall as a dropped connection', async () => {
      server.addFault({ kind: 'stall', afterBytes: 400_000, route: 'GetImageFile' });
      const t0 = Date.now();
      const out = await drain(await source({ stallTimeoutMs: 300 }).openFile(m));
      assert.equal(sha1(out), sha1(data));
      assert.deepEqual(fileRequests().map((r) => r.range), [undefined, 'bytes=400000-']);
      assert.ok(Date.now() - t0 >= 300);
    });

    it('a slow consumer is not a stall (the stall clock stops while downstream is full)', async () => {
      const big = randomBytes(3 * 1024 * 1024);
      const m2 = testManifest({}, big);
      await server.addImage(m2, big);
      const stream = await source({ stallTimeoutMs: 150 }).openFile(m2);
      const chunks: Buffer[] = [];
      let n = 0;
      let paused = false;
      await pipeline(
        stream,
        new Writable({
          write(c: Buffer, _e, cb) {
            chunks.push(c);
            n += c.length;
            // One long pause mid-file, well past the stall timeout, with our buffer full.
            if (n > 1_500_000 && !paused) {
              paused = true;
              setTimeout(cb, 600);
            } else cb();
          },
        }),
      );
      assert.ok(paused);
      assert.equal(sha1(Buffer.concat(chunks)), sha1(big));
      assert.equal(server.requestsTo('GetImageFile').length, 1);
    });

    it('gives up after bounded fruitless reconnects with one line', async () => {
      server.addFault({ kind: 'drop', afterBytes: 0, route: 'GetImageFile', uuid: m.uuid, times: Infinity });
      const stream = await source({ resumeRetries: 3 }).openFile(m);
      await assert.rejects(drain(stream), (err: Error) => {
        assert.ok(err instanceof BuildError);
        assert.equal(err.message, `IMGAPI ${server.url}: image ${m.uuid} file: the connection closed before the whole answer arrived after 0 of ${data.length} bytes; gave up after 3 reconnects`);
        return true;
      });
      assert.equal(server.requestsTo('GetImageFile').length, 4);
    });

    it('retries a 500 before any byte (the request phase)', async () => {
      server.addFault({ kind: 'status', status: 500, route: 'GetImageFile', times: 2 });
      assert.equal(sha1(await drain(await source().openFile(m))), sha1(data));
      assert.deepEqual(fileRequests().map((r) => r.status), [500, 500, 200]);
    });

    it('a 500 on a resume is retried too', async () => {
      server.addFault({ kind: 'drop', afterBytes: 200_000, route: 'GetImageFile' });
      server.addFault({ kind: 'status', status: 503, route: 'GetImageFile' });
      assert.equal(sha1(await drain(await source().openFile(m))), sha1(data));
      assert.deepEqual(fileRequests(), [{ status: 200 }, { range: 'bytes=200000-', ifRange: m.files![0].sha1, status: 503 }, { range: 'bytes=200000-', ifRange: m.files![0].sha1, status: 206 }]);
    });

    describe('a server without Range support', () => {
      beforeEach(() => (server.ranges = false));

      it('restarts from zero when nothing was passed on yet', async () => {
        server.addFault({ kind: 'drop', afterBytes: 0, route: 'GetImageFile' });
        assert.equal(sha1(await drain(await source().openFile(m))), sha1(data));
        assert.deepEqual(fileRequests(), [{ status: 200 }, { status: 200 }]);
      });

      it('fails clearly after bytes were passed on', async () => {
        server.addFault({ kind: 'drop', afterBytes: 250_000, route: 'GetImageFile' });
        const got: Buffer[] = [];
        const stream = await source().openFile(m);
        stream.on('data', (c: Buffer) => got.push(c));
        await assert.rejects(
          new Promise((resolve, reject) => (stream.on('end', resolve), stream.on('error', reject))),
          {
            message: `IMGAPI ${server.url}: image ${m.uuid} file: the connection closed before the whole answer arrived after 250000 of ${data.length} bytes, and the server cannot resume (no "Accept-Ranges: bytes")`,
          },
        );
        assert.deepEqual(Buffer.concat(got), data.subarray(0, 250_000), 'what was passed on is the true prefix');
        assert.equal(server.requestsTo('GetImageFile').length, 1);
      });
    });

    it('refuses a Content-Length that is not files[0].size', async () => {
      const wrong = { ...m, files: [{ ...m.files![0], size: data.length + 1 }] };
      await assert.rejects(source().openFile(wrong), {
        message: `IMGAPI ${server.url}: image ${m.uuid} file: the server says Content-Length ${data.length}, the manifest says files[0].size ${data.length + 1}`,
      });
    });

    it('an image without a file is one line from openFile', async () => {
      const nofile = testManifest();
      await server.addImage(nofile, undefined, { state: 'unactivated' });
      await assert.rejects(source().openFile({ ...nofile, files: [{ sha1: '0'.repeat(40), size: 10, compression: 'gzip' }] }), {
        message: `IMGAPI ${server.url}: image ${nofile.uuid} file: 404 ResourceNotFound: image "${nofile.uuid}" has no file`,
      });
      await assert.rejects(source().openFile(nofile), /has no files\[0\]\.size/);
    });

    it('wrong bytes pass through unchanged, for the importer to catch by sha1', async () => {
      server.addFault({ kind: 'wrong-bytes', at: 777, route: 'GetImageFile' });
      const stream = await source().openFile(m);
      await assert.rejects(
        pipeline(stream, new VerifyingStream({ sha1: m.files![0].sha1, size: data.length }, (d) => new BuildError(d)), new Writable({ write: (_c, _e, cb) => cb() })),
        /sha1: expected/,
      );
    });

    it('stops promptly on SIGINT/SIGTERM', async () => {
      server.addFault({ kind: 'stall', afterBytes: 100_000, route: 'GetImageFile' });
      const stream = await source().openFile(m);
      const done = drain(stream);
      await sleep(50);
      try {
        interrupt('SIGTERM');
        await assert.rejects(done, (err: Error) => err instanceof InterruptedError);
      } finally {
        resetInterrupt();
      }
      assert.equal(server.requestsTo('GetImageFile').length, 1);
    });

    it('closing the stream early abandons the download', async () => {
      const stream = await source().openFile(m);
      stream.destroy();
      await sleep(20);
      assert.equal(stream.destroyed, true);
    });
  });
});
