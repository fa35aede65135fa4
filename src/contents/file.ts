/**
 * The listing's file: written as gzip'd JSON (the same bytes for the same
 * listing: no time or name in the gzip header), and read back as untrusted
 * input for `buildimage diff`: a regular file of bounded size, decompressed
 * under a bound (a gzip bomb stops there), parsed without echoing its text,
 * validated by schema, and its content digest checked against its entries.
 */
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { promisify } from 'node:util';
import { gunzip, gzip } from 'node:zlib';
import type { ZodIssue } from 'zod';
import { UsageError } from '../core/errors.js';
import { NEW_FILE_FLAGS, readAtMost } from '../core/files.js';
import { comparePaths, contentDigest, displayText, ListingSchema, type Listing } from './listing.js';

/** A listing file's bounds: compressed, and decompressed JSON. */
export const FILE_LIMITS = { fileBytes: 64 * 1024 * 1024, jsonBytes: 128 * 1024 * 1024 } as const;

const gzipP = promisify(gzip);
const gunzipP = promisify(gunzip);

/** The file's bytes: one JSON object, an entry per line, gzip'd. */
export async function listingBytes(l: Listing): Promise<Buffer> {
  const { entries, ...head } = l;
  const text = `${JSON.stringify(head).slice(0, -1)},"entries":[\n${entries.map((e) => JSON.stringify(e)).join(',\n')}\n]}\n`;
  return gzipP(Buffer.from(text), { level: 9 });
}

/** Writes the listing to `path`, a new file (seal's temp name: never an existing file or a link). */
export async function writeListing(path: string, l: Listing): Promise<void> {
  const bytes = await listingBytes(l);
  const fh = await open(path, NEW_FILE_FLAGS, 0o644);
  try {
    await fh.writeFile(bytes);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** What is wrong with a field, in words that never quote the file's values (zod's own messages may). */
function issueText(issue: ZodIssue | undefined): string {
  switch (issue?.code) {
    case 'invalid_type':
      return issue.received === 'undefined' ? 'missing' : `expected ${issue.expected}, got ${issue.received}`;
    case 'invalid_literal':
      return `must be ${JSON.stringify(issue.expected)}`;
    case 'invalid_enum_value':
      return `not one of ${issue.options.join(', ')}`;
    case 'unrecognized_keys':
      return `${issue.keys.length} unknown field(s)`;
    case 'too_big':
    case 'too_small':
      return issue.message;
    case 'invalid_string':
      return 'not in the expected form';
    default:
      return 'invalid';
  }
}

function bad(what: string, why: string): UsageError {
  return new UsageError(`${what}: ${why}`, 'give the .contents.json.gz file a build wrote beside its image');
}

async function readBounded(path: string, what: string): Promise<Buffer> {
  let fh;
  try {
    fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw bad(what, code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : `cannot open it (${code ?? 'error'})`);
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw bad(what, 'not a regular file');
    if (st.size > FILE_LIMITS.fileBytes) throw bad(what, `larger than ${FILE_LIMITS.fileBytes} bytes`);
    const bytes = await readAtMost(fh, FILE_LIMITS.fileBytes);
    if (bytes.length > FILE_LIMITS.fileBytes) throw bad(what, `larger than ${FILE_LIMITS.fileBytes} bytes`);
    return bytes;
  } finally {
    await fh.close();
  }
}

/**
 * Reads a listing file (gzip'd, or plain JSON); `what` names it in the one
 * error line ("listing A (a.contents.json.gz)"). Never shows its text.
 */
export async function readListing(path: string, what = `contents listing ${path}`): Promise<Listing> {
  const raw = await readBounded(path, what);
  let json = raw;
  if (raw[0] === 0x1f && raw[1] === 0x8b) {
    try {
      json = await gunzipP(raw, { maxOutputLength: FILE_LIMITS.jsonBytes });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw bad(what, code === 'ERR_BUFFER_TOO_LARGE' ? `decompresses to more than ${FILE_LIMITS.jsonBytes} bytes` : 'not a valid gzip file');
    }
  } else if (raw.length > FILE_LIMITS.jsonBytes) {
    throw bad(what, `larger than ${FILE_LIMITS.jsonBytes} bytes`);
  }
  let value: unknown;
  try {
    value = JSON.parse(json.toString('utf8'));
  } catch {
    throw bad(what, 'not valid JSON');
  }
  const parsed = ListingSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    // The field's path and zod's message, never the value.
    const at = issue?.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${p}`)).join('') || 'top';
    throw bad(what, `not a contents listing (${displayText(at.replace(/^\./, '')).slice(0, 80)}: ${issueText(issue)})`);
  }
  const l: Listing = parsed.data;
  for (let i = 1; i < l.entries.length; i++) {
    if (comparePaths(l.entries[i - 1].path, l.entries[i].path) >= 0) throw bad(what, `entries out of order or repeated at [${i}]`);
  }
  if (contentDigest(l.origin.uuid, l.entries) !== l.contentDigest) throw bad(what, 'its contentDigest does not match its entries (changed by hand, or damaged)');
  return l;
}
