/**
 * Finding the signing key named by a fingerprint, as node-manta's cliSigner
 * does: key pairs in ~/.ssh first, then the ssh-agent; a passphrase-protected
 * file key is only usable through the agent (there is no prompt). Key files
 * may be PEM (PKCS#1, PKCS#8, SEC1) or the OpenSSH format ssh-keygen writes
 * by default, which node:crypto cannot read, so that one is parsed here.
 */
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { SshAgent, SSH_AGENT_RSA_SHA2_256 } from './ssh-agent.js';
import {
  algorithmFor,
  fromSshSignature,
  keyInfo,
  keyObjectSigner,
  md5Fingerprint,
  parseFingerprint,
  parsePublicKeyLine,
  publicBlob,
  type Signer,
} from './signature.js';
import { SshReader, stripZeros } from './ssh-wire.js';

/** The key could not be found or used; the message says where we looked. */
export class KeyError extends Error {}

export type ParsedPrivateKey = { locked: false; key: KeyObject; blob: Buffer } | { locked: true; blob?: Buffer };

const MAX_PUBLIC = 64 * 1024;
const MAX_PRIVATE = 128 * 1024;

/** Reads a private key file's text (PEM or OpenSSH). Encrypted keys come back `locked`. */
export function parsePrivateKey(text: string): ParsedPrivateKey {
  if (text.includes('-----BEGIN OPENSSH PRIVATE KEY-----')) return parseOpenSsh(text);
  if (/ENCRYPTED/.test(text)) return { locked: true };
  const key = createPrivateKey({ key: text, format: 'pem' });
  return { locked: false, key, blob: publicBlob(key) };
}

function parseOpenSsh(text: string): ParsedPrivateKey {
  const b64 = text
    .replace(/-----(BEGIN|END) OPENSSH PRIVATE KEY-----/g, '')
    .replace(/\s+/g, '');
  const buf = Buffer.from(b64, 'base64');
  const magic = 'openssh-key-v1\0';
  if (buf.subarray(0, magic.length).toString('latin1') !== magic) throw new Error('not an OpenSSH private key');
  const r = new SshReader(buf.subarray(magic.length));
  const cipher = r.text();
  r.text(); // kdf name
  r.string(); // kdf options
  const n = r.u32();
  if (n !== 1) throw new Error(`OpenSSH key files with ${n} keys are not supported`);
  const blob = Buffer.from(r.string());
  if (cipher !== 'none') return { locked: true, blob };
  const p = new SshReader(r.string());
  if (p.u32() !== p.u32()) throw new Error('OpenSSH private key is corrupt (check words differ)');
  const type = p.text();
  let jwk: Record<string, string>;
  if (type === 'ssh-rsa') {
    const [nn, e, d, iqmp, pp, q] = [p.mpint(), p.mpint(), p.mpint(), p.mpint(), p.mpint(), p.mpint()];
    const big = (b: Buffer): bigint => BigInt('0x' + (b.length ? b.toString('hex') : '0'));
    const unbig = (v: bigint): string => {
      let h = v.toString(16);
      if (h.length % 2) h = '0' + h;
      return stripZeros(Buffer.from(h, 'hex')).toString('base64url');
    };
    const dd = big(d);
    jwk = {
      kty: 'RSA',
      n: nn.toString('base64url'),
      e: e.toString('base64url'),
      d: d.toString('base64url'),
      p: pp.toString('base64url'),
      q: q.toString('base64url'),
      dp: unbig(dd % (big(pp) - 1n)),
      dq: unbig(dd % (big(q) - 1n)),
      qi: iqmp.toString('base64url'),
    };
  } else if (type === 'ssh-ed25519') {
    const pub = p.string();
    const priv = p.string();
    jwk = { kty: 'OKP', crv: 'Ed25519', x: pub.toString('base64url'), d: priv.subarray(0, 32).toString('base64url') };
  } else if (type.startsWith('ecdsa-sha2-')) {
    const curve = p.text();
    const point = p.string();
    const d = p.mpint();
    const size = point.length >> 1;
    const crv = { nistp256: 'P-256', nistp384: 'P-384', nistp521: 'P-521' }[curve];
    if (!crv) throw new Error(`unsupported curve ${curve}`);
    const padded = d.length >= size ? d : Buffer.concat([Buffer.alloc(size - d.length), d]);
    jwk = {
      kty: 'EC',
      crv,
      x: point.subarray(1, 1 + size).toString('base64url'),
      y: point.subarray(1 + size).toString('base64url'),
      d: padded.toString('base64url'),
    };
  } else {
    throw new Error(`unsupported key type ${type}`);
  }
  const key = createPrivateKey({ key: jwk, format: 'jwk' });
  const derived = publicBlob(key);
  if (!derived.equals(blob)) throw new Error('OpenSSH private key does not match its public part');
  return { locked: false, key, blob };
}

interface Candidate {
  blob: Buffer;
  source: string;
  locked: boolean;
  signer?: Signer;
}

async function readSmall(path: string, max: number): Promise<string | undefined> {
  const st = await stat(path).catch(() => undefined);
  if (!st?.isFile() || st.size >= max) return undefined;
  return readFile(path, 'utf8').catch(() => undefined);
}

/** Key pairs in a ~/.ssh directory whose public key the fingerprint matches. */
async function homedirCandidates(dir: string, matches: (blob: Buffer) => boolean): Promise<Candidate[]> {
  const names = await readdir(dir).catch(() => [] as string[]);
  const out: Candidate[] = [];
  const seen = new Set<string>();
  for (const name of names.filter((n) => n.endsWith('.pub'))) {
    const text = await readSmall(join(dir, name), MAX_PUBLIC);
    if (text === undefined) continue;
    let pub: Buffer;
    try {
      pub = parsePublicKeyLine(text.split('\n')[0] ?? '').blob;
    } catch {
      continue;
    }
    if (!matches(pub)) continue;
    const privName = name.slice(0, -4);
    seen.add(privName);
    const c = await privateCandidate(join(dir, privName), pub);
    if (c) out.push(c);
  }
  // A private key with no .pub is only tried when named like a default identity.
  for (const name of names.filter((n) => !n.endsWith('.pub') && !seen.has(n) && /(^|[^a-zA-Z])id_/.test(n))) {
    if (names.includes(`${name}.pub`)) continue;
    const c = await privateCandidate(join(dir, name), undefined);
    if (c?.blob && matches(c.blob)) out.push(c);
  }
  return out;
}

async function privateCandidate(path: string, pub: Buffer | undefined): Promise<Candidate | undefined> {
  const text = await readSmall(path, MAX_PRIVATE);
  if (text === undefined) return undefined;
  let parsed: ParsedPrivateKey;
  try {
    parsed = parsePrivateKey(text);
  } catch {
    return undefined;
  }
  if (parsed.locked) {
    const blob = parsed.blob ?? pub;
    return blob ? { blob, source: path, locked: true } : undefined;
  }
  if (pub && !parsed.blob.equals(pub)) return undefined;
  return { blob: parsed.blob, source: path, locked: false, signer: keyObjectSigner(parsed.key, path) };
}

function agentSigner(agent: SshAgent, blob: Buffer, comment: string): Signer {
  const info = keyInfo(blob);
  return {
    fingerprint: md5Fingerprint(blob),
    algorithm: algorithmFor(info),
    info,
    source: `ssh-agent${comment ? ` (${comment})` : ''}`,
    async sign(data) {
      const flags = info.type === 'rsa' ? SSH_AGENT_RSA_SHA2_256 : 0;
      return fromSshSignature(await agent.sign(blob, Buffer.from(data, 'utf8'), flags), info);
    },
  };
}

export interface FindKeyOptions {
  /** MANTA_KEY_ID: MD5 or SHA256 fingerprint. */
  keyId: string;
  /** Directory of key pairs; default ~/.ssh. */
  sshDir?: string;
  /** SSH_AUTH_SOCK; no agent when unset. */
  agentSocket?: string;
}

/** The signer for a fingerprint: unlocked ~/.ssh key, else the agent, else a clear error. */
export async function findSigner(opts: FindKeyOptions): Promise<Signer> {
  let fp;
  try {
    fp = parseFingerprint(opts.keyId);
  } catch (err) {
    throw new KeyError((err as Error).message);
  }
  const dir = opts.sshDir ?? join(homedir(), '.ssh');
  const files = await homedirCandidates(dir, (b) => fp.matches(b));
  const usable = (c: Candidate): Signer => {
    try {
      algorithmFor(keyInfo(c.blob));
    } catch (err) {
      throw new KeyError(`key ${fp.text} (${c.source}): ${(err as Error).message}`);
    }
    return c.signer!;
  };
  const unlocked = files.find((c) => !c.locked);
  if (unlocked) return usable(unlocked);
  let agentNote = '';
  if (opts.agentSocket) {
    const agent = new SshAgent(opts.agentSocket);
    try {
      const id = (await agent.identities()).find((i) => fp.matches(i.blob));
      if (id) return usable({ blob: id.blob, source: 'ssh-agent', locked: false, signer: agentSigner(agent, id.blob, id.comment) });
    } catch (err) {
      if (err instanceof KeyError) throw err;
      agentNote = ` (${(err as Error).message})`;
    }
  }
  const locked = files.find((c) => c.locked);
  if (locked) {
    throw new KeyError(`SSH private key ${locked.source} is protected by a passphrase and not in the ssh-agent; run ssh-add ${locked.source}`);
  }
  throw new KeyError(
    `SSH key with fingerprint "${fp.text}" could not be located in ${dir}${opts.agentSocket ? `, SSH agent${agentNote}` : ' (SSH_AUTH_SOCK is not set)'}`,
  );
}

/** bits-upload.sh's default MANTA_KEY_ID: the MD5 fingerprint of ~/.ssh/id_rsa.pub. */
export async function defaultKeyId(sshDir = join(homedir(), '.ssh')): Promise<string | undefined> {
  const text = await readSmall(join(sshDir, 'id_rsa.pub'), MAX_PUBLIC);
  if (text === undefined) return undefined;
  try {
    return md5Fingerprint(parsePublicKeyLine(text).blob);
  } catch {
    return undefined;
  }
}
