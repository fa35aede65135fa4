/**
 * What an import needs from the local files: the manifest, the AdminImportImage
 * body, and the image file's sha1, size and compression. The file is hashed
 * here rather than trusting the manifest, so a manifest that does not match
 * its file fails before IMGAPI downloads gigabytes to find out.
 */
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { PublishError } from '../core/errors.js';
import { COMPRESSIONS, type Compression } from '../image/compression.js';
import { importBody, type Want } from '../imgapi/import-state.js';
import { sha1File } from '../core/files.js';
import type { ImageManifest } from '../image/manifest/types.js';
import type { ImportRequest } from './importer.js';

export interface ImportInput {
  manifest: ImageManifest;
  body: Record<string, unknown> & { uuid: string };
  /** Manifest keys AdminImportImage would refuse, left out of the body. */
  dropped: string[];
  want: Want;
  compression: Compression;
}

/** updates-imgadm's rule: -c, else files[0].compression, else the file name's extension. */
function compressionOf(req: ImportRequest, m: ImageManifest): Compression {
  const c = req.compression ?? m.files?.[0]?.compression ?? extCompression(req.imageFile);
  if (!c) throw new PublishError(`cannot tell the compression of ${basename(req.imageFile)}: the manifest has no files[0].compression`);
  if (!(COMPRESSIONS as readonly string[]).includes(c)) throw new PublishError(`${req.manifestFile}: files[0].compression "${c}" is not one of ${COMPRESSIONS.join(', ')}`);
  return c;
}

function extCompression(file: string): Compression | undefined {
  if (/\.(gz|tgz)$/.test(file)) return 'gzip';
  if (/\.bz2$/.test(file)) return 'bzip2';
  if (/\.xz$/.test(file)) return 'xz';
  return undefined;
}

export async function readImportInput(req: ImportRequest, channel: string): Promise<ImportInput> {
  let manifest: ImageManifest;
  try {
    manifest = JSON.parse(await readFile(req.manifestFile, 'utf8')) as ImageManifest;
  } catch (err) {
    throw new PublishError(`cannot read image manifest ${req.manifestFile}: ${(err as Error).message}`);
  }
  if (!manifest || typeof manifest !== 'object' || Array.isArray(manifest)) throw new PublishError(`${req.manifestFile} is not an image manifest (not a JSON object)`);
  if (manifest.uuid !== req.uuid) throw new PublishError(`${req.manifestFile} changed while publishing (uuid is now ${String(manifest.uuid)})`);
  for (const k of ['name', 'version'] as const) {
    if (typeof manifest[k] !== 'string' || !manifest[k]) throw new PublishError(`${req.manifestFile} has no "${k}": IMGAPI needs one`);
  }
  // Hashed and checked against the manifest while planning; IMGAPI's record of the file is checked against it after the upload.
  const file = req.sha1 ? { sha1: req.sha1, size: req.size } : await sha1File(req.imageFile);
  const m0 = manifest.files?.[0];
  if (m0?.sha1 && m0.sha1 !== file.sha1) {
    throw new PublishError(`${req.manifestFile} says files[0].sha1 is ${m0.sha1}, but ${req.imageFile} has sha1 ${file.sha1}`, { hint: 'the manifest and image come from different builds; build again' });
  }
  if (m0?.size !== undefined && m0.size !== file.size) {
    throw new PublishError(`${req.manifestFile} says files[0].size is ${m0.size}, but ${req.imageFile} is ${file.size} bytes`, { hint: 'the manifest and image come from different builds; build again' });
  }
  const { body, dropped } = importBody(manifest);
  return {
    manifest,
    body,
    dropped,
    compression: compressionOf(req, manifest),
    want: { uuid: req.uuid, name: manifest.name, version: manifest.version, sha1: file.sha1, size: file.size, channel },
  };
}
