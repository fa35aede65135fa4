/**
 * Image streams: `zfs send` → compress → hash → file in one pass (seal),
 * and file → verify → decompress → `zfs receive` (installing a base image),
 * with the sha1/size hashing that runs inside both.
 */
import { createHash, type Hash } from 'node:crypto';
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BuildError, BuildimageError, oneLine } from '../core/errors.js';
import { log } from '../core/log.js';
import { isNoSpace } from '../host/copy.js';
import { checkExit, spawn } from '../host/exec.js';
import type { Zfs } from '../host/zfs.js';
import { compressor, decompressor } from './compression.js';
import type { Compression, ManifestFile } from './manifest/types.js';

/**
 * A send or receive stream that moves no bytes for this long fails; one
 * that moves slowly runs as long as it takes (no total timeout). Longer
 * than an IMGAPI source takes to give up resuming a stalled download
 * (base/imgapi-source), so that the source's own message wins there.
 */
export const STREAM_STALL_MS = 15 * 60_000;

export interface StreamOptions {
  /** Instead of STREAM_STALL_MS (tests). */
  stallMs?: number;
}

/**
 * Restarts a clock on every chunk through its taps; when the clock runs
 * out, `onStall` gets the one-line error (and should stop the stream).
 */
class StallWatch {
  private timer?: NodeJS.Timeout;
  stalled?: BuildError;
  constructor(
    private readonly ms: number,
    private readonly what: string,
    private readonly hint: string,
    private readonly onStall: (err: BuildError) => void,
  ) {
    this.poke();
  }
  private poke(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.stalled = new BuildError(`${this.what} stalled: no data for ${this.ms / 1000}s`, { hint: this.hint });
      this.onStall(this.stalled);
    }, this.ms);
  }
  tap(): Transform {
    return new Transform({
      transform: (chunk: Buffer, _enc, cb) => {
        this.poke();
        cb(null, chunk);
      },
    });
  }
  stop(): void {
    clearTimeout(this.timer);
  }
}

export interface Digest {
  sha1: string;
  size: number;
  md5?: string;
  /** hex, when asked for. */
  sha256?: string;
  sha512?: string;
}

/** Pass-through stream that counts bytes and hashes them (sha1 always; md5, sha256, sha512 when asked). */
export class HashCounter extends Transform {
  private readonly sha1: Hash = createHash('sha1');
  private readonly md5?: Hash;
  private readonly sha256?: Hash;
  private readonly sha512?: Hash;
  size = 0;
  constructor(opts: { md5?: boolean; sha256?: boolean; sha512?: boolean } = {}) {
    super();
    if (opts.md5) this.md5 = createHash('md5');
    if (opts.sha256) this.sha256 = createHash('sha256');
    if (opts.sha512) this.sha512 = createHash('sha512');
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.sha1.update(chunk);
    this.md5?.update(chunk);
    this.sha256?.update(chunk);
    this.sha512?.update(chunk);
    this.size += chunk.length;
    cb(null, chunk);
  }
  private result?: Digest;
  digest(): Digest {
    this.result ??= {
      sha1: this.sha1.digest('hex'),
      size: this.size,
      md5: this.md5?.digest('base64'),
      ...(this.sha256 ? { sha256: this.sha256.digest('hex') } : {}),
      ...(this.sha512 ? { sha512: this.sha512.digest('hex') } : {}),
    };
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

/** The image file seal wrote: its manifest entry (sha1, size), and the digests people verify with, from the same pass. */
export interface SentImage {
  file: ManifestFile;
  sha256: string;
  sha512: string;
}

/** sendImage's manifest entry alone. */
export async function sendCompressed(
  zfs: Zfs,
  snapshot: string,
  from: string | undefined,
  compression: Compression,
  path: string,
  opts: StreamOptions = {},
): Promise<ManifestFile> {
  return (await sendImage(zfs, snapshot, from, compression, path, opts)).file;
}

/**
 * zfs send [-i from] | compress | hash → file, all streaming, one pass:
 * sha1 (the manifest), sha256 and sha512 (build-info, provenance) hashed as
 * the bytes go to the file, never read back. gzip is compressed in-process
 * on every core (or by pigz, see compressor()); xz and bzip2 by their tools.
 */
export async function sendImage(
  zfs: Zfs,
  snapshot: string,
  from: string | undefined,
  compression: Compression,
  path: string,
  opts: StreamOptions = {},
): Promise<SentImage> {
  const how = await compressor(compression);
  // Never through a link planted at the name (the output dir may be a shared /tmp).
  const file = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW, 0o644);
  // Nothing may be awaited from spawning `zfs send` until its stdout is in a
  // pipeline: execa can drain the first bytes of a stream left unattached.
  const send = zfs.send(snapshot, from);
  const tool = how?.kind === 'tool' ? how : undefined;
  const comp = tool ? spawn(tool.cmd, tool.args) : undefined;
  const hash = new HashCounter({ sha256: true, sha512: true });
  const out = file.createWriteStream();
  const watch = new StallWatch(opts.stallMs ?? STREAM_STALL_MS, `sending ${snapshot}`, 'zfs send, the compressor or the output disk hung', (err) => {
    sendTap.destroy(err);
    send.kill();
    comp?.kill();
  });
  // Bytes out of zfs send, and out of the compressor (which may sit on a block for a while).
  const sendTap = watch.tap();
  const outTap = watch.tap();
  let sent = 0;
  send.stdout.on('data', (chunk: Buffer) => (sent += chunk.length));
  let streamErr: unknown;
  const flows = comp
    ? [pipeline(send.stdout, sendTap, comp.stdin), pipeline(comp.stdout, outTap, hash, out)]
    : how?.kind === 'stream'
      ? [pipeline(send.stdout, sendTap, how.create(), outTap, hash, out)]
      : [pipeline(send.stdout, sendTap, hash, out)];
  await Promise.all(flows).catch((err) => {
    streamErr = err;
    send.kill();
    comp?.kill();
  });
  const [sendResult, compResult] = await Promise.all([send, comp]).finally(() => watch.stop());
  if (watch.stalled) throw watch.stalled;
  // A full disk is the cause whatever the writers did after it: zfs send (zfs-fuse's aborts) or the
  // compressor may die of the closed pipe before our kill reaches them.
  if (streamErr && isNoSpace(streamErr)) throw new BuildError(`no space left writing ${path}`, { hint: 'free space in the output directory, or pass another --output-dir' });
  checkExit('zfs', from ? ['send', '-i', from, snapshot] : ['send', snapshot], sendResult);
  if (compResult) checkExit(tool!.cmd, tool!.args, compResult);
  if (streamErr) throw new BuildError(`writing ${path} failed: ${oneLine(streamErr)}`);
  if (sent === 0) throw new BuildError(`zfs send ${snapshot} produced no data`);
  const { sha1, size, sha256, sha512 } = hash.digest();
  return { file: { sha1, size, compression }, sha256: sha256!, sha512: sha512! };
}

/**
 * input → verify (size, sha1) → decompressor → `zfs receive -u dataset`.
 * The last chunk is held back until verification passes, so receive can
 * only complete on good bytes.
 */
export async function receiveStream(
  zfs: Zfs,
  dataset: string,
  input: Readable,
  compression: Compression,
  expected: { sha1?: string; size?: number },
  what: string,
  opts: StreamOptions = {},
): Promise<void> {
  const verify = new VerifyingStream(expected, (detail) => new BuildError(`image ${what}: ${detail}`));
  const recv = zfs.receive(dataset);
  const tool = decompressor(compression);
  const dec = tool ? spawn(tool.cmd, tool.args) : undefined;
  const watch = new StallWatch(opts.stallMs ?? STREAM_STALL_MS, `image ${what}: receive`, 'the source, the decompressor or zfs receive hung; run the build again', (err) => {
    inTap.destroy(err);
    dec?.kill();
    recv.kill();
  });
  // Bytes read from the source, and out of the decompressor.
  const inTap = watch.tap();
  let streamErr: unknown;
  const flows = [pipeline(input, inTap, verify, dec ? dec.stdin : recv.stdin)];
  if (dec) flows.push(pipeline(dec.stdout, watch.tap(), recv.stdin));
  await Promise.all(flows).catch((err) => {
    streamErr = err;
    dec?.kill();
    recv.kill();
  });
  const [decResult, recvResult] = await Promise.all([dec, recv]).finally(() => watch.stop());
  log.debug(`receive ${dataset}: ${verify.size} bytes read, decompressor exit ${decResult?.exitCode ?? '-'}, zfs receive exit ${recvResult.exitCode}`);
  if (watch.stalled) throw watch.stalled;
  // Our own verification verdict explains more than the pipe errors it causes.
  if (streamErr instanceof BuildimageError) throw streamErr;
  if (decResult) checkExit(tool!.cmd, tool!.args, decResult);
  checkExit('zfs', ['receive', '-u', dataset], recvResult);
  if (streamErr) throw new BuildError(`image ${what}: ${oneLine(streamErr)}`);
}
