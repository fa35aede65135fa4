/**
 * Publishing's environment, read in one place: bits-upload.sh's MANTA_*
 * and updates-imgadm's UPDATES_IMGADM_* variables with their defaults, and
 * how each finds its signing key. `publish` and `doctor --publish` both go
 * through here, so doctor judges exactly the setup publish will use.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';
import { NoKeyIdError, publishKeySigner } from '../provenance/envelope-file.js';
import type { Signer } from '../http/signature.js';
import { imgapiSigner } from '../imgapi/auth.js';
import { MantaClient, type MantaClientOptions } from '../manta/client.js';
import { envSwitch } from '../core/env.js';
import { PublishError } from '../core/errors.js';

/** bits-upload.sh's defaults. */
export const MANTA_DEFAULTS = { url: 'https://us-central.manta.mnx.io', user: 'Joyent_Dev' };
/** updates-imgadm's defaults as bits-upload.sh configured it. */
export const UPDATES_DEFAULTS = { url: 'https://updates.tritondatacenter.com', user: 'mg' };

export function sshDirOf(env: NodeJS.ProcessEnv): string {
  return join(env.HOME || homedir(), '.ssh');
}

export interface MantaEnv {
  url: string;
  user: string;
  subuser?: string;
  /** MANTA_KEY_ID as given (MD5 or SHA256 fingerprint). */
  keyId?: string;
  insecure: boolean;
  agentSocket?: string;
  /** Where the client reads http_proxy/https_proxy/no_proxy. */
  env: NodeJS.ProcessEnv;
}

export function mantaEnv(env: NodeJS.ProcessEnv): MantaEnv {
  return {
    url: env.MANTA_URL || MANTA_DEFAULTS.url,
    user: env.MANTA_USER || MANTA_DEFAULTS.user,
    subuser: env.MANTA_SUBUSER || undefined,
    keyId: env.MANTA_KEY_ID || undefined,
    insecure: envSwitch('MANTA_TLS_INSECURE', env),
    agentSocket: env.SSH_AUTH_SOCK || undefined,
    env,
  };
}

/** A client for this environment's Manta, signing with `signer`. */
export function mantaClient(m: MantaEnv, signer: Signer, o: Pick<MantaClientOptions, 'retry' | 'stallMs'>): MantaClient {
  return new MantaClient({ url: m.url, user: m.user, subuser: m.subuser, signer, insecure: m.insecure, env: m.env, ...o });
}

/** The Manta key as node-manta finds it: MANTA_KEY_ID, else ~/.ssh/id_rsa.pub's fingerprint; in ~/.ssh or the agent. */
export async function mantaSigner(m: MantaEnv, sshDir: string): Promise<Signer> {
  return publishKeySigner({ keyId: m.keyId, sshDir, agentSocket: m.agentSocket }).catch((err: unknown) => {
    if (err instanceof NoKeyIdError) throw new PublishError(err.message, { hint: 'export MANTA_KEY_ID=SHA256:… (ssh-keygen -l -f KEY.pub)' });
    throw err;
  });
}

export interface UpdatesEnv {
  url: string;
  user: string;
  /** UPDATES_IMGADM_IDENTITY: a key file or a fingerprint. */
  identity?: string;
  /** UPDATES_IMGADM_CHANNEL. */
  channel?: string;
  /** UPDATES_IMGADM_INSECURE, read as every switch (core/env.ts): `=0` keeps TLS verification on. */
  insecure: boolean;
  agentSocket?: string;
}

export function updatesEnv(env: NodeJS.ProcessEnv): UpdatesEnv {
  return {
    url: env.UPDATES_IMGADM_URL || UPDATES_DEFAULTS.url,
    user: env.UPDATES_IMGADM_USER || UPDATES_DEFAULTS.user,
    identity: env.UPDATES_IMGADM_IDENTITY || undefined,
    channel: env.UPDATES_IMGADM_CHANNEL || undefined,
    insecure: envSwitch('UPDATES_IMGADM_INSECURE', env),
    agentSocket: env.SSH_AUTH_SOCK || undefined,
  };
}

/** The updates IMGAPI key as updates-imgadm finds it (imgapi/auth.ts). */
export function updatesSigner(u: UpdatesEnv, sshDir: string): Promise<Signer> {
  return imgapiSigner({ identity: u.identity, sshDir, agentSocket: u.agentSocket });
}

/** bits-upload.sh's escape hatch for `-dirty` stamps. */
export function allowDirty(env: NodeJS.ProcessEnv): boolean {
  return envSwitch('BITS_UPLOAD_ALLOW_DIRTY', env) || envSwitch('ENGBLD_BITS_UPLOAD_ALLOW_DIRTY', env);
}
