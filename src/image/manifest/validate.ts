/**
 * Validation reproducing imgmanifest 3.2.1 (a little stricter where
 * imgmanifest would crash or let nonsense through; see the notes in
 * fieldChecks). Profiles: 'created' (a manifest we built), 'import' (one
 * served by a source), 'input' (the -m object, partial).
 */
import { BuildError } from '../../core/errors.js';
import { COMPRESSIONS } from '../compression.js';
import { MANIFEST_V, isPlatformStamp, isUuid, type ImageManifest, type ManifestProblem, type ManifestProfile } from './types.js';

// ---- rules (imgmanifest 3.2.1 globals unless noted)


const NAME_RE = /^[A-Za-z0-9._/ -]+$/;
const VERSION_RE = /^[A-Za-z0-9._/+-]+$/;
const PUBLISHED_AT_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3})?Z$/;
const SHA1_RE = /^[0-9a-f]{40}$/;
const SDC_VERSION_RE = /^\d+(\.\d+)*$/;

export const LIMITS = {
  name: 1024,
  version: 512,
  description: 10 * 1024,
  url: 1024,
  billingTag: 128,
  tagsJson: 100 * 1024,
  /** Ours: bounds the -m text (tags + description limits fit well inside). */
  inputChars: 256 * 1024,
  /** Ours: JSON.stringify/structuredClone recurse; deeper input would overflow the stack. */
  depth: 64,
} as const;

const VALID_TYPES = ['zone-dataset', 'lx-dataset', 'zvol', 'docker', 'lxd', 'other'];
const VALID_OSES = ['smartos', 'linux', 'windows', 'bsd', 'illumos', 'other'];
const VALID_STATES = ['active', 'unactivated', 'disabled', 'failed', 'creating'];
const VALID_BOOTROMS = ['bios', 'uefi'];

/** imgmanifest's `fields` list: any other top-level key is Invalid. */
const KNOWN_FIELDS = new Set([
  'v', 'uuid', 'urn', 'owner', 'name', 'version', 'description', 'homepage', 'eula',
  'disabled', 'activated', 'published_at', 'state', 'public', 'type', 'os', 'origin',
  'error', 'files', 'icon', 'acl', 'requirements', 'users', 'billing_tags', 'traits',
  'tags', 'generate_passwords', 'inherited_directories', 'nic_driver', 'disk_driver',
  'cpu_type', 'image_size', 'channels',
]);

/** Only meaningful (and only allowed) for type "zvol". */
export const ZVOL_FIELDS = ['nic_driver', 'disk_driver', 'cpu_type', 'image_size'];

/** Fields the builder itself sets; `-m` may not give them. */
export const BUILDER_FIELDS = new Set(['v', 'uuid', 'origin', 'files']);

/** Fields IMGAPI computes or manages; a served manifest may have them, a new one not. */
export const SERVER_FIELDS = new Set(['state', 'activated', 'channels', 'icon', 'error']);

/** imgadm createImage's INHERITED_FIELDS, in its order. */
export const INHERITED_FIELDS = [
  'type', 'os', 'requirements', 'users', 'billing_tags', 'traits', 'generate_passwords',
  'inherited_directories', 'nic_driver', 'disk_driver', 'cpu_type', 'image_size',
] as const;


// ---- small helpers

type Obj = Record<string, unknown>;

export function isPlainObject(x: unknown): x is Obj {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

export function has(o: Obj, key: string): boolean {
  return Object.prototype.hasOwnProperty.call(o, key);
}

function isPositiveInteger(x: unknown): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x > 0;
}

/** imgmanifest's boolFromString: a boolean, or the strings "true"/"false". */
function isBoolish(x: unknown): boolean {
  return typeof x === 'boolean' || x === 'true' || x === 'false';
}

function isTrue(x: unknown): boolean {
  return x === true || x === 'true';
}

/** Short JSON for messages: one line, clipped. */
export function show(x: unknown, max = 60): string {
  let s: string;
  try {
    s = JSON.stringify(x) ?? String(x);
  } catch {
    s = String(x);
  }
  return s.length > max ? `${s.slice(0, max)}…` : s;
}

/** True when `x` nests deeper than `limit` (iterative: must not itself overflow). */
function nestsDeeperThan(x: unknown, limit: number): boolean {
  const stack: Array<[unknown, number]> = [[x, 0]];
  while (stack.length > 0) {
    const [v, d] = stack.pop()!;
    if (typeof v !== 'object' || v === null) continue;
    if (d >= limit) return true;
    for (const child of Object.values(v)) stack.push([child, d + 1]);
  }
  return false;
}

const invalid = (field: string, message: string): ManifestProblem => ({
  field,
  code: 'Invalid',
  message,
});

const missing = (field: string, why = ''): ManifestProblem => ({
  field,
  code: 'MissingParameter',
  message: `"${field}" is missing${why}`,
});

// ---- per-field checks (run only when the field is present)

/** 'input' = the -m object: partial, type may still come from the origin. */
type CheckProfile = ManifestProfile | 'input';
type Check = (m: Obj, profile: CheckProfile) => ManifestProblem[];

function checkUuidField(field: string): Check {
  return (m) =>
    isUuid(m[field])
      ? []
      : [invalid(field, `"${field}" must be a lower-case UUID, got ${show(m[field])}`)];
}

function checkString(field: string): Check {
  return (m) => (typeof m[field] === 'string' ? [] : [invalid(field, `"${field}" must be a string`)]);
}

function checkBoolish(field: string): Check {
  return (m) =>
    isBoolish(m[field])
      ? []
      : [invalid(field, `"${field}" must be true or false, got ${show(m[field])}`)];
}

function checkPatterned(field: string, max: number, re: RegExp, allowed: string): Check {
  return (m) => {
    const val = m[field];
    if (typeof val !== 'string') return [invalid(field, `"${field}" must be a string`)];
    if (val.length > max) {
      return [invalid(field, `"${field}" is too long: ${val.length} characters (max ${max})`)];
    }
    if (!re.test(val)) {
      return [invalid(field, `"${field}" ${show(val)} has invalid characters (only ${allowed} are allowed)`)];
    }
    return [];
  };
}

// imgmanifest runs url.parse(), which lower-cases the scheme and trims.
function checkUrl(field: string): Check {
  return (m) => {
    const val = m[field];
    if (typeof val !== 'string') return [invalid(field, `"${field}" must be a string`)];
    if (!/^\s*https?:/i.test(val)) return [invalid(field, `"${field}" must be an http: or https: URL`)];
    if (val.length > LIMITS.url) {
      return [invalid(field, `"${field}" is too long: ${val.length} characters (max ${LIMITS.url})`)];
    }
    return [];
  };
}

function checkOneOf(field: string, valid: readonly string[]): Check {
  return (m) => {
    const val = m[field];
    // "null" is how IMGAPI marks type/os of a not-yet-created image.
    if (val === 'null' && (m.state === 'creating' || m.state === 'failed')) return [];
    if (typeof val === 'string' && valid.includes(val)) return [];
    return [invalid(field, `"${field}" must be one of ${valid.join(', ')}; got ${show(val)}`)];
  };
}

// imgmanifest lets "" and falsy values through on non-zvol images; IMGAPI's
// import then rejects the key as an extra parameter, so we reject any value.
function checkZvolOnly(field: string): Check {
  return (m) => {
    if (m.type !== 'zvol') {
      return [invalid(field, `"${field}" is only allowed for type "zvol" images (type is ${show(m.type)})`)];
    }
    if (field === 'image_size') {
      return isPositiveInteger(m.image_size)
        ? []
        : [invalid(field, `"image_size" must be a positive integer (MiB), got ${show(m.image_size)}`)];
    }
    return typeof m[field] === 'string' ? [] : [invalid(field, `"${field}" must be a string`)];
  };
}

function checkStringArray(field: string, maxLen?: number): Check {
  return (m) => {
    const val = m[field];
    if (!Array.isArray(val)) return [invalid(field, `"${field}" must be an array of strings`)];
    const bad = (val as unknown[]).find((s) => typeof s !== 'string' || (maxLen !== undefined && s.length > maxLen));
    if (bad === undefined) return [];
    const limit = maxLen === undefined ? '' : ` of at most ${maxLen} characters`;
    return [invalid(field, `"${field}" entries must be strings${limit}; got ${show(bad)}`)];
  };
}

function checkV(m: Obj): ManifestProblem[] {
  const n = typeof m.v === 'number' || typeof m.v === 'string' ? Number(m.v) : NaN;
  if (Number.isNaN(n) || n < 0) return [invalid('v', `"v" must be a non-negative number, got ${show(m.v)}`)];
  // Stricter than imgmanifest: we neither upgrade nor emit anything but v2.
  if (n !== MANIFEST_V) return [invalid('v', `"v" must be ${MANIFEST_V} (only v2 manifests are supported), got ${show(m.v)}`)];
  return [];
}

function checkPublishedAt(m: Obj): ManifestProblem[] {
  const val = m.published_at;
  // Stricter than imgmanifest: it skips "" and takes 2024-13-45 as a date.
  if (typeof val === 'string' && PUBLISHED_AT_RE.test(val) && !Number.isNaN(Date.parse(val))) return [];
  return [invalid('published_at', `"published_at" must be a date like 2024-01-31T12:00:00.000Z, got ${show(val)}`)];
}

function checkFiles(m: Obj, profile: CheckProfile): ManifestProblem[] {
  const files = m.files;
  if (!Array.isArray(files)) return [invalid('files', '"files" must be an array')];
  const max = m.type === 'lxd' ? 2 : 1;
  if (files.length > max) return [invalid('files', `"files" has ${files.length} entries (max ${max})`)];
  if (files.length === 0) {
    // imgmanifest allows []; nothing can be imported or published from it.
    return [invalid('files', '"files" is empty (one entry with sha1, size and compression is needed)')];
  }
  return files.flatMap((f, i) => checkFileEntry(f, `files[${i}]`, profile));
}

function checkFileEntry(f: unknown, field: string, profile: CheckProfile): ManifestProblem[] {
  if (!isPlainObject(f)) return [invalid(field, `"${field}" must be an object`)];
  const errs: ManifestProblem[] = [];
  if (typeof f.sha1 !== 'string' || !SHA1_RE.test(f.sha1)) {
    errs.push(invalid(field, `"${field}.sha1" must be 40 lower-case hex digits, got ${show(f.sha1)}`));
  }
  if (!isPositiveInteger(f.size)) {
    errs.push(invalid(field, `"${field}.size" must be a positive integer, got ${show(f.size)}`));
  }
  if (!(COMPRESSIONS as readonly unknown[]).includes(f.compression)) {
    errs.push(invalid(field, `"${field}.compression" must be one of ${COMPRESSIONS.join(', ')}; got ${show(f.compression)}`));
  }
  // Only checked on what we write; served manifests are taken as they come.
  if (profile === 'created' && has(f, 'dataset_guid') && !(typeof f.dataset_guid === 'string' && /^\d+$/.test(f.dataset_guid))) {
    errs.push(invalid(field, `"${field}.dataset_guid" must be a decimal ZFS guid string, got ${show(f.dataset_guid)}`));
  }
  return errs;
}

function checkAcl(m: Obj): ManifestProblem[] {
  if (!Array.isArray(m.acl)) return [invalid('acl', '"acl" must be an array of UUIDs')];
  const i = m.acl.findIndex((u) => !isUuid(u));
  return i === -1 ? [] : [invalid('acl', `"acl" item ${i} is not a UUID: ${show(m.acl[i])}`)];
}

function checkUsers(m: Obj): ManifestProblem[] {
  if (!Array.isArray(m.users)) return [invalid('users', '"users" must be an array of {"name": ...} objects')];
  const bad = (m.users as unknown[]).find((u) => !isPlainObject(u) || typeof u.name !== 'string' || Object.keys(u).length !== 1);
  return bad === undefined ? [] : [invalid('users', `"users" entries must be exactly {"name": "..."}; got ${show(bad)}`)];
}

function checkTraits(m: Obj): ManifestProblem[] {
  if (!isPlainObject(m.traits)) return [invalid('traits', '"traits" must be an object')];
  const bad = Object.entries(m.traits).find(
    ([, v]) => typeof v !== 'string' && typeof v !== 'boolean' && !Array.isArray(v),
  );
  return bad === undefined ? [] : [invalid('traits', `"traits.${bad[0]}" must be a string, boolean or array`)];
}

function checkTags(m: Obj): ManifestProblem[] {
  if (!isPlainObject(m.tags)) return [invalid('tags', '"tags" must be an object')];
  const size = JSON.stringify(m.tags).length;
  if (size > LIMITS.tagsJson) {
    return [invalid('tags', `"tags" is too big: ${size} characters as JSON (max ${LIMITS.tagsJson})`)];
  }
  return [];
}

function checkInheritedDirectories(m: Obj, profile: CheckProfile): ManifestProblem[] {
  // In -m the type may still come from the origin; the built manifest is checked again.
  const typeKnown = !(profile === 'input' && m.type === undefined);
  if (typeKnown && m.type !== 'zone-dataset') {
    return [invalid('inherited_directories', `"inherited_directories" is only allowed for type "zone-dataset" images (type is ${show(m.type)})`)];
  }
  return checkStringArray('inherited_directories')(m, profile);
}

function checkServerOnly(field: string, check: Check): Check {
  return (m, profile) =>
    profile === 'import' ? check(m, profile) : [invalid(field, `"${field}" is managed by IMGAPI and must not be in a new image's manifest`)];
}

const fieldChecks: Record<string, Check> = {
  v: checkV,
  uuid: checkUuidField('uuid'),
  urn: checkString('urn'),
  owner: checkUuidField('owner'),
  name: checkPatterned('name', LIMITS.name, NAME_RE, 'letters, digits and " ", ".", "-", "_", "/"'),
  version: checkPatterned('version', LIMITS.version, VERSION_RE, 'letters, digits and ".", "-", "_", "/", "+"'),
  description: (m) => {
    if (typeof m.description !== 'string') return [invalid('description', '"description" must be a string')];
    return m.description.length > LIMITS.description
      ? [invalid('description', `"description" is too long: ${m.description.length} characters (max ${LIMITS.description})`)]
      : [];
  },
  homepage: checkUrl('homepage'),
  eula: checkUrl('eula'),
  disabled: checkBoolish('disabled'),
  public: checkBoolish('public'),
  generate_passwords: checkBoolish('generate_passwords'),
  published_at: checkPublishedAt,
  type: checkOneOf('type', VALID_TYPES),
  os: checkOneOf('os', VALID_OSES),
  origin: checkUuidField('origin'),
  files: checkFiles,
  acl: checkAcl,
  requirements: (m) => checkRequirements(m.requirements),
  users: checkUsers,
  billing_tags: checkStringArray('billing_tags', LIMITS.billingTag),
  traits: checkTraits,
  tags: checkTags,
  inherited_directories: checkInheritedDirectories,
  nic_driver: checkZvolOnly('nic_driver'),
  disk_driver: checkZvolOnly('disk_driver'),
  cpu_type: checkZvolOnly('cpu_type'),
  image_size: checkZvolOnly('image_size'),
  state: checkServerOnly('state', checkOneOf('state', VALID_STATES)),
  activated: checkServerOnly('activated', checkBoolish('activated')),
  channels: checkServerOnly('channels', checkStringArray('channels')),
  icon: checkServerOnly('icon', checkBoolish('icon')),
  error: checkServerOnly('error', (m) => (isPlainObject(m.error) ? [] : [invalid('error', '"error" must be an object')])),
};

// ---- requirements (imgapi.md §1.2)

const requirementChecks: Record<string, (reqs: Obj) => ManifestProblem[]> = {
  networks: (r) => {
    const nets = r.networks;
    const f = 'requirements.networks';
    if (!Array.isArray(nets)) return [invalid(f, `"${f}" must be an array`)];
    const bad = (nets as unknown[]).find(
      (n) => !isPlainObject(n) || n.name === undefined || n.description === undefined || Object.keys(n).length !== 2,
    );
    return bad === undefined ? [] : [invalid(f, `"${f}" entries must be exactly {"name", "description"}; got ${show(bad)}`)];
  },
  brand: (r) => (typeof r.brand === 'string' ? [] : [invalid('requirements.brand', '"requirements.brand" must be a string')]),
  ssh_key: (r) => (typeof r.ssh_key === 'boolean' ? [] : [invalid('requirements.ssh_key', '"requirements.ssh_key" must be a boolean')]),
  min_ram: (r) => checkRam(r, 'min_ram'),
  max_ram: (r) => {
    const errs = checkRam(r, 'max_ram');
    if (errs.length === 0 && isPositiveInteger(r.min_ram) && (r.max_ram as number) < r.min_ram) {
      errs.push(invalid('requirements.max_ram', `"requirements.min_ram" (${r.min_ram}) must be <= "requirements.max_ram" (${r.max_ram as number})`));
    }
    return errs;
  },
  min_platform: (r) => checkPlatformMap(r.min_platform, 'requirements.min_platform'),
  max_platform: (r) => checkPlatformMap(r.max_platform, 'requirements.max_platform'),
  bootrom: (r) => {
    const f = 'requirements.bootrom';
    if (r.brand === undefined) {
      return [{ field: f, code: 'MissingParameter', message: `"${f}" needs "requirements.brand" set to "bhyve"` }];
    }
    if (r.brand !== 'bhyve') return [invalid(f, `"${f}" is only supported with brand "bhyve", not ${show(r.brand)}`)];
    return VALID_BOOTROMS.includes(r.bootrom as string)
      ? []
      : [invalid(f, `"${f}" must be one of ${VALID_BOOTROMS.join(', ')}; got ${show(r.bootrom)}`)];
  },
};

function checkRam(r: Obj, key: 'min_ram' | 'max_ram'): ManifestProblem[] {
  return isPositiveInteger(r[key])
    ? []
    : [invalid(`requirements.${key}`, `"requirements.${key}" must be a positive integer (MiB), got ${show(r[key])}`)];
}

function checkRequirements(reqs: unknown): ManifestProblem[] {
  if (!isPlainObject(reqs)) return [invalid('requirements', '"requirements" must be an object')];
  return Object.keys(reqs).flatMap((key) => {
    if (!has(requirementChecks, key)) {
      return [invalid(`requirements.${key}`, `unsupported requirement "requirements.${key}"`)];
    }
    // imgmanifest skips falsy values (0, "", false, null) of known keys; so do we.
    return reqs[key] ? requirementChecks[key](reqs) : [];
  });
}

/** `{ "7.0": "20180807T230146Z" }`: non-empty, every value a platform stamp. */
function checkPlatformMap(val: unknown, field: string): ManifestProblem[] {
  if (!isPlainObject(val) || Object.keys(val).length === 0) {
    return [invalid(field, `"${field}" must be a non-empty object like {"7.0": "20180807T230146Z"}, got ${show(val)}`)];
  }
  for (const [ver, stamp] of Object.entries(val)) {
    // Keys are SDC versions ("7.0"), compared as strings by imgadm; ours, not imgmanifest's.
    if (!SDC_VERSION_RE.test(ver)) return [invalid(field, `"${field}" key ${show(ver)} is not an SDC version like "7.0"`)];
    if (!isPlatformStamp(stamp)) {
      return [invalid(field, `"${field}" entry "${ver}: ${show(stamp)}" is not a platform timestamp like 20180807T230146Z`)];
    }
  }
  return [];
}

// ---- validation entry points

const REQUIRED: Record<CheckProfile, readonly string[]> = {
  created: ['v', 'uuid', 'name', 'version', 'type', 'os', 'files', 'published_at'],
  import: ['v', 'uuid', 'name', 'version', 'type', 'os', 'files'],
  input: ['name', 'version'],
};

function requiredProblems(m: Obj, profile: CheckProfile): ManifestProblem[] {
  const errs = REQUIRED[profile].filter((f) => m[f] === undefined).map((f) => missing(f));
  if (profile !== 'input' && m.type === 'zvol') {
    errs.push(...ZVOL_FIELDS.filter((f) => m[f] === undefined).map((f) => missing(f, ' (required for type "zvol")')));
  }
  if (isTrue(m.activated)) {
    for (const f of ['published_at', 'files']) {
      if (m[f] === undefined && !REQUIRED[profile].includes(f)) errs.push(missing(f, ' (required when "activated" is true)'));
    }
  }
  return errs;
}

function presentFieldProblems(m: Obj, profile: CheckProfile): ManifestProblem[] {
  return Object.keys(m).flatMap((field) => {
    if (!KNOWN_FIELDS.has(field)) return [invalid(field, `unknown field "${field}"`)];
    if (m[field] === undefined) return [];
    if (nestsDeeperThan(m[field], LIMITS.depth)) {
      return [invalid(field, `"${field}" is nested too deeply (max ${LIMITS.depth} levels)`)];
    }
    return fieldChecks[field](m, profile);
  });
}

export function validate(m: unknown, profile: CheckProfile): ManifestProblem[] {
  if (!isPlainObject(m)) return [invalid('(manifest)', 'the manifest is not a JSON object')];
  return [...requiredProblems(m, profile), ...presentFieldProblems(m, profile)];
}

/**
 * imgmanifest-style validation. 'created': a manifest we built (v2, files
 * and published_at required, nothing server-managed). 'import': an origin
 * manifest from a source (served fields such as state/channels allowed;
 * files[0] must have sha1, size and compression). Empty list = valid.
 */
export function validateManifest(m: unknown, profile: ManifestProfile): ManifestProblem[] {
  return validate(m, profile);
}

export function firstProblemLine(prefix: string, problems: ManifestProblem[]): string {
  const more = problems.length > 1 ? ` (and ${problems.length - 1} more problem${problems.length > 2 ? 's' : ''})` : '';
  return `${prefix}: ${problems[0].message}${more}`;
}

/** Throws BuildError with one line, e.g. `origin image manifest: "type" is missing`. */
export function assertValidManifest(
  m: unknown,
  what: string,
  profile: ManifestProfile = 'created',
): asserts m is ImageManifest {
  const problems = validate(m, profile);
  if (problems.length > 0) throw new BuildError(firstProblemLine(what, problems));
}
