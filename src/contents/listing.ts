/**
 * The contents listing (`<prefix>-<version>.contents.json.gz`): every entry
 * an image adds or changes against its origin, and every one it deletes,
 * with the content digest over its canonical form. Here: the shape, the
 * path encoding, the canonical text and the digest; contents/walk makes a
 * listing from an image root, contents/file writes and reads one.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';

export const ENTRY_TYPES = ['file', 'dir', 'symlink', 'fifo', 'socket', 'char', 'block'] as const;
export type EntryType = (typeof ENTRY_TYPES)[number];
export const CHANGES = ['added', 'changed', 'deleted'] as const;
export type Change = (typeof CHANGES)[number];

/**
 * One path of the image, as the zone sees it (`/opt/local/bin/node`).
 * `added` and `changed` carry the entry as it is in the image; `deleted`
 * only the origin's type. No times: they say when, not what (and under
 * SOURCE_DATE_EPOCH they are clamped anyway).
 */
export interface Entry {
  path: string;
  change: Change;
  type: EntryType;
  /** Permission bits with setuid/setgid/sticky, four octal digits. */
  mode?: string;
  uid?: number;
  gid?: number;
  /** Regular files: bytes. */
  size?: number;
  /** Regular files: hex. */
  sha256?: string;
  /** Symlinks: the link's text, never followed. */
  target?: string;
  /** Device nodes: the device number. */
  rdev?: number;
}

export interface ImageRef {
  uuid: string;
  name: string;
  version: string;
}

export interface Listing {
  contentsVersion: 1;
  /** `sha256:<hex>` over canonicalText(origin uuid, entries). */
  contentDigest: string;
  image: ImageRef;
  origin: ImageRef;
  counts: { added: number; changed: number; deleted: number };
  entries: Entry[];
}

/** Bounds for reading a listing (contents/file): a listing is untrusted input. */
export const LIMITS = { pathChars: 16_384, entries: 1_000_000, nameChars: 512 } as const;

const Ref = z.object({ uuid: z.string().max(LIMITS.nameChars), name: z.string().max(LIMITS.nameChars), version: z.string().max(LIMITS.nameChars) }).strict();
const Id = z.number().int().min(0).max(2 ** 32);

export const EntrySchema = z
  .object({
    path: z.string().min(1).max(LIMITS.pathChars).startsWith('/'),
    change: z.enum(CHANGES),
    type: z.enum(ENTRY_TYPES),
    mode: z.string().regex(/^[0-7]{4}$/).optional(),
    uid: Id.optional(),
    gid: Id.optional(),
    size: z.number().int().min(0).optional(),
    sha256: z.string().regex(/^[0-9a-f]{64}$/).optional(),
    target: z.string().max(LIMITS.pathChars).optional(),
    rdev: z.number().int().min(0).optional(),
  })
  .strict();

export const ListingSchema = z
  .object({
    contentsVersion: z.literal(1),
    contentDigest: z.string().regex(/^sha256:[0-9a-f]{64}$/),
    image: Ref,
    origin: Ref,
    counts: z.object({ added: z.number().int().min(0), changed: z.number().int().min(0), deleted: z.number().int().min(0) }).strict(),
    entries: z.array(EntrySchema).max(LIMITS.entries),
  })
  .strict();

const strict = new TextDecoder('utf-8', { fatal: true });

function utf8Length(lead: number): number {
  if (lead >= 0xc2 && lead <= 0xdf) return 2;
  if (lead >= 0xe0 && lead <= 0xef) return 3;
  if (lead >= 0xf0 && lead <= 0xf4) return 4;
  return 0;
}

/**
 * A name's bytes as listing text: UTF-8 as it is, a backslash as `\\`, and
 * each byte that is not part of valid UTF-8 as `\xNN`. Reversible, so two
 * different names never list alike.
 */
export function encodeBytes(buf: Buffer): string {
  if (!buf.includes(0x5c)) {
    try {
      return strict.decode(buf);
    } catch {
      /* not UTF-8: byte by byte below */
    }
  }
  let out = '';
  for (let i = 0; i < buf.length; ) {
    const b = buf[i];
    if (b < 0x80) {
      out += b === 0x5c ? '\\\\' : String.fromCharCode(b);
      i++;
      continue;
    }
    const n = utf8Length(b);
    if (n && i + n <= buf.length) {
      try {
        out += strict.decode(buf.subarray(i, i + n));
        i += n;
        continue;
      } catch {
        /* an invalid sequence: its lead byte escaped */
      }
    }
    out += `\\x${b.toString(16).padStart(2, '0')}`;
    i++;
  }
  return out;
}

/**
 * Listing text for a terminal: control characters, C1 controls and the
 * bidi and line separators that could rewrite what a reader sees are shown
 * as `\xNN` / `\u{N}`.
 */
export function displayText(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, (c) => {
    const n = c.charCodeAt(0);
    return n < 0x100 ? `\\x${n.toString(16).padStart(2, '0')}` : `\\u{${n.toString(16)}}`;
  });
}

/** Byte order of the paths' UTF-8: the canonical order. */
export function comparePaths(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

const KEYS = ['path', 'change', 'type', 'mode', 'uid', 'gid', 'size', 'sha256', 'target', 'rdev'] as const;

/** An entry with its keys in the one order, absent ones left out. */
export function canonicalEntry(e: Entry): Entry {
  const out: Record<string, unknown> = {};
  for (const k of KEYS) if (e[k] !== undefined) out[k] = e[k];
  return out as unknown as Entry;
}

/**
 * What the content digest covers: a header line naming the origin (the same
 * changes to another origin are another image), then one JSON line per
 * entry, sorted by path. The image's uuid, name and version are not in it.
 */
export function canonicalText(originUuid: string, entries: readonly Entry[]): string {
  const sorted = [...entries].sort((a, b) => comparePaths(a.path, b.path));
  return `buildimage-contents 1 origin ${originUuid}\n` + sorted.map((e) => JSON.stringify(canonicalEntry(e)) + '\n').join('');
}

export function contentDigest(originUuid: string, entries: readonly Entry[]): string {
  return `sha256:${createHash('sha256').update(canonicalText(originUuid, entries)).digest('hex')}`;
}

/** A whole listing from its entries: sorted, counted and digested. */
export function makeListing(image: ImageRef, origin: ImageRef, entries: readonly Entry[]): Listing {
  const sorted = [...entries].sort((a, b) => comparePaths(a.path, b.path)).map(canonicalEntry);
  const counts = { added: 0, changed: 0, deleted: 0 };
  for (const e of sorted) counts[e.change]++;
  return { contentsVersion: 1, contentDigest: contentDigest(origin.uuid, sorted), image, origin, counts, entries: sorted };
}
