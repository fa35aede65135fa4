/** A minimal valid v2 image manifest for client and source tests; `data` becomes its one gzip file. */
import { createHash, randomUUID } from 'node:crypto';
import type { ImageManifest } from '../../src/image/manifest/types.js';

export function testManifest(over: Partial<ImageManifest> = {}, data?: Buffer): ImageManifest {
  return {
    v: 2,
    uuid: randomUUID(),
    owner: '00000000-0000-0000-0000-000000000000',
    name: 'base-64-lts',
    version: '24.4.0',
    type: 'zone-dataset',
    os: 'smartos',
    ...(data ? { files: [{ sha1: createHash('sha1').update(data).digest('hex'), size: data.length, compression: 'gzip' as const }] } : {}),
    ...over,
  };
}
