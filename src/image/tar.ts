/**
 * A tar reader: ustar, pax (extended and global headers) and GNU (long
 * names and links, base-256 numbers), the formats gtar, bsdtar and npm's
 * tar write. It only parses: each entry comes out with its checked name,
 * type and metadata, and its data is read as the caller asks (image/extract
 * decides what may be written where). Archives are hostile: every number is
 * checked, metadata blocks are small and bounded, no buffer is sized from a
 * declared size, and an archive must end with its end-of-archive block
 * (one that stops early is truncated, not short).
 *
 * Compressed archives (gzip, bzip2, xz, told by their magic bytes) go
 * through the decompressor tools of image/compression, in their own
 * process; a stream that expands far beyond its compressed size is refused
 * as a compression bomb.
 */
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { BuildError } from '../core/errors.js';
import { formatBytes } from '../core/progress.js';
import { spawn } from '../host/exec.js';
import { decompressor, type Compression } from './compression.js';

const BLOCK = 512;

/** The stream is not a well-formed tar (truncated, bad checksum, bad field): a failed decompressor may say why better. */
export class ArchiveFormatError extends BuildError {}
/** pax headers and GNU long names are read whole: anything bigger is not a name. */
export const MAX_META_BYTES = 1024 * 1024;
/** A decompressed stream may be this many times its compressed size (after the first MAX_RATIO_FREE bytes). */
export const MAX_EXPANSION = 100;
const MAX_RATIO_FREE = 256 * 1024 * 1024;

export type EntryType = 'file' | 'dir' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo' | 'other';

export interface TarEntry {
  /** The name as the archive gives it (after pax/GNU long names), unchecked. */
  name: string;
  type: EntryType;
  /** The header's type flag, for messages about 'other'. */
  flag: string;
  /** Permission and set-id bits (0o7777). */
  mode: number;
  uid: number;
  gid: number;
  /** Seconds, fractional (pax). */
  mtime: number;
  atime?: number;
  /** Bytes of data that follow (files only; 0 for the rest). */
  size: number;
  /** Symlink target or hard link target name. */
  linkname: string;
  /** Offset of the entry's header in the (decompressed) stream. */
  offset: number;
}

/** Which compression a file starting with `head` has; 'none' for what may be a plain tar. */
export function sniffCompression(head: Buffer): Compression {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 3 && head.toString('latin1', 0, 3) === 'BZh') return 'bzip2';
  if (head.length >= 6 && head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'xz';
  return 'none';
}

/** Reads exact byte counts out of a stream of chunks. */
class ByteSource {
  private readonly it: AsyncIterator<Buffer>;
  private chunks: Buffer[] = [];
  private avail = 0;
  private eof = false;
  /** Bytes consumed so far. */
  pos = 0;

  constructor(source: AsyncIterable<Buffer>) {
    this.it = source[Symbol.asyncIterator]();
  }

  private async pull(): Promise<boolean> {
    if (this.eof) return false;
    const r = await this.it.next();
    if (r.done) {
      this.eof = true;
      return false;
    }
    const b = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value);
    if (b.length) {
      this.chunks.push(b);
      this.avail += b.length;
    }
    return true;
  }

  /** Exactly n bytes, or fewer at the end of the stream. */
  async take(n: number): Promise<Buffer> {
    while (this.avail < n && (await this.pull()));
    const k = Math.min(n, this.avail);
    let out: Buffer;
    if (this.chunks.length && this.chunks[0].length >= k) {
      out = this.chunks[0].subarray(0, k);
      this.chunks[0] = this.chunks[0].subarray(k);
      if (!this.chunks[0].length) this.chunks.shift();
    } else {
      out = Buffer.allocUnsafe(k);
      let off = 0;
      while (off < k) {
        const c = this.chunks[0];
        const m = Math.min(c.length, k - off);
        c.copy(out, off, 0, m);
        off += m;
        if (m === c.length) this.chunks.shift();
        else this.chunks[0] = c.subarray(m);
      }
    }
    this.avail -= k;
    this.pos += k;
    return out;
  }

  /** Up to n bytes, as soon as any are there (empty at the end of the stream). */
  async some(n: number): Promise<Buffer> {
    if (!this.avail) await this.pull();
    while (!this.avail && !this.eof) await this.pull();
    return this.take(Math.min(n, this.avail));
  }

  /** Skips n bytes; the number skipped (fewer at the end of the stream). */
  async skip(n: number): Promise<number> {
    let left = n;
    while (left > 0) {
      const b = await this.some(Math.min(left, 1 << 20));
      if (!b.length) break;
      left -= b.length;
    }
    return n - left;
  }
}

function cstr(b: Buffer, off: number, len: number): string {
  const end = b.indexOf(0, off);
  return b.toString('utf8', off, end < 0 || end > off + len ? off + len : end);
}

/** A numeric header field: octal text, or GNU base-256 (positive only). NaN when it is neither. */
export function parseNumber(b: Buffer, off: number, len: number): number {
  if (b[off] & 0x80) {
    if (b[off] !== 0x80) return NaN; // negative, or more than 2^56
    let v = 0;
    for (let i = off + 1; i < off + len; i++) v = v * 256 + b[i];
    return Number.isSafeInteger(v) ? v : NaN;
  }
  const s = b.toString('latin1', off, off + len).replace(/[\0 ]+$/, '').replace(/^ +/, '');
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) return NaN;
  const v = parseInt(s, 8);
  return Number.isSafeInteger(v) ? v : NaN;
}

function checksumOk(h: Buffer): boolean {
  const want = parseNumber(h, 148, 8);
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const c = i >= 148 && i < 156 ? 0x20 : h[i];
    unsigned += c;
    signed += c > 127 ? c - 256 : c;
  }
  return want === unsigned || want === signed;
}

const TYPES: Record<string, EntryType> = {
  '0': 'file',
  '\0': 'file',
  '7': 'file',
  '1': 'hardlink',
  '2': 'symlink',
  '3': 'char',
  '4': 'block',
  '5': 'dir',
  '6': 'fifo',
};

/** pax records: "LEN key=value\n" each, LEN counting the whole record. */
export function parsePax(body: Buffer, fail: (why: string) => never): Map<string, string> {
  const out = new Map<string, string>();
  let off = 0;
  while (off < body.length) {
    if (body[off] === 0) break; // padding
    const sp = body.indexOf(0x20, off);
    const len = sp < 0 ? NaN : Number(body.toString('latin1', off, sp));
    if (!Number.isSafeInteger(len) || len <= sp - off + 1 || off + len > body.length || body[off + len - 1] !== 0x0a) fail('a malformed pax header record');
    const rec = body.toString('utf8', sp + 1, off + len - 1);
    const eq = rec.indexOf('=');
    if (eq <= 0) fail('a malformed pax header record');
    out.set(rec.slice(0, eq), rec.slice(eq + 1));
    off += len;
  }
  return out;
}

/**
 * Entries of a tar stream, in order. Call `next()` for each entry, and
 * `data()` or `readAll()` for a file's data before the next `next()`
 * (unread data is skipped).
 */
export class TarReader {
  private readonly src: ByteSource;
  private left = 0;
  private pad = 0;
  private current?: TarEntry;
  private readonly globals = new Map<string, string>();
  /** Set when the end-of-archive block was read. */
  ended = false;

  constructor(
    source: AsyncIterable<Buffer>,
    /** Names the archive in errors. */
    private readonly what: string,
  ) {
    this.src = new ByteSource(source);
  }

  /** Bytes of the (decompressed) stream read so far. */
  get position(): number {
    return this.src.pos;
  }

  private fail(why: string, entry?: string): never {
    throw new ArchiveFormatError(`archive ${this.what}: ${entry !== undefined ? `${JSON.stringify(entry)}: ` : ''}${why}`);
  }

  private async finishEntry(): Promise<void> {
    const want = this.left + this.pad;
    if (want && (await this.src.skip(want)) < want) this.truncated();
    this.left = this.pad = 0;
  }

  private truncated(): never {
    const e = this.current;
    this.fail(e ? `truncated: the archive ends inside this entry (${e.size} bytes declared)` : 'truncated: the archive ends inside a header', e?.name);
  }

  private async header(): Promise<Buffer | undefined> {
    const h = await this.src.take(BLOCK);
    if (h.length === 0) this.fail('truncated: no end-of-archive block (an archive that stopped early?)');
    if (h.length < BLOCK) this.truncated();
    if (h.every((c) => c === 0)) return undefined;
    if (!checksumOk(h)) this.fail(`not a tar archive, or corrupt: bad header checksum at byte ${this.src.pos - BLOCK}`);
    return h;
  }

  /** A pax header's or GNU long name's data, read whole (bounded). */
  private async metaBody(size: number, kind: string): Promise<Buffer> {
    if (size > MAX_META_BYTES) this.fail(`a ${kind} of ${formatBytes(size)} declared (at most ${formatBytes(MAX_META_BYTES)}): refusing`);
    const b = await this.src.take(size);
    if (b.length < size) this.fail(`truncated: the archive ends inside a ${kind}`);
    const pad = (BLOCK - (size % BLOCK)) % BLOCK;
    if ((await this.src.skip(pad)) < pad) this.fail(`truncated: the archive ends inside a ${kind}`);
    return b;
  }

  async next(): Promise<TarEntry | undefined> {
    if (this.ended) return undefined;
    await this.finishEntry();
    this.current = undefined;
    let pax = new Map<string, string>();
    let longName: string | undefined;
    let longLink: string | undefined;
    for (;;) {
      const offset = this.src.pos;
      const h = await this.header();
      if (!h) {
        this.ended = true;
        return undefined;
      }
      const flag = String.fromCharCode(h[156]);
      const size = parseNumber(h, 124, 12);
      if (Number.isNaN(size)) this.fail(`bad size field at byte ${offset}`);
      if (flag === 'x' || flag === 'g') {
        const recs = parsePax(await this.metaBody(size, 'pax header'), (why) => this.fail(`${why} at byte ${offset}`));
        if (flag === 'g') for (const [k, v] of recs) this.globals.set(k, v);
        else pax = recs;
        continue;
      }
      if (flag === 'L' || flag === 'K') {
        const b = await this.metaBody(size, flag === 'L' ? 'GNU long name' : 'GNU long link name');
        const end = b.indexOf(0);
        const s = b.toString('utf8', 0, end < 0 ? b.length : end);
        if (flag === 'L') longName = s;
        else longLink = s;
        continue;
      }
      const ustar = h.toString('latin1', 257, 263) === 'ustar\0';
      const prefix = ustar ? cstr(h, 345, 155) : '';
      let name = cstr(h, 0, 100);
      if (prefix) name = `${prefix}/${name}`;
      name = pax.get('path') ?? longName ?? this.globals.get('path') ?? name;
      const linkname = pax.get('linkpath') ?? longLink ?? this.globals.get('linkpath') ?? cstr(h, 157, 100);
      const num = (key: string, off: number, len: number): number => {
        const t = pax.get(key) ?? this.globals.get(key);
        const v = t !== undefined ? (key.endsWith('time') ? Number(t) : /^\d+$/.test(t) ? Number(t) : NaN) : parseNumber(h, off, len);
        if (!Number.isFinite(v) || v < 0 || !(key.endsWith('time') || Number.isSafeInteger(v))) this.fail(`bad ${key} ${JSON.stringify(t ?? '')}`, name);
        return v;
      };
      let type: EntryType = TYPES[flag] ?? 'other';
      // Old (v7) archives mark directories by a trailing slash only.
      if (type === 'file' && flag !== '7' && name.endsWith('/')) type = 'dir';
      const entry: TarEntry = {
        name,
        type,
        flag,
        mode: parseNumber(h, 100, 8) & 0o7777,
        uid: num('uid', 108, 8),
        gid: num('gid', 116, 8),
        mtime: num('mtime', 136, 12),
        atime: pax.has('atime') ? num('atime', 0, 0) : undefined,
        // Only files carry data; links, directories and nodes have none whatever the field says.
        size: type === 'file' || type === 'other' ? (pax.has('size') || this.globals.has('size') ? num('size', 124, 12) : size) : 0,
        linkname,
        offset,
      };
      if (Number.isNaN(parseNumber(h, 100, 8))) this.fail('bad mode field', name);
      this.current = entry;
      this.left = entry.size;
      this.pad = (BLOCK - (entry.size % BLOCK)) % BLOCK;
      return entry;
    }
  }

  /** The current entry's data, chunk by chunk (views into the stream's buffers: copy what you keep). */
  async *data(): AsyncGenerator<Buffer> {
    while (this.left > 0) {
      const b = await this.src.some(Math.min(this.left, 1 << 20));
      if (!b.length) this.truncated();
      this.left -= b.length;
      yield b;
    }
  }

  /** The current entry's data in a fresh buffer of its own (for small files). */
  async readAll(): Promise<Uint8Array> {
    const out = new Uint8Array(this.left);
    let off = 0;
    for await (const b of this.data()) {
      out.set(b, off);
      off += b.length;
    }
    return out;
  }
}

/** An archive file opened for reading: the tar stream (decompressed), and how to finish. */
export interface OpenArchive {
  compression: Compression;
  stream: AsyncIterable<Buffer>;
  /**
   * Stops the decompressor and closes the file: after the end-of-archive
   * block (`reachedEnd`), or after a failure, when it throws the
   * decompressor's own failure (a corrupt or truncated stream) if it had one.
   */
  close(reachedEnd: boolean): Promise<void>;
}

/** What is wrong with `path` as an archive (undefined: a regular file that looks like one). */
export async function archiveProblem(path: string): Promise<string | undefined> {
  let fh: FileHandle | undefined;
  try {
    fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
    const st = await fh.stat();
    if (!st.isFile()) return 'is not a regular file';
    const head = Buffer.alloc(BLOCK);
    const { bytesRead } = await fh.read(head, 0, BLOCK, 0);
    const c = sniffCompression(head.subarray(0, bytesRead));
    if (c !== 'none') return undefined;
    if (bytesRead < BLOCK || !checksumOk(head)) return 'is not a tar archive (plain, gzip, bzip2 or xz)';
    return undefined;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? 'does not exist' : `cannot be read: ${(err as Error).message}`;
  } finally {
    await fh?.close();
  }
}

/**
 * Opens an archive: the file itself when it is a plain tar, else its
 * decompressor's output. Bytes in and out are counted: a stream that grows
 * past MAX_EXPANSION times what went in is stopped as a compression bomb.
 */
export async function openArchive(path: string): Promise<OpenArchive> {
  const fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  const st = await fh.stat();
  if (!st.isFile()) {
    await fh.close();
    throw new BuildError(`archive ${path} is not a regular file`);
  }
  const head = Buffer.alloc(6);
  const { bytesRead } = await fh.read(head, 0, 6, 0);
  const compression = sniffCompression(head.subarray(0, bytesRead));
  const file = fh.createReadStream({ start: 0, highWaterMark: 1 << 20, autoClose: false });
  const tool = decompressor(compression);
  if (!tool) {
    return {
      compression,
      stream: file,
      close: async () => {
        file.destroy();
        await fh.close();
      },
    };
  }
  const dec = spawn(tool.cmd, tool.args);
  let inBytes = 0;
  let outBytes = 0;
  file.on('data', (c: Buffer | string) => void (inBytes += c.length));
  file.pipe(dec.stdin);
  // A decompressor that stops reading (we stopped at the end block) is no error of the archive.
  dec.stdin.on('error', () => undefined);
  const out = dec.stdout;
  async function* counted(): AsyncGenerator<Buffer> {
    for await (const c of out) {
      outBytes += (c as Buffer).length;
      if (outBytes > MAX_RATIO_FREE && outBytes > MAX_EXPANSION * Math.max(inBytes, 1)) {
        throw new BuildError(
          `archive ${path}: expands to more than ${MAX_EXPANSION}× its ${compression} size (${formatBytes(outBytes)} from ${formatBytes(inBytes)}): refusing a compression bomb`,
        );
      }
      yield c as Buffer;
    }
  }
  return {
    compression,
    stream: counted(),
    close: async (reachedEnd) => {
      if (reachedEnd) {
        // What follows the end block (padding, anything) is not read: stop the decompressor, its exit does not count.
        file.unpipe();
        file.destroy();
        out.destroy();
        dec.kill();
        await dec;
        await fh.close();
        return;
      }
      // Failed: let the decompressor finish on its own (its output discarded), briefly; a failure of its own explains the stream.
      out.resume();
      const timer = setTimeout(() => dec.kill(), 2000);
      const r = await dec;
      clearTimeout(timer);
      file.destroy();
      await fh.close();
      if (!r.isTerminated && r.exitCode !== 0) {
        const why = String(r.stderr ?? '').trim().split('\n').pop() ?? '';
        throw new BuildError(`archive ${path}: its ${compression} data is corrupt or truncated (${tool.cmd} exit ${r.exitCode}${why ? `: ${why}` : ''})`);
      }
    },
  };
}
