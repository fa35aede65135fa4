/**
 * Installing on an agent without registry access: `npm pack` makes one
 * tarball, `npm install -g` puts it in a fresh prefix with an empty npm
 * cache, `--offline` and a registry that does not answer; the installed
 * `buildimage` (nothing of this checkout on its module path) then runs the
 * demo build (testbed/demo.ts) on the test world, and eng's Makefile drop-in
 * (templates/eng/Makefile.buildimage) finds that install, passing over an
 * old buildimage earlier on PATH as eng's /opt/tools copy would be.
 */
import assert from 'node:assert/strict';
import { chmod, lstat, mkdir, mkdtemp, readFile, readdir, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { REPO } from '../helpers/cli.js';
import { world, type World } from '../helpers/world.js';
import { DEMO_NAME, demoBuildArgs, writeDemoProto } from '../../testbed/demo.js';

/**
 * npm with no registry (nothing listens on port 9, and --offline forbids
 * trying), an empty cache and empty config files (no .npmrc of this host).
 */
function npmEnv(dir: string): Record<string, string> {
  return {
    ...(process.env as Record<string, string>),
    npm_config_registry: 'http://127.0.0.1:9',
    npm_config_cache: join(dir, 'empty-cache'),
    npm_config_offline: 'true',
    npm_config_userconfig: join(dir, 'user.npmrc'),
    npm_config_globalconfig: join(dir, 'global.npmrc'),
    npm_config_update_notifier: 'false',
    npm_config_audit: 'false',
    npm_config_fund: 'false',
    npm_config_fetch_retries: '0',
    npm_config_loglevel: 'error',
  };
}

describe('npm pack, then npm install -g of that tarball with no registry (offline install)', function () {
  this.timeout(10 * 60 * 1000);
  let w: World;
  let dir: string;
  let prefix: string;
  let installed: string;
  let pkg: { name: string; version: string };

  before(async () => {
    w = await world();
    dir = await mkdtemp(join(tmpdir(), 'bi-offline-'));
    prefix = join(dir, 'prefix');
    await mkdir(join(dir, 'empty-cache'));
    await writeFile(join(dir, 'user.npmrc'), '');
    await writeFile(join(dir, 'global.npmrc'), '');
    pkg = JSON.parse(await readFile(join(REPO, 'package.json'), 'utf8')) as typeof pkg;
  });
  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('installs from the one tarball into a fresh prefix with an empty cache, offline, compiling nothing', async () => {
    const cache = join(dir, 'empty-cache');
    assert.deepEqual(await readdir(cache), []);
    // dist/ is built (npm test builds first): no prepack rebuild under the tests' feet.
    const packed = await execa('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], { cwd: REPO, env: npmEnv(dir) });
    const [info] = JSON.parse(String(packed.stdout)) as Array<{ filename: string; bundled: string[] }>;
    assert.equal(info.filename, `${pkg.name}-${pkg.version}.tgz`);
    assert.ok(info.bundled.length > 0, 'dependencies are bundled');
    const tarball = join(dir, info.filename);
    const r = await execa('npm', ['install', '-g', '--prefix', prefix, '--offline', '--cache', cache, tarball], {
      cwd: dir,
      env: npmEnv(dir),
      reject: false,
    });
    assert.equal(r.exitCode, 0, `npm install -g: ${String(r.stderr)}`);
    assert.doesNotMatch(String(r.stderr), /gyp|node-pre-gyp|prebuild/i, 'nothing compiled or fetched at install');

    // npm's layout: PREFIX/bin/buildimage -> ../lib/node_modules/buildimage/bin/buildimage.
    installed = join(prefix, 'bin', 'buildimage');
    assert.ok((await lstat(installed)).isSymbolicLink());
    assert.equal(await readlink(installed), '../lib/node_modules/buildimage/bin/buildimage');
    const pkgDir = join(prefix, 'lib', 'node_modules', 'buildimage');
    const top = (await readdir(pkgDir)).sort();
    for (const never of ['test', 'testbed', 'scripts', 'build', 'src', 'commands']) assert.ok(!top.includes(never), `${never}/ is not installed`);
    assert.deepEqual((await readdir(join(pkgDir, 'dist'))).sort(), ['commands', 'src']);
    for (const d of ['@oclif/core', 'execa', 'got', 'winston', 'zod']) await lstat(join(pkgDir, 'node_modules', d, 'package.json'));
  });

  it('the installed buildimage runs the demo build on the test world, from outside this checkout', async () => {
    assert.ok(installed, 'installed by the previous test');
    const work = join(dir, 'work');
    const proto = join(work, 'proto');
    await writeDemoProto(proto);
    const outDir = await w.outDir();
    const version = '1.0.0-offline';
    const args = demoBuildArgs({ origin: w.origin.uuid, proto, source: w.sampleDir, datasetRoot: w.datasetRoot, outDir, version });
    // cwd and module path away from the checkout: only the install's own node_modules can serve its imports.
    const env: Record<string, string> = { ...w.env, PATH: process.env.PATH ?? '/usr/bin:/bin', BUILDIMAGE_LOG_LEVEL: 'info' };
    const r = await execa(installed, args, { cwd: work, env, extendEnv: false, reject: false, stdin: 'ignore' });
    assert.equal(r.exitCode, 0, String(r.stderr));
    const stem = join(outDir, `${DEMO_NAME}-zfs-${version}`);
    for (const ext of ['zfs.gz', 'imgmanifest', 'pkgaudit', 'packages.json', 'build-info.json']) await lstat(`${stem}.${ext}`);
    const info = JSON.parse(await readFile(`${stem}.build-info.json`, 'utf8')) as { tool: { name: string; version: string; node: string } };
    assert.deepEqual(info.tool, { name: 'buildimage', version: pkg.version, node: process.version });
    const manifest = JSON.parse(await readFile(`${stem}.imgmanifest`, 'utf8')) as { name: string; version: string; origin: string };
    assert.deepEqual([manifest.name, manifest.version, manifest.origin], [DEMO_NAME, version, w.origin.uuid]);
  });

  it('eng\'s Makefile drop-in finds that install (npm\'s global prefix), not an old buildimage earlier on PATH', async () => {
    assert.ok(installed, 'installed by the previous test');
    // eng's old tool as /opt/tools has it: an npm global install of a package named buildimage, with no oclif.manifest.json.
    const old = join(dir, 'old-tools');
    await mkdir(join(old, 'lib/node_modules/buildimage/bin'), { recursive: true });
    await mkdir(join(old, 'bin'));
    await writeFile(join(old, 'lib/node_modules/buildimage/package.json'), JSON.stringify({ name: 'buildimage', version: '0.0.2' }));
    await writeFile(join(old, 'lib/node_modules/buildimage/bin/buildimage'), '#!/bin/sh\necho old buildimage\n');
    await chmod(join(old, 'lib/node_modules/buildimage/bin/buildimage'), 0o755);
    await symlink('../lib/node_modules/buildimage/bin/buildimage', join(old, 'bin/buildimage'));
    // A component's Makefile as eng has it: the stamp variable from Makefile.defs, then the drop-in.
    const component = join(dir, 'component');
    await mkdir(component);
    await writeFile(
      join(component, 'Makefile'),
      `STAMP_BUILDIMAGE_PREP := make_stamps/buildimage-prep\ninclude ${join(REPO, 'templates/eng/Makefile.buildimage')}\n`,
    );
    const env = { ...npmEnv(dir), PATH: `${join(old, 'bin')}:${process.env.PATH ?? '/usr/bin:/bin'}`, npm_config_prefix: prefix };
    const r = await execa('make', ['make_stamps/buildimage-prep'], { cwd: component, env, reject: false });
    assert.equal(r.exitCode, 0, String(r.stderr));
    assert.equal((await readFile(join(component, 'make_stamps/buildimage-prep'), 'utf8')).trim(), installed);

    // Nothing of this tool anywhere it looks: one line saying where it looked and how to install.
    await rm(join(component, 'make_stamps'), { recursive: true });
    const none = await execa('make', ['make_stamps/buildimage-prep', `BUILDIMAGE_SEARCH=${join(old, 'bin/buildimage')}`], { cwd: component, env, reject: false });
    assert.notEqual(none.exitCode, 0);
    assert.match(String(none.stderr), /buildimage not found \(PATH, \/opt\/tools, npm's global prefix.*npm install -g/);
  });
});
