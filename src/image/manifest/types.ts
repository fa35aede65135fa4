/**
 * Image manifest v2 (imgapi.md §1): the types every room passes around,
 * and the two value shapes (uuid, platform stamp) that several rooms check.
 * Rules live beside it: validate.ts (imgmanifest 3.2.1's checks), input.ts
 * (the `-m` text), create.ts (a new image's manifest, as `imgadm create`).
 */
import type { Compression } from '../compression.js';

export type { Compression };

// ---- types

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
  homepage?: string;
  eula?: string;
  urn?: string;
  state?: string;
  disabled?: boolean;
  activated?: boolean;
  public?: boolean;
  published_at?: string;
  type?: string;
  os?: string;
  origin?: string;
  files?: ManifestFile[];
  acl?: string[];
  requirements?: Record<string, unknown>;
  users?: Array<{ name: string }>;
  billing_tags?: string[];
  traits?: Record<string, unknown>;
  tags?: Record<string, unknown>;
  generate_passwords?: boolean;
  inherited_directories?: string[];
  nic_driver?: string;
  disk_driver?: string;
  cpu_type?: string;
  image_size?: number;
  channels?: string[];
  [key: string]: unknown;
}

/**
 * What `-m` may carry: name and version plus any manifest field the user
 * owns. Booleans may be "true"/"false" strings, as imgmanifest accepts.
 */
export interface ManifestInput {
  name: string;
  version: string;
  owner?: string;
  description?: string;
  homepage?: string;
  eula?: string;
  urn?: string;
  disabled?: boolean | string;
  public?: boolean | string;
  published_at?: string;
  type?: string;
  os?: string;
  acl?: string[];
  requirements?: Record<string, unknown>;
  users?: Array<{ name: string }>;
  billing_tags?: string[];
  traits?: Record<string, unknown>;
  tags?: Record<string, unknown>;
  generate_passwords?: boolean | string;
  inherited_directories?: string[];
  nic_driver?: string;
  disk_driver?: string;
  cpu_type?: string;
  image_size?: number;
}

export type ManifestProfile = 'created' | 'import';

export interface ManifestProblem {
  /** Top-level field, or `requirements.X` / `files[N]` for sub-fields. */
  field: string;
  code: 'MissingParameter' | 'Invalid';
  /** Names the field itself, e.g. `"version" is missing`. */
  message: string;
}

// ---- constants

export const MANIFEST_V = 2;
/** IMGAPI's UNSET_OWNER_UUID; buildimage's default owner. */
export const UNSET_OWNER_UUID = '00000000-0000-0000-0000-000000000000';
/** The "SDC Version" key buildimage (and every SmartOS 7.x platform) uses. */
export const DEFAULT_SDC_VERSION = '7.0';

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const PLATFORM_STAMP_RE = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;

/** A lower-case UUID, as image uuids are everywhere (IMGAPI, imgadm, dataset names). */
export function isUuid(s: unknown): s is string {
  return typeof s === 'string' && UUID_RE.test(s);
}

/** imgmanifest's validPlatformVersion, but digits are required where it compares NaN. */
export function isPlatformStamp(s: unknown): s is string {
  if (typeof s !== 'string') return false;
  const m = PLATFORM_STAMP_RE.exec(s);
  if (m === null) return false;
  const [year, month, day, hour, min, sec] = m.slice(1).map(Number) as [number, number, number, number, number, number];
  return year >= 2012 && month >= 1 && month <= 12 && day >= 1 && day <= 31 && hour <= 23 && min <= 59 && sec <= 59;
}
