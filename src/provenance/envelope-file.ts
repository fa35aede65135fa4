/**
 * The provenance file beside an image (`<stem>.provenance.dsse.json`): a
 * DSSE envelope around the statement, written whole, read back bounded and
 * checked; and the signing key, found as publish finds its Manta key
 * (MANTA_KEY_ID, else ~/.ssh/id_rsa.pub's fingerprint; in ~/.ssh or the
 * ssh-agent).
 */
import { homedir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { NotRegularFile, readSmallFile, writeAtomic } from '../core/files.js';
import { defaultKeyId, findSigner, KeyError } from '../http/keys.js';
import type { Signer } from '../http/signature.js';
import { oneLine } from '../core/errors.js';
import { sha256Fingerprint } from '../http/signature.js';
import { signEnvelope, unsignedEnvelope, type Envelope } from './dsse.js';

/** The provenance file's suffix after the output stem. */
export const PROVENANCE_SUFFIX = '.provenance.dsse.json';

/** Far above a statement with hundreds of packages; an envelope past it is not read. */
export const MAX_ENVELOPE_BYTES = 8 * 1024 * 1024;

const Base64 = z.string().regex(/^[A-Za-z0-9+/_-]*={0,2}$/, 'not base64');
export const EnvelopeSchema = z
  .object({
    payloadType: z.string().max(256),
    payload: Base64,
    signatures: z.array(z.object({ keyid: z.string().max(256).optional(), sig: Base64.and(z.string().max(4096)) })).max(16),
  })
  .strict();

/** Why an envelope file cannot be read (missing, not a regular file, too big, not an envelope); the message never quotes it. */
export class EnvelopeError extends Error {}

export async function readEnvelope(path: string): Promise<Envelope> {
  const text = await readSmallFile(path, MAX_ENVELOPE_BYTES).catch((err: NodeJS.ErrnoException) => {
    throw new EnvelopeError(err instanceof NotRegularFile ? `${err.why}` : err.code === 'ENOENT' ? 'does not exist' : `cannot be read (${err.code ?? err.message})`);
  });
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new EnvelopeError('is not JSON');
  }
  const parsed = EnvelopeSchema.safeParse(json);
  if (!parsed.success) {
    const i = parsed.error.issues[0];
    throw new EnvelopeError(`is not a DSSE envelope (${i?.path.join('.') || 'top'}: ${i?.message})`);
  }
  return parsed.data;
}

export async function writeEnvelope(path: string, env: Envelope): Promise<void> {
  await writeAtomic(path, JSON.stringify(env, null, 2) + '\n');
}

/** The statement as the envelope's body: compact JSON, UTF-8. */
export function statementEnvelope(statement: unknown): Envelope {
  return unsignedEnvelope(Buffer.from(JSON.stringify(statement), 'utf8'));
}

/** Neither MANTA_KEY_ID nor ~/.ssh/id_rsa.pub names a key. */
export class NoKeyIdError extends KeyError {}

/** The key publish signs Manta requests with (publish/env's rule), found in `sshDir` or the agent; KeyError when there is none. */
export async function publishKeySigner(o: { keyId?: string; sshDir: string; agentSocket?: string }): Promise<Signer> {
  const keyId = o.keyId || (await defaultKeyId(o.sshDir));
  if (!keyId) throw new NoKeyIdError('MANTA_KEY_ID is not set and there is no ~/.ssh/id_rsa.pub to default to');
  return findSigner({ keyId, sshDir: o.sshDir, agentSocket: o.agentSocket });
}

/** publishKeySigner from an environment (MANTA_KEY_ID, HOME, SSH_AUTH_SOCK). */
export function signerFromEnv(env: NodeJS.ProcessEnv): Promise<Signer> {
  return publishKeySigner({ keyId: env.MANTA_KEY_ID || undefined, sshDir: join(env.HOME || homedir(), '.ssh'), agentSocket: env.SSH_AUTH_SOCK || undefined });
}

/** The statement's envelope, signed with `env`'s publish key when there is one; `unsigned` says why not. */
export async function envelopeFor(statement: unknown, env: NodeJS.ProcessEnv): Promise<{ envelope: Envelope; keyid?: string; source?: string; unsigned?: string }> {
  const envelope = statementEnvelope(statement);
  let signer: Signer;
  try {
    signer = await signerFromEnv(env);
  } catch (err) {
    return { envelope, unsigned: oneLine(err) };
  }
  try {
    return { envelope: await signEnvelope(envelope, signer), keyid: sha256Fingerprint(signer.info.blob), source: signer.source };
  } catch (err) {
    return { envelope, unsigned: `${signer.source}: ${oneLine(err)}` };
  }
}
