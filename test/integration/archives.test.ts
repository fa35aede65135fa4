/**
 * The proto as eng makes it (issue 13, item 2): a release tarball
 * (`NAME-pkg-STAMP.tar.gz`, with root/ and site/) and agents' prebuilt
 * tarballs, given as -d and --add, make the image the equivalent directory
 * makes: the archives' root/s merged in order, owned by root:root.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmod, chown, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { copyTree } from '../../src/host/copy.js';
import { gtarCreate } from '../../testbed/archives.js';
import { cli } from '../helpers/cli.js';
import { assertNoLeaks } from '../helpers/leaks.js';
import { describeTree, diffTrees } from '../helpers/tree.js';
import { world, type World } from '../helpers/world.js';

describe('a build from eng\'s tarballs', function () {
  this.timeout(10 * 60 * 1000);
  let w: World;
  const mf = JSON.stringify({ name: 'tarsvc', version: '1.0.0' });

  before(async () => {
    w = await world();
  });

  async function tree(name: string, files: Record<string, string>): Promise<string> {
    const d = join(w.dir, name);
    await rm(d, { recursive: true, force: true });
    for (const [p, content] of Object.entries(files)) {
      await mkdir(join(d, p, '..'), { recursive: true });
      await writeFile(join(d, p), content);
    }
    return d;
  }

  /** prepare + assemble with `args`; the image root's tree; clean. */
  async function assembled(args: string[]): Promise<Map<string, string>> {
    const out = await w.outDir();
    const state = join(w.dir, `tars-state-${Math.random().toString(36).slice(2)}.json`);
    let r = await cli(['prepare', '-i', w.base.uuid, ...args, '-m', mf, '--output-dir', out, '--state', state, '--json'], { env: w.env });
    assert.equal(r.code, 0, r.stderr);
    const root = join(JSON.parse(r.stdout).analog.mountpoint, 'root');
    try {
      r = await cli(['assemble', '--state', state], { env: w.env });
      assert.equal(r.code, 0, r.stderr);
      return await describeTree(root);
    } finally {
      r = await cli(['clean', '--state', state], { env: w.env });
      assert.equal(r.code, 0, r.stderr);
      await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir: w.workDir, outputDir: out });
    }
  }

  it('release tarball + two agent tarballs = the equivalent directory; then the whole build from them', async () => {
    const release = await tree('rel', {
      'root/opt/smartdc/tarsvc/server.js': 'v1\n',
      'root/opt/smartdc/tarsvc/etc/config.json': '{}\n',
      'root/opt/smartdc/boot/setup.sh': '#!/bin/bash\n',
      'root/etc/tarsvc.conf': 'release\n',
      'site/README': 'not in the image\n',
    });
    await chown(join(release, 'root/opt/smartdc/boot/setup.sh'), 1000, 1000);
    await chmod(join(release, 'root/opt/smartdc/boot/setup.sh'), 0o4755);
    await symlink('../tarsvc/server.js', join(release, 'root/opt/smartdc/boot/server.js'));
    const configAgent = await tree('ca', {
      'root/opt/smartdc/agents/lib/node_modules/config-agent/bin/config-agent': '#!/usr/bin/env node\n',
      'root/opt/smartdc/agents/lib/node_modules/config-agent/package.json': '{"name":"config-agent"}\n',
      'root/etc/tarsvc.conf': 'the agent wins\n',
    });
    const registrar = await tree('reg', { 'root/opt/smartdc/agents/lib/node_modules/registrar/package.json': '{"name":"registrar"}\n' });
    // As eng's Makefiles make them: gtar of root (and site) with owners as they are on the build machine.
    const tars = [
      gtarCreate(release, join(w.dir, 'tarsvc-pkg-20261201T000000Z-gabcdef0.tar.gz'), { members: ['root', 'site'] }),
      gtarCreate(configAgent, join(w.dir, 'config-agent-20261201T000000Z.tar.bz2'), { compression: 'bzip2', format: 'pax', members: ['root'] }),
      gtarCreate(registrar, join(w.dir, 'registrar-20261201T000000Z.tar.xz'), { compression: 'xz', format: 'ustar', members: ['root'] }),
    ];
    // The equivalent directory: eng's stage/root after gtar and chown -R root:root (set-id bits kept, as buildimage keeps them).
    const stage = join(w.dir, 'stage-root');
    await rm(stage, { recursive: true, force: true });
    await mkdir(stage);
    for (const d of [release, configAgent, registrar]) await copyTree(join(d, 'root'), stage);
    execFileSync('chown', ['-R', '0:0', stage]);
    await chmod(join(stage, 'opt/smartdc/boot/setup.sh'), 0o4755);

    const fromDir = await assembled(['-d', stage]);
    const fromTars = await assembled(['-d', tars[0], '--add', tars[1], '--add', tars[2]]);
    assert.deepEqual(diffTrees(fromDir, fromTars), []);
    assert.match(fromTars.get('opt/smartdc/boot/setup.sh')!, /^file 4755 0:0 /);
    assert.equal(fromTars.has('site'), false);

    // The whole build, and --keep-owners.
    const out = await w.outDir();
    const r = await cli(['-i', w.base.uuid, '-d', tars[0], '--add', tars[1], '--add', tars[2], '-m', mf, '--output-dir', out, '--json'], { env: w.env });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /2 entries outside root\/ ignored \(site\/\)/);
    const kept = await assembled(['-d', tars[0], '--keep-owners']);
    assert.match(kept.get('opt/smartdc/boot/setup.sh')!, /^file 4755 1000:1000 /);
    await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir: w.workDir, outputDir: out });
  });
});
