/**
 * The image buildimage makes equals the one the original tool's command
 * sequence makes (zfs clone, rsync -a, read-only mounts, chroot pkg_add -U,
 * rm -rf /var/db/pkgin and config, zfs send -i | gzip) from the same inputs:
 * a proto and a package list generated afresh on every run.
 */
import assert from 'node:assert/strict';
import { randomBytes, randomInt, randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../../src/host/exec.js';
import { REPO, cli } from '../helpers/cli.js';
import { describeTree, diffTrees } from '../helpers/tree.js';
import { verifyPoolWithChain, world, type World } from '../helpers/world.js';

const ORIGINAL_SEQUENCE = join(REPO, 'scripts/original-sequence.sh');

/** A proto no test has seen before: random tree, names, sizes, modes and links. */
async function randomProto(dir: string): Promise<number> {
  let files = 0;
  const modes = [0o644, 0o755, 0o600, 0o444, 0o750];
  async function fill(d: string, depth: number): Promise<void> {
    await mkdir(d, { recursive: true });
    const n = randomInt(2, 7);
    for (let i = 0; i < n; i++) {
      const name = `${randomBytes(3).toString('hex')}${['.js', '.json', '', '.sh'][randomInt(4)]}`;
      const kind = randomInt(10);
      if (kind < 6) {
        await writeFile(join(d, name), randomBytes(randomInt(0, 20_000)), { mode: modes[randomInt(modes.length)] });
        files++;
      } else if (kind < 8 && depth < 4) {
        await fill(join(d, name), depth + 1);
      } else {
        await symlink(randomInt(2) ? `../${name}-target` : `/opt/local/bin/${name}`, join(d, name));
      }
    }
  }
  await fill(join(dir, 'opt/smartdc', randomBytes(4).toString('hex')), 0);
  return files;
}

describe('equivalence with the original command sequence', function () {
  this.timeout(10 * 60 * 1000);
  let w: World;
  before(async () => {
    w = await world();
  });

  it('builds the same image tree from a fresh proto and package list', async () => {
    const proto = await mkdtemp(join(w.dir, 'proto-eq-'));
    const files = await randomProto(proto);
    const candidates = ['greeter', 'webfetch', 'daemonkit', 'libsigc++', 'gsed', 'greeter-1.0', 'webfetch-7.64.0'];
    const pkgs = candidates.filter(() => randomInt(2) === 1).slice(0, 3);
    if (!pkgs.length) pkgs.push('daemonkit');
    const out = await w.outDir();

    const r = await cli(['-i', w.origin.uuid, '-d', proto, '-m', JSON.stringify({ name: 'eq', version: '1' }), '-p', pkgs.join(','), '--output-dir', out], { env: w.env });
    assert.equal(r.code, 0, r.stderr);
    const ours = join(out, 'eq-zfs-1.zfs.gz');

    const theirs = join(out, 'original.zfs.gz');
    const uuid = randomUUID();
    const mnt = join(w.dir, `orig-${uuid.slice(0, 8)}`);
    await run('bash', [ORIGINAL_SEQUENCE, w.datasetRoot, w.origin.uuid, uuid, mnt, proto, theirs, ...pkgs], { timeoutMs: 5 * 60 * 1000 });

    const rx = await verifyPoolWithChain(w);
    try {
      const trees = [];
      for (const [name, file] of [['ours', ours], ['theirs', theirs]] as const) {
        const m = join(w.dir, `eq-${name}-${uuid.slice(0, 8)}`);
        await rx.receive(file, name, m);
        trees.push(await describeTree(m));
      }
      const diffs = diffTrees(trees[0], trees[1]);
      assert.deepEqual(diffs, [], `trees differ (packages ${pkgs.join(',')}, ${files} proto files)`);
      assert.ok(trees[0].size > 50, 'a real tree was compared');
    } finally {
      await rx.destroy();
      await rm(proto, { recursive: true, force: true });
    }
  });
});
