/**
 * Hostile image contents read for the SBOM (issue 15, item 1), through the
 * real CLI as root: a proto whose node_modules holds package.json files,
 * a lockfile and node headers that are links to the host's files (the
 * bait's secret, parseable stand-ins), a node_modules that is a link to a
 * host directory, a package.json past the size bound, nesting past the
 * depth bound, a file that is not JSON. The build succeeds; the SBOMs are
 * valid and list only what the image holds; nothing of the host is read
 * into them or into the log; each skip is a warning naming its path.
 */
import assert from 'node:assert/strict';
import { mkdir, readFile, readdir, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { cli } from '../helpers/cli.js';
import { layBait, type Bait } from '../helpers/hostile.js';
import { assertNoLeaks } from '../helpers/leaks.js';
import { assertValidSboms } from '../helpers/sbom.js';
import { world, type World } from '../helpers/world.js';

async function put(root: string, rel: string, content: string): Promise<void> {
  await mkdir(dirname(join(root, rel)), { recursive: true });
  await writeFile(join(root, rel), content);
}

describe('hostile: image contents read for the SBOM', function () {
  this.timeout(10 * 60 * 1000);
  let w: World;
  let bait: Bait;
  before(async () => {
    w = await world();
    bait = await layBait('bait-sbom');
  });
  after(async () => {
    await bait?.remove();
  });

  it('links to the host, a package.json past its bound, deep nesting, not-JSON: skipped with a warning each, nothing of the host read', async () => {
    // "The host" beside the bait: files that would parse, so following a link would show in the SBOM.
    const host = join(w.dir, 'sbom-host');
    await put(host, 'package.json', JSON.stringify({ name: 'host-secret', version: '6.6.6' }));
    await put(host, 'node_modules/hostdep/package.json', JSON.stringify({ name: 'hostdep', version: '1.0.0' }));
    await put(host, 'node_version.h', '#define NODE_MAJOR_VERSION 99\n#define NODE_MINOR_VERSION 99\n#define NODE_PATCH_VERSION 99\n');

    const proto = join(w.dir, 'proto-sbom-hostile');
    const svc = 'opt/smartdc/svc';
    const nm = `${svc}/node_modules`;
    await put(proto, `${nm}/ok/package.json`, JSON.stringify({ name: 'ok', version: '1.0.0', license: 'MIT' }));
    await mkdir(join(proto, `${nm}/to-host`), { recursive: true });
    await symlink(join(host, 'package.json'), join(proto, `${nm}/to-host/package.json`));
    await mkdir(join(proto, `${nm}/to-secret`), { recursive: true });
    await symlink('../'.repeat(30) + bait.secret.slice(1), join(proto, `${nm}/to-secret/package.json`));
    await symlink(join(host, 'node_modules'), join(proto, `${nm}/linked-dir`));
    await symlink(bait.secret, join(proto, `${svc}/package-lock.json`));
    await put(proto, `${nm}/big/package.json`, JSON.stringify({ name: 'toobig', version: '1.0.0', pad: 'x'.repeat(2 * 1024 * 1024) }));
    await put(proto, `${nm}/broken/package.json`, '{"name": "broken", "version": ');
    await put(proto, `${nm}/${'d/'.repeat(140)}node_modules/deep/package.json`, JSON.stringify({ name: 'deep', version: '1.0.0' }));
    await put(proto, `${svc}/build/node/bin/node`, '\x7fELF never run\n');
    await mkdir(join(proto, `${svc}/build/node/include/node`), { recursive: true });
    await symlink(join(host, 'node_version.h'), join(proto, `${svc}/build/node/include/node/node_version.h`));

    const out = await w.outDir();
    const r = await cli(['-i', w.base.uuid, '-d', proto, '-m', JSON.stringify({ name: 'sbom-hostile', version: '1.0.0' }), '--output-dir', out], { env: w.env });
    assert.equal(r.code, 0, r.stderr);
    const stem = join(out, 'sbom-hostile-zfs-1.0.0');
    const cdxText = await readFile(`${stem}.cdx.json`, 'utf8');
    const spdxText = await readFile(`${stem}.spdx.json`, 'utf8');
    const cdx = JSON.parse(cdxText);
    await assertValidSboms(cdx, JSON.parse(spdxText));

    const npm = cdx.components.filter((c: { purl?: string }) => c.purl?.startsWith('pkg:npm/')).map((c: { purl: string }) => c.purl);
    assert.deepEqual(npm, ['pkg:npm/ok@1.0.0'], 'only the package the image really holds within the bounds');
    const node = cdx.components.find((c: { name: string }) => c.name === 'node');
    assert.equal(node.version, undefined, 'the linked header is not read: no version');
    for (const s of ['host-secret', 'hostdep', '99.99.99', 'toobig', bait.secretText.trim()]) {
      assert.ok(!cdxText.includes(s) && !spdxText.includes(s), `${s} is not in the SBOMs`);
    }
    assert.ok(!r.stderr.includes(bait.secretText.trim()) && !r.stdout.includes(bait.secretText.trim()), 'nor in the output');
    for (const f of await readdir(out)) assert.ok(!(await readFile(join(out, f))).includes(bait.secretText.trim()), `${f} holds no secret`);
    const warns = r.stderr.split('\n').filter((l) => /WARN: SBOM:/.test(l));
    for (const want of [/to-host\/package.json" is a symlink/, /to-secret\/package.json" is a symlink/, /package-lock.json" is a symlink/, /big\/package.json" is larger than 1048576 bytes/, /broken\/package.json" is not JSON/, /levels deep: not looked into/, /node_version.h" is a symlink/]) {
      assert.ok(warns.some((l) => want.test(l)), `a warning matching ${want}:\n${warns.join('\n')}`);
    }
    assert.deepEqual(cdx.metadata.properties, [{ name: 'buildimage:incomplete', value: 'directories deeper than 128 levels' }], 'the SBOM says what it left out');

    await bait.assertUntouched();
    await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir: w.workDir, outputDir: out, images: [w.base.uuid, w.origin.uuid] });
  });
});
