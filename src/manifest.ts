/**
 * Image manifest v2 (imgapi.md §1): types, building a new image's manifest
 * as `imgadm create -i` does, and validation as imgmanifest/IMGAPI do.
 */

export type Compression = 'gzip' | 'bzip2' | 'xz' | 'none';

export interface ManifestFile {
  sha1: string;
  size: number;
  compression: Compression;
  dataset_guid?: string;
}

/** A v2 image manifest. Known fields are typed; the rest pass through. */
export interface ImageManifest {
  v: number;
  uuid: string;
  owner?: string;
  name: string;
  version: string;
  description?: string;
  state?: string;
  disabled?: boolean;
  public?: boolean;
  published_at?: string;
  type?: string;
  os?: string;
  origin?: string;
  files?: ManifestFile[];
  requirements?: Record<string, unknown>;
  users?: Array<{ name: string }>;
  billing_tags?: string[];
  traits?: Record<string, unknown>;
  tags?: Record<string, unknown>;
  generate_passwords?: boolean;
  inherited_directories?: string[];
  [key: string]: unknown;
}
