/**
 * The SBOM over a hand-made image root: a pkgdb as pkg_add writes it
 * (+CONTENTS, +BUILD_INFO from the testbed's package writer), node_modules
 * with lockfiles of both formats, node builds with and without headers.
 * Both documents pass the official validators and say what the root holds.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { cyclonedx } from '../../src/sbom/cyclonedx.js';
import { integrityDigests, isSpdxExpression, nameUuid, npmPurl, pkgsrcLicenseSpdx, pkgsrcPurl } from '../../src/sbom/ids.js';
import { originChain, sbomInput } from '../../src/sbom/sbom.js';
import { spdx } from '../../src/sbom/spdx.js';
import type { ImageManifest } from '../../src/image/manifest/types.js';
import { buildInfoText, sampleSpec } from '../../testbed/packages.js';
import { outputPaths } from '../../src/build/owned.js';
import { contentTypeFor } from '../../src/publish/bits.js';
import { BuildResultSchema } from '../../src/cli/schemas.js';
import { renderResult } from '../../src/cli/render.js';
import { assertValidSboms, cyclonedxProblems, spdxProblems } from '../helpers/sbom.js';

const UUID = '0f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a0b';
const BASE = '11111111-2222-4333-8444-555555555555';
const ORIGIN = '66666666-7777-4888-8999-aaaaaaaaaaaa';
const sri = (text: string) => `sha512-${createHash('sha512').update(text).digest('base64')}`;

async function put(root: string, rel: string, content: string): Promise<void> {
  await mkdir(dirname(join(root, rel)), { recursive: true });
  await writeFile(join(root, rel), content);
}

function manifestOf(uuid: string, name: string, version: string, origin?: string): ImageManifest {
  return { v: 2, uuid, name, version, origin, files: [{ sha1: createHash('sha1').update(uuid).digest('hex'), size: 10, compression: 'gzip' }], published_at: '2024-12-20T10:00:00.000Z' };
}

/** A root as a build leaves it: pkgsrc packages, a service with node_modules and its node. */
async function makeRoot(root: string): Promise<void> {
  for (const [name, extra] of [
    ['greeter-1.1', {}],
    ['webfetch-7.64.0', {}],
    ['libsigc++-2.10.8', { license: 'gnu-lgpl-v2.1 OR mit' }],
  ] as const) {
    const spec = { ...sampleSpec(name), ...extra };
    await put(root, `opt/local/pkg/${name}/+CONTENTS`, `@name ${name}\n`);
    await put(root, `opt/local/pkg/${name}/+BUILD_INFO`, buildInfoText(spec));
    await put(root, `opt/local/pkg/${name}/+COMMENT`, `${spec.comment}\n`);
  }
  // pkg_info lists neither the db's own files nor a package without +CONTENTS.
  await put(root, 'opt/local/pkg/pkgdb.byfile.db', 'x');
  await put(root, 'opt/local/pkg/halfgone-1.0/+COMMENT', 'x\n');
  // No +BUILD_INFO: listed without license or homepage.
  await put(root, 'opt/local/pkg/bare-2.0nb1/+CONTENTS', '@name bare-2.0nb1\n');

  const svc = 'opt/smartdc/svc';
  await put(root, `${svc}/package.json`, JSON.stringify({ name: 'svc', version: '1.0.0' }));
  await put(root, `${svc}/node_modules/dep/package.json`, JSON.stringify({ name: 'dep', version: '1.2.0', license: 'MIT' }));
  await put(root, `${svc}/node_modules/dep/node_modules/inner/package.json`, JSON.stringify({ name: 'inner', version: '0.1.0', license: '(MIT OR Apache-2.0)' }));
  await put(root, `${svc}/node_modules/@scope/pkg/package.json`, JSON.stringify({ name: '@scope/pkg', version: '2.0.0', license: 'SEE LICENSE IN LICENSE' }));
  await put(root, `${svc}/node_modules/old/package.json`, JSON.stringify({ name: 'old', version: '0.0.1', licenses: [{ type: 'BSD' }] }));
  await put(root, `${svc}/node_modules/stale/package.json`, JSON.stringify({ name: 'stale', version: '3.0.0' }));
  await put(root, `${svc}/node_modules/.bin/dep`, '#!/bin/sh\n');
  await put(root, `${svc}/node_modules/broken/package.json`, '{ "name": "broken", ');
  await put(root, `${svc}/package-lock.json`, JSON.stringify({
    name: 'svc',
    lockfileVersion: 3,
    packages: {
      '': { name: 'svc', version: '1.0.0' },
      'node_modules/dep': { version: '1.2.0', resolved: 'https://registry.npmjs.org/dep/-/dep-1.2.0.tgz', integrity: sri('dep'), license: 'MIT' },
      'node_modules/dep/node_modules/inner': { version: '0.1.0', integrity: sri('inner') },
      'node_modules/@scope/pkg': { version: '2.0.0', resolved: 'https://user:secret@npm.example.com/@scope/pkg/-/pkg-2.0.0.tgz?token=abc', integrity: sri('scope') },
      // The tree moved on from the lockfile: its integrity is not this version's.
      'node_modules/stale': { version: '2.9.0', integrity: sri('stale') },
    },
  }));
  // A second project with a lockfileVersion 1 lockfile; the same dep@1.2.0 as svc's: one component, two paths.
  const other = 'opt/smartdc/other';
  await put(root, `${other}/node_modules/dep/package.json`, JSON.stringify({ name: 'dep', version: '1.2.0', license: 'MIT' }));
  await put(root, `${other}/node_modules/legacy/package.json`, JSON.stringify({ name: 'legacy', version: '4.0.0' }));
  await put(root, `${other}/node_modules/legacy/node_modules/sub/package.json`, JSON.stringify({ name: 'sub', version: '1.0.0' }));
  await put(root, `${other}/npm-shrinkwrap.json`, JSON.stringify({
    lockfileVersion: 1,
    dependencies: { legacy: { version: '4.0.0', integrity: sri('legacy'), dependencies: { sub: { version: '1.0.0', integrity: `sha1-${createHash('sha1').update('sub').digest('base64')}` } } } },
  }));
  // The Triton node build beside the service, and one without headers.
  await put(root, `${svc}/build/node/bin/node`, '\x7fELF not run\n');
  await put(root, `${svc}/build/node/include/node/node_version.h`, '#define NODE_MAJOR_VERSION 18\n#define NODE_MINOR_VERSION 20\n#define NODE_PATCH_VERSION 4\n');
  await put(root, 'opt/smartdc/agent/node/bin/node', '\x7fELF not run\n');
}

const AUDIT =
  'Package webfetch-7.64.0 has a remote-code-execution vulnerability, see https://nvd.nist.gov/vuln/detail/CVE-2019-5436\n' +
  'Package webfetch-7.64.0 has a denial-of-service vulnerability, see https://security.example.org/webfetch-dos\n' +
  'Package gone-1.0 has reached end-of-life (eol), see https://security.example.org/eol\n';

describe('SBOM', () => {
  let dir: string;
  let root: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sbom-'));
    root = join(dir, 'root');
    await makeRoot(root);
    await writeFile(join(dir, 'pkgaudit.txt'), AUDIT);
  });
  after(() => rm(dir, { recursive: true, force: true }));

  async function input() {
    const base = manifestOf(BASE, 'triton-origin-sample', '24.4.1', ORIGIN);
    const known = new Map([[ORIGIN, manifestOf(ORIGIN, 'minimal-64-lts', '24.4.1')]]);
    return sbomInput({
      root,
      manifest: manifestOf(UUID, 'svc', '1.2.3', BASE),
      fileName: '/out/svc-zfs-1.2.3.zfs.gz',
      sha256: createHash('sha256').update('image').digest('hex'),
      origin: base,
      lookup: async (u) => known.get(u),
      auditReport: join(dir, 'pkgaudit.txt'),
    });
  }

  it('lists the pkgdb, node_modules (with lockfile integrity) and node builds, and both documents pass the official validators', async () => {
    const inp = await input();
    const cdx = cyclonedx(inp);
    const sp = spdx(inp);
    await assertValidSboms(cdx, sp);

    const comps = cdx.components as Array<Record<string, any>>;
    const byRef = new Map(comps.map((c) => [c['bom-ref'], c]));
    // pkgsrc: purl, PKGPATH, license (SPDX when every name maps), homepage.
    const greeter = byRef.get('pkg:pkgsrc/greeter@1.1')!;
    assert.equal(greeter.purl, 'pkg:pkgsrc/greeter@1.1');
    assert.deepEqual(greeter.licenses, [{ expression: 'MIT' }]);
    assert.deepEqual(greeter.externalReferences, [{ type: 'website', url: 'https://example.org/greeter' }]);
    assert.deepEqual(greeter.properties, [{ name: 'buildimage:pkgpath', value: 'misc/greeter' }]);
    assert.deepEqual(byRef.get('pkg:pkgsrc/libsigc%2B%2B@2.10.8')!.licenses, [{ expression: 'LGPL-2.1-only OR MIT' }]);
    assert.equal(byRef.get('pkg:pkgsrc/bare@2.0nb1')!.licenses, undefined);
    assert.ok(!byRef.has('pkg:pkgsrc/halfgone@1.0'));
    // npm: scoped purl, integrity from the lockfile as a hash, resolved without credentials, paths.
    const dep = byRef.get('pkg:npm/dep@1.2.0')!;
    assert.deepEqual(dep.hashes, [{ alg: 'SHA-512', content: createHash('sha512').update('dep').digest('hex') }]);
    assert.deepEqual(dep.externalReferences, [{ type: 'distribution', url: 'https://registry.npmjs.org/dep/-/dep-1.2.0.tgz' }]);
    assert.deepEqual(dep.properties.map((p: { value: string }) => p.value), ['/opt/smartdc/other/node_modules/dep', '/opt/smartdc/svc/node_modules/dep']);
    const scoped = byRef.get('pkg:npm/%40scope/pkg@2.0.0')!;
    assert.equal(scoped.group, '@scope');
    assert.equal(scoped.name, 'pkg');
    assert.deepEqual(scoped.licenses, [{ license: { name: 'SEE LICENSE IN LICENSE' } }]);
    assert.doesNotMatch(JSON.stringify(cdx) + JSON.stringify(sp), /secret|abc/, 'no credentials from a lockfile');
    assert.deepEqual(byRef.get('pkg:npm/inner@0.1.0')!.licenses, [{ expression: '(MIT OR Apache-2.0)' }]);
    assert.equal(byRef.get('pkg:npm/stale@3.0.0')!.hashes, undefined, 'a stale lock entry gives no integrity');
    assert.equal(byRef.get('pkg:npm/legacy@4.0.0')!.hashes[0].alg, 'SHA-512');
    assert.deepEqual(byRef.get('pkg:npm/sub@1.0.0')!.hashes, [{ alg: 'SHA-1', content: createHash('sha1').update('sub').digest('hex') }]);
    assert.ok(!byRef.has('pkg:npm/broken'), 'not JSON: skipped');
    assert.ok(![...byRef.keys()].some((k) => k.includes('svc@')), 'a project is not its own dependency');
    // node: the version from its headers, never by running it; none without them.
    assert.equal(byRef.get('node:/opt/smartdc/svc/build/node/bin/node')!.version, '18.20.4');
    assert.equal(byRef.get('node:/opt/smartdc/svc/build/node/bin/node')!.purl, 'pkg:generic/node@18.20.4');
    assert.equal(byRef.get('node:/opt/smartdc/agent/node/bin/node')!.version, undefined);
    // The chain: base, then its origin from the machine's known manifests.
    assert.equal(byRef.get(`image:${BASE}`)!.name, 'triton-origin-sample');
    assert.equal(byRef.get(`image:${ORIGIN}`)!.hashes[0].content, createHash('sha1').update(ORIGIN).digest('hex'));
    const deps = new Map((cdx.dependencies as Array<{ ref: string; dependsOn: string[] }>).map((d) => [d.ref, d.dependsOn]));
    assert.ok(deps.get(`image:${UUID}`)!.includes(`image:${BASE}`));
    assert.ok(!deps.get(`image:${UUID}`)!.includes(`image:${ORIGIN}`));
    assert.deepEqual(deps.get(`image:${BASE}`), [`image:${ORIGIN}`]);
    // The image: its digests and identity, the time from published_at, a serial from the uuid.
    const meta = cdx.metadata as Record<string, any>;
    assert.equal(meta.component['bom-ref'], `image:${UUID}`);
    assert.deepEqual(meta.component.hashes.map((h: { alg: string }) => h.alg), ['SHA-1', 'SHA-256']);
    assert.equal(meta.timestamp, '2024-12-20T10:00:00.000Z');
    assert.equal(cdx.serialNumber, `urn:uuid:${nameUuid(`cyclonedx:${UUID}`)}`);
    // The audit: webfetch's two findings against its component; the one for a package not in the image is dropped.
    const vulns = cdx.vulnerabilities as Array<Record<string, any>>;
    assert.deepEqual(vulns.map((v) => [v.id, v.affects[0].ref, v.advisories[0].url]), [
      ['CVE-2019-5436', 'pkg:pkgsrc/webfetch@7.64.0', 'https://nvd.nist.gov/vuln/detail/CVE-2019-5436'],
      [undefined, 'pkg:pkgsrc/webfetch@7.64.0', 'https://security.example.org/webfetch-dos'],
    ]);

    // SPDX: the image described, its packages contained, its origins depended on, advisories on webfetch.
    const pkgs = sp.packages as Array<Record<string, any>>;
    const image = pkgs.find((p) => p.SPDXID === 'SPDXRef-Image')!;
    assert.deepEqual(sp.documentDescribes, ['SPDXRef-Image']);
    assert.equal(image.packageFileName, 'svc-zfs-1.2.3.zfs.gz');
    assert.deepEqual(image.checksums.map((c: { algorithm: string }) => c.algorithm), ['SHA1', 'SHA256']);
    assert.equal((sp.creationInfo as Record<string, string>).created, '2024-12-20T10:00:00Z');
    const webfetch = pkgs.find((p) => p.name === 'webfetch')!;
    assert.deepEqual(webfetch.externalRefs.map((r: { referenceLocator: string }) => r.referenceLocator), [
      'pkg:pkgsrc/webfetch@7.64.0',
      'https://nvd.nist.gov/vuln/detail/CVE-2019-5436',
      'https://security.example.org/webfetch-dos',
    ]);
    assert.equal(pkgs.find((p) => p.name === '@scope/pkg')!.licenseDeclared, 'NOASSERTION');
    assert.equal(pkgs.find((p) => p.name === '@scope/pkg')!.licenseComments, 'package.json license: SEE LICENSE IN LICENSE');
    const rels = (sp.relationships as Array<Record<string, string>>).map((r) => `${r.spdxElementId} ${r.relationshipType} ${r.relatedSpdxElement}`);
    assert.ok(rels.includes(`SPDXRef-Image DEPENDS_ON SPDXRef-Image-${BASE}`));
    assert.ok(rels.includes(`SPDXRef-Image-${BASE} DEPENDS_ON SPDXRef-Image-${ORIGIN}`));
    assert.ok(rels.includes(`SPDXRef-Image CONTAINS ${webfetch.SPDXID}`));
    assert.equal(rels.filter((r) => r.includes(' CONTAINS ')).length, pkgs.length - 3, 'everything but the image and its two origins is contained');
  });

  it('is deterministic: the same root and manifest give the same bytes', async () => {
    const a = await input();
    const b = await input();
    assert.equal(JSON.stringify(cyclonedx(a)), JSON.stringify(cyclonedx(b)));
    assert.equal(JSON.stringify(spdx(a)), JSON.stringify(spdx(b)));
  });

  it('the validators are oracles: they refuse a broken document', async () => {
    const inp = await input();
    const cdx = cyclonedx(inp) as Record<string, any>;
    cdx.components[0].hashes = [{ alg: 'SHA-1', content: 'not hex' }];
    assert.notDeepEqual(await cyclonedxProblems(cdx), []);
    const sp = spdx(inp) as Record<string, any>;
    delete sp.packages[1].downloadLocation;
    assert.notDeepEqual(spdxProblems(sp), []);
  });

  it('origin chain: stops at an unknown manifest (uuid only) and at a loop', async () => {
    const a = manifestOf(BASE, 'a', '1', ORIGIN);
    assert.deepEqual(await originChain(a, async () => undefined), [{ uuid: BASE, name: 'a', version: '1', sha1: a.files![0].sha1 }, { uuid: ORIGIN }]);
    const b = manifestOf(ORIGIN, 'b', '1', BASE);
    assert.deepEqual((await originChain(a, async () => b)).map((o) => o.uuid), [BASE, ORIGIN]);
  });

  it('both SBOMs are outputs of every build: beside the image, published with their media types, in --json and the last line', () => {
    const outputs = outputPaths({ outputDir: '/out', prefix: 'svc-zfs', manifest: { name: 'svc', version: '1.2.3' }, compression: 'gzip', audit: false } as Parameters<typeof outputPaths>[0]);
    assert.equal(outputs.sbomCyclonedx, '/out/svc-zfs-1.2.3.cdx.json');
    assert.equal(outputs.sbomSpdx, '/out/svc-zfs-1.2.3.spdx.json');
    assert.equal(contentTypeFor('svc-zfs-1.2.3.cdx.json'), 'application/vnd.cyclonedx+json');
    assert.equal(contentTypeFor('svc-zfs-1.2.3.spdx.json'), 'application/spdx+json');
    assert.equal(contentTypeFor('svc-zfs-1.2.3.build-info.json'), 'application/json');
    const result = { ok: true as const, buildId: UUID, completed: [], timings: {}, image: { uuid: UUID, outputs } };
    assert.ok(BuildResultSchema.safeParse(result).success, '--json names them');
    assert.match(renderResult(result), /svc-zfs-1\.2\.3\.cdx\.json \/out\/svc-zfs-1\.2\.3\.spdx\.json$/);
  });

  it('purls, licenses and integrity by their specs', () => {
    assert.equal(npmPurl('@Babel/Core', '7.0.0-beta.1'), 'pkg:npm/%40babel/core@7.0.0-beta.1');
    assert.equal(npmPurl('JSONStream', '1.3.5'), 'pkg:npm/jsonstream@1.3.5');
    assert.equal(pkgsrcPurl('libsigc++', '2.10.8'), 'pkg:pkgsrc/libsigc%2B%2B@2.10.8');
    assert.equal(pkgsrcPurl('sudo', '1.9.15p5'), 'pkg:pkgsrc/sudo@1.9.15p5');
    assert.equal(pkgsrcLicenseSpdx('modified-bsd'), 'BSD-3-Clause');
    assert.equal(pkgsrcLicenseSpdx('(gnu-gpl-v2 OR mit) AND zlib'), '(GPL-2.0-only OR MIT) AND Zlib');
    assert.equal(pkgsrcLicenseSpdx('public-domain'), undefined);
    for (const ok of ['MIT', 'Apache-2.0 WITH LLVM-exception', '(MIT OR GPL-2.0+) AND ISC']) assert.ok(isSpdxExpression(ok), ok);
    for (const bad of ['', 'MIT OR', 'SEE LICENSE IN x', 'UNLICENSED', 'LicenseRef-foo', 'MIT and ISC', '(MIT', 'BSD License']) assert.ok(!isSpdxExpression(bad), bad);
    assert.deepEqual(integrityDigests(`sha1-${Buffer.alloc(20).toString('base64')} sha512-short`), [{ alg: 'sha1', hex: '0'.repeat(40) }]);
  });
});
