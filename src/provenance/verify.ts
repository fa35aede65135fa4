/**
 * `buildimage verify`: an image file against its provenance envelope and a
 * public key. In the order DSSE prescribes: the key (an OpenSSH public key
 * line), the envelope, a signature by that key over the PAE, the payload
 * type, the statement; then the subject's sha256 and sha1 against the
 * file, read once. Every input is a user's file: read only as a bounded
 * regular file (no link, no FIFO), never quoted in a message.
 */
import { basename } from 'node:path';
import { UsageError, VerifyError } from '../core/errors.js';
import { digestFile, NotRegularFile, readSmallFile } from '../core/files.js';
import { parsePublicKeyLine, sha256Fingerprint } from '../http/signature.js';
import { COMPRESSIONS, fileSuffix } from '../image/compression.js';
import { IN_TOTO_PAYLOAD_TYPE, publicKeyFromBlob, verifyEnvelope } from './dsse.js';
import { EnvelopeError, PROVENANCE_SUFFIX, readEnvelope } from './envelope-file.js';
import { StatementSchema } from './statement.js';

/** An OpenSSH public key file is a line of text; anything bigger is something else. */
const MAX_PUBLIC_KEY_BYTES = 16 * 1024;

export interface VerifyOptions {
  image: string;
  /** OpenSSH public key file (`.pub`). */
  key: string;
  /** Default: the image's stem + `.provenance.dsse.json`. */
  provenance?: string;
}

export interface VerifyResult {
  ok: true;
  image: string;
  provenance: string;
  /** SHA256 fingerprint of the key that signed. */
  keyid: string;
  /** The subject's digests, as checked. */
  sha256: string;
  sha1: string;
  /** The statement's predicate type (SLSA provenance v1). */
  predicateType: string;
}

/** `<stem>.zfs.gz` → `<stem>.provenance.dsse.json`. */
export function provenancePathFor(image: string): string {
  const suffix = COMPRESSIONS.map(fileSuffix)
    .sort((a, b) => b.length - a.length)
    .find((s) => image.endsWith(s));
  return (suffix ? image.slice(0, -suffix.length) : image) + PROVENANCE_SUFFIX;
}

async function readPublicKey(path: string): Promise<Buffer> {
  const text = await readSmallFile(path, MAX_PUBLIC_KEY_BYTES).catch((err: NodeJS.ErrnoException) => {
    throw new UsageError(
      `public key (--key) ${path} ${err instanceof NotRegularFile ? err.why : err.code === 'ENOENT' ? 'does not exist' : `cannot be read (${err.code ?? err.message})`}`,
      'pass the signer\'s OpenSSH public key file itself (KEY.pub)',
    );
  });
  const line = text.split('\n').find((l) => l.trim() && !l.trim().startsWith('#')) ?? '';
  try {
    const { blob } = parsePublicKeyLine(line);
    publicKeyFromBlob(blob);
    return blob;
  } catch {
    // Never quoted: a private key passed by mistake must not reach a log.
    throw new UsageError(`public key (--key) ${path} is not an OpenSSH public key (ssh-rsa, ecdsa-sha2-nistp256/384/521 or ssh-ed25519)`, 'pass the .pub file, not the private key');
  }
}

export async function verifyImage(o: VerifyOptions): Promise<VerifyResult> {
  const blob = await readPublicKey(o.key);
  const keyid = sha256Fingerprint(blob);
  const provenance = o.provenance ?? provenancePathFor(o.image);
  const env = await readEnvelope(provenance).catch((err: unknown) => {
    if (err instanceof EnvelopeError) throw new UsageError(`provenance ${provenance} ${err.message}`, o.provenance ? undefined : 'pass --provenance FILE');
    throw err;
  });
  if (!env.signatures.length) throw new VerifyError(`provenance ${provenance} is not signed`, 'publish signs it with the Manta key, or build with MANTA_KEY_ID set');
  const body = verifyEnvelope(env, blob);
  if (!body) throw new VerifyError(`provenance ${provenance} is not signed by key ${keyid}: no signature in it verifies`, 'check --key: the key publish used');
  if (env.payloadType !== IN_TOTO_PAYLOAD_TYPE) throw new VerifyError(`provenance ${provenance} has payload type ${JSON.stringify(env.payloadType.slice(0, 80))}, not ${IN_TOTO_PAYLOAD_TYPE}`);
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch {
    throw new VerifyError(`provenance ${provenance}: the signed statement is not JSON`);
  }
  const st = StatementSchema.safeParse(json);
  if (!st.success) throw new VerifyError(`provenance ${provenance}: the signed payload is not an in-toto statement v1`);
  const subject = st.data.subject[0];
  const want = { sha256: subject.digest.sha256?.toLowerCase(), sha1: subject.digest.sha1?.toLowerCase() };
  if (!want.sha256) throw new VerifyError(`provenance ${provenance}: its subject has no sha256 digest`);
  const got = await digestFile(o.image, ['sha256', 'sha1']).catch((err: NodeJS.ErrnoException) => {
    throw new UsageError(`image ${o.image} ${err instanceof NotRegularFile ? err.why : err.code === 'ENOENT' ? 'does not exist' : `cannot be read (${err.code ?? err.message})`}`);
  });
  const sha256 = got.digests.sha256.toString('hex');
  const sha1 = got.digests.sha1.toString('hex');
  if (sha256 !== want.sha256) throw new VerifyError(`image ${o.image} does not match its provenance: sha256 ${sha256}, signed ${want.sha256} (${subject.name ?? 'subject'})`);
  if (want.sha1 && sha1 !== want.sha1) throw new VerifyError(`image ${o.image} does not match its provenance: sha1 ${sha1}, signed ${want.sha1}`);
  return { ok: true, image: o.image, provenance, keyid, sha256, sha1, predicateType: st.data.predicateType };
}

/** The one line `verify` prints. */
export function renderVerified(r: VerifyResult): string {
  return `verified ${basename(r.image)}: sha256 ${r.sha256} signed by ${r.keyid} (${basename(r.provenance)})`;
}
