/** Picks the image source for a --source value: a directory, or an IMGAPI URL. */
import { BuildError } from '../errors.js';
import { DirectorySource } from './dir-source.js';
import type { ImageSource } from './source.js';

export const DEFAULT_SOURCE = 'https://updates.tritondatacenter.com';

export function isUrl(spec: string): boolean {
  return /^https?:\/\//i.test(spec);
}

export function openSource(spec: string, channel?: string): ImageSource {
  if (isUrl(spec)) {
    void channel;
    throw new BuildError(`IMGAPI sources are not supported yet: ${spec}`, { hint: 'use --source DIR with *.imgmanifest files' });
  }
  return new DirectorySource(spec);
}
