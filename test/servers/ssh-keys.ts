/** Throwaway SSH keys (ssh-keygen, node:crypto) and a real ssh-agent for tests. */
import { execa } from 'execa';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { existsSync } from 'node:fs';
import { publicBlob } from '../../src/http/signature.js';
import './legacy-util.js';

const require = createRequire(import.meta.url);
/* The official Joyent libraries, used as oracles and as the test server's verifier. */
 
export const sshpk: any = require('sshpk');
export const httpSignature: any = require('http-signature');
export const smartdcAuth: any = require('smartdc-auth');

export function haveBinary(name: string): boolean {
  return ['/usr/bin', '/bin', '/usr/local/bin'].some((d) => existsSync(join(d, name)));
}

export async function tempDir(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

export interface TestKey {
  /** Private key file. */
  path: string;
  privateText: string;
  /** OpenSSH public key line. */
  pubLine: string;
}

export async function sshKeygen(
  dir: string,
  name: string,
  type: 'rsa' | 'ecdsa' | 'ed25519',
  opts: { bits?: number; passphrase?: string } = {},
): Promise<TestKey> {
  const path = join(dir, name);
  const args = ['-q', '-t', type, '-N', opts.passphrase ?? '', '-C', `${name}@test`, '-f', path];
  if (opts.bits) args.push('-b', String(opts.bits));
  await execa('ssh-keygen', args, { stdin: 'ignore' });
  return { path, privateText: await readFile(path, 'utf8'), pubLine: (await readFile(`${path}.pub`, 'utf8')).trim() };
}

/** An RSA key as PKCS#1 PEM made by node (no ssh-keygen needed). */
export function nodeRsaKey(bits = 2048): { pem: string; pubLine: string } {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: bits });
  const pem = privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
  return { pem, pubLine: `ssh-rsa ${publicBlob(privateKey).toString('base64')} node@test` };
}

export async function sshFingerprint(pubPath: string, hash: 'md5' | 'sha256'): Promise<string> {
  const r = await execa('ssh-keygen', ['-l', '-E', hash, '-f', pubPath]);
  return String(r.stdout).split(/\s+/)[1];
}

export interface TestAgent {
  socket: string;
  add(path: string): Promise<void>;
  stop(): Promise<void>;
}

/** A real ssh-agent (openssh-client) on a socket in a temp dir. */
export async function startSshAgent(dir: string): Promise<TestAgent> {
  const socket = join(dir, 'agent.sock');
  const child = execa('ssh-agent', ['-D', '-a', socket], { stdin: 'ignore', reject: false });
  for (let i = 0; i < 100 && !existsSync(socket); i++) await sleep(20);
  if (!existsSync(socket)) {
    child.kill();
    throw new Error('ssh-agent did not start');
  }
  return {
    socket,
    async add(path) {
      await execa('ssh-add', ['-q', path], { env: { SSH_AUTH_SOCK: socket }, stdin: 'ignore' });
    },
    async stop() {
      child.kill('SIGTERM');
      await child;
      await rm(socket, { force: true });
    },
  };
}
