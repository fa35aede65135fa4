/**
 * HTTP Signature for IMGAPI writes (imgapi.md §3). It differs from Manta's:
 * keyId is the IMGAPI *user name* (the server tries every key on file for
 * that user), there is no `headers` param (the server defaults to `date`),
 * and only RSA (or DSA) keys are accepted, so ECDSA/Ed25519 keys are refused
 * here before any request is made.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { KeyError, findSigner, parsePrivateKey } from '../http/keys.js';
import { formatAuthorization, httpDate, keyObjectSigner, md5Fingerprint, parseFingerprint, parsePublicKeyLine, type Signer } from '../http/signature.js';

/** `date` and `authorization` for one request, as sdc-clients' _getAuthHeaders builds them. */
export async function imgapiAuthHeaders(signer: Signer, user: string, date: string = httpDate()): Promise<{ date: string; authorization: string }> {
  const sig = await signer.sign(`date: ${date}`);
  return { date, authorization: formatAuthorization({ keyId: user, algorithm: sig.algorithm, signature: sig.signature }) };
}

/** IMGAPI's VALID_ALGS is RSA-SHA1, RSA-SHA256, DSA-SHA1: anything else is a 401 on every call. */
export function checkImgapiKey(signer: Signer): Signer {
  if (signer.info.type !== 'rsa') {
    throw new KeyError(`key ${signer.fingerprint} (${signer.source}) is ${signer.info.type}: IMGAPI only accepts RSA keys; use an RSA key for UPDATES_IMGADM_IDENTITY`);
  }
  return signer;
}

export interface IdentityOptions {
  /** UPDATES_IMGADM_IDENTITY: a fingerprint (MD5 or SHA256:) or a private key path. */
  identity?: string;
  sshDir?: string;
  agentSocket?: string;
}

/**
 * The default key when UPDATES_IMGADM_IDENTITY is unset: bits-upload.sh's
 * ~/.ssh/automation.id_rsa when it exists, else updates-imgadm's ~/.ssh/id_rsa.
 */
export function defaultIdentity(sshDir = join(homedir(), '.ssh')): string | undefined {
  for (const name of ['automation.id_rsa', 'id_rsa']) {
    const p = join(sshDir, name);
    if (existsSync(p)) return p;
  }
  return undefined;
}

/**
 * As sdc-clients' cliSigner (§3.1): a fingerprint is looked up in ~/.ssh and
 * the agent; otherwise it is a key file. A passphrase-protected file is used
 * through the ssh-agent, found by its public key.
 */
export async function imgapiSigner(o: IdentityOptions): Promise<Signer> {
  const sshDir = o.sshDir ?? join(homedir(), '.ssh');
  const identity = o.identity || defaultIdentity(sshDir);
  if (!identity) {
    throw new KeyError(`no key for updates IMGAPI: UPDATES_IMGADM_IDENTITY is not set and there is no ${join(sshDir, 'automation.id_rsa')} or ${join(sshDir, 'id_rsa')}`);
  }
  let isFingerprint = true;
  try {
    parseFingerprint(identity);
  } catch {
    isFingerprint = false;
  }
  if (isFingerprint) return checkImgapiKey(await findSigner({ keyId: identity, sshDir, agentSocket: o.agentSocket }));

  const path = resolve(identity.replace(/^~(?=$|\/)/, homedir()));
  const text = await readFile(path, 'utf8').catch((err: NodeJS.ErrnoException) => {
    throw new KeyError(`UPDATES_IMGADM_IDENTITY ${path}: ${err.code === 'ENOENT' ? 'no such file' : err.message} (it is neither a key fingerprint nor a readable key file)`);
  });
  let parsed;
  try {
    parsed = parsePrivateKey(text);
  } catch (err) {
    throw new KeyError(`UPDATES_IMGADM_IDENTITY ${path} is not a private key I can read: ${(err as Error).message}`);
  }
  if (!parsed.locked) return checkImgapiKey(keyObjectSigner(parsed.key, path));
  // PEM keys keep their public half only in the .pub beside them.
  let blob = parsed.blob;
  if (!blob) {
    const pub = await readFile(`${path}.pub`, 'utf8').catch(() => undefined);
    try {
      blob = pub ? parsePublicKeyLine(pub).blob : undefined;
    } catch {
      blob = undefined;
    }
  }
  if (!blob || !o.agentSocket) {
    throw new KeyError(`SSH private key ${path} is protected by a passphrase; add it to the ssh-agent (ssh-add ${path}) and set SSH_AUTH_SOCK`);
  }
  return checkImgapiKey(await findSigner({ keyId: md5Fingerprint(blob), sshDir, agentSocket: o.agentSocket }));
}
