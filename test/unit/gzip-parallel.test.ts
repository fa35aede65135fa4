/** In-process parallel gzip: multi-member output every gzip reader takes, byte-exact, deterministic. */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import { ParallelGzip, type ParallelGzipOptions } from '../../src/image/gzip.js';

const BLOCK = 64 * 1024;

/** Half text-like, half random: both deflate paths. */
function sample(size: number): Buffer {
  const words = Buffer.from('function return const module exports require callback buffer stream ');
  const b = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i += 4096) {
    const n = Math.min(4096, size - i);
    if ((i / 4096) % 2) randomBytes(n).copy(b, i);
    else for (let j = 0; j < n; j++) b[i + j] = words[(i + j * 7) % words.length]!;
  }
  return b;
}

async function compress(input: Buffer, chunk: number, opts: ParallelGzipOptions = {}): Promise<Buffer> {
  const parts: Buffer[] = [];
  const chunks = function* () {
    for (let i = 0; i < input.length; i += chunk) yield input.subarray(i, i + chunk);
  };
  await pipeline(
    Readable.from(chunks()),
    new ParallelGzip({ blockSize: BLOCK, ...opts }),
    new Writable({
      write(c: Buffer, _e, cb) {
        parts.push(c);
        cb();
      },
    }),
  );
  return Buffer.concat(parts);
}

const sha1 = (b: Buffer) => createHash('sha1').update(b).digest('hex');

function hasTool(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`]);
    return true;
  } catch {
    return false;
  }
}

describe('ParallelGzip', () => {
  for (const size of [0, 1, BLOCK - 1, BLOCK, BLOCK + 1, 3 * BLOCK + 12345]) {
    it(`${size} bytes: gzip, pigz and zlib all read back the exact input`, async () => {
      const input = sample(size);
      const gz = await compress(input, 10_000, { jobs: 3 });
      assert.equal(gz[0], 0x1f);
      assert.equal(gz[1], 0x8b);
      assert.equal(sha1(gunzipSync(gz)), sha1(input), 'zlib');
      assert.equal(sha1(execFileSync('gzip', ['-dc'], { input: gz, maxBuffer: 1 << 26 })), sha1(input), 'gzip -dc');
      if (hasTool('pigz')) assert.equal(sha1(execFileSync('pigz', ['-dc'], { input: gz, maxBuffer: 1 << 26 })), sha1(input), 'pigz -dc');
      // gzip -t checks every member's CRC and length.
      execFileSync('gzip', ['-t'], { input: gz });
    });
  }

  it('is one member per block, and the same bytes however the input is chunked or how many jobs run', async () => {
    const input = sample(5 * BLOCK + 99);
    const a = await compress(input, 7, { jobs: 1 });
    const b = await compress(input, BLOCK * 2, { jobs: 4 });
    const c = await compress(input, 65_536, {});
    assert.equal(sha1(a), sha1(b));
    assert.equal(sha1(a), sha1(c));
    let members = 0;
    for (let i = 0; i + 3 < a.length; i++) if (a[i] === 0x1f && a[i + 1] === 0x8b && a[i + 2] === 8 && a[i + 3] === 0) members++;
    assert.ok(members >= 6, `at least 6 member headers, found ${members}`);
  });

  it('compresses about as well as one gzip member (within 2% at 1 MiB blocks)', async () => {
    const input = sample(3 * 1024 * 1024);
    const ours = await compress(input, 65_536, { blockSize: 1024 * 1024 });
    const one = execFileSync('gzip', ['-6', '-c'], { input, maxBuffer: 1 << 26 });
    assert.ok(ours.length < one.length * 1.02, `${ours.length} vs gzip's ${one.length}`);
  });
});
