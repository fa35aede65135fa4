/**
 * The build definition: what a build is made from, as the state file keeps
 * it between stages. Its fields and their schema come from the settings
 * table (each setting with a `field`); here they are resolved, required,
 * checked against the machine, and the manifest is made whole.
 */
import { z } from 'zod';
import { checkManifestInput } from '../image/manifest/input.js';
import type { ManifestInput } from '../image/manifest/types.js';
import { required, type Resolved } from './resolve.js';
import { SETTINGS, label, parsePrefix, type Setting, type SettingId, type Settings } from './table.js';

type FieldShape = {
  [K in SettingId as Settings[K] extends { field: infer F extends string } ? F : never]: Settings[K] extends { stored: infer Z } ? Z : never;
};

const fieldIds = (Object.keys(SETTINGS) as SettingId[]).filter((id) => (SETTINGS[id] as Setting).field);

export const DefinitionSchema = z.object(
  Object.fromEntries(fieldIds.map((id) => [(SETTINGS[id] as Setting).field!, (SETTINGS[id] as Setting).stored!])) as FieldShape,
);
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
  const merged = values['image-version'] === undefined ? values.manifest : { ...(values.manifest as object), version: values['image-version'] };
  const manifest: ManifestInput = checkManifestInput(merged as Record<string, unknown>);
  values.manifest = manifest;
  values.prefix ??= parsePrefix(`${manifest.name}-zfs`, label('prefix'));
  const def: Record<string, unknown> = {};
  for (const id of fieldIds) {
    const setting = SETTINGS[id] as Setting;
    const v = values[id];
    def[setting.field!] = setting.type === 'string' && setting.check && v !== undefined ? await setting.check(v, label(id)) : v;
  }
  return DefinitionSchema.parse(def);
}
