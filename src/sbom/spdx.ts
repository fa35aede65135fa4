/**
 * The SBOM as SPDX 2.3 JSON (`<stem>.spdx.json`): the document DESCRIBES
 * the image (its file's name and digests); the image CONTAINS each pkgsrc
 * package, npm package and node binary, and DEPENDS_ON its origin, each
 * origin on the next. The pkg audit's advisories ride on their packages as
 * SECURITY external references. Licenses go in as SPDX expressions where
 * they are one (ids.ts), else NOASSERTION with what was found in
 * licenseComments. Deterministic as the CycloneDX one: the namespace comes
 * from the image uuid, `created` is published_at, every list is sorted.
 */
import { createHash } from 'node:crypto';
import { integrityDigests, nameUuid, nodePurl, npmLicenseSpdx, npmPurl, pkgsrcLicenseSpdx, pkgsrcPurl, purlEncode } from './ids.js';
import { cmp, pkgname, spdxDate, webUrl, type SbomInput } from './model.js';
import { parseAdvisory } from '../pkgsrc/tools.js';

type Json = Record<string, unknown>;

const ALG = { sha1: 'SHA1', sha256: 'SHA256', sha384: 'SHA384', sha512: 'SHA512' } as const;
const NOASSERTION = 'NOASSERTION';
export const IMAGE_ID = 'SPDXRef-Image';

/** An SPDX identifier (letters, digits, `.` and `-` only), unique by a digest of what it stands for. */
export function spdxId(kind: string, label: string, key: string): string {
  const clean = label.replace(/[^A-Za-z0-9.-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 80);
  return `SPDXRef-${kind}-${clean}-${createHash('sha1').update(key).digest('hex').slice(0, 8)}`;
}

const originId = (uuid: string) => `SPDXRef-Image-${uuid}`;

function license(raw: string | undefined, spdx: (s: string) => string | undefined, what: string): Json {
  const expr = raw ? spdx(raw) : undefined;
  return {
    licenseConcluded: NOASSERTION,
    licenseDeclared: expr ?? NOASSERTION,
    ...(raw && !expr ? { licenseComments: `${what}: ${raw}` } : {}),
    copyrightText: NOASSERTION,
  };
}

const purlRef = (purl: string) => ({ referenceCategory: 'PACKAGE-MANAGER', referenceType: 'purl', referenceLocator: purl });

export function spdx(input: SbomInput): Json {
  const { image, origins, inventory } = input;
  const packages: Json[] = [];
  const contained: string[] = [];
  const ids = new Set<string>();
  const add = (p: Json, isContained = true) => {
    if (ids.has(p.SPDXID as string)) return;
    ids.add(p.SPDXID as string);
    packages.push(p);
    if (isContained) contained.push(p.SPDXID as string);
  };

  const file = image.file;
  packages.push({
    SPDXID: IMAGE_ID,
    name: image.name,
    versionInfo: image.version,
    packageFileName: file.name,
    downloadLocation: NOASSERTION,
    filesAnalyzed: false,
    checksums: [{ algorithm: 'SHA1', checksumValue: file.sha1 }, ...(file.sha256 ? [{ algorithm: 'SHA256', checksumValue: file.sha256 }] : [])],
    primaryPackagePurpose: 'CONTAINER',
    ...(image.description ? { description: image.description } : {}),
    comment: `Triton image ${image.uuid} (${file.compression} ZFS stream, ${file.size} bytes)`,
    builtDate: spdxDate(image.publishedAt),
    ...license(undefined, () => undefined, ''),
  });
  ids.add(IMAGE_ID);

  for (const o of origins) {
    add(
      {
        SPDXID: originId(o.uuid),
        name: o.name ?? o.uuid,
        ...(o.version ? { versionInfo: o.version } : {}),
        downloadLocation: NOASSERTION,
        filesAnalyzed: false,
        ...(o.sha1 ? { checksums: [{ algorithm: 'SHA1', checksumValue: o.sha1 }] } : {}),
        primaryPackagePurpose: 'CONTAINER',
        comment: o.name ? `Triton image ${o.uuid}` : `Triton image ${o.uuid}; its manifest is not known on the build machine`,
        ...license(undefined, () => undefined, ''),
      },
      false,
    );
  }

  const advisories = new Map<string, string[]>();
  for (const f of input.audit) {
    const urls = f.advisories.map((l) => webUrl(parseAdvisory(l)?.url)).filter((u): u is string => !!u);
    advisories.set(f.pkg, [...new Set(urls)].sort(cmp));
  }
  for (const p of inventory.pkgsrc) {
    const purl = pkgsrcPurl(p.name, p.version);
    const homepage = webUrl(p.homepage);
    add({
      SPDXID: spdxId('Pkgsrc', `${p.name}-${p.version}`, purl),
      name: p.name,
      versionInfo: p.version,
      downloadLocation: NOASSERTION,
      filesAnalyzed: false,
      ...(homepage ? { homepage } : {}),
      ...(p.pkgpath ? { sourceInfo: `pkgsrc ${p.pkgpath}` } : {}),
      ...(p.comment ? { summary: p.comment } : {}),
      primaryPackagePurpose: 'LIBRARY',
      externalRefs: [
        purlRef(purl),
        ...(advisories.get(pkgname(p)) ?? []).map((url) => ({ referenceCategory: 'SECURITY', referenceType: 'advisory', referenceLocator: url })),
      ],
      ...license(p.license, pkgsrcLicenseSpdx, 'pkgsrc LICENSE'),
    });
  }
  for (const n of inventory.npm) {
    const purl = npmPurl(n.name, n.version);
    const sums = n.integrity ? integrityDigests(n.integrity).map((d) => ({ algorithm: ALG[d.alg], checksumValue: d.hex })) : [];
    add({
      SPDXID: spdxId('Npm', `${n.name}-${n.version}`, purl),
      name: n.name,
      versionInfo: n.version,
      downloadLocation: webUrl(n.resolved) ?? NOASSERTION,
      filesAnalyzed: false,
      ...(sums.length ? { checksums: sums } : {}),
      primaryPackagePurpose: 'LIBRARY',
      externalRefs: [purlRef(purl)],
      ...(n.paths.length ? { comment: `in the image at ${n.paths.join(', ')}` } : {}),
      ...license(n.license, npmLicenseSpdx, 'package.json license'),
    });
  }
  for (const b of inventory.node) {
    add({
      SPDXID: spdxId('Node', b.path, `node:${b.path}`),
      name: 'node',
      ...(b.version ? { versionInfo: b.version } : {}),
      downloadLocation: NOASSERTION,
      filesAnalyzed: false,
      primaryPackagePurpose: 'APPLICATION',
      ...(b.version ? { externalRefs: [purlRef(nodePurl(b.version))] } : {}),
      comment: b.version ? `at ${b.path}` : `at ${b.path}; version unknown: no include/node/node_version.h beside the binary (it is never run)`,
      ...license(undefined, () => undefined, ''),
    });
  }
  const [first, ...rest] = packages;
  rest.sort((a, b) => cmp(a.SPDXID as string, b.SPDXID as string));

  const relationships: Json[] = [
    { spdxElementId: 'SPDXRef-DOCUMENT', relationshipType: 'DESCRIBES', relatedSpdxElement: IMAGE_ID },
    ...(origins[0] ? [{ spdxElementId: IMAGE_ID, relationshipType: 'DEPENDS_ON', relatedSpdxElement: originId(origins[0].uuid) }] : []),
    ...origins.slice(1).map((o, i) => ({ spdxElementId: originId(origins[i].uuid), relationshipType: 'DEPENDS_ON', relatedSpdxElement: originId(o.uuid) })),
    ...contained.sort(cmp).map((id) => ({ spdxElementId: IMAGE_ID, relationshipType: 'CONTAINS', relatedSpdxElement: id })),
  ];

  return {
    spdxVersion: 'SPDX-2.3',
    dataLicense: 'CC0-1.0',
    SPDXID: 'SPDXRef-DOCUMENT',
    name: `${image.name}-${image.version}`,
    documentNamespace: `https://tritondatacenter.com/spdxdocs/buildimage/${purlEncode(image.name)}-${purlEncode(image.version)}-${nameUuid(`spdx:${image.uuid}`)}`,
    creationInfo: {
      created: spdxDate(image.publishedAt),
      creators: [`Tool: ${input.tool.name}-${input.tool.version}`],
      ...(inventory.incomplete.length ? { comment: `Incomplete: ${inventory.incomplete.join('; ')}` } : {}),
    },
    documentDescribes: [IMAGE_ID],
    packages: [first, ...rest],
    relationships,
  };
}
