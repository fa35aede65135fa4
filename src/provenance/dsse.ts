/**
 * DSSE envelopes (secure-systems-lab/dsse, protocol v1.0.0): the
 * pre-authentication encoding, signing with the SSH key publish uses (a
 * file or the ssh-agent, http/keys), and checking a signature against an
 * OpenSSH public key. Signature encodings: RSA PKCS#1 v1.5 over SHA-256;
 * ECDSA DER SEQUENCE{r,s} over the curve's hash (SHA-256/384/512), raw
 * r||s also accepted (DSSE's own test vector is raw); Ed25519 raw 64 bytes.
 * keyid: the key's OpenSSH SHA256 fingerprint (`ssh-keygen -l`), a hint
 * only: verification tries the given key on every signature.
 */
import { createPublicKey, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { keyInfo, sha256Fingerprint, type KeyInfo, type Signer } from '../http/signature.js';
import { SshReader } from '../http/ssh-wire.js';

export const IN_TOTO_PAYLOAD_TYPE = 'application/vnd.in-toto+json';

export interface DsseSignature {
  keyid?: string;
  sig: string;
}

export interface Envelope {
  payloadType: string;
  /** base64 of the serialized body. */
  payload: string;
  signatures: DsseSignature[];
}

/** PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body, lengths in bytes. */
export function pae(payloadType: string, body: Buffer): Buffer {
  const type = Buffer.from(payloadType, 'utf8');
  return Buffer.concat([Buffer.from(`DSSEv1 ${type.length} `), type, Buffer.from(` ${body.length} `), body]);
}

/** An envelope around `body` with no signature yet. */
export function unsignedEnvelope(body: Buffer, payloadType = IN_TOTO_PAYLOAD_TYPE): Envelope {
  return { payloadType, payload: body.toString('base64'), signatures: [] };
}

/** Standard or URL-safe base64 (DSSE: verifiers accept either); undefined when it is neither. */
export function decodeBase64(text: string): Buffer | undefined {
  if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(text)) return undefined;
  return Buffer.from(text.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
}

/**
 * Adds `signer`'s signature over the envelope's PAE. Signer.sign takes
 * text (it signs its UTF-8 bytes), so a body that is not UTF-8 as it
 * stands is refused rather than signed in another form.
 */
export async function signEnvelope(env: Envelope, signer: Signer): Promise<Envelope> {
  const body = decodeBase64(env.payload);
  if (!body) throw new Error('the envelope payload is not base64');
  const data = pae(env.payloadType, body);
  const text = data.toString('utf8');
  if (!Buffer.from(text, 'utf8').equals(data)) throw new Error('the envelope payload is not UTF-8 text');
  const sig = await signer.sign(text);
  const want = expectedAlgorithm(signer.info);
  if (sig.algorithm !== want) throw new Error(`the key signed with ${sig.algorithm}, not ${want} (an old ssh-agent?)`);
  const keyid = sha256Fingerprint(signer.info.blob);
  return { ...env, signatures: [...env.signatures.filter((s) => s.keyid !== keyid), { keyid, sig: sig.signature }] };
}

/** The http-signature algorithm name each key type's signature must come as (Signer's naming). */
function expectedAlgorithm(info: KeyInfo): string {
  if (info.type === 'rsa') return 'rsa-sha256';
  if (info.type === 'ed25519') return 'ed25519-sha512';
  return `ecdsa-${ECDSA[info.curve!].hash}`;
}

const ECDSA = {
  nistp256: { jwk: 'P-256', hash: 'sha256', size: 32 },
  nistp384: { jwk: 'P-384', hash: 'sha384', size: 48 },
  nistp521: { jwk: 'P-521', hash: 'sha512', size: 66 },
} as const;

/** A node public key from an SSH public-key blob (RSA, ECDSA P-256/384/521, Ed25519). */
export function publicKeyFromBlob(blob: Buffer): { key: KeyObject; info: KeyInfo } {
  const info = keyInfo(blob);
  const r = new SshReader(blob);
  r.text();
  const b64u = (b: Buffer) => b.toString('base64url');
  if (info.type === 'rsa') {
    const e = r.mpint();
    const n = r.mpint();
    return { key: createPublicKey({ key: { kty: 'RSA', e: b64u(e), n: b64u(n) }, format: 'jwk' }), info };
  }
  if (info.type === 'ed25519') {
    const x = r.string();
    if (x.length !== 32) throw new Error('Ed25519 public key is not 32 bytes');
    return { key: createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: b64u(x) }, format: 'jwk' }), info };
  }
  const c = ECDSA[info.curve!];
  r.text();
  const point = r.string();
  if (point.length !== 1 + 2 * c.size || point[0] !== 4) throw new Error('ECDSA public key is not an uncompressed point of its curve');
  const jwk = { kty: 'EC', crv: c.jwk, x: b64u(point.subarray(1, 1 + c.size)), y: b64u(point.subarray(1 + c.size)) };
  return { key: createPublicKey({ key: jwk, format: 'jwk' }), info };
}

/** Whether `sig` is `key`'s signature of `data` in one of the encodings above. */
export function verifySignature(key: KeyObject, info: KeyInfo, data: Buffer, sig: Buffer): boolean {
  try {
    if (info.type === 'rsa') return cryptoVerify('sha256', data, key, sig);
    if (info.type === 'ed25519') return sig.length === 64 && cryptoVerify(null, data, key, sig);
    const c = ECDSA[info.curve!];
    const dsaEncoding = sig.length === 2 * c.size && sig[0] !== 0x30 ? 'ieee-p1363' : 'der';
    return cryptoVerify(c.hash, data, { key, dsaEncoding }, sig);
  } catch {
    return false;
  }
}

/**
 * The envelope's body when one of its signatures is the key's over its
 * PAE, else undefined. keyid is not trusted: every signature is tried.
 */
export function verifyEnvelope(env: Envelope, blob: Buffer): Buffer | undefined {
  const { key, info } = publicKeyFromBlob(blob);
  const body = decodeBase64(env.payload);
  if (!body) return undefined;
  const data = pae(env.payloadType, body);
  for (const s of env.signatures) {
    const sig = decodeBase64(s.sig);
    if (sig && verifySignature(key, info, data, sig)) return body;
  }
  return undefined;
}
