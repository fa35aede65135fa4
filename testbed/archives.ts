/**
 * Tarballs for tests and the bench: real ones made by GNU tar from a
 * directory (as eng's Makefiles make the release and agent tarballs, in
 * each of tar's formats and compressions), and hand-made ones, header by
 * header, for what no tar tool writes on purpose (`../x`, `/etc/x`, a
 * device node, a size that lies, a truncated stream).
 */
import { execFileSync } from 'node:child_process';
import { gzipSync } from 'node:zlib';

export type TarFormat = 'ustar' | 'pax' | 'gnu';
export type TarCompression = 'none' | 'gzip' | 'bzip2' | 'xz';

export const SUFFIX: Record<TarCompression, string> = { none: '.tar', gzip: '.tar.gz', bzip2: '.tar.bz2', xz: '.tar.xz' };

/**
 * `tar -C dir -c members` as eng does (`cd $(PROTO) && gtar -czf ... root site`), in `format`,
 * with numeric owners kept as they are.
 */
export function gtarCreate(dir: string, out: string, o: { format?: TarFormat; compression?: TarCompression; members?: string[]; owner?: string } = {}): string {
  const flag = { none: [], gzip: ['-z'], bzip2: ['-j'], xz: ['-J'] }[o.compression ?? 'gzip'];
  execFileSync('tar', [
    '-C', dir, '-c', ...flag, '-f', out, `--format=${o.format ?? 'gnu'}`, '--numeric-owner', '--sort=name',
    ...(o.owner ? [`--owner=${o.owner}`, `--group=${o.owner}`] : []),
    ...(o.members ?? ['.']),
  ]);
  return out;
}

export interface RawEntry {
  name: string;
  /** tar type flag: '0' file, '1' hard link, '2' symlink, '3' char, '4' block, '5' dir, '6' fifo, 'x' pax, 'L' GNU long name. */
  type?: string;
  data?: Buffer | string;
  /** The size the header declares (default: the data's). */
  size?: number;
  mode?: number;
  uid?: number;
  gid?: number;
  linkname?: string;
  /** GNU base-256 for the size field (sizes beyond octal's 8 GiB). */
  base256Size?: boolean;
}

function octal(n: number, len: number): string {
  return n.toString(8).padStart(len - 1, '0') + '\0';
}

/** One ustar header block for `e` (checksum filled in). */
export function rawHeader(e: RawEntry): Buffer {
  const h = Buffer.alloc(512);
  const size = e.size ?? (e.data ? Buffer.byteLength(e.data) : 0);
  h.write(e.name.slice(0, 100), 0, 'utf8');
  h.write(octal(e.mode ?? 0o644, 8), 100, 'latin1');
  h.write(octal(e.uid ?? 0, 8), 108, 'latin1');
  h.write(octal(e.gid ?? 0, 8), 116, 'latin1');
  if (e.base256Size) {
    h[124] = 0x80;
    let v = BigInt(size);
    for (let i = 135; i > 124; i--) {
      h[i] = Number(v & 0xffn);
      v >>= 8n;
    }
  } else h.write(octal(size, 12), 124, 'latin1');
  h.write(octal(1_700_000_000, 12), 136, 'latin1');
  h.write(e.type ?? '0', 156, 'latin1');
  if (e.linkname) h.write(e.linkname.slice(0, 100), 157, 'utf8');
  h.write('ustar\0', 257, 'latin1');
  h.write('00', 263, 'latin1');
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const c of h) sum += c;
  h.write(octal(sum, 7) + ' ', 148, 'latin1');
  return h;
}

const pad = (n: number) => Buffer.alloc((512 - (n % 512)) % 512);

/** A tar stream of hand-made entries; `end: false` leaves out the end-of-archive blocks. */
export function rawTar(entries: RawEntry[], o: { end?: boolean } = {}): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    parts.push(rawHeader(e));
    if (e.data !== undefined) {
      const d = Buffer.from(e.data);
      parts.push(d, pad(d.length));
    }
  }
  if (o.end !== false) parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

/** A pax extended header entry setting `records` for the next entry. */
export function paxEntry(records: Record<string, string>): RawEntry {
  let body = '';
  for (const [k, v] of Object.entries(records)) {
    const rest = ` ${k}=${v}\n`;
    let len = rest.length + 1;
    while (String(len).length + rest.length !== len) len = String(len).length + rest.length;
    body += `${len}${rest}`;
  }
  return { name: 'PaxHeader', type: 'x', data: body };
}

/** A gzip member of `bytes` zero bytes followed by nothing: a compression bomb when big (made in pieces, never held whole). */
export function gzipZeros(bytes: number): Buffer {
  // One member per 64 MiB of zeros: each compresses ~1000×.
  const piece = Buffer.alloc(Math.min(bytes, 64 << 20));
  const parts: Buffer[] = [];
  for (let left = bytes; left > 0; left -= piece.length) parts.push(gzipSync(left >= piece.length ? piece : piece.subarray(0, left), { level: 9 }));
  return Buffer.concat(parts);
}
