/**
 * Hostile branch names in the Jenkinsfile examples: any pushed branch is
 * built, and its name (BRANCH_NAME, or `git symbolic-ref HEAD`) goes into
 * the stamp and onto make's command line, where make expands `$(VAR)`.
 * git allows `$`, `(`, `` ` `` and `;` in branch names. The stamp stage
 * must stop such a build before any make runs, and run nothing from the name.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { DEFAULT_BASE, EXAMPLE_VALUES, init, renderJenkinsfile } from '../../src/setup/init.js';
import { makeSampleComponent, type SampleComponent } from '../../testbed/component.js';
import { layBait, type Bait } from '../helpers/hostile.js';
import { haveGroovy, parseJenkinsfile, runJenkinsfile } from '../helpers/jenkins.js';
import { tempDir } from '../servers/ssh-keys.js';

describe('hostile: branch names in the Jenkinsfile examples', function () {
  this.timeout(5 * 60 * 1000);
  let dir: string;
  let comp: SampleComponent;
  let bait: Bait;
  const trees: Record<string, ReturnType<typeof parseJenkinsfile>> = {};

  before(async function () {
    if (!haveGroovy()) {
      if (process.env.CI) assert.fail('groovy is not installed (scripts/setup-host.sh installs it)');
      this.skip();
    }
    dir = await tempDir('bi-hostile-branch-');
    bait = await layBait();
    comp = await makeSampleComponent(dir, {
      base: DEFAULT_BASE,
      packages: [],
      init: async (repo) => {
        await init({ dir: repo, template: 'smartdc-service', jenkinsfile: 'stages', imageVer: '21.4.0', pi: '20210826T002459Z', force: false });
      },
    });
    for (const kind of ['stages', 'single'] as const) {
      const f = join(dir, `${kind}.Jenkinsfile`);
      await writeFile(f, renderJenkinsfile(kind, { ...EXAMPLE_VALUES, name: comp.name }));
      trees[kind] = parseJenkinsfile(f);
    }
  });
  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
    await bait?.remove();
  });

  const NAMES = [
    // make expands it: the release tarball would be written under $HOME.
    'x$(HOME)',
    `x$(BAIT)`,
    // shell syntax: must stay data.
    'x$(touch${IFS}pwned)',
    'x`touch${IFS}pwned`',
    'x;touch${IFS}pwned',
  ];

  for (const kind of ['stages', 'single'] as const) {
    for (const name of NAMES) {
      for (const via of ['BRANCH_NAME', 'symbolic-ref'] as const) {
        it(`${kind}: ${name} (${via}) stops in the stamp stage; nothing runs from it`, async () => {
          const ws = join(dir, `ws-${kind}-${via}-${NAMES.indexOf(name)}`);
          await execa('git', ['clone', '-q', comp.repo, ws]);
          await execa('git', ['-C', ws, 'check-ref-format', '--branch', name]);
          if (via === 'symbolic-ref') await execa('git', ['-C', ws, 'checkout', '-q', '-b', name]);
          else await execa('git', ['-C', ws, 'checkout', '-q', '--detach']);
          const home = join(dir, 'home');
          await mkdir(home, { recursive: true });
          const r = await runJenkinsfile(trees[kind], {
            workspace: ws,
            agentEnv: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home, BAIT: bait.dir, AGENT_PREBUILT_DOWNLOAD_URL: comp.agentsDir, AGENT_PREBUILT_DIR: join(dir, 'cache') },
            jenkinsEnv: via === 'BRANCH_NAME' ? { BRANCH_NAME: name, BUILD_NUMBER: '1' } : { BUILD_NUMBER: '1' },
            causes: ['BranchEventCause'],
            credentials: {},
            only: ['check', 're-clean', 'stamp', 'proto', 'build image'],
          });
          assert.equal(r.result, 'FAILURE');
          assert.equal(r.stages.stamp, 'failed', JSON.stringify(r.stages));
          assert.match(r.steps.at(-1)!.output, /cannot go into a stamp: letters, digits, \. _ \+ - only/);
          assert.ok(!r.steps.some((s) => s.stage === 'proto' || s.stage === 'build image'), 'no make after the stamp stage');
          assert.equal(existsSync(join(ws, 'pwned')), false);
          assert.deepEqual((await readdir(home)).sort(), []);
          assert.deepEqual((await readdir(ws)).filter((f) => f.endsWith('.tar.gz')), []);
          await bait.assertUntouched(name);
        });
      }
    }
  }

  it('a plain branch passes the same stage (release-20240101 → the stamp starts with it)', async () => {
    const ws = join(dir, 'ws-ok');
    await execa('git', ['clone', '-q', comp.repo, ws]);
    await execa('git', ['-C', ws, 'checkout', '-q', '--detach']);
    const r = await runJenkinsfile(trees.stages, {
      workspace: ws,
      agentEnv: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
      jenkinsEnv: { BRANCH_NAME: 'release-20240101' },
      causes: [],
      credentials: {},
      only: ['stamp'],
    });
    assert.equal(r.result, 'SUCCESS');
    assert.match(r.env.STAMP, /^release-20240101-\d{8}T\d{6}Z-g[0-9a-f]{7,}$/);
  });
});
