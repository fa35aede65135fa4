/**
 * host/git.ts with real git: root must never run a command that a
 * repository it does not trust names (core.fsmonitor, hooks), and must not
 * search upward from the proto dir for a `.git` at all (issue 12, item 1).
 */
import assert from 'node:assert/strict';
import { chmod, chown, mkdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../../src/host/exec.js';
import { gitInfo, gitRemote, untrustedCheckout } from '../../src/host/git.js';

const TOP = '/var/tmp/buildimage-test';
const FOREIGN_UID = 4242;

/** A committed checkout at `dir` whose fsmonitor and hooks would touch `bait`. */
async function checkout(dir: string, bait: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  const git = (...args: string[]) => run('git', ['-C', dir, '-c', 'user.email=t@example.com', '-c', 'user.name=t', ...args]);
  await git('init', '-q', '-b', 'master');
  await writeFile(join(dir, 'file'), 'x\n');
  await git('add', 'file');
  await git('commit', '-q', '-m', 'one');
  const script = join(dir, '.git', 'bait.sh');
  await writeFile(script, `#!/bin/sh\necho "$0 $*" >> ${bait}\nexit 1\n`, { mode: 0o755 });
  await git('config', 'core.fsmonitor', script);
  await git('config', 'core.hooksPath', join(dir, '.git', 'baithooks'));
  await git('remote', 'add', 'origin', 'https://jenkins:s3cret@git.example.com/org/repo.git?token=t0k');
  await mkdir(join(dir, '.git', 'baithooks'));
  for (const hook of ['post-index-change', 'reference-transaction', 'pre-commit', 'post-checkout']) {
    await writeFile(join(dir, '.git', 'baithooks', hook), `#!/bin/sh\necho ${hook} >> ${bait}\n`, { mode: 0o755 });
  }
  const commit = (await git('rev-parse', 'HEAD')).stdout.trim();
  await rm(bait, { force: true });
  return commit;
}

async function chownTree(dir: string, uid: number): Promise<void> {
  await run('chown', ['-R', `${uid}:${uid}`, dir]);
}

const exists = (p: string) => stat(p).then(() => true, () => false);

describe('git information (host/git.ts)', () => {
  let dir: string;
  let bait: string;
  beforeEach(async () => {
    dir = join(TOP, `git-${process.pid}-${Date.now()}`);
    await mkdir(dir, { recursive: true });
    bait = join(dir, 'BAITED');
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it("runs nothing from a foreign-owned .git in a parent of the proto dir, and does not read it", async () => {
    const parent = join(dir, 'workspace');
    await checkout(parent, bait);
    const proto = join(parent, 'proto');
    await mkdir(proto);
    await chownTree(parent, FOREIGN_UID);
    const info = await gitInfo(proto);
    const remote = await gitRemote(proto);
    assert.equal(await exists(bait), false, 'the foreign fsmonitor or a hook ran as root');
    assert.equal(info, undefined);
    assert.equal(remote, undefined);
  });

  it('runs nothing from a foreign-owned checkout that is the proto dir itself', async () => {
    const proto = join(dir, 'proto');
    await checkout(proto, bait);
    await chownTree(proto, FOREIGN_UID);
    const info = await gitInfo(proto);
    assert.equal(await exists(bait), false, 'the foreign fsmonitor or a hook ran as root');
    assert.equal(info, undefined);
    assert.match((await untrustedCheckout(proto)) ?? '', /owned by uid 4242/);
  });

  it("reads root's own checkout at the proto dir, without running its fsmonitor or hooks; the remote without credentials", async () => {
    const proto = join(dir, 'proto');
    const commit = await checkout(proto, bait);
    await writeFile(join(proto, 'file'), 'changed\n');
    const info = await gitInfo(proto);
    assert.equal(await exists(bait), false, 'fsmonitor or a hook ran');
    assert.deepEqual(info, { dir: proto, commit, branch: 'master', dirty: true, remote: 'https://git.example.com/org/repo.git?token=…' });
  });

  it("reads the invoking user's checkout (SUDO_UID), and refuses one writable by others", async () => {
    const proto = join(dir, 'proto');
    const commit = await checkout(proto, bait);
    await chownTree(proto, FOREIGN_UID);
    assert.equal((await gitInfo(proto, { SUDO_UID: String(FOREIGN_UID) }))?.commit, commit);
    await chown(join(proto, '.git'), 0, 0);
    await chmod(join(proto, '.git'), 0o777);
    const info = await gitInfo(proto);
    assert.equal(await exists(bait), false, 'fsmonitor or a hook ran');
    assert.equal(info, undefined);
    assert.match((await untrustedCheckout(proto)) ?? '', /writable by group or others/);
  });

  it('a directory that is not a checkout top gives nothing (no upward search)', async () => {
    const repo = join(dir, 'repo');
    await checkout(repo, bait);
    await mkdir(join(repo, 'sub'));
    const info = await gitInfo(join(repo, 'sub'));
    assert.equal(await exists(bait), false, 'fsmonitor or a hook ran');
    assert.equal(info, undefined);
  });
});
