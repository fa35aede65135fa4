/** A new image's manifest, as `imgadm create -i` wrote it inside eng's buildimage. */
import { BuildError } from '../../core/errors.js';
import { DEFAULT_SDC_VERSION, MANIFEST_V, UNSET_OWNER_UUID, isPlatformStamp, type ImageManifest, type ManifestFile, type ManifestInput } from './types.js';
import { INHERITED_FIELDS, ZVOL_FIELDS, has, isPlainObject, show } from './validate.js';

type Obj = Record<string, unknown>;

/** Output key order: identity first, then what it is, then extras; files last. */
const KEY_ORDER = [
  'v', 'uuid', 'owner', 'name', 'version', 'description', 'homepage', 'eula', 'urn',
  'disabled', 'public', 'published_at', 'type', 'os', 'origin', 'acl', 'requirements',
  'users', 'billing_tags', 'traits', 'tags', 'generate_passwords', 'inherited_directories',
  'nic_driver', 'disk_driver', 'cpu_type', 'image_size',
];

export interface BuildManifestOptions {
  input: ManifestInput;
  origin: ImageManifest;
  uuid: string;
  file: ManifestFile;
  /** From `uname -v` (parseMinPlatformFromUname) or an explicit override. */
  minPlatform?: Record<string, string>;
  publishedAt: string;
}

/**
 * The manifest `imgadm create -i` wrote for eng buildimage: the -m fields
 * plus buildimage's defaults (owner, tags, requirements.min_platform,
 * published_at), then imgadm's v/uuid, origin inheritance, origin, files.
 * Pure; validate the result with assertValidManifest(m, ..., 'created').
 */
export function buildImageManifest(opts: BuildManifestOptions): ImageManifest {
  const m: Obj = structuredClone(opts.input) as unknown as Obj;
  m.owner ??= UNSET_OWNER_UUID;
  m.tags ??= {};
  const reqs = buildRequirements(opts.input.requirements, opts.origin.requirements, opts.minPlatform);
  if (reqs === undefined) delete m.requirements;
  else m.requirements = reqs;
  m.published_at ??= opts.publishedAt;
  inheritFromOrigin(m, opts.origin);
  m.v = MANIFEST_V;
  m.uuid = opts.uuid;
  m.origin = opts.origin.uuid;
  m.files = [structuredClone(opts.file)];
  return orderKeys(m) as ImageManifest;
}

/**
 * imgadm inherits `requirements` from the origin only when the manifest has
 * none, and never merges. eng buildimage always created `requirements` (to
 * put min_platform["7.0"] = host platform in it) before calling imgadm, so
 * the origin's requirements were never inherited: the result is the -m
 * requirements (or {}) with min_platform filled for keys -m did not give.
 * We reproduce that exactly whenever `minPlatform` is given. Without it
 * (no host stamp) plain imgadm inheritance applies, and if -m has
 * requirements but no min_platform the origin's min_platform is carried
 * over, so the image never claims to run on older platforms than its origin.
 */
function buildRequirements(
  input: Obj | undefined,
  origin: Obj | undefined,
  minPlatform: Record<string, string> | undefined,
): Obj | undefined {
  if (minPlatform === undefined) {
    if (input === undefined) return origin === undefined ? undefined : structuredClone(origin);
    const reqs = structuredClone(input);
    if (reqs.min_platform === undefined && origin?.min_platform !== undefined) {
      reqs.min_platform = structuredClone(origin.min_platform);
    }
    return reqs;
  }
  const reqs: Obj = input === undefined ? {} : structuredClone(input);
  const given = isPlainObject(reqs.min_platform) ? reqs.min_platform : {};
  // -m's own entries win, as buildimage only filled a missing "7.0".
  const merged: Obj = { ...given };
  for (const [ver, stamp] of Object.entries(minPlatform)) {
    if (!merged[ver]) merged[ver] = stamp;
  }
  if (Object.keys(merged).length > 0) reqs.min_platform = merged;
  return reqs;
}

/**
 * imgadm's INHERITED_FIELDS rule: copy when absent here and present on the
 * origin, skipping empty arrays. Ours on top: zvol-only fields only into a
 * zvol image and inherited_directories only into a zone-dataset one, where
 * imgadm would copy them and then fail its own validation.
 */
function inheritFromOrigin(m: Obj, origin: ImageManifest): void {
  const type = m.type ?? origin.type;
  for (const field of INHERITED_FIELDS) {
    if (has(m, field) && m[field] !== undefined) continue;
    if (!has(origin, field) || origin[field] === undefined) continue;
    if (ZVOL_FIELDS.includes(field) && type !== 'zvol') continue;
    if (field === 'inherited_directories' && type !== 'zone-dataset') continue;
    const val = origin[field];
    if (Array.isArray(val) && val.length === 0) continue;
    m[field] = structuredClone(val);
  }
}

function orderKeys(m: Obj): Obj {
  const out: Obj = {};
  const put = (k: string): void => {
    if (m[k] !== undefined) Object.defineProperty(out, k, { value: m[k], enumerable: true, writable: true, configurable: true });
  };
  KEY_ORDER.forEach(put);
  Object.keys(m).filter((k) => !KEY_ORDER.includes(k) && k !== 'files').forEach(put);
  put('files');
  return out;
}

// ---- min_platform from the build host

/**
 * `joyent_20180807T230146Z` → `{"7.0": "20180807T230146Z"}`: like
 * buildimage, the text after the first "_" (the whole text if none).
 */
export function parseMinPlatformFromUname(unameV: string): Record<string, string> {
  const text = unameV.trim();
  const underscore = text.indexOf('_');
  const stamp = underscore === -1 ? text : text.slice(underscore + 1);
  if (!isPlatformStamp(stamp)) {
    throw new BuildError(
      `uname -v ${show(text, 80)} does not look like a SmartOS platform stamp (e.g. joyent_20180807T230146Z)`,
      { hint: 'the image\'s requirements.min_platform comes from the platform of the SmartOS host it is built on' },
    );
  }
  return { [DEFAULT_SDC_VERSION]: stamp };
}
