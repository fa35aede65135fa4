/**
 * Compression of image streams, and the sha1/size/md5 hashing that runs in
 * the same streaming pass. gzip is made in-process on every core (pigz on
 * machines with more cores than libuv's thread pool), xz and bzip2 by their
 * tools; decompression follows imgadm.
 */
import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import type { Compression } from './manifest.js';
import { availableParallelism } from 'node:os';
import { findInPath } from './host/platform.js';
import { ParallelGzip, threadPoolSize } from './gzip-parallel.js';

export const COMPRESSIONS: readonly Compression[] = ['gzip', 'bzip2', 'xz', 'none'];

export function fileSuffix(c: Compression): string {
  return { gzip: '.zfs.gz', bzip2: '.zfs.bz2', xz: '.zfs.xz', none: '.zfs' }[c];
}

export interface Tool {
  cmd: string;
  args: string[];
}

/** How a compression is made: a system tool, or an in-process stream (gzip on every core). */
export type Compressor = ({ kind: 'tool' } & Tool) | { kind: 'stream'; name: string; create: () => Transform };

/**
 * gzip runs in-process on every core (src/gzip-parallel.ts) where libuv's
 * thread pool covers the cores: on the benchmark's 2 cores it needs ~14%
 * less CPU than pigz (Node's zlib is the faster deflate) and spares a
 * process. With more cores than that pool has threads, pigz (when present)
 * scales further. xz uses its threads; bzip2 is its tool.
 */
export async function compressor(c: Compression): Promise<Compressor | undefined> {
  switch (c) {
    case 'gzip':
      if (availableParallelism() > threadPoolSize() && (await findInPath('pigz'))) return { kind: 'tool', cmd: 'pigz', args: ['-c', '-6'] };
      return { kind: 'stream', name: 'gzip (in-process, parallel)', create: () => new ParallelGzip({ level: 6 }) };
    case 'bzip2':
      return { kind: 'tool', cmd: 'bzip2', args: ['-c'] };
    case 'xz':
      return { kind: 'tool', cmd: 'xz', args: ['-c', '-T0'] };
    case 'none':
      return undefined;
  }
}

/** As imgadm: `gzip -cdfq` etc. */
export function decompressor(c: Compression): Tool | undefined {
  switch (c) {
    case 'gzip':
      return { cmd: 'gzip', args: ['-cdfq'] };
    case 'bzip2':
      return { cmd: 'bzip2', args: ['-cdfq'] };
    case 'xz':
      return { cmd: 'xz', args: ['-cdfq'] };
    case 'none':
      return undefined;
  }
}

export interface Digest {
  sha1: string;
  size: number;
  md5?: string;
}

/** Pass-through stream that counts bytes and hashes them. */
export class HashCounter extends Transform {
  private readonly sha1: Hash = createHash('sha1');
  private readonly md5?: Hash;
  size = 0;
  constructor(opts: { md5?: boolean } = {}) {
    super();
    if (opts.md5) this.md5 = createHash('md5');
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.sha1.update(chunk);
    this.md5?.update(chunk);
    this.size += chunk.length;
    cb(null, chunk);
  }
  private result?: Digest;
  digest(): Digest {
    this.result ??= { sha1: this.sha1.digest('hex'), size: this.size, md5: this.md5?.digest('base64') };
    return this.result;
  }
}

/**
 * Pass-through that checks size and sha1 before it lets the final chunk go,
 * so a consumer (zfs receive) never sees a complete stream that fails
 * verification: a mismatch ends the stream with an error instead.
 */
export class VerifyingStream extends Transform {
  private readonly sha1 = createHash('sha1');
  private held?: Buffer;
  size = 0;
  constructor(
    private readonly expected: { sha1?: string; size?: number },
    private readonly describe: (what: string) => Error,
  ) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.sha1.update(chunk);
    this.size += chunk.length;
    if (this.expected.size !== undefined && this.size > this.expected.size) {
      cb(this.describe(`size: more than the expected ${this.expected.size} bytes`));
      return;
    }
    const prev = this.held;
    this.held = chunk;
    cb(null, prev);
  }
  override _flush(cb: TransformCallback): void {
    const sha1 = this.sha1.digest('hex');
    if (this.expected.size !== undefined && this.size !== this.expected.size) {
      cb(this.describe(`size: expected ${this.expected.size} bytes, got ${this.size}`));
      return;
    }
    if (this.expected.sha1 && sha1 !== this.expected.sha1.toLowerCase()) {
      cb(this.describe(`sha1: expected ${this.expected.sha1}, got ${sha1}`));
      return;
    }
    cb(null, this.held);
  }
}
