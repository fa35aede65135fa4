/**
 * The build definition: what a build is made from, as the state file keeps
 * it between stages. Its fields and their schema come from the settings
 * table (each setting with a `field`); here they are resolved, required,
 * checked against the machine, and the manifest is made whole.
 */
import { z } from 'zod';
import { checkManifestInput } from '../image/manifest/input.js';
import { PackageLockSchema } from '../pkgsrc/lock.js';
import { lockfilePath, readLockfile } from './lockfile.js';
import type { ManifestInput } from '../image/manifest/types.js';
import { fileLabel, originOf, required, type Resolved } from './resolve.js';
import { UsageError } from '../core/errors.js';
import {
  MAX_STEM_BYTES,
  SETTINGS,
  VERSION_HINT,
  checkFileNamePart,
  label,
  parsePrefix,
  type Setting,
  type SettingId,
  type Settings,
} from './table.js';

type FieldShape = {
  [K in SettingId as Settings[K] extends { field: infer F extends string } ? F : never]: Settings[K] extends { stored: infer Z } ? Z : never;
};

const fieldIds = (Object.keys(SETTINGS) as SettingId[]).filter((id) => (SETTINGS[id] as Setting).field);

export const DefinitionSchema = z
  .object(Object.fromEntries(fieldIds.map((id) => [(SETTINGS[id] as Setting).field!, (SETTINGS[id] as Setting).stored!])) as FieldShape)
  // --locked: the lockfile's packages, read and checked once, when the build is defined.
  .extend({ packageLock: PackageLockSchema.optional() });
export type BuildDefinition = z.infer<typeof DefinitionSchema>;

/** build's and prepare's settings, as resolved. */
export type DefiningSettings = Resolved<'build'> | Resolved<'prepare'>;

/**
 * From resolved settings to a checked definition: required settings are
 * there, --image-version is in the manifest and the manifest is a valid
 * `-m`, the prefix has its default, and paths exist where they must.
 */
export async function buildDefinition(s: DefiningSettings): Promise<BuildDefinition> {
  const values: Record<string, unknown> = { ...s };
  for (const id of fieldIds) {
    if ((SETTINGS[id] as Setting).required) values[id] = required(id, values[id], s.config);
  }
  // A manifest key is named where the user wrote it: -m on the command line, else the definition file.
  const lineManifest = originOf(s, 'manifest').line as Record<string, unknown> | undefined;
  const manifestKey = (key: string): string => (s.config && lineManifest?.[key] === undefined ? fileLabel(`manifest.${key}`, s.config) : `${label('manifest')} "${key}"`);
  const given = values.manifest as Record<string, unknown>;
  if (values['image-version'] === undefined && given.version === undefined) {
    throw new UsageError("missing --image-version (the image's version)", `pass --image-version VERSION, or set ${s.config ? fileLabel('manifest.version', s.config) : `"version" in ${label('manifest')}`}`);
  }
  const merged = values['image-version'] === undefined ? given : { ...given, version: values['image-version'] };
  let manifest: ManifestInput;
  try {
    manifest = checkManifestInput(merged);
  } catch (err) {
    // The manifest's own checks say "manifest (-m)": when it came from the file alone, name the file.
    if (!(err instanceof UsageError) || !s.config || lineManifest !== undefined) throw err;
    throw new UsageError(err.message.replace(/^manifest \(-m\)/, fileLabel('manifest', s.config)), err.hint);
  }
  values.manifest = manifest;
  // The version and the prefix name every output file: checked as file-name parts now, not at seal.
  const versionLabel = values['image-version'] === undefined ? manifestKey('version') : '--image-version';
  checkFileNamePart(manifest.version, versionLabel, manifest.version.includes('/') ? VERSION_HINT : undefined);
  if (values.prefix === undefined) {
    try {
      values.prefix = parsePrefix(`${manifest.name}-zfs`, label('prefix'));
    } catch {
      throw new UsageError(
        `${manifestKey('name')} is ${JSON.stringify(manifest.name.slice(0, 80))}: it cannot make the output file prefix NAME-zfs (letters, digits, . _ + -)`,
        `pass ${label('prefix')} PREFIX${s.config ? `, or set ${fileLabel('prefix', s.config)}` : ''}`,
      );
    }
  }
  const stem = `${values.prefix as string}-${manifest.version}`;
  if (Buffer.byteLength(stem) > MAX_STEM_BYTES) {
    throw new UsageError(`output file names ${JSON.stringify(`${stem.slice(0, 60)}…`)} would be too long: ${originOf(s, 'prefix').label} and ${versionLabel} together may have ${MAX_STEM_BYTES} bytes`);
  }
  const def: Record<string, unknown> = {};
  for (const id of fieldIds) {
    const setting = SETTINGS[id] as Setting;
    const v = values[id];
    def[setting.field!] = setting.type === 'string' && setting.check && v !== undefined ? await setting.check(v, originOf(s, id).label) : v;
  }
  if (s.locked) def.packageLock = readLockfile(lockfilePath(s['lock-file'], s.config), def as { packages: string[]; upgrade: boolean });
  return DefinitionSchema.parse(def);
}

/**
 * The definition as it is written where others read it (the state file,
 * build-info.json): each value through its setting's `record` (a URL
 * without credentials). Only the process given the real values uses them.
 */
export function recordedDefinition(def: BuildDefinition): BuildDefinition {
  const out: Record<string, unknown> = { ...def };
  for (const id of fieldIds) {
    const setting = SETTINGS[id] as Setting;
    const v = out[setting.field!];
    if (setting.type === 'string' && setting.record && v !== undefined) out[setting.field!] = setting.record(v);
  }
  return out as BuildDefinition;
}
