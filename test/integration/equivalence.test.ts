/**
 * The image buildimage makes equals the one the original tool's command
 * sequence makes (zfs clone, rsync -a, read-only mounts, chroot pkg_add -U,
 * rm -rf /var/db/pkgin and config, zfs send -i | gzip) from the same inputs:
 * a proto and a package list generated afresh on every run, from a seed
 * that is printed and named in every failure (BUILDIMAGE_TEST_SEED=N
 * replays one).
 *
 * Beyond type, mode, owner, size, content and link text (describeTree),
 * it compares what the copy promises and rsync -a does not all keep:
 * - times: every proto entry's mtime (files, directories, symlinks) is the
 *   proto's, to the microsecond (the copy sets times from a double of
 *   seconds; rsync copies nanoseconds). Access times are not compared:
 *   reading a file moves them.
 * - hardlinks: the proto's groups of names sharing an inode are the image's
 *   groups. Here the proto is the oracle: `rsync -a` (no -H) breaks them.
 * - directory links: the proto's own links to directories (relative,
 *   absolute into the image, chains) are copied as links, never followed.
 *   And the image gets directory links before the copy (IMAGE_LINKS, laid
 *   out in buildimage's analog between prepare and assemble, and by the
 *   original sequence's BEFORE_COPY): where the proto has a directory there,
 *   the copy keeps the link and fills its target inside the image (an
 *   absolute link read with the image root as /), where rsync -a replaces
 *   the link by a directory. The original's tree is compared with that one
 *   difference undone (its entries moved under the link's target, the link
 *   put back). The origin's `bin -> ./usr/bin` points at nothing in the
 *   sample image (usr is a mountpoint): there both make a directory.
 */
import assert from 'node:assert/strict';
import { createHash, randomInt, randomUUID } from 'node:crypto';
import { link, lstat, lutimes, mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../../src/host/exec.js';
import { REPO, cli } from '../helpers/cli.js';
import { describeTree, diffTrees, type TreeEntry } from '../helpers/tree.js';
import { verifyPoolWithChain, world, type World } from '../helpers/world.js';

const ORIGINAL_SEQUENCE = join(REPO, 'scripts/original-sequence.sh');

/** The seed of this run: BUILDIMAGE_TEST_SEED replays one. */
function testSeed(): number {
  const s = process.env.BUILDIMAGE_TEST_SEED;
  if (s === undefined || s === '') return randomInt(2 ** 32);
  if (!/^\d{1,10}$/.test(s) || Number(s) >= 2 ** 32) throw new Error(`BUILDIMAGE_TEST_SEED must be an integer below 2^32, got ${JSON.stringify(s)}`);
  return Number(s);
}

/** mulberry32: a small PRNG, the same sequence for the same seed on every machine. */
function seededRandom(seed: number): { int(lo: number, hi: number): number; bytes(n: number): Buffer; pick<T>(xs: readonly T[]): T } {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
  const int = (lo: number, hi: number): number => lo + Math.floor(next() * (hi - lo));
  return {
    int,
    bytes(n) {
      const b = Buffer.alloc(n);
      for (let i = 0; i < n; i++) b[i] = int(0, 256);
      return b;
    },
    pick: (xs) => xs[int(0, xs.length)],
  };
}

/** What the random proto holds besides its files, for the comparisons. */
interface Proto {
  files: number;
  /** Every path in the proto (relative, no leading slash), parents before children. */
  paths: string[];
  /** Groups of paths that are one file (hard links), each sorted. */
  hardlinks: string[][];
  /** The proto's links that point at directories: path → target. */
  dirLinks: Map<string, string>;
}

/** Directories every image of the sample chain has: absolute directory links in the proto point at them. */
const IMAGE_DIRS = ['/opt/local/lib', '/opt/local/etc', '/opt/local/bin', '/var/tmp', '/etc', '/var/smartdc'];

/** A proto no test has seen before: random tree, names, sizes, modes, times, links and hard links, all from `seed`. */
async function randomProto(dir: string, seed: number): Promise<Proto> {
  const r = seededRandom(seed);
  const p: Proto = { files: 0, paths: [], hardlinks: [], dirLinks: new Map() };
  const modes = [0o644, 0o755, 0o600, 0o444, 0o750];
  const dirs: string[] = [];
  const plain: string[] = [];
  /** A time in 2001..2023 with a sub-second part (milliseconds: what the copy keeps exactly). */
  const time = (): Date => new Date(r.int(1_000_000_000, 1_700_000_000) * 1000 + r.int(0, 1000));
  const name = (): string => `${r.bytes(3).toString('hex')}${r.pick(['.js', '.json', '', '.sh'])}`;
  const add = (rel: string): void => void p.paths.push(rel);

  async function fill(rel: string, depth: number): Promise<void> {
    await mkdir(join(dir, rel), { recursive: true });
    dirs.push(rel);
    const n = r.int(2, 7);
    for (let i = 0; i < n; i++) {
      const f = `${rel}/${name()}`;
      const kind = r.int(0, 10);
      if (kind < 6) {
        await writeFile(join(dir, f), r.bytes(r.int(0, 20_000)), { mode: r.pick(modes) });
        add(f);
        plain.push(f);
        p.files++;
      } else if (kind < 8 && depth < 4) {
        add(f);
        await fill(f, depth + 1);
      } else {
        // A link to a file that may not exist (as before), or to a directory: relative, or absolute into the image.
        const target = r.pick([`../${name()}-target`, `/opt/local/bin/${name()}`, '..', '.', ...IMAGE_DIRS]);
        await symlink(target, join(dir, f));
        add(f);
        if (target === '..' || target === '.' || IMAGE_DIRS.includes(target)) p.dirLinks.set(f, target);
      }
    }
  }
  const top = `opt/smartdc/${r.bytes(4).toString('hex')}`;
  add('opt');
  add('opt/smartdc');
  add(top);
  await fill(top, 0);
  // Entries where the image has directory links (IMAGE_LINKS; the origin's bin -> ./usr/bin dangles).
  for (const d of ['srv', 'bin']) {
    add(d);
    await fill(d, 3);
  }
  dirs.push('opt/smartdc', 'opt');

  // A relative link to a sibling directory, and a chain (a link to that link).
  const sub = dirs.find((d) => d.startsWith(`${top}/`)) ?? top;
  await symlink(sub === top ? '.' : `./${sub.slice(top.length + 1)}`, join(dir, top, 'dir-link'));
  await symlink('dir-link', join(dir, top, 'dir-link-chain'));
  for (const l of ['dir-link', 'dir-link-chain']) {
    add(`${top}/${l}`);
    p.dirLinks.set(`${top}/${l}`, sub);
  }

  // Hard link groups: a file with one or two more names, in its directory, another, and under bin/.
  for (let g = 0; g < 3 && plain.length; g++) {
    const first = plain.splice(r.int(0, plain.length), 1)[0];
    const group = [first];
    for (let k = r.int(1, 3); k > 0; k--) {
      const at = `${r.pick(dirs)}/hl-${g}-${k}-${r.bytes(2).toString('hex')}`;
      await link(join(dir, first), join(dir, at));
      add(at);
      group.push(at);
    }
    p.hardlinks.push(group.sort());
  }

  // Times last, children before their directory (creating an entry moves its directory's mtime).
  for (const rel of [...p.paths].reverse()) {
    const t = time();
    await lutimes(join(dir, rel), t, t);
  }
  return p;
}

/** An entry's mtime in nanoseconds, by lstat. */
async function mtimeNs(path: string): Promise<bigint> {
  return (await lstat(path, { bigint: true })).mtimeNs;
}

/** Directory links the image has before the copy (path → target), each target a directory of the image. */
const IMAGE_LINKS: ReadonlyArray<{ path: string; target: string; dir: string }> = [
  // Absolute: the proto's whole opt/smartdc goes to /var/smartdc in the image.
  { path: 'opt/smartdc', target: '/var/smartdc', dir: 'var/smartdc' },
  // Relative, through a directory of the image.
  { path: 'srv', target: './opt/local/share/srv', dir: 'opt/local/share/srv' },
];

/** The shell program that lays IMAGE_LINKS out in an image root ($1): the same for both builds. */
function imageLinksScript(): string {
  const lines = IMAGE_LINKS.flatMap((l) => [`mkdir -p "$1/${l.dir}"`, `ln -s '${l.target}' "$1/${l.path}"`]);
  return `#!/bin/bash\nset -euo pipefail\n${lines.join('\n')}\n`;
}

/** Where the zone finds a proto path in the image: through IMAGE_LINKS, which the copy keeps. */
function inImage(rel: string): string {
  for (const l of IMAGE_LINKS) if (rel.startsWith(`${l.path}/`)) return `${l.dir}/${rel.slice(l.path.length + 1)}`;
  return rel;
}

/** The original's tree as the copy promises it: what rsync -a put in a directory where the image had a link, under the link's target, and the link back. */
function withImageLinks(theirs: Map<string, TreeEntry>, ours: Map<string, TreeEntry>, what: string): Map<string, TreeEntry> {
  const out = new Map<string, TreeEntry>();
  for (const [k, v] of theirs) {
    if (IMAGE_LINKS.some((l) => k === `root/${l.path}`)) continue;
    out.set(k.startsWith('root/') ? `root/${inImage(k.slice('root/'.length))}` : k, v);
  }
  for (const l of IMAGE_LINKS) {
    const link = ours.get(`root/${l.path}`) ?? '(missing)';
    assert.ok(link.startsWith('link ') && link.endsWith(` -> ${l.target}`), `the image keeps its directory link ${l.path} -> ${l.target}, got ${link} (${what})`);
    out.set(`root/${l.path}`, link);
  }
  return new Map([...out].sort(([a], [b]) => (a < b ? -1 : 1)));
}

describe('equivalence with the original command sequence', function () {
  this.timeout(10 * 60 * 1000);
  let w: World;
  before(async () => {
    w = await world();
  });

  it('builds the same image tree from a fresh proto and package list', async () => {
    const seed = testSeed();
    const replay = `seed ${seed}: replay with BUILDIMAGE_TEST_SEED=${seed}`;
    const protoDir = await mkdtemp(join(w.dir, 'proto-eq-'));
    const p = await randomProto(protoDir, seed);
    // The seed, and a digest of the proto's paths: a replay shows the same digest.
    const digest = createHash('sha256').update(p.paths.join('\n')).digest('hex').slice(0, 12);
    console.log(`      equivalence: ${replay} (proto of ${p.paths.length} paths, digest ${digest})`);
    const r = seededRandom(seed ^ 0x5eed);
    const candidates = ['greeter', 'webfetch', 'daemonkit', 'libsigc++', 'gsed', 'greeter-1.0', 'webfetch-7.64.0'];
    const pkgs = candidates.filter(() => r.int(0, 2) === 1).slice(0, 3);
    if (!pkgs.length) pkgs.push('daemonkit');
    const what = `${replay}; packages ${pkgs.join(',')}, ${p.files} proto files, proto digest ${digest}`;
    const out = await w.outDir();

    const links = join(w.dir, `image-links-${seed}.sh`);
    await writeFile(links, imageLinksScript(), { mode: 0o755 });
    const env = { ...w.env, SOURCE_DATE_EPOCH: '' };
    const state = join(w.dir, `eq-state-${seed}.json`);
    const ours = join(out, 'eq-zfs-1.zfs.gz');
    const theirs = join(out, 'original.zfs.gz');
    const uuid = randomUUID();
    try {
      let res = await cli(['prepare', '-i', w.origin.uuid, '-d', protoDir, '-m', JSON.stringify({ name: 'eq', version: '1' }), '-p', pkgs.join(','), '--output-dir', out, '--state', state, '--json'], { env });
      assert.equal(res.code, 0, `${what}\n${res.stderr}`);
      // The image's directory links, laid out in the analog before the copy.
      await run(links, [join((JSON.parse(res.stdout) as { analog: { mountpoint: string } }).analog.mountpoint, 'root')]);
      for (const stage of ['assemble', 'pkgadd', 'seal']) {
        res = await cli([stage, '--state', state], { env });
        assert.equal(res.code, 0, `${stage}: ${what}\n${res.stderr}`);
      }
      const mnt = join(w.dir, `orig-${uuid.slice(0, 8)}`);
      await run('bash', [ORIGINAL_SEQUENCE, w.datasetRoot, w.origin.uuid, uuid, mnt, protoDir, theirs, ...pkgs], { timeoutMs: 5 * 60 * 1000, env: { BEFORE_COPY: links } });
    } catch (err) {
      // A stage that failed leaves its analog: undone here, as a one-shot build would.
      await cli(['clean', '--state', state], { env });
      await rm(protoDir, { recursive: true, force: true });
      throw err;
    } finally {
      await rm(links, { force: true });
    }

    const rx = await verifyPoolWithChain(w);
    try {
      const mounts: Record<'ours' | 'theirs', string> = { ours: '', theirs: '' };
      const trees: Record<'ours' | 'theirs', Map<string, TreeEntry>> = { ours: new Map(), theirs: new Map() };
      for (const [name, file] of [['ours', ours], ['theirs', theirs]] as const) {
        mounts[name] = join(w.dir, `eq-${name}-${uuid.slice(0, 8)}`);
        await rx.receive(file, name, mounts[name]);
        trees[name] = await describeTree(mounts[name]);
      }
      const diffs = diffTrees(trees.ours, withImageLinks(trees.theirs, trees.ours, what));
      assert.deepEqual(diffs, [], `trees differ (${what})`);
      assert.ok(trees.ours.size > 50, 'a real tree was compared');

      const oursRoot = join(mounts.ours, 'root');
      const theirsRoot = join(mounts.theirs, 'root');
      // The proto's directory links are links in the image, with their text, never followed.
      assert.ok(p.dirLinks.size >= 2, `${what}: directory links in the proto`);
      for (const [rel, target] of p.dirLinks) {
        const e = trees.ours.get(`root/${inImage(rel)}`);
        assert.match(e ?? '(missing)', /^link /, `${what}: ${rel} (to ${target}) is a link in the image`);
      }

      // Times: every proto entry's mtime, in both images, is the proto's to the microsecond, as far as the image's
      // file system keeps it (zfs-fuse keeps whole seconds: both images then have the proto's second; ZFS on illumos
      // keeps nanoseconds). Ours and the original's agree to the microsecond either way.
      const wholeSeconds = (await Promise.all(p.paths.map((rel) => mtimeNs(join(theirsRoot, rel))))).every((t) => t % 1_000_000_000n === 0n);
      const timeDiffs: string[] = [];
      const off = (a: bigint, b: bigint): bigint => (a > b ? a - b : b - a);
      for (const rel of p.paths) {
        const proto = await mtimeNs(join(protoDir, rel));
        const want = wholeSeconds ? proto - (proto % 1_000_000_000n) : proto;
        const got = { theirs: await mtimeNs(join(theirsRoot, rel)), ours: 0n };
        if (off(got.theirs, want) > 1000n) timeDiffs.push(`theirs ${rel}: mtime ${got.theirs} ns, proto ${proto} ns`);
        // Where the image has a link ours keeps it (the target's time is the copy's); the original made a directory.
        if (IMAGE_LINKS.some((l) => l.path === rel)) continue;
        got.ours = await mtimeNs(join(oursRoot, inImage(rel)));
        if (off(got.ours, want) > 1000n || off(got.ours, got.theirs) > 1000n) timeDiffs.push(`ours ${rel}: mtime ${got.ours} ns, proto ${proto} ns, original ${got.theirs} ns`);
      }
      assert.deepEqual(timeDiffs.slice(0, 20), [], `mtimes differ from the proto's${wholeSeconds ? ' (whole seconds: the file system keeps no more)' : ''} (${what})`);

      // Hard links: the proto's groups are the image's groups (the original's rsync -a breaks them).
      const groups = async (top: string, map: (rel: string) => string): Promise<string[][]> => {
        const byIno = new Map<bigint, string[]>();
        for (const rel of p.paths) {
          const st = await lstat(join(top, map(rel)), { bigint: true });
          if (!st.isFile()) continue;
          byIno.set(st.ino, [...(byIno.get(st.ino) ?? []), rel]);
        }
        return [...byIno.values()].filter((g) => g.length > 1).map((g) => g.sort()).sort();
      };
      const protoGroups = await groups(protoDir, (x) => x);
      assert.deepEqual(protoGroups, [...p.hardlinks].sort(), `${what}: the proto's hard links`);
      assert.ok(protoGroups.length > 0 || p.files < 2, `${what}: hard links in the proto`);
      assert.deepEqual(await groups(oursRoot, inImage), protoGroups, `hard link groups differ from the proto's (${what})`);
      for (const l of IMAGE_LINKS) assert.ok((await readdir(join(oursRoot, l.dir))).length > 0, `${what}: ${l.dir} filled through ${l.path}`);
    } finally {
      await rx.destroy();
      await rm(protoDir, { recursive: true, force: true });
    }
  });
});
