/**
 * The Manta store: bits-upload.sh's layout over the directory API. A
 * pointer is a small text/plain object whose body is the stamp directory
 * plus a newline (Manta v2 has no SnapLinks).
 */
import { createHash } from 'node:crypto';
import { MantaClient } from '../manta/client.js';
import { presignUrl } from '../manta/presign.js';
import type { PutFileMeta, Store, StoreEntry } from './store.js';

export class MantaStore implements Store {
  readonly kind = 'manta' as const;
  readonly description: string;

  constructor(readonly client: MantaClient) {
    const o = client.opts;
    this.description = `Manta ${client.url.origin} as ${o.user}${o.subuser ? `/${o.subuser}` : ''} (key ${o.signer.fingerprint} from ${o.signer.source})`;
  }

  isRoot(path: string): boolean {
    const user = this.client.opts.user;
    return ['/', `/${user}`, `/${user}/stor`, `/${user}/public`].includes(path);
  }

  async stat(path: string): Promise<StoreEntry | undefined> {
    const e = await this.client.head(path);
    if (!e) return undefined;
    return e.type === 'directory' ? e : { type: 'object', size: e.size, ...(e.md5 ? { md5: e.md5 } : {}) };
  }

  mkdir(path: string): Promise<void> {
    return this.client.mkdir(path);
  }

  async putFile(path: string, localFile: string, meta: PutFileMeta, onProgress?: (bytes: number) => void): Promise<void> {
    await this.client.putFile(path, localFile, { ...meta, onProgress });
  }

  async putText(path: string, body: string, contentType: string): Promise<void> {
    const buf = Buffer.from(body, 'utf8');
    await this.client.putBuffer(path, buf, { md5: md5b64(buf), contentType });
  }

  async pointsAt(path: string, target: string): Promise<boolean> {
    const e = await this.client.head(path);
    return e?.type === 'object' && e.md5 === md5b64(Buffer.from(`${target}\n`));
  }

  setPointer(path: string, target: string): Promise<void> {
    return this.putText(path, `${target}\n`, 'text/plain');
  }

  /** As bits-upload.sh: public objects as full URLs, others as Manta paths. */
  artifactRef(path: string): string {
    const user = this.client.opts.user;
    return path.startsWith(`/${user}/public/`) ? `${this.client.url.origin}${path.split('/').map(encodeURIComponent).join('/')}` : path;
  }

  signedUrl(path: string): Promise<string> {
    const o = this.client.opts;
    return presignUrl({ url: this.client.url.href, user: o.user, subuser: o.subuser, signer: o.signer, path });
  }

  close(): void {
    this.client.close();
  }
}

function md5b64(b: Buffer): string {
  return createHash('md5').update(b).digest('base64');
}
