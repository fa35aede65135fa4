/**
 * The oracles for buildimage's SBOMs: CycloneDX's own JSON validator
 * (@cyclonedx/cyclonedx-library, strict, spec 1.6) and the SPDX 2.3 JSON
 * schema from the spdx-spec repository (test/fixtures/spdx) under ajv; plus
 * the rules neither schema states (identifiers' form, every reference
 * naming an element of the document).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import * as CDX from '@cyclonedx/cyclonedx-library';

const require = createRequire(import.meta.url);
// ajv 8 as the CycloneDX library sees it (its peer): one ajv for both oracles, wherever npm put it.
const fromCdx = createRequire(require.resolve('@cyclonedx/cyclonedx-library/package.json'));
const Ajv = fromCdx('ajv').default as new (o: object) => { compile(s: object): ((d: unknown) => boolean) & { errors?: unknown[] } };
const addFormats = fromCdx('ajv-formats').default as (ajv: object) => void;

export const SPDX_SCHEMA = fileURLToPath(new URL('../../../test/fixtures/spdx/spdx-schema.json', import.meta.url));

let spdxValidate: (((d: unknown) => boolean) & { errors?: unknown[] }) | undefined;

/** Problems the SPDX 2.3 schema and the spec's identifier rules find; [] when valid. */
export function spdxProblems(doc: Record<string, unknown>): unknown[] {
  if (!spdxValidate) {
    const ajv = new Ajv({ allErrors: true, strict: false });
    addFormats(ajv);
    spdxValidate = ajv.compile(JSON.parse(readFileSync(SPDX_SCHEMA, 'utf8')));
  }
  const problems: unknown[] = spdxValidate(doc) ? [] : [...(spdxValidate.errors ?? [])];
  const packages = (doc.packages ?? []) as Array<Record<string, unknown>>;
  const ids = new Set(['SPDXRef-DOCUMENT']);
  for (const p of packages) {
    const id = p.SPDXID as string;
    if (!/^SPDXRef-[A-Za-z0-9.-]+$/.test(id)) problems.push(`SPDXID ${id} is not SPDXRef-[idstring]`);
    if (ids.has(id)) problems.push(`SPDXID ${id} twice`);
    ids.add(id);
  }
  for (const r of (doc.relationships ?? []) as Array<Record<string, string>>) {
    for (const k of ['spdxElementId', 'relatedSpdxElement']) if (!ids.has(r[k])) problems.push(`relationship names ${r[k]}, not in the document`);
  }
  for (const d of (doc.documentDescribes ?? []) as string[]) if (!ids.has(d)) problems.push(`documentDescribes ${d}, not in the document`);
  const created = (doc.creationInfo as Record<string, string> | undefined)?.created ?? '';
  if (!/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/.test(created)) problems.push(`created ${created} is not YYYY-MM-DDThh:mm:ssZ`);
  return problems;
}

const cdxValidator = new CDX.Validation.JsonStrictValidator(CDX.Spec.Version.v1dot6);

/** Problems CycloneDX's strict 1.6 validator and reference checks find; [] when valid. */
export async function cyclonedxProblems(doc: Record<string, unknown>): Promise<unknown[]> {
  const problems: unknown[] = [];
  const errors = await cdxValidator.validate(JSON.stringify(doc));
  if (errors) problems.push(...(Array.isArray(errors) ? errors : [errors]));
  const refs = new Set<string>();
  const meta = doc.metadata as Record<string, Record<string, string>> | undefined;
  if (meta?.component?.['bom-ref']) refs.add(meta.component['bom-ref']);
  for (const c of (doc.components ?? []) as Array<Record<string, string>>) {
    if (refs.has(c['bom-ref'])) problems.push(`bom-ref ${c['bom-ref']} twice`);
    refs.add(c['bom-ref']);
  }
  for (const d of (doc.dependencies ?? []) as Array<{ ref: string; dependsOn?: string[] }>) {
    for (const r of [d.ref, ...(d.dependsOn ?? [])]) if (!refs.has(r)) problems.push(`dependency names ${r}, not a component`);
  }
  for (const v of (doc.vulnerabilities ?? []) as Array<{ affects?: Array<{ ref: string }> }>) {
    for (const a of v.affects ?? []) if (!refs.has(a.ref)) problems.push(`vulnerability affects ${a.ref}, not a component`);
  }
  return problems;
}

/** Both documents valid, with the problems in the message when not. */
export async function assertValidSboms(cdx: Record<string, unknown>, spdx: Record<string, unknown>): Promise<void> {
  assert.deepEqual(await cyclonedxProblems(cdx), [], 'CycloneDX 1.6 (official validator)');
  assert.deepEqual(spdxProblems(spdx), [], 'SPDX 2.3 (spdx-spec schema)');
}
