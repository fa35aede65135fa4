/**
 * HTTP Signature auth as Manta (and IMGAPI) check it: SSH public-key blobs
 * and fingerprints, the signing string, the Authorization header, and the
 * signature encodings http-signature/sshpk use on the wire. node:crypto
 * only, so that production code needs none of the dev-only sshpk stack.
 */
import { createHash, createPublicKey, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { SshReader, SshWriter, stripZeros } from './ssh-wire.js';

export type KeyType = 'rsa' | 'ecdsa' | 'ed25519';
export type Curve = 'nistp256' | 'nistp384' | 'nistp521';

export interface KeyInfo {
  type: KeyType;
  curve?: Curve;
  /** RSA modulus bits, or the curve size. */
  bits: number;
  /** SSH wire-format public key (what fingerprints hash). */
  blob: Buffer;
}

const CURVES: Record<Curve, { jwk: string; size: number }> = {
  nistp256: { jwk: 'P-256', size: 32 },
  nistp384: { jwk: 'P-384', size: 48 },
  nistp521: { jwk: 'P-521', size: 66 },
};

const b64u = (s: string): Buffer => Buffer.from(s, 'base64url');

/** The SSH public-key blob of a node KeyObject (private or public). */
export function publicBlob(key: KeyObject): Buffer {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  const jwk = pub.export({ format: 'jwk' });
  if (jwk.kty === 'RSA') {
    return new SshWriter().string('ssh-rsa').mpint(b64u(jwk.e!)).mpint(b64u(jwk.n!)).toBuffer();
  }
  if (jwk.kty === 'OKP' && jwk.crv === 'Ed25519') {
    return new SshWriter().string('ssh-ed25519').string(b64u(jwk.x!)).toBuffer();
  }
  if (jwk.kty === 'EC') {
    const curve = (Object.keys(CURVES) as Curve[]).find((c) => CURVES[c].jwk === jwk.crv);
    if (!curve) throw new Error(`unsupported EC curve ${jwk.crv}`);
    const point = Buffer.concat([Buffer.from([4]), pad(b64u(jwk.x!), CURVES[curve].size), pad(b64u(jwk.y!), CURVES[curve].size)]);
    return new SshWriter().string(`ecdsa-sha2-${curve}`).string(curve).string(point).toBuffer();
  }
  throw new Error(`unsupported key type ${jwk.kty}${jwk.crv ? ` ${jwk.crv}` : ''}`);
}

/** What a blob is; throws for types buildimage cannot sign with (DSA, certificates...). */
export function keyInfo(blob: Buffer): KeyInfo {
  const r = new SshReader(blob);
  const type = r.text();
  if (type === 'ssh-rsa') {
    r.mpint();
    return { type: 'rsa', bits: bitLength(r.mpint()), blob };
  }
  if (type === 'ssh-ed25519') return { type: 'ed25519', bits: 256, blob };
  const m = /^ecdsa-sha2-(nistp256|nistp384|nistp521)$/.exec(type);
  if (m) {
    const curve = m[1] as Curve;
    return { type: 'ecdsa', curve, bits: curve === 'nistp521' ? 521 : CURVES[curve].size * 8, blob };
  }
  throw new Error(`unsupported SSH key type ${type}`);
}

/** `ssh-rsa AAAA... comment` → blob. */
export function parsePublicKeyLine(line: string): { blob: Buffer; comment: string } {
  const m = /^\s*(\S+)\s+([A-Za-z0-9+/=]+)(?:\s+(.*))?$/.exec(line.trim());
  if (!m) throw new Error('not an OpenSSH public key line');
  const blob = Buffer.from(m[2], 'base64');
  if (new SshReader(blob).text() !== m[1]) throw new Error('public key type does not match its data');
  return { blob, comment: (m[3] ?? '').trim() };
}

/** `aa:bb:...`, the MD5 form Manta wants in keyId (ssh-keygen -E md5 without the prefix). */
export function md5Fingerprint(blob: Buffer): string {
  return createHash('md5').update(blob).digest('hex').replace(/(..)(?!$)/g, '$1:');
}

/** `SHA256:base64` (no padding), OpenSSH's default display. */
export function sha256Fingerprint(blob: Buffer): string {
  return 'SHA256:' + createHash('sha256').update(blob).digest('base64').replace(/=+$/, '');
}

export interface Fingerprint {
  readonly text: string;
  matches(blob: Buffer): boolean;
}

/**
 * MANTA_KEY_ID as sshpk's parseFingerprint reads it for SSH keys: `MD5:aa:bb…`,
 * bare `aa:bb…`, or `SHA1:/SHA256:/SHA512:` base64. Bare unseparated hex is
 * refused: sshpk treats it as a hash of another key encoding that never
 * matches an SSH key, which would surface later as "key not found".
 */
export function parseFingerprint(text: string): Fingerprint {
  const t = text.trim();
  const hexColons = /^(?:MD5:)?((?:[0-9a-fA-F]{2}:){15}[0-9a-fA-F]{2})$/i.exec(t);
  if (hexColons) {
    const want = hexColons[1].toLowerCase();
    return { text: t, matches: (blob) => md5Fingerprint(blob) === want };
  }
  const b64 = /^(SHA1|SHA256|SHA384|SHA512):([A-Za-z0-9+/]+=*)$/i.exec(t);
  if (b64) {
    const alg = b64[1].toLowerCase();
    const want = b64[2].replace(/=+$/, '');
    return {
      text: t,
      matches: (blob) => createHash(alg).update(blob).digest('base64').replace(/=+$/, '') === want,
    };
  }
  throw new Error(
    `cannot read key fingerprint ${JSON.stringify(text)}: use MD5:aa:bb:… (ssh-keygen -l -E md5) or SHA256:… (ssh-keygen -l)`,
  );
}

/**
 * `<type>-<hash>` with sshpk's default hash per key. P-384 would need sha384,
 * which http-signature (client and Manta's parser) does not accept.
 */
export function algorithmFor(info: KeyInfo): string {
  switch (info.type) {
    case 'rsa':
      return 'rsa-sha256';
    case 'ed25519':
      return 'ed25519-sha512';
    case 'ecdsa':
      if (info.curve === 'nistp256') return 'ecdsa-sha256';
      if (info.curve === 'nistp521') return 'ecdsa-sha512';
      throw new Error('ECDSA P-384 keys cannot sign Manta requests (http-signature does not accept sha384); use RSA, Ed25519, ECDSA P-256 or P-521');
  }
}

export interface Signature {
  /** As sent: lowercase `rsa-sha256`, `ecdsa-sha256`, `ed25519-sha512`... */
  algorithm: string;
  /** base64: raw PKCS#1 v1.5 (RSA), DER SEQUENCE{r,s} (ECDSA), raw 64 bytes (Ed25519). */
  signature: string;
}

export interface Signer {
  /** The key's MD5 fingerprint, `aa:bb:…`. */
  readonly fingerprint: string;
  /** The algorithm this signer normally produces. */
  readonly algorithm: string;
  readonly info: KeyInfo;
  /** Where the key came from, for messages (never key material). */
  readonly source: string;
  sign(data: string): Promise<Signature>;
}

/** Signs with a private KeyObject in this process (a key file). */
export function keyObjectSigner(key: KeyObject, source: string): Signer {
  const info = keyInfo(publicBlob(key));
  const algorithm = algorithmFor(info);
  const hash = info.type === 'ed25519' ? null : algorithm.split('-')[1];
  return {
    fingerprint: md5Fingerprint(info.blob),
    algorithm,
    info,
    source,
    sign(data) {
      // ECDSA: node's default dsaEncoding is DER, which is what http-signature sends.
      return Promise.resolve({ algorithm, signature: cryptoSign(hash, Buffer.from(data, 'utf8'), key).toString('base64') });
    },
  };
}

/** An ssh-agent signature blob (`string format, string sig`) → http-signature algorithm + encoding. */
export function fromSshSignature(sig: Buffer, info: KeyInfo): Signature {
  const r = new SshReader(sig);
  const format = r.text();
  const body = r.string();
  switch (format) {
    case 'rsa-sha2-256':
      return { algorithm: 'rsa-sha256', signature: body.toString('base64') };
    case 'rsa-sha2-512':
      return { algorithm: 'rsa-sha512', signature: body.toString('base64') };
    case 'ssh-rsa':
      // An old agent that ignored the sha2 flag: sha1, which Manta still accepts.
      return { algorithm: 'rsa-sha1', signature: body.toString('base64') };
    case 'ssh-ed25519':
      return { algorithm: 'ed25519-sha512', signature: body.toString('base64') };
    default: {
      if (!format.startsWith('ecdsa-sha2-')) throw new Error(`unexpected signature format ${format} from the ssh-agent`);
      const rs = new SshReader(body);
      const der = derSequence([derInteger(rs.mpint()), derInteger(rs.mpint())]);
      return { algorithm: algorithmFor(info), signature: der.toString('base64') };
    }
  }
}

/** `Www, DD Mon YYYY HH:MM:SS GMT`, the jsprim.rfc1123 format node-manta signs. */
export function httpDate(d: Date = new Date()): string {
  return d.toUTCString();
}

/** `/<login>[/<subuser>]/keys/<md5>`: Manta's subuser form (not CloudAPI's `/users/`). */
export function mantaKeyId(user: string, subuser: string | undefined, fingerprint: string): string {
  return `/${user}${subuser ? `/${subuser}` : ''}/keys/${fingerprint}`;
}

/**
 * `Signature keyId="…",algorithm="…",headers="date",signature="…"`: the
 * fixed parameter order of http-signature's FormatAuthz, and no space after
 * a comma (Manta's parser rejects one).
 */
export function formatAuthorization(p: { keyId: string; algorithm: string; headers?: string; signature: string }): string {
  const parts = [`keyId="${p.keyId}"`, `algorithm="${p.algorithm}"`];
  if (p.headers !== undefined) parts.push(`headers="${p.headers}"`);
  parts.push(`signature="${p.signature}"`);
  return `Signature ${parts.join(',')}`;
}

/** The `date` and `authorization` headers for one request; sign again for every attempt. */
export async function signDateHeader(
  signer: Signer,
  keyId: string,
  date: string = httpDate(),
): Promise<{ date: string; authorization: string }> {
  const sig = await signer.sign(`date: ${date}`);
  return { date, authorization: formatAuthorization({ keyId, algorithm: sig.algorithm, headers: 'date', signature: sig.signature }) };
}

function pad(b: Buffer, size: number): Buffer {
  return b.length >= size ? b : Buffer.concat([Buffer.alloc(size - b.length), b]);
}

function bitLength(n: Buffer): number {
  const m = stripZeros(n);
  return m.length ? (m.length - 1) * 8 + (32 - Math.clz32(m[0])) : 0;
}

function derLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v >>= 8) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function derInteger(magnitude: Buffer): Buffer {
  let m = stripZeros(magnitude);
  if (!m.length || m[0] & 0x80) m = Buffer.concat([Buffer.from([0]), m]);
  return Buffer.concat([Buffer.from([0x02]), derLength(m.length), m]);
}

function derSequence(items: Buffer[]): Buffer {
  const body = Buffer.concat(items);
  return Buffer.concat([Buffer.from([0x30]), derLength(body.length), body]);
}
