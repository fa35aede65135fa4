/**
 * What both SBOM documents describe: the image (its manifest's identity
 * and its file's digests), the images it is built on, what its root holds
 * (inventory.ts) and the pkg audit's findings. Made once at seal; the
 * writers (cyclonedx.ts, spdx.ts) only render it, so the two agree.
 */
import { recordedUrl } from '../core/redact.js';
import type { AuditFinding } from '../pkgsrc/tools.js';
import type { Inventory } from './inventory.js';

export interface ImageRef {
  uuid: string;
  /** Unknown when its manifest is not known on this machine. */
  name?: string;
  version?: string;
  /** Its file's sha1, from its manifest. */
  sha1?: string;
}

export interface SbomInput {
  image: {
    uuid: string;
    name: string;
    version: string;
    description?: string;
    /** The manifest's published_at (SOURCE_DATE_EPOCH's, in a reproducible build): the documents' time. */
    publishedAt: string;
    file: { name: string; size: number; compression: string; sha1: string; sha256?: string };
  };
  /** The origin chain, nearest first; it ends at an image without an origin, or at one whose manifest is unknown. */
  origins: ImageRef[];
  inventory: Inventory;
  audit: AuditFinding[];
  tool: { name: string; version: string };
}

/** The audit's `pkg` (name-version) for a pkgsrc package. */
export function pkgname(p: { name: string; version: string }): string {
  return `${p.name}-${p.version}`;
}

/** A URL fit for a document's URL field: http or https, as WHATWG URL writes it, without credentials; else undefined. */
export function webUrl(s: string | undefined): string | undefined {
  if (!s || s.length > 2048) return undefined;
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    return undefined;
  }
  return u.protocol === 'http:' || u.protocol === 'https:' ? recordedUrl(u.href) : undefined;
}

/** published_at as SPDX wants a date (no fraction of a second). */
export function spdxDate(iso: string): string {
  const d = new Date(iso);
  return (Number.isNaN(d.getTime()) ? new Date(0) : d).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
