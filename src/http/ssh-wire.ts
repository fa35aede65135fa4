/**
 * SSH wire encoding (RFC 4251 §5): uint32, string, mpint. Shared by the
 * public-key blobs (fingerprints), the OpenSSH private-key format and the
 * ssh-agent protocol.
 */

export class SshReader {
  private off = 0;
  constructor(private readonly buf: Buffer) {}

  u8(): number {
    this.need(1);
    return this.buf[this.off++];
  }

  u32(): number {
    this.need(4);
    const v = this.buf.readUInt32BE(this.off);
    this.off += 4;
    return v;
  }

  string(): Buffer {
    const len = this.u32();
    this.need(len);
    const v = this.buf.subarray(this.off, this.off + len);
    this.off += len;
    return v;
  }

  text(): string {
    return this.string().toString('utf8');
  }

  /** An mpint as unsigned big-endian bytes without leading zeros. */
  mpint(): Buffer {
    return stripZeros(this.string());
  }

  private need(n: number): void {
    if (this.off + n > this.buf.length) throw new Error('truncated SSH data');
  }
}

export class SshWriter {
  private parts: Buffer[] = [];

  u8(v: number): this {
    this.parts.push(Buffer.from([v]));
    return this;
  }

  u32(v: number): this {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(v);
    this.parts.push(b);
    return this;
  }

  string(v: Buffer | string): this {
    const b = typeof v === 'string' ? Buffer.from(v, 'utf8') : v;
    this.u32(b.length);
    this.parts.push(b);
    return this;
  }

  /** Unsigned big-endian magnitude → mpint (a 0x00 prefix when the top bit is set). */
  mpint(v: Buffer): this {
    let m = stripZeros(v);
    if (m.length && m[0] & 0x80) m = Buffer.concat([Buffer.from([0]), m]);
    return this.string(m);
  }

  toBuffer(): Buffer {
    return Buffer.concat(this.parts);
  }
}

export function stripZeros(b: Buffer): Buffer {
  let i = 0;
  while (i < b.length && b[i] === 0) i++;
  return b.subarray(i);
}
