/**
 * Writes buildimage.schema.json, the JSON Schema of buildimage.json for
 * editors, from the definition file's zod schema (settings/resolve
 * DefinitionFileSchema, itself made from the settings table); a unit test
 * fails when the committed file differs. Run: npm run docs
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { zodToJsonSchema } from 'zod-to-json-schema';
import { DEFINITION_SCHEMA_FILE, packageRoot } from '../src/core/package.js';
import { DefinitionFileSchema } from '../src/settings/resolve.js';

/** The schema's text as committed: draft-07, keys "//…" allowed as comments at the top and in each image (the loader drops them there). */
export function definitionSchemaText(): string {
  const schema = zodToJsonSchema(DefinitionFileSchema, { target: 'jsonSchema7', $refStrategy: 'none', removeAdditionalStrategy: 'strict' }) as Record<string, unknown>;
  // Where the loader drops them: the top level and each image.
  const images = (schema.properties as Record<string, { items: Record<string, unknown> }>).images.items;
  for (const o of [schema, images]) o.patternProperties = { '^//': {} };
  return (
    JSON.stringify(
      {
        $schema: schema.$schema,
        $id: DEFINITION_SCHEMA_FILE,
        title: 'buildimage build definition (buildimage.json)',
        description:
          "Keys are `buildimage build`'s long flag names; a flag on the command line wins. With \"images\", the top-level keys are the images' shared defaults and each image may set any of them again (\"manifest\" merged key by key). Made by `npm run docs` from src/settings.",
        ...Object.fromEntries(Object.entries(schema).filter(([k]) => k !== '$schema')),
      },
      null,
      2,
    ) + '\n'
  );
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  writeFileSync(join(packageRoot(), DEFINITION_SCHEMA_FILE), definitionSchemaText());
  console.log(`wrote ${DEFINITION_SCHEMA_FILE}`);
}
