/**
 * A bits directory, a home with the Manta key, and the local Manta server
 * that knows the key: what `buildimage publish` needs, for tests that run
 * the real CLI against Manta (directly, through a proxy, or refused).
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MantaTestServer } from './manta-server.js';
import { nodeRsaKey, sshpk, tempDir } from './ssh-keys.js';

export const BITS_USER = 'Joyent_Dev';
export const BITS_STAMP = 'master-20240501T120000Z-g0123abc';
export const BITS_BASE = `/${BITS_USER}/public/builds/demo`;

export interface MantaBits {
  dir: string;
  bits: string;
  home: string;
  srv: MantaTestServer;
  /** The key's MD5 fingerprint, as messages name it. */
  fingerprint: string;
  /** `publish` of the bits to BITS_BASE. */
  args: string[];
  /** The environment publish runs in: this Manta, this home's key, and no proxy unless `extra` sets one. */
  env(extra?: Record<string, string>): Record<string, string>;
  dispose(): Promise<void>;
}

export async function mantaBits(o: { tls?: { key: string; cert: string } } = {}): Promise<MantaBits> {
  const dir = await tempDir('buildimage-bits-');
  const bits = join(dir, 'bits');
  const home = join(dir, 'home');
  await mkdir(join(bits, 'demo'), { recursive: true });
  await mkdir(join(home, '.ssh'), { recursive: true });
  const key = nodeRsaKey();
  await writeFile(join(home, '.ssh/id_rsa'), key.pem, { mode: 0o600 });
  await writeFile(join(home, '.ssh/id_rsa.pub'), key.pubLine + '\n');
  await writeFile(join(bits, 'demo/demo-zfs-1.0.zfs.gz'), Buffer.alloc(64 * 1024, 7));
  await writeFile(join(bits, 'demo/latest-build-stamp'), `${BITS_STAMP}\n`);
  const srv = await MantaTestServer.start({ [BITS_USER]: { keys: [key.pubLine] } }, { tls: o.tls });
  const noProxy = { http_proxy: '', https_proxy: '', all_proxy: '', no_proxy: '', HTTP_PROXY: '', HTTPS_PROXY: '', ALL_PROXY: '', NO_PROXY: '' };
  return {
    dir,
    bits,
    home,
    srv,
    fingerprint: String(sshpk.parseKey(key.pubLine, 'ssh').fingerprint('md5').toString('hex')),
    args: ['publish', '-b', 'master', '-n', 'demo', '-d', '/public/builds/demo', '-D', bits],
    env: (extra = {}) => ({
      HOME: home,
      MANTA_URL: srv.url,
      MANTA_USER: BITS_USER,
      SSH_AUTH_SOCK: '',
      MANTA_KEY_ID: '',
      ...(o.tls ? { MANTA_TLS_INSECURE: '1' } : {}),
      ...noProxy,
      ...extra,
    }),
    dispose: async () => {
      await srv.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
