/**
 * Where base images come from. `prepare` asks a source for manifests
 * (walking the origin chain) and for the raw, still-compressed image file
 * bytes; it checks size and sha1 itself while they flow into `zfs receive`.
 */
import type { Readable } from 'node:stream';
import type { ImageManifest } from '../image/manifest/types.js';

export interface OpenFileOptions {
  /** Progress callback: bytes received so far. */
  onProgress?: (bytes: number) => void;
}

export interface GetManifestOptions {
  /** Refuse an image that is not `active` (imgadm: the top image only; origins need not be). */
  requireActive?: boolean;
}

export interface ImageSource {
  /** For messages and the state file, e.g. a directory path or an IMGAPI URL (no credentials). */
  readonly description: string;
  /**
   * The manifest of image `uuid`. Throws BuildError naming the uuid and the
   * source when it is not there.
   */
  getManifest(uuid: string, opts?: GetManifestOptions): Promise<ImageManifest>;
  /** The image's file (files[0]) exactly as published: compressed bytes. */
  openFile(manifest: ImageManifest, opts?: OpenFileOptions): Promise<Readable>;
}
