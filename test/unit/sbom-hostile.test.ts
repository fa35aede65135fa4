/**
 * The image root read for the SBOM is hostile: links aimed at the host
 * (package.json, lockfiles, headers, +BUILD_INFO, the pkgdb and node_modules
 * themselves), files too large to read, FIFOs, nesting past any sane
 * depth, more packages or entries than a bound. Nothing outside the root is
 * read, nothing is read past its bound, and each is one warning, not a
 * failed build.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, symlink, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { LIMITS, takeInventory } from '../../src/sbom/inventory.js';
import { layBait, type Bait } from '../helpers/hostile.js';
import { captureLogs } from '../helpers/logs.js';

async function put(root: string, rel: string, content: string): Promise<void> {
  await mkdir(dirname(join(root, rel)), { recursive: true });
  await writeFile(join(root, rel), content);
}

describe('SBOM inventory of a hostile image root', function () {
  this.timeout(120_000);
  let dir: string;
  let bait: Bait;
  let host: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sbom-hostile-'));
    bait = await layBait('bait-sbom');
    // "The host" also holds files that would parse, so that following a link would show in the inventory.
    host = join(dir, 'host');
    await put(host, 'package.json', JSON.stringify({ name: 'host-secret', version: '6.6.6' }));
    await put(host, 'pkg/hostpkg-1.0/+CONTENTS', '@name hostpkg-1.0\n');
    await put(host, 'node_modules/hostdep/package.json', JSON.stringify({ name: 'hostdep', version: '1.0.0' }));
  });
  afterEach(async () => {
    await bait.assertUntouched();
    await bait.remove();
    await rm(dir, { recursive: true, force: true });
  });

  it('follows no link out of the root: package.json, lockfile, header, +BUILD_INFO, the pkgdb and node_modules aimed at the host', async () => {
    const root = join(dir, 'root');
    const svc = 'opt/smartdc/svc';
    await mkdir(join(root, `${svc}/node_modules/a`), { recursive: true });
    await symlink(join(host, 'package.json'), join(root, `${svc}/node_modules/a/package.json`));
    await mkdir(join(root, `${svc}/node_modules/b`), { recursive: true });
    await symlink('../'.repeat(20) + bait.secret.slice(1), join(root, `${svc}/node_modules/b/package.json`));
    await put(root, `${svc}/node_modules/c/package.json`, JSON.stringify({ name: 'c', version: '1.0.0' }));
    await symlink(bait.secret, join(root, `${svc}/package-lock.json`));
    await symlink(join(host, 'node_modules'), join(root, 'opt/smartdc/svc/node_modules/linked'));
    await mkdir(join(root, 'opt/smartdc/other'), { recursive: true });
    await symlink(join(host, 'node_modules'), join(root, 'opt/smartdc/other/node_modules'));
    await put(root, `${svc}/build/node/bin/node`, 'x');
    await mkdir(join(root, `${svc}/build/node/include/node`), { recursive: true });
    await symlink(bait.secret, join(root, `${svc}/build/node/include/node/node_version.h`));
    await mkdir(join(root, 'opt/local'), { recursive: true });
    await symlink(join(host, 'pkg'), join(root, 'opt/local/pkg'));

    const logs = captureLogs();
    const inv = await takeInventory(root).finally(() => logs.stop());
    const text = JSON.stringify(inv);
    assert.deepEqual(inv.npm.map((p) => p.name), ['c']);
    assert.deepEqual(inv.pkgsrc, []);
    assert.deepEqual(inv.node, [{ path: `/${svc}/build/node/bin/node` }]);
    for (const s of ['host-secret', 'hostdep', 'hostpkg', bait.secretText.trim()]) assert.ok(!text.includes(s), `${s} not read`);
    const out = logs.lines.join('');
    assert.ok(!out.includes(bait.secretText.trim()), 'no secret in the log');
    assert.match(out, /node_modules\/a\/package.json" is a symlink: that npm package is not listed/);
    assert.match(out, /not reading the pkgdb \/opt\/local\/pkg: "\/opt\/local\/pkg" is a symlink/);
    assert.deepEqual(inv.incomplete, ['pkgdb /opt/local/pkg not read']);
  });

  it('reads no file past its bound, never opens a FIFO, and stops at the depth bound', async () => {
    const root = join(dir, 'root');
    const nm = 'opt/smartdc/svc/node_modules';
    // A 1 GiB package.json (sparse: nothing is written, and nothing must be read).
    await put(root, `${nm}/huge/package.json`, '');
    await truncate(join(root, `${nm}/huge/package.json`), 1024 ** 3);
    await put(root, 'opt/smartdc/svc/package-lock.json', '');
    await truncate(join(root, 'opt/smartdc/svc/package-lock.json'), LIMITS.maxLockfileBytes + 1);
    await put(root, `opt/local/pkg/big-1.0/+CONTENTS`, '@name big-1.0\n');
    await put(root, `opt/local/pkg/big-1.0/+BUILD_INFO`, '');
    await truncate(join(root, 'opt/local/pkg/big-1.0/+BUILD_INFO'), 1024 ** 3);
    await mkdir(join(root, `${nm}/fifo`), { recursive: true });
    execFileSync('mkfifo', [join(root, `${nm}/fifo/package.json`)]);
    await put(root, `${nm}/ok/package.json`, JSON.stringify({ name: 'ok', version: '1.0.0' }));
    // Nesting past the depth bound, a package at the bottom.
    const deep = `${nm}/${'d/'.repeat(LIMITS.maxDepth + 10)}node_modules/deep`;
    await put(root, `${deep}/package.json`, JSON.stringify({ name: 'deep', version: '1.0.0' }));

    const rss = process.memoryUsage().rss;
    const logs = captureLogs();
    const inv = await takeInventory(root).finally(() => logs.stop());
    assert.ok(process.memoryUsage().rss - rss < 256 * 1024 ** 2, 'nothing near a GiB was read');
    assert.deepEqual(inv.npm.map((p) => p.name), ['ok']);
    assert.deepEqual(inv.pkgsrc, [{ name: 'big', version: '1.0' }], 'listed without what its +BUILD_INFO would say');
    const out = logs.lines.join('');
    assert.match(out, /huge\/package.json" is larger than 1048576 bytes/);
    assert.match(out, /fifo\/package.json" is not a regular file/);
    assert.match(out, /package-lock.json" is larger than/);
    assert.match(out, /more than 128 levels deep: not looked into/);
    assert.deepEqual(inv.incomplete, ['directories deeper than 128 levels']);
  });

  it('bounds packages, entries and warnings: the rest is said to be missing, once', async () => {
    const root = join(dir, 'root');
    const nm = 'opt/smartdc/svc/node_modules';
    for (let i = 0; i < 60; i++) await put(root, `${nm}/p${i}/package.json`, JSON.stringify({ name: `p${i}`, version: '1.0.0' }));
    for (let i = 0; i < 30; i++) await put(root, `${nm}/bad${i}/package.json`, '{');
    const limits = { ...LIMITS, maxNpmPackages: 50, maxWarnings: 5 };
    let logs = captureLogs();
    let inv = await takeInventory(root, limits).finally(() => logs.stop());
    assert.ok(inv.npm.length <= 50);
    assert.deepEqual(inv.incomplete, ['more than 50 npm packages']);
    const warns = logs.lines.filter((l) => /warn/i.test(l));
    assert.equal(warns.length, 6, `5 warnings and one line counting the rest:\n${warns.join('')}`);
    assert.match(warns[5], /more warnings like these not shown/);

    logs = captureLogs();
    inv = await takeInventory(root, { ...LIMITS, maxEntries: 40 }).finally(() => logs.stop());
    assert.deepEqual(inv.incomplete, ['more than 40 entries in the image root']);
  });
});
