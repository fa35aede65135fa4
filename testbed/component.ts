/**
 * A sample Triton component as a git repository (testbed/component: a
 * Makefile with eng's targets, a service, `buildimage init`'s files) and
 * the agents' prebuilt tarballs it bundles, as eng's agent download
 * directory holds them: what the Jenkinsfile examples build in
 * test/integration/jenkinsfile-run.test.ts.
 */
import { existsSync } from 'node:fs';
import { cp, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';

/** testbed/component in the source tree (from testbed/ or its compiled copy). */
export function componentDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const candidate = join(dir, 'testbed', 'component');
    if (existsSync(join(candidate, 'Makefile'))) return candidate;
    dir = dirname(dir);
  }
  throw new Error('cannot find testbed/component above the testbed module');
}

export interface SampleComponent {
  /** The repository Jenkins clones (a working repo; branches master, release-20240101, feature/x). */
  repo: string;
  name: string;
  /** AGENT_PREBUILT_DOWNLOAD_URL: the agents' tarballs. */
  agentsDir: string;
  /** Tarball file names by agent and branch. */
  agents: Record<'registrar' | 'waferlock', Record<string, string>>;
}

async function git(repo: string, ...args: string[]): Promise<string> {
  const r = await execa('git', ['-C', repo, ...args], {
    env: { GIT_AUTHOR_NAME: 'Sample', GIT_AUTHOR_EMAIL: 'sample@example.com', GIT_COMMITTER_NAME: 'Sample', GIT_COMMITTER_EMAIL: 'sample@example.com' },
  });
  return String(r.stdout);
}

/** An agent's release tarball as its own `make release` makes it: root/opt/smartdc/<agent>/… */
async function agentTarball(dir: string, agent: string, branch: string, file: string): Promise<void> {
  const stage = join(dir, `.stage-${agent}-${branch}`);
  // registrar's tarball has root/ (its ROOTDIR is unset); waferlock's, as config-agent's, has none: eng extracts it under root/opt/smartdc.
  const noRoot = agent === 'waferlock';
  const home = noRoot ? join(stage, agent) : join(stage, 'root/opt/smartdc', agent);
  await mkdir(home, { recursive: true });
  await writeFile(join(home, 'main.js'), `// ${agent} agent\n`);
  await writeFile(join(home, 'branch'), `${branch}\n`);
  await execa('tar', ['-czf', join(dir, file), '-C', stage, noRoot ? agent : 'root']);
  await rm(stage, { recursive: true, force: true });
}

/**
 * Makes the component under `dir`: `init` is the CLI's `buildimage init`
 * run in the repo (its files are committed as a component would), then the
 * definition gets the test world's base image and a package.
 */
export async function makeSampleComponent(
  dir: string,
  o: { base: string; packages: string[]; init: (repo: string) => Promise<void> },
): Promise<SampleComponent> {
  const repo = join(dir, 'sdc-sample');
  await rm(repo, { recursive: true, force: true });
  await cp(componentDir(), repo, { recursive: true });
  await rename(join(repo, 'gitignore'), join(repo, '.gitignore'));
  await git(repo, 'init', '-q', '-b', 'master');
  await o.init(repo);
  const defPath = join(repo, 'buildimage.json');
  const def = JSON.parse(await readFile(defPath, 'utf8')) as Record<string, unknown>;
  def.image = o.base;
  def.packages = o.packages;
  await writeFile(defPath, JSON.stringify(def, null, 2) + '\n');
  await git(repo, 'add', '-A');
  await git(repo, 'commit', '-q', '-m', 'sample component');
  await git(repo, 'branch', 'release-20240101');
  await git(repo, 'checkout', '-q', '-b', 'feature/x');
  await writeFile(join(repo, 'server', 'feature.js'), '// feature/x\n');
  await git(repo, 'add', '-A');
  await git(repo, 'commit', '-q', '-m', 'feature x');
  await git(repo, 'checkout', '-q', 'master');

  const agentsDir = join(dir, 'agents');
  await mkdir(agentsDir, { recursive: true });
  const agents: SampleComponent['agents'] = { registrar: {}, waferlock: {} };
  for (const agent of ['registrar', 'waferlock'] as const) {
    for (const [branch, stamp] of [
      ['master', 'master-20240101T000000Z-g1111111'],
      ['master', 'master-20240102T000000Z-g2222222'],
      ['release-20240101', 'release-20240101-20240101T000000Z-g3333333'],
    ]) {
      const file = `${agent}-pkg-${stamp}.tar.gz`;
      await agentTarball(agentsDir, agent, branch, file);
      agents[agent][branch] = file;
    }
  }
  return { repo, name: 'sample', agentsDir, agents };
}
