/**
 * The SBOM as CycloneDX 1.6 JSON (`<stem>.cdx.json`): the image as
 * metadata.component with its file's digests; its origin images, pkgsrc
 * packages, npm packages and node binaries as components; the dependency
 * graph (the image on its origin and on what it holds, each origin on the
 * next); the pkg audit's findings as vulnerabilities of their packages.
 * Deterministic: the serial number comes from the image uuid, the time is
 * published_at, every list is sorted.
 */
import { integrityDigests, nameUuid, nodePurl, npmLicenseSpdx, npmPurl, pkgsrcLicenseSpdx, pkgsrcPurl } from './ids.js';
import { cmp, pkgname, webUrl, type SbomInput } from './model.js';
import { parseAdvisory } from '../pkgsrc/tools.js';

type Json = Record<string, unknown>;
type Property = { name: string; value: string };

const HASH_ALG = { sha1: 'SHA-1', sha256: 'SHA-256', sha384: 'SHA-384', sha512: 'SHA-512' } as const;

export const imageRef = (uuid: string) => `image:${uuid}`;

const props = (list: Array<[string, string | undefined]>): { properties?: Property[] } => {
  const p = list.filter((x): x is [string, string] => x[1] !== undefined).map(([name, value]) => ({ name, value }));
  return p.length ? { properties: p } : {};
};

function licenses(raw: string | undefined, spdx: (s: string) => string | undefined): { licenses?: Json[] } {
  if (!raw) return {};
  const expr = spdx(raw);
  return { licenses: [expr ? { expression: expr } : { license: { name: raw } }] };
}

export function cyclonedx(input: SbomInput): Json {
  const { image, origins, inventory } = input;
  const components: Json[] = [];
  const refs = new Set<string>();
  const add = (c: Json) => {
    if (refs.has(c['bom-ref'] as string)) return;
    refs.add(c['bom-ref'] as string);
    components.push(c);
  };

  for (const o of origins) {
    add({
      type: 'container',
      'bom-ref': imageRef(o.uuid),
      name: o.name ?? o.uuid,
      ...(o.version ? { version: o.version } : {}),
      ...(o.sha1 ? { hashes: [{ alg: 'SHA-1', content: o.sha1 }] } : {}),
      ...props([
        ['buildimage:image-uuid', o.uuid],
        ['buildimage:note', o.name ? undefined : 'manifest not known on the build machine: name, version and sha1 unknown'],
      ]),
    });
  }
  for (const p of inventory.pkgsrc) {
    const purl = pkgsrcPurl(p.name, p.version);
    const homepage = webUrl(p.homepage);
    add({
      type: 'library',
      'bom-ref': purl,
      name: p.name,
      version: p.version,
      ...(p.comment ? { description: p.comment } : {}),
      ...licenses(p.license, pkgsrcLicenseSpdx),
      purl,
      ...(homepage ? { externalReferences: [{ type: 'website', url: homepage }] } : {}),
      ...props([['buildimage:pkgpath', p.pkgpath]]),
    });
  }
  for (const n of inventory.npm) {
    const purl = npmPurl(n.name, n.version);
    const scoped = n.name.startsWith('@') && n.name.includes('/');
    const hashes = n.integrity ? integrityDigests(n.integrity).map((d) => ({ alg: HASH_ALG[d.alg], content: d.hex })) : [];
    const resolved = webUrl(n.resolved);
    add({
      type: 'library',
      'bom-ref': purl,
      ...(scoped ? { group: n.name.slice(0, n.name.indexOf('/')), name: n.name.slice(n.name.indexOf('/') + 1) } : { name: n.name }),
      version: n.version,
      ...(hashes.length ? { hashes } : {}),
      ...licenses(n.license, npmLicenseSpdx),
      purl,
      ...(resolved ? { externalReferences: [{ type: 'distribution', url: resolved }] } : {}),
      ...(n.paths.length ? { properties: n.paths.map((value) => ({ name: 'buildimage:path', value })) } : {}),
    });
  }
  for (const b of inventory.node) {
    add({
      type: 'application',
      'bom-ref': `node:${b.path}`,
      name: 'node',
      ...(b.version ? { version: b.version, purl: nodePurl(b.version) } : {}),
      ...props([
        ['buildimage:path', b.path],
        ['buildimage:note', b.version ? undefined : 'version unknown: no include/node/node_version.h beside the binary (it is never run)'],
      ]),
    });
  }
  components.sort((a, b) => cmp(a['bom-ref'] as string, b['bom-ref'] as string));

  const top = imageRef(image.uuid);
  const dependencies: Json[] = [
    { ref: top, dependsOn: components.filter((c) => !origins.slice(1).some((o) => imageRef(o.uuid) === c['bom-ref'])).map((c) => c['bom-ref'] as string) },
    ...origins.map((o, i) => ({ ref: imageRef(o.uuid), dependsOn: origins[i + 1] ? [imageRef(origins[i + 1].uuid)] : [] })),
  ];

  const byPkg = new Map(inventory.pkgsrc.map((p) => [pkgname(p), pkgsrcPurl(p.name, p.version)]));
  const vulnerabilities: Json[] = [];
  for (const f of input.audit) {
    const ref = byPkg.get(f.pkg);
    if (!ref) continue;
    f.advisories.forEach((line, i) => {
      const adv = parseAdvisory(line);
      const cve = /CVE-\d{4}-\d{4,}/i.exec(line)?.[0]?.toUpperCase();
      const url = webUrl(adv?.url);
      vulnerabilities.push({
        'bom-ref': `vuln:${f.pkg}:${i + 1}`,
        ...(cve ? { id: cve } : {}),
        source: { name: 'pkgsrc pkg-vulnerabilities' },
        description: line,
        ...(url ? { advisories: [{ url }] } : {}),
        affects: [{ ref }],
        ...props([['buildimage:audit-type', adv?.type]]),
      });
    });
  }
  vulnerabilities.sort((a, b) => cmp(a['bom-ref'] as string, b['bom-ref'] as string));

  const file = image.file;
  return {
    $schema: 'http://cyclonedx.org/schema/bom-1.6.schema.json',
    bomFormat: 'CycloneDX',
    specVersion: '1.6',
    serialNumber: `urn:uuid:${nameUuid(`cyclonedx:${image.uuid}`)}`,
    version: 1,
    metadata: {
      timestamp: image.publishedAt,
      lifecycles: [{ phase: 'build' }],
      tools: { components: [{ type: 'application', name: input.tool.name, version: input.tool.version }] },
      component: {
        type: 'container',
        'bom-ref': top,
        name: image.name,
        version: image.version,
        ...(image.description ? { description: image.description } : {}),
        hashes: [{ alg: 'SHA-1', content: file.sha1 }, ...(file.sha256 ? [{ alg: 'SHA-256', content: file.sha256 }] : [])],
        ...props([
          ['buildimage:image-uuid', image.uuid],
          ['buildimage:file', file.name],
          ['buildimage:file-size', String(file.size)],
          ['buildimage:file-compression', file.compression],
        ]),
      },
      ...(inventory.incomplete.length ? { properties: inventory.incomplete.map((value) => ({ name: 'buildimage:incomplete', value })) } : {}),
    },
    components,
    dependencies: dependencies.sort((a, b) => cmp(a.ref as string, b.ref as string)),
    ...(vulnerabilities.length ? { vulnerabilities } : {}),
  };
}
