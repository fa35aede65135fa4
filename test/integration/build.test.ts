/**
 * End to end on real ZFS: the whole build on the two-level sample chain,
 * the image received on a pool that holds only its origin chain, and
 * discrete stages through a state file.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { lstat, mkdir, readFile, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cli, errorLines } from '../helpers/cli.js';
import { findAll, parseXml } from '../helpers/xml.js';
import { assertValidSboms } from '../helpers/sbom.js';
import { assertNoLeaks } from '../helpers/leaks.js';
import { verifyPoolWithChain, world, type World } from '../helpers/world.js';

const imgmanifest = createRequire(import.meta.url)('imgmanifest');

async function makeProto(dir: string): Promise<void> {
  await mkdir(join(dir, 'opt/smartdc/svc/node_modules/dep'), { recursive: true });
  await mkdir(join(dir, 'opt/smartdc/svc/empty'), { recursive: true });
  await writeFile(join(dir, 'opt/smartdc/svc/server.js'), 'require("http").createServer().listen(80)\n');
  await writeFile(join(dir, 'opt/smartdc/svc/node_modules/dep/index.js'), 'module.exports = 1\n');
  await writeFile(join(dir, 'opt/smartdc/svc/node_modules/dep/package.json'), JSON.stringify({ name: 'dep', version: '1.0.0', license: 'MIT' }));
  await writeFile(join(dir, 'opt/smartdc/svc/package-lock.json'), JSON.stringify({ lockfileVersion: 3, packages: { 'node_modules/dep': { version: '1.0.0', integrity: DEP_INTEGRITY } } }));
  await writeFile(join(dir, 'opt/smartdc/svc/bin.sh'), '#!/bin/sh\nexec node server.js\n', { mode: 0o755 });
  await symlink('server.js', join(dir, 'opt/smartdc/svc/main.js'));
  await mkdir(join(dir, 'opt/smartdc/boot'), { recursive: true });
  await writeFile(join(dir, 'opt/smartdc/boot/setup.sh'), '#!/bin/bash\n', { mode: 0o700 });
}

const DEP_INTEGRITY = `sha512-${createHash('sha512').update('dep').digest('base64')}`;

async function sha1(path: string): Promise<string> {
  return createHash('sha1').update(await readFile(path)).digest('hex');
}

async function sha256(path: string): Promise<string> {
  return createHash('sha256').update(await readFile(path)).digest('hex');
}

describe('build on real ZFS', function () {
  this.timeout(10 * 60 * 1000);
  let w: World;
  before(async () => {
    w = await world();
  });

  it('builds on the 2-level chain; the image receives onto its origin chain and holds base + proto + packages', async () => {
    const proto = join(w.dir, 'proto-full');
    await makeProto(proto);
    const out = await w.outDir();
    const r = await cli(
      [
        '-i', w.origin.uuid, '-d', proto,
        '-m', JSON.stringify({ name: 'svc', version: '1.2.3', description: 'a service', tags: { smartdc_service: true } }),
        '-p', 'greeter,webfetch-7.64.0,daemonkit', '-P', 'svc-zfs', '-M', '-S', 'https://github.com/TritonDataCenter/sdc-svc', '-a', '-u',
        '--output-dir', out,
      ],
      { env: w.env },
    );
    assert.equal(r.code, 0, r.stderr);
    const last = r.stdout.trim().split('\n').pop()!;
    const stem = join(out, 'svc-zfs-1.2.3');
    assert.match(last, /^built image [0-9a-f-]{36}: /);
    for (const suffix of ['.zfs.gz', '.imgmanifest', '.pkgaudit', '.audit.junit.xml', '.packages.json', '.build-info.json', '.provenance.dsse.json', '.contents.json.gz', '.cdx.json', '.spdx.json']) {
      assert.ok(last.includes(stem + suffix), `last line names ${suffix}: ${last}`);
      assert.ok((await stat(stem + suffix)).isFile());
    }
    assert.deepEqual((await readdir(out)).sort(), [
      'svc-zfs-1.2.3.audit.junit.xml',
      'svc-zfs-1.2.3.build-info.json',
      'svc-zfs-1.2.3.cdx.json',
      'svc-zfs-1.2.3.contents.json.gz',
      'svc-zfs-1.2.3.imgmanifest',
      'svc-zfs-1.2.3.packages.json',
      'svc-zfs-1.2.3.pkgaudit',
      'svc-zfs-1.2.3.provenance.dsse.json',
      'svc-zfs-1.2.3.spdx.json',
      'svc-zfs-1.2.3.zfs.gz',
    ]);

    const manifest = JSON.parse(await readFile(`${stem}.imgmanifest`, 'utf8'));
    assert.equal(manifest.v, 2);
    assert.equal(manifest.origin, w.origin.uuid);
    assert.equal(manifest.name, 'svc');
    assert.equal(manifest.type, 'zone-dataset');
    assert.equal(manifest.os, 'smartos');
    assert.deepEqual(manifest.tags, { smartdc_service: true });
    assert.deepEqual(manifest.requirements.min_platform, { '7.0': '20210826T002459Z' });
    assert.equal(manifest.files[0].sha1, await sha1(`${stem}.zfs.gz`));
    assert.equal(manifest.files[0].size, (await stat(`${stem}.zfs.gz`)).size);
    assert.equal(manifest.files[0].compression, 'gzip');
    // validateMinimalManifest returns its errors (null when none); it does not throw.
    assert.deepEqual(imgmanifest.validateMinimalManifest(manifest), null, 'imgmanifest accepts the manifest a real build wrote');

    const audit = await readFile(`${stem}.pkgaudit`, 'utf8');
    assert.match(audit, /^Package webfetch-7\.64\.0 has a remote-code-execution vulnerability, see https:\/\/\S+$/m);
    // The same findings as JUnit for Jenkins' test view: one failing case per vulnerable package.
    const junit = parseXml(await readFile(`${stem}.audit.junit.xml`, 'utf8'));
    const cases = findAll(junit, 'testcase');
    const vulnerable = [...new Set(audit.split('\n').filter(Boolean).map((l) => l.split(' ')[1]))];
    assert.deepEqual(cases.map((c) => c.attrs.name), vulnerable);
    const webfetch = cases.find((c) => c.attrs.name === 'webfetch-7.64.0')!;
    assert.match(findAll(webfetch, 'failure')[0].text, /remote-code-execution vulnerability, see https:\/\//);
    assert.equal(findAll(junit, 'testsuite')[0].attrs.failures, String(vulnerable.length));
    const pkgs = JSON.parse(await readFile(`${stem}.packages.json`, 'utf8')).packages.map((p: { name: string }) => p.name);
    // -u upgraded gsed 4.8 (from the origin) to 4.9; -p added the rest with dependencies.
    for (const p of ['greeter-1.1', 'libgreet-1.0', 'webfetch-7.64.0', 'daemonkit-2.3', 'gsed-4.9', 'sudo-1.9.15p5']) assert.ok(pkgs.includes(p), `${p} in ${pkgs}`);
    assert.ok(!pkgs.includes('gsed-4.8'));

    // Issue 15, item 1: the SBOMs beside the image pass both official validators and say what is in it.
    const cdx = JSON.parse(await readFile(`${stem}.cdx.json`, 'utf8'));
    const spdx = JSON.parse(await readFile(`${stem}.spdx.json`, 'utf8'));
    await assertValidSboms(cdx, spdx);
    const byRef = new Map<string, Record<string, any>>(cdx.components.map((c: Record<string, any>) => [c['bom-ref'], c]));
    const purls = cdx.components.map((c: { purl?: string }) => c.purl).filter(Boolean);
    for (const p of ['greeter@1.1', 'libgreet@1.0', 'webfetch@7.64.0', 'daemonkit@2.3', 'gsed@4.9', 'sudo@1.9.15p5']) assert.ok(purls.includes(`pkg:pkgsrc/${p}`), `pkg:pkgsrc/${p} in ${purls}`);
    assert.ok(!purls.includes('pkg:pkgsrc/gsed@4.8') && !purls.includes('pkg:pkgsrc/greeter@1.0'), 'what the build replaced is not listed');
    assert.deepEqual(byRef.get('pkg:pkgsrc/greeter@1.1')!.externalReferences, [{ type: 'website', url: 'https://example.org/greeter' }]);
    assert.deepEqual(byRef.get('pkg:npm/dep@1.0.0')!.hashes, [{ alg: 'SHA-512', content: createHash('sha512').update('dep').digest('hex') }]);
    assert.deepEqual(byRef.get('pkg:npm/dep@1.0.0')!.licenses, [{ expression: 'MIT' }]);
    // The origin chain: the origin (triton-origin) on its base, both with their sha1.
    assert.equal(byRef.get(`image:${w.origin.uuid}`)!.name, w.origin.name);
    assert.deepEqual(byRef.get(`image:${w.origin.uuid}`)!.hashes, [{ alg: 'SHA-1', content: w.origin.files![0].sha1 }]);
    assert.deepEqual(byRef.get(`image:${w.base.uuid}`)!.hashes, [{ alg: 'SHA-1', content: w.base.files![0].sha1 }]);
    const deps = new Map(cdx.dependencies.map((d: { ref: string; dependsOn: string[] }) => [d.ref, d.dependsOn]));
    assert.ok((deps.get(`image:${manifest.uuid}`) as string[]).includes(`image:${w.origin.uuid}`));
    assert.deepEqual(deps.get(`image:${w.origin.uuid}`), [`image:${w.base.uuid}`]);
    // The image itself, with its file's digests; the time is published_at.
    assert.deepEqual(cdx.metadata.component.hashes, [{ alg: 'SHA-1', content: manifest.files[0].sha1 }, { alg: 'SHA-256', content: await sha256(`${stem}.zfs.gz`) }]);
    assert.equal(cdx.metadata.timestamp, manifest.published_at);
    // The audit's finding for webfetch, as a vulnerability of that component.
    const vuln = cdx.vulnerabilities.find((v: { affects: Array<{ ref: string }> }) => v.affects[0].ref === 'pkg:pkgsrc/webfetch@7.64.0');
    assert.match(vuln.description, /^Package webfetch-7\.64\.0 has a remote-code-execution vulnerability/);
    assert.equal(vuln.advisories[0].url, 'https://security.example.org/advisories/webfetch-2019-5436');
    const image = spdx.packages.find((p: { SPDXID: string }) => p.SPDXID === 'SPDXRef-Image');
    assert.equal(image.packageFileName, 'svc-zfs-1.2.3.zfs.gz');
    assert.deepEqual(image.checksums, [{ algorithm: 'SHA1', checksumValue: manifest.files[0].sha1 }, { algorithm: 'SHA256', checksumValue: await sha256(`${stem}.zfs.gz`) }]);
    const greeter = spdx.packages.find((p: { name: string }) => p.name === 'greeter');
    assert.deepEqual(greeter.externalRefs[0], { referenceCategory: 'PACKAGE-MANAGER', referenceType: 'purl', referenceLocator: 'pkg:pkgsrc/greeter@1.1' });
    assert.ok(spdx.relationships.some((r: Record<string, string>) => r.spdxElementId === `SPDXRef-Image-${w.origin.uuid}` && r.relationshipType === 'DEPENDS_ON' && r.relatedSpdxElement === `SPDXRef-Image-${w.base.uuid}`));
    await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir: w.workDir, outputDir: out, images: [w.base.uuid, w.origin.uuid] });

    const mnt = join(w.dir, 'rx-mnt');
    const rx = await verifyPoolWithChain(w);
    await rx.receive(`${stem}.zfs.gz`, manifest.uuid, mnt);
    try {
      const root = join(mnt, 'root');
      assert.equal(await readFile(join(root, 'opt/smartdc/svc/server.js'), 'utf8'), 'require("http").createServer().listen(80)\n');
      assert.equal((await stat(join(root, 'opt/smartdc/boot/setup.sh'))).mode & 0o777, 0o700);
      assert.ok((await lstat(join(root, 'opt/smartdc/svc/main.js'))).isSymbolicLink());
      assert.ok((await stat(join(root, 'opt/smartdc/svc/empty'))).isDirectory());
      assert.ok((await lstat(join(root, 'bin'))).isSymbolicLink(), 'base layout kept');
      assert.match(await readFile(join(root, 'etc/product'), 'utf8'), /triton-origin/, 'origin layer kept');
      assert.ok((await stat(join(root, 'opt/local/pkg/webfetch-7.64.0/+CONTENTS'))).isFile(), 'package in pkgdb');
      assert.equal(
        await readFile(join(root, 'etc/motd'), 'utf8'),
        ' =  T R I T O N  =\n\n    svc (1.2.3)\n    https://github.com/TritonDataCenter/sdc-svc\n    triton-origin-sample@24.4.1\n\n',
      );
      await assert.rejects(lstat(join(mnt, 'config')), 'config/ removed');
      await assert.rejects(lstat(join(root, 'var/db/pkgin')), '/var/db/pkgin removed');
      await assert.rejects(lstat(join(root, 'lib64')), 'no mountpoint dirs gained');
      for (const d of ['dev', 'lib', 'proc', 'sbin', 'usr']) assert.deepEqual(await readdir(join(root, d)), [], `${d} is an empty mountpoint`);
    } finally {
      await rx.destroy();
      await rm(mnt, { recursive: true, force: true });
    }
  });

  it('runs as discrete stages through a state file, refusing stages out of order', async () => {
    const proto = join(w.dir, 'proto-stages');
    await makeProto(proto);
    const out = await w.outDir();
    const state = join(w.dir, 'stages', 'state.json');
    const common = { env: w.env };
    const mf = JSON.stringify({ name: 'staged', version: '2.0.0' });

    let r = await cli(['seal', '--state', state], common);
    assert.equal(r.code, 2);
    r = await cli(['prepare', '-i', w.origin.uuid, '-d', proto, '-m', mf, '-p', 'libsigc++', '--output-dir', out, '--state', state, '--json'], common);
    assert.equal(r.code, 0, r.stderr);
    const prepared = JSON.parse(r.stdout);
    assert.deepEqual(prepared.completed, ['prepare']);
    assert.ok(await w.zfs.exists(prepared.analog.dataset), 'analog exists between stages');

    r = await cli(['seal', '--state', state], common);
    assert.equal(r.code, 2);
    assert.match(errorLines(r)[0], /cannot run seal: assemble, pkgadd has not run yet/);

    for (const stage of ['assemble', 'pkgadd']) {
      r = await cli([stage, '--state', state], common);
      assert.equal(r.code, 0, r.stderr);
    }
    r = await cli(['assemble', '--state', state], common);
    assert.equal(r.code, 2);
    assert.match(errorLines(r)[0], /stage assemble already ran/);
    r = await cli(['seal', '--state', state, '--json'], common);
    assert.equal(r.code, 0, r.stderr);
    const sealed = JSON.parse(r.stdout);
    assert.deepEqual(sealed.completed, ['prepare', 'assemble', 'pkgadd', 'seal']);
    assert.equal(sealed.image.outputs.image, join(out, 'staged-zfs-2.0.0.zfs.gz'));
    assert.ok((await stat(sealed.image.outputs.manifest)).isFile());
    assert.equal(sealed.image.outputs.sbomCyclonedx, join(out, 'staged-zfs-2.0.0.cdx.json'));
    assert.equal(sealed.image.outputs.sbomSpdx, join(out, 'staged-zfs-2.0.0.spdx.json'));
    assert.ok((await stat(sealed.image.outputs.sbomSpdx)).isFile());
    assert.equal(await w.zfs.exists(prepared.analog.dataset), false);
    const saved = JSON.parse(await readFile(state, 'utf8'));
    assert.deepEqual(saved.outputs, sealed.image.outputs);
    await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir: w.workDir, outputDir: out, images: [w.base.uuid, w.origin.uuid] });
  });

  // Issue 14, item 5: as the generated Jenkinsfile runs them, with BUILDIMAGE_STATE set and the repo's buildimage.json.
  it('runs as discrete stages named by themselves: BUILDIMAGE_STATE for --state, ./buildimage.json for --config', async () => {
    const repo = join(w.dir, 'repo-stages-env');
    await makeProto(join(repo, 'proto'));
    await writeFile(join(repo, 'buildimage.json'), JSON.stringify({ image: w.origin.uuid, dir: 'proto', manifest: { name: 'bare' }, packages: ['libsigc++'] }));
    const out = await w.outDir();
    const state = join(w.dir, 'stages-env', 'state.json');
    const o = { cwd: repo, env: { ...w.env, BUILDIMAGE_STATE: state } };
    let r = await cli(['prepare', '--image-version', '3.0.0', '--output-dir', out], o);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /build definition: buildimage.json \(no --config given; it is the default here\)/);
    const prepared = JSON.parse(await readFile(state, 'utf8'));
    assert.deepEqual(prepared.completed, ['prepare']);
    assert.equal(prepared.definition.protoDir, join(repo, 'proto'));
    for (const stage of ['assemble', 'pkgadd', 'seal']) {
      r = await cli([stage], o);
      assert.equal(r.code, 0, `${stage}: ${r.stderr}`);
    }
    assert.match(r.stdout.trim().split('\n').at(-1)!, new RegExp(`${join(out, 'bare-zfs-3.0.0.zfs.gz')}`));
    const sealed = JSON.parse(await readFile(state, 'utf8'));
    assert.deepEqual(sealed.completed, ['prepare', 'assemble', 'pkgadd', 'seal']);
    assert.ok((await stat(join(out, 'bare-zfs-3.0.0.imgmanifest'))).isFile());
    r = await cli(['clean', '--missing-ok'], o);
    assert.equal(r.code, 0, r.stderr);
    await assert.rejects(lstat(join(repo, '.buildimage')), 'no state file in the repo: the variable named it');
    await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir: w.workDir, outputDir: out, images: [w.base.uuid, w.origin.uuid] });
  });
});
