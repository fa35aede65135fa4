/**
 * `buildimage diff A B`: two builds' contents listings compared path by
 * path. A listing says, for each path it names, what the image has there
 * (or that it deleted it); a path it leaves out is as in its origin. So a
 * path one listing adds and the other leaves out is absent from the other
 * image, and one the other changes is there in both, changed in one.
 */
import { readListing } from './file.js';
import { displayText, type Entry, type ImageRef, type Listing } from './listing.js';

/** How an entry differs: its type, its content (bytes, link text, device), mode, owner; `origin`: one side is as in its origin, the other changed it (how is not in the listings). */
export const ASPECTS = ['type', 'content', 'mode', 'owner', 'origin'] as const;
export type Aspect = (typeof ASPECTS)[number];

/** One path that differs, with each listing's entry for it (absent when that listing leaves the path out). */
export interface DiffItem {
  path: string;
  what?: Aspect[];
  a?: Entry;
  b?: Entry;
}

export interface DiffGroup {
  /** The top directory (`/opt`), or `/` for the root itself. */
  top: string;
  added: DiffItem[];
  removed: DiffItem[];
  changed: DiffItem[];
}

export interface ListingSummary {
  file: string;
  image: ImageRef;
  origin: ImageRef;
  contentDigest: string;
  entries: number;
}

export interface DiffResult {
  ok: true;
  /** The same content digest: nothing differs. */
  same: boolean;
  sameOrigin: boolean;
  a: ListingSummary;
  b: ListingSummary;
  counts: { added: number; removed: number; changed: number };
  groups: DiffGroup[];
}

type Side = 'present' | 'absent' | 'origin';

function side(e: Entry | undefined, other: Entry | undefined): Side {
  if (e) return e.change === 'deleted' ? 'absent' : 'present';
  // Left out: as in the origin, which had it unless the other build added it.
  return other?.change === 'added' ? 'absent' : 'origin';
}

function aspects(a: Entry, b: Entry): Aspect[] {
  const out: Aspect[] = [];
  if (a.type !== b.type) out.push('type');
  else if (a.size !== b.size || a.sha256 !== b.sha256 || a.target !== b.target || a.rdev !== b.rdev) out.push('content');
  if (a.mode !== b.mode) out.push('mode');
  if (a.uid !== b.uid || a.gid !== b.gid) out.push('owner');
  return out;
}

export function topOf(path: string): string {
  const first = path.split('/')[1];
  return first ? `/${first}` : '/';
}

function summary(file: string, l: Listing): ListingSummary {
  return { file, image: l.image, origin: l.origin, contentDigest: l.contentDigest, entries: l.entries.length };
}

export function diffListings(a: Listing, b: Listing, files: { a: string; b: string } = { a: 'A', b: 'B' }): DiffResult {
  const am = new Map(a.entries.map((e) => [e.path, e]));
  const bm = new Map(b.entries.map((e) => [e.path, e]));
  const paths = [...new Set([...am.keys(), ...bm.keys()])].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
  const groups = new Map<string, DiffGroup>();
  const group = (path: string): DiffGroup => {
    const top = topOf(path);
    let g = groups.get(top);
    if (!g) groups.set(top, (g = { top, added: [], removed: [], changed: [] }));
    return g;
  };
  const counts = { added: 0, removed: 0, changed: 0 };
  for (const path of paths) {
    const ea = am.get(path);
    const eb = bm.get(path);
    const sa = side(ea, eb);
    const sb = side(eb, ea);
    const item: DiffItem = { path, ...(ea ? { a: ea } : {}), ...(eb ? { b: eb } : {}) };
    if (sa === 'absent' && sb === 'absent') continue;
    if (sa === 'absent') {
      group(path).added.push(item);
      counts.added++;
    } else if (sb === 'absent') {
      group(path).removed.push(item);
      counts.removed++;
    } else {
      const what: Aspect[] = ea && eb ? aspects(ea, eb) : ['origin'];
      if (!what.length) continue;
      group(path).changed.push({ ...item, what });
      counts.changed++;
    }
  }
  return {
    ok: true,
    same: counts.added + counts.removed + counts.changed === 0 && a.origin.uuid === b.origin.uuid,
    sameOrigin: a.origin.uuid === b.origin.uuid,
    a: summary(files.a, a),
    b: summary(files.b, b),
    counts,
    groups: [...groups.values()].sort((x, y) => Buffer.compare(Buffer.from(x.top), Buffer.from(y.top))),
  };
}

/** Reads both listing files (untrusted: contents/file) and compares them. */
export async function diffFiles(a: string, b: string): Promise<DiffResult> {
  const la = await readListing(a, `listing A (${displayText(a)})`);
  const lb = await readListing(b, `listing B (${displayText(b)})`);
  return diffListings(la, lb, { a, b });
}
