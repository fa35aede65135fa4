/**
 * The image manifests of a bits dir, checked before anything is uploaded or
 * a pointer moved (bits-upload.sh learned of a bad one only when IMGAPI
 * refused it, after the upload and the pointer move): each by imgmanifest's
 * rules as IMGAPI's AdminImportImage runs them (image/manifest/validate,
 * profile 'import', on the body -p sends), and its image file's size and
 * sha1 against its `files[0]`. `*.imgmanifest` always; `*.manifest` too
 * with -p, where bits-upload.sh took both for image manifests.
 */
import { basename } from 'node:path';
import { UsageError } from '../core/errors.js';
import { log } from '../core/log.js';
import { NotRegularFile, readSmallFile, sha1File } from '../core/files.js';
import { COMPRESSIONS, fileSuffix } from '../image/compression.js';
import type { ImageManifest } from '../image/manifest/types.js';
import { firstProblemLine, isPlainObject, validateManifest } from '../image/manifest/validate.js';
import { importBody } from '../imgapi/import-state.js';
import { hashBits, type HashProgressOptions } from './hash.js';

/** What the checks need of a planned file (plan.ts's PlannedFile): path in the bits dir, where its bytes are, size. */
export interface BitsFile {
  rel: string;
  source: string;
  size: number;
  /** Its sha1 when the plan already read it (one pass for every digest); else the check reads the image. */
  sha1?: string;
}

/** An image manifest with its image file, both checked. */
export interface CheckedImage<F extends BitsFile> {
  uuid: string;
  manifest: F;
  image: F;
  /** The image file's sha1, equal to the manifest's files[0].sha1. */
  sha1: string;
  /** `none` for `.sh` payloads (updates-imgadm --compression=none). */
  compression?: 'none';
}

/**
 * Image payloads next to a manifest, in the order they are tried: bits-upload.sh's `.zfs.gz`, buildimage's
 * other compressions, then bits-upload.sh's `.sh`, `.tgz`, `.tar.gz`. The image is the first of them whose
 * size and sha1 are the manifest's files[0]; with none such the publish stops.
 */
const IMAGE_SUFFIXES: { suffix: string; compression?: 'none' }[] = [
  ...COMPRESSIONS.map((c) => ({ suffix: fileSuffix(c) })),
  { suffix: '.sh', compression: 'none' },
  { suffix: '.tgz' },
  { suffix: '.tar.gz' },
];

/** Far above what imgmanifest's limits allow (tags 100 KiB, description 10 KiB). */
const MAX_MANIFEST_BYTES = 1024 * 1024;

const MISMATCH_HINT = 'the manifest and the image come from different builds; build again';

/** The manifests publish reads as image manifests: `.imgmanifest`, and with -p `.manifest`. */
export function isImageManifest(rel: string, imports: boolean): boolean {
  return imports ? /\.(imgmanifest|manifest)$/.test(rel) : rel.endsWith('.imgmanifest');
}

/** A manifest as IMGAPI's import sees it: the body -p sends (unknown keys left out, with a warning then), and its files. */
async function readChecked(mf: BitsFile): Promise<ImageManifest> {
  const text = await readSmallFile(mf.source, MAX_MANIFEST_BYTES).catch((err: NodeJS.ErrnoException) => {
    throw new UsageError(err instanceof NotRegularFile ? `image manifest ${mf.rel} ${err.why}` : `cannot read image manifest ${mf.rel}: ${err.code ?? err.message}`);
  });
  let m: unknown;
  try {
    m = JSON.parse(text);
  } catch {
    throw new UsageError(`image manifest ${mf.rel} is not valid JSON`, 'publish checks every image manifest before uploading anything');
  }
  const seen = isPlainObject(m) ? { ...importBody(m as unknown as ImageManifest).body, files: m.files } : m;
  const problems = validateManifest(seen, 'import');
  if (problems.length) {
    throw new UsageError(firstProblemLine(`image manifest ${mf.rel}`, problems), 'IMGAPI would refuse it (imgmanifest rules); nothing was published');
  }
  return m as ImageManifest;
}

/**
 * Every image manifest among `files` checked, with the image beside it
 * checked against it; returns the images -p imports. A manifest without an
 * image beside it fails with -p (bits-upload.sh skipped it and exited 0, so
 * a release could silently miss the updates server); without -p it is only
 * validated.
 */
export async function checkImages<F extends BitsFile>(files: F[], o: { imports: boolean; progress?: HashProgressOptions }): Promise<CheckedImage<F>[]> {
  const byRel = new Map(files.map((f) => [f.rel, f]));
  // Every manifest first (cheap), then the images (seconds each).
  const manifests: { mf: F; m: ImageManifest }[] = [];
  for (const mf of files.filter((f) => isImageManifest(f.rel, o.imports))) manifests.push({ mf, m: await readChecked(mf) });

  const out: CheckedImage<F>[] = [];
  for (const { mf, m } of manifests) {
    const stem = mf.rel.replace(/\.(imgmanifest|manifest)$/, '');
    const found = IMAGE_SUFFIXES.filter((s) => byRel.has(stem + s.suffix)).map((s) => ({ ...s, file: byRel.get(stem + s.suffix)! }));
    if (!found.length) {
      if (!o.imports) continue;
      throw new UsageError(`cannot import ${mf.rel} into updates IMGAPI: no image file beside it`, `looked for ${IMAGE_SUFFIXES.map((s) => basename(stem) + s.suffix).join(', ')}`);
    }
    const want = m.files![0];
    // The manifest's image is the file with its files[0] bytes (size, then sha1): of several beside it, the first
    // in IMAGE_SUFFIXES' order that has them. bits-upload.sh took the first name present, whatever its bytes.
    const mismatches: string[] = [];
    let hit: (typeof found)[number] | undefined;
    let sha1 = '';
    for (const c of found) {
      if (c.file.size !== want.size) {
        mismatches.push(found.length > 1 ? `${c.file.rel} is ${c.file.size} bytes` : `"files[0].size" is ${want.size}, but ${c.file.rel} is ${c.file.size} bytes`);
        continue;
      }
      const h = c.file.sha1 ?? (await hashBits(c.file.source, 'bits file', `hashing ${c.file.rel} (SHA-1)`, sha1File, o.progress)).sha1;
      if (h !== want.sha1) {
        mismatches.push(found.length > 1 ? `${c.file.rel} has sha1 ${h}` : `"files[0].sha1" is ${want.sha1}, but ${c.file.rel} has sha1 ${h}`);
        continue;
      }
      hit = c;
      sha1 = h;
      break;
    }
    if (!hit) {
      const what = found.length > 1 ? `no file beside it is its image (files[0]: ${want.size} bytes, sha1 ${want.sha1}): ${mismatches.join(', ')}` : mismatches[0];
      throw new UsageError(`image manifest ${mf.rel}: ${what}`, MISMATCH_HINT);
    }
    if (found.length > 1) {
      const others = found.filter((c) => c !== hit).map((c) => c.file.rel);
      log.warn(`image manifest ${mf.rel}: its image is ${hit.file.rel}; not its image: ${others.join(', ')}`);
    }
    out.push({ uuid: m.uuid, manifest: mf, image: hit.file, sha1, ...(hit.compression ? { compression: hit.compression } : {}) });
  }
  return out;
}
