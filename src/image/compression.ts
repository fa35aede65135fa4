/**
 * How image streams are compressed and decompressed. gzip is made
 * in-process on every core (pigz on machines with more cores than libuv's
 * thread pool), xz and bzip2 by their tools; decompression follows imgadm.
 */
import { availableParallelism } from 'node:os';
import type { Transform } from 'node:stream';
import { findInPath } from '../host/platform.js';
import { ParallelGzip, threadPoolSize } from './gzip.js';

/** Every compression an image file may have (manifest files[].compression), gzip first: the default. */
export const COMPRESSIONS = ['gzip', 'bzip2', 'xz', 'none'] as const;
export type Compression = (typeof COMPRESSIONS)[number];

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
