/** The `-m` text: name and version plus the manifest fields the user owns. */
import { UsageError, oneLine } from '../../core/errors.js';
import type { ManifestInput } from './types.js';
import { BUILDER_FIELDS, LIMITS, SERVER_FIELDS, firstProblemLine, has, isPlainObject, show, validate } from './validate.js';

const V1_ONLY_FIELDS = ['creator_uuid', 'vendor_uuid', 'creator_name', 'platform_type', 'cloud_name', 'created_at', 'updated_at'];

type Obj = Record<string, unknown>;

/** Parses and checks `-m` whole: parseManifestObject, then checkManifestInput. */
export function parseManifestInput(text: string): ManifestInput {
  return checkManifestInput(parseManifestObject(text));
}

/** The `-m` text as a JSON object, not yet checked (a definition file's manifest may be merged under it first). */
export function parseManifestObject(text: string): Obj {
  if (text.length > LIMITS.inputChars) {
    throw new UsageError(`manifest (-m) is too large: ${text.length} characters (max ${LIMITS.inputChars})`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`manifest (-m) is not valid JSON: ${oneLine(err).slice(0, 200)}`);
  }
  if (!isPlainObject(parsed)) throw new UsageError(`manifest (-m) must be a JSON object, got ${show(parsed, 40)}`);
  return parsed;
}

/**
 * Builder-set fields (v, uuid, origin, files) and IMGAPI-managed ones
 * (state, activated, channels, icon, error) are rejected rather than
 * silently overwritten. `published_at` is allowed when valid, as the
 * original buildimage kept a given one (it only filled it when absent);
 * `buildImageManifest` does the same.
 */
export function checkManifestInput(parsed: Obj): ManifestInput {
  rejectV1(parsed);
  for (const key of Object.keys(parsed)) {
    if (BUILDER_FIELDS.has(key)) throw new UsageError(`manifest (-m): "${key}" is set by buildimage and cannot be given`);
    if (SERVER_FIELDS.has(key)) throw new UsageError(`manifest (-m): "${key}" is managed by IMGAPI and cannot be given`);
  }
  const problems = validate(parsed, 'input');
  if (problems.length > 0) throw new UsageError(firstProblemLine('manifest (-m)', problems));
  return parsed as unknown as ManifestInput;
}

function rejectV1(m: Obj): void {
  const v1Field = V1_ONLY_FIELDS.find((f) => has(m, f));
  const v1 = v1Field !== undefined ? `"${v1Field}"` : Number(m.v) === 1 ? '"v": 1' : undefined;
  if (v1 !== undefined) {
    throw new UsageError(`manifest (-m) looks like a v1 image manifest (${v1}); give v2 fields only, e.g. name, version, description, tags`);
  }
}
