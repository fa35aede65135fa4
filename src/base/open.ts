/** Picks the image source for a --source value: a directory of published images, or an IMGAPI URL. */
import { envSwitch } from '../core/env.js';
import { DirectorySource } from './dir-source.js';
import type { ImageSource } from './source.js';

export const DEFAULT_SOURCE = 'https://updates.tritondatacenter.com';

export function isUrl(spec: string): boolean {
  return /^https?:\/\//i.test(spec);
}

/** The HTTP client (got and its dependencies) is loaded only for an IMGAPI source: a rebuild from a directory does not pay for it. */
export async function openSource(spec: string, channel?: string, env: NodeJS.ProcessEnv = process.env): Promise<ImageSource> {
  if (isUrl(spec)) {
    const { ImgapiSource } = await import('./imgapi-source.js');
    // As imgadm: IMGADM_INSECURE=1 turns TLS verification off for sources (a switch, read as every switch: core/env.ts).
    const insecure = envSwitch('IMGADM_INSECURE', env) || envSwitch('BUILDIMAGE_INSECURE', env);
    return new ImgapiSource({ url: spec, channel, insecure });
  }
  return new DirectorySource(spec);
}
