/**
 * The SBOMs beside every image, made at seal: the inventory of the final
 * image root (inventory.ts), the origin chain from the manifests known on
 * this machine, the pkg audit's report, the image's own manifest and file
 * digests, written as CycloneDX 1.6 and SPDX 2.3 JSON.
 *
 * Why at seal and not kept from pkgadd: the root is final only at seal (a
 * discrete pkgadd may run again after --keep-on-failure, assemble brings the
 * npm packages), seal has the manifest (uuid, published_at, digests) the
 * documents are about, and nothing needs to travel in the state file.
 */
import { writeFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { oneLine } from '../core/errors.js';
import { NEW_FILE_FLAGS, NotRegularFile, readSmallFile } from '../core/files.js';
import { log } from '../core/log.js';
import { toolVersion } from '../core/package.js';
import type { ImageManifest } from '../image/manifest/types.js';
import { parseAudit } from '../pkgsrc/tools.js';
import { cyclonedx } from './cyclonedx.js';
import { takeInventory, type Inventory, type Limits, LIMITS } from './inventory.js';
import type { ImageRef, SbomInput } from './model.js';
import { spdx } from './spdx.js';

/** The file names' endings after `<prefix>-<version>`. */
export const SBOM_SUFFIXES = { cyclonedx: '.cdx.json', spdx: '.spdx.json' } as const;

/** The pkg audit report is the build's own (work dir), bounded anyway. */
const MAX_AUDIT_BYTES = 16 * 1024 * 1024;
const MAX_ORIGINS = 100;

/** A manifest of an installed image, as this machine knows it (base/known), or undefined. */
export type ManifestLookup = (uuid: string) => Promise<ImageManifest | undefined>;

/** The origin chain from `first` (the base's manifest), nearest first; it stops at an image whose manifest is unknown. */
export async function originChain(first: ImageManifest | undefined, lookup: ManifestLookup): Promise<ImageRef[]> {
  const out: ImageRef[] = [];
  const ref = (m: ImageManifest): ImageRef => ({ uuid: m.uuid, name: m.name, version: m.version, ...(m.files?.[0]?.sha1 ? { sha1: m.files[0].sha1 } : {}) });
  let m = first;
  while (m && out.length < MAX_ORIGINS) {
    out.push(ref(m));
    const next = m.origin;
    if (!next || out.some((o) => o.uuid === next)) break;
    const found = await lookup(next).catch(() => undefined);
    if (!found || found.uuid !== next) {
      out.push({ uuid: next });
      break;
    }
    m = found;
  }
  return out;
}

async function readAudit(path: string | undefined): Promise<string> {
  if (!path) return '';
  try {
    return await readSmallFile(path, MAX_AUDIT_BYTES);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return '';
    log.warn(`SBOM: the pkg audit report ${path} ${err instanceof NotRegularFile ? err.why : `cannot be read (${oneLine(err)})`}: no vulnerabilities listed`);
    return '';
  }
}

export interface SbomRequest {
  /** The image root (the analog's root/), final. */
  root: string;
  /** The new image's manifest (files[0] is the image file). */
  manifest: ImageManifest;
  /** The image file's name as published, and its sha256 when known. */
  fileName: string;
  sha256?: string;
  /** The base image's manifest (the new image's origin). */
  origin?: ImageManifest;
  lookup: ManifestLookup;
  /** pkgadd's `pkg_admin audit` report, when the build audited. */
  auditReport?: string;
  /** Where to write each (seal's temp names). */
  paths: { cyclonedx: string; spdx: string };
  limits?: Limits;
}

export async function sbomInput(r: Omit<SbomRequest, 'paths'>): Promise<SbomInput> {
  const inventory: Inventory = await takeInventory(r.root, r.limits ?? LIMITS);
  const m = r.manifest;
  const f = m.files![0];
  return {
    image: {
      uuid: m.uuid,
      name: m.name,
      version: m.version,
      ...(m.description ? { description: m.description } : {}),
      publishedAt: m.published_at ?? new Date(0).toISOString(),
      file: { name: basename(r.fileName), size: f.size, compression: f.compression, sha1: f.sha1, ...(r.sha256 ? { sha256: r.sha256 } : {}) },
    },
    origins: await originChain(r.origin, r.lookup),
    inventory,
    audit: parseAudit(await readAudit(r.auditReport)),
    tool: { name: 'buildimage', version: toolVersion() },
  };
}

/** Takes the inventory and writes both documents; returns what they list, for the log. */
export async function writeSboms(r: SbomRequest): Promise<SbomInput> {
  const input = await sbomInput(r);
  // Seal's temp names are new, random and recorded for cleanup: created here, exclusively, never through a link.
  await writeFile(r.paths.cyclonedx, JSON.stringify(cyclonedx(input), null, 2) + '\n', { mode: 0o644, flag: NEW_FILE_FLAGS });
  await writeFile(r.paths.spdx, JSON.stringify(spdx(input), null, 2) + '\n', { mode: 0o644, flag: NEW_FILE_FLAGS });
  const inv = input.inventory;
  log.info(
    `SBOM: ${inv.pkgsrc.length} pkgsrc packages, ${inv.npm.length} npm packages, ${inv.node.length} node binar${inv.node.length === 1 ? 'y' : 'ies'}, ` +
      `${input.origins.length} origin image${input.origins.length === 1 ? '' : 's'}, ${input.audit.reduce((n, f) => n + f.advisories.length, 0)} audit findings` +
      (inv.incomplete.length ? ` (incomplete: ${inv.incomplete.join('; ')})` : ''),
  );
  return input;
}
