/**
 * `npm run bench [-- flags]`: buildimage against the original tool's
 * command sequence, on the same pool, interleaved, with stage timings as
 * ratios (ours / original), peak RSS, growth with proto size, the seal
 * pass against `zfs send | pigz`, and every image checked (sha1, size,
 * decompressed, received, tree equal to the original's). Makes its own
 * file-backed pool, sample images and repository server, and removes them.
 *
 * Flags: --runs N (3: interleaved pairs at 1×) --scale-runs N (1: pairs at
 * each larger scale) --scales 1,2,4 --seal-runs N (3 at the first scale, 1
 * at the others) --rss-gb G (2: one
 * build of a G GiB image for peak RSS; 0 skips) --other-compressions (time
 * xz/bzip2/none on the 1× snapshot against the tools; by default they are
 * only checked on the sample image)
 * --dir DIR (/var/tmp/buildimage-bench) --write FILE (the markdown report
 * also goes there) --keep (leave pool and files).
 * --only tarballs: only the tarball case (eng's gtar + chown -R + the
 * original's copy of stage/root, against assemble from the same tarballs),
 * --runs pairs.
 * --only multi: only the multi-image case (4 images from one definition
 * with --jobs 2 against 4 sequential single builds), --runs pairs;
 * --multi-proto small uses a small proto instead of the 1× service (a quick
 * check that the case works; its figure means little).
 * --only package-cache: only the package cache case (issue 16, item 5): a
 * cold build then a warm rebuild with the same packages, --runs pairs on
 * each link (loopback, and an emulated 100 Mbit/s link with 20 ms to the
 * first byte): packages downloaded on the warm build (goal 0) and warm
 * pkgadd / cold pkgadd (goal ≤ 0.5). Also part of the full run.
 */
import { createReadStream, readFileSync, writeFileSync } from 'node:fs';
import { mkdir, readFile, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { createCipheriv, createHash, randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { createGunzip } from 'node:zlib';
import { execa, execaSync } from 'execa';
import { decompressor, fileSuffix } from '../src/image/compression.js';
import { copyTree } from '../src/host/copy.js';
import { Zfs } from '../src/host/zfs.js';
import { installImage } from '../src/base/install.js';
import { Layout } from '../src/core/layout.js';
import { openSource } from '../src/base/open.js';
import { pidAlive } from '../src/host/lock.js';
import { COMPRESSIONS, type Compression } from '../src/image/compression.js';
import { makeSampleImages } from '../testbed/images.js';
import { SAMPLE_PACKAGES, writeRepository, type PackageSpec } from '../testbed/packages.js';
import { setRepoUrl } from '../testbed/zoneroot.js';
import { destroyFilePool, ensureFilePool } from '../testbed/pool.js';
import { startRepoServer } from '../testbed/repo-server.js';
import { sendCompressed } from '../src/image/streams.js';
import { describeTree, diffTrees } from '../test/helpers/tree.js';
import { writeBenchProto, type ProtoStats } from './bench-proto.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
/** What users run (npm's `buildimage`): the sh wrapper that execs node with a small young generation. */
const BIN = join(REPO, 'bin/buildimage');
const PACKAGES = ['greeter', 'webfetch', 'daemonkit'];

// ---------------------------------------------------------------- flags

function parseArgs(argv: string[]) {
  const o = {
    runs: 3,
    scaleRuns: 1,
    scales: [1, 2, 4],
    sealRuns: 3,
    rssGb: 2,
    otherCompressions: false,
    dir: '/var/tmp/buildimage-bench',
    write: undefined as string | undefined,
    keep: false,
    only: undefined as 'tarballs' | 'multi' | 'package-cache' | undefined,
    multiProto: 'service' as 'service' | 'small',
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--runs') o.runs = Number(val());
    else if (a === '--scale-runs') o.scaleRuns = Number(val());
    else if (a === '--scales') o.scales = val().split(',').map(Number);
    else if (a === '--seal-runs') o.sealRuns = Number(val());
    else if (a === '--rss-gb') o.rssGb = Number(val());
    else if (a === '--other-compressions') o.otherCompressions = true;
    else if (a === '--dir') o.dir = val();
    else if (a === '--write') o.write = val();
    else if (a === '--keep') o.keep = true;
    else if (a === '--only') {
      const v = val();
      if (v !== 'tarballs' && v !== 'multi' && v !== 'package-cache') throw new Error('--only: tarballs, multi or package-cache');
      o.only = v;
    } else if (a === '--multi-proto') {
      const v = val();
      if (v !== 'service' && v !== 'small') throw new Error('--multi-proto: service or small');
      o.multiProto = v;
    }
    else throw new Error(`unknown flag ${a}`);
  }
  if (!o.scales.length || o.scales.some((s) => !Number.isInteger(s) || s < 1)) throw new Error('--scales: positive integers');
  return o;
}

// ---------------------------------------------------------------- helpers

const say = (s: string) => console.error(`bench: ${s}`);
const now = () => performance.now() / 1000;

function stats(xs: number[]) {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
  return { min: s[0], median, max: s[s.length - 1] };
}
const f2 = (x: number) => x.toFixed(2);
const fmtStats = (xs: number[]) => {
  const s = stats(xs);
  return xs.length === 1 ? f2(s.median) : `${f2(s.min)} / **${f2(s.median)}** / ${f2(s.max)}`;
};

async function sha1File(path: string): Promise<string> {
  const h = createHash('sha1');
  for await (const c of createReadStream(path, { highWaterMark: 1 << 20 })) h.update(c as Buffer);
  return h.digest('hex');
}

function sh(cmd: string): string {
  try {
    return String(execaSync('bash', ['-c', cmd], { reject: false }).stdout).trim();
  } catch {
    return '';
  }
}

let zfsFusePid: number | undefined;
/** zfs-fuse's CPU seconds so far (utime + stime), to show where time goes; NaN without zfs-fuse. */
function zfsFuseCpu(): number {
  zfsFusePid ??= Number(sh('pgrep -x zfs-fuse | head -1')) || -1;
  try {
    const f = readFileSync(`/proc/${zfsFusePid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return NaN;
  }
}

/** Peak RSS (VmHWM) of a process, polled until it exits. */
function watchPeakRss(pid: number): { stop: () => number } {
  let peak = 0;
  const read = () => {
    try {
      const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      if (m) peak = Math.max(peak, Number(m[1]) * 1024);
    } catch {
      /* gone */
    }
  };
  const iv = setInterval(read, 25);
  return {
    stop: () => {
      clearInterval(iv);
      return peak;
    },
  };
}

// ---------------------------------------------------------------- the two contenders

/** The original tool's sequence (shared with test/integration/equivalence.test.ts), with a timestamp per stage. */
const ORIGINAL_SCRIPT = join(REPO, 'scripts/original-sequence.sh');

interface RunResult {
  stages: Record<string, number>;
  total: number;
  rss?: number;
  zfsCpu: number;
  image: string;
  manifest?: Record<string, unknown>;
}

const STAGES = ['prepare', 'assemble', 'pkgadd', 'seal'] as const;

async function runOriginal(w: Bench, proto: string, out: string): Promise<RunResult> {
  const uuid = randomUUID();
  const mnt = join(w.dir, `orig-${uuid.slice(0, 8)}`);
  const image = join(out, 'original.zfs.gz');
  const z0 = zfsFuseCpu();
  const t0 = now();
  const r = await execa('bash', [ORIGINAL_SCRIPT, w.datasetRoot, w.originUuid, uuid, mnt, proto, image, ...PACKAGES], { reject: false });
  const total = now() - t0;
  if (r.exitCode !== 0) throw new Error(`original sequence failed: ${r.stderr}`);
  await rm(mnt, { recursive: true, force: true });
  const t = r.stdout.trim().split('\n').pop()!.split(' ').map(Number);
  const stages = Object.fromEntries(STAGES.map((s, i) => [s, t[i + 1] - t[i]]));
  return { stages, total, zfsCpu: zfsFuseCpu() - z0, image };
}

async function runOurs(w: Bench, proto: string, out: string, version: string): Promise<RunResult> {
  const z0 = zfsFuseCpu();
  const t0 = now();
  const child = execa(BIN, ['build', '-i', w.originUuid, '-d', proto, '-m', JSON.stringify({ name: 'benchsvc', version }), '-p', PACKAGES.join(','),
    '--source', w.sampleDir, '--dataset-root', w.datasetRoot, '--output-dir', out, '--json'], {
    // The original has no package cache: like for like, ours fetches every package too (the cache has its own case).
    env: { BUILDIMAGE_WORK_DIR: join(w.dir, 'work'), BUILDIMAGE_LOG_LEVEL: 'warn', BUILDIMAGE_PACKAGE_CACHE_SIZE: '0' },
    reject: false,
    stdin: 'ignore',
  });
  const rss = watchPeakRss(child.pid!);
  const r = await child;
  const total = now() - t0;
  const peak = rss.stop();
  if (r.exitCode !== 0) throw new Error(`buildimage failed: ${r.stderr}`);
  const stdout = String(r.stdout);
  const res = JSON.parse(stdout.slice(stdout.indexOf('{'))) as {
    timings: Record<string, number>;
    image: { outputs: { image: string; manifest: string } };
  };
  const manifest = JSON.parse(await readFile(res.image.outputs.manifest, 'utf8')) as Record<string, unknown>;
  return { stages: res.timings, total, rss: peak, zfsCpu: zfsFuseCpu() - z0, image: res.image.outputs.image, manifest };
}

/** The image is what its manifest says, decompresses, receives, and its tree equals the original's. */
async function validate(w: Bench, ours: RunResult, theirs: RunResult, tag: string, trees: boolean): Promise<string> {
  const file = (ours.manifest!.files as Array<{ sha1: string; size: number }>)[0];
  const st = await stat(ours.image);
  if (st.size !== file.size) throw new Error(`${tag}: size ${st.size} != manifest ${file.size}`);
  if ((await sha1File(ours.image)) !== file.sha1) throw new Error(`${tag}: sha1 differs from the manifest`);
  if (!trees) {
    await execa('gzip', ['-t', ours.image]);
    return `${tag}: sha1/size match the manifest; gzip -t ok (every member's CRC and length)`;
  }
  const described = [];
  for (const [name, img] of [['ours', ours.image], ['theirs', theirs.image]] as const) {
    const safe = tag.replace(/[^\w.-]/g, '');
    const ds = `${w.datasetRoot}/rx-${name}-${safe}`;
    const mnt = join(w.dir, `rx-${name}-${safe}`);
    await execa('sh', ['-c', 'gzip -dc "$1" | zfs receive -u "$2"', 'sh', img, ds]);
    await w.zfs.set(ds, { mountpoint: mnt });
    await w.zfs.mount(ds);
    described.push(await describeTree(mnt));
    await execa('zfs', ['destroy', '-r', ds], { reject: false });
    for (let i = 0; i < 8 && (await w.zfs.exists(ds)); i++) {
      await new Promise((r) => setTimeout(r, 1000));
      await execa('zfs', ['destroy', '-r', ds], { reject: false });
    }
    await rm(mnt, { recursive: true, force: true });
  }
  const diffs = diffTrees(described[0], described[1]);
  if (diffs.length) throw new Error(`${tag}: image trees differ: ${diffs.join('; ')}`);
  return `${tag}: sha1/size match the manifest; gzip -dc | zfs receive ok; received tree equals the original's (${described[0].size} entries: type, mode, owner, size, content sha1, link target)`;
}

// ---------------------------------------------------------------- seal pass

interface SealResult {
  scale: number;
  rawBytes: number;
  ours: number[];
  pigz: number[];
  pigzSha1: number[];
  oursSize: number;
  pigzSize: number;
}

/** A snapshot holding the proto, the way seal sees it. */
async function sealSnapshot(w: Bench, proto: string, scale: number): Promise<{ snap: string; from: string; ds: string }> {
  const ds = `${w.datasetRoot}/sealsrc-${scale}`;
  const mnt = join(w.dir, `sealsrc-${scale}`);
  await execa('zfs', ['clone', '-o', `mountpoint=${mnt}`, `${w.datasetRoot}/${w.originUuid}@final`, ds]);
  await copyTree(proto, join(mnt, 'root'));
  await execa('zfs', ['snapshot', `${ds}@final`]);
  return { snap: `${ds}@final`, from: `${w.datasetRoot}/${w.originUuid}@final`, ds };
}

async function rawSha1(snap: string, from: string): Promise<{ sha1: string; size: number }> {
  const b = await execa('bash', ['-c', 'set -o pipefail; zfs send -i "$1" "$2" | tee >(wc -c >&2) | sha1sum', 'bash', from, snap]);
  return { sha1: b.stdout.split(' ')[0], size: Number(b.stderr.trim()) };
}

async function checkDecompressed(path: string, c: Compression, expectSha1: string): Promise<void> {
  const tool = decompressor(c);
  const cmd = tool ? `${tool.cmd} ${tool.args.join(' ')} < "$1" | sha1sum` : 'sha1sum < "$1"';
  const r = await execa('bash', ['-c', cmd, 'bash', path]);
  if (r.stdout.split(' ')[0] !== expectSha1) throw new Error(`${path}: decompressed stream differs from zfs send's`);
}

async function benchSeal(w: Bench, proto: string, scale: number, runs: number, others: boolean, notes: string[]): Promise<SealResult> {
  const { snap, from, ds } = await sealSnapshot(w, proto, scale);
  const raw = await rawSha1(snap, from);
  const out = join(w.dir, 'seal-out');
  await mkdir(out, { recursive: true });
  const res: SealResult = { scale, rawBytes: raw.size, ours: [], pigz: [], pigzSha1: [], oursSize: 0, pigzSize: 0 };
  for (let i = 0; i < runs; i++) {
    const order = i % 2 ? ['pigz', 'ours'] : ['ours', 'pigz'];
    for (const who of order) {
      if (who === 'ours') {
        const t0 = now();
        const f = await sendCompressed(w.zfs, snap, from, 'gzip', join(out, 'ours.gz'));
        res.ours.push(now() - t0);
        res.oursSize = f.size;
        if (i === 0) {
          if ((await sha1File(join(out, 'ours.gz'))) !== f.sha1) throw new Error('seal: file sha1 differs from the one computed in the pass');
          await checkDecompressed(join(out, 'ours.gz'), 'gzip', raw.sha1);
          const viaPigz = await execa('bash', ['-c', 'pigz -dc < "$1" | sha1sum', 'bash', join(out, 'ours.gz')]);
          if (viaPigz.stdout.split(' ')[0] !== raw.sha1) throw new Error('seal: pigz decompresses our gzip differently');
          const h = createHash('sha1');
          await pipeline(createReadStream(join(out, 'ours.gz')), createGunzip(), new Writable({ write: (c: Buffer, _e, cb) => (h.update(c), cb()) }));
          if (h.digest('hex') !== raw.sha1) throw new Error('seal: Node zlib decompresses our gzip differently');
        }
      } else {
        const t0 = now();
        await execa('bash', ['-c', 'set -o pipefail; zfs send -i "$1" "$2" | pigz -6 > "$3"', 'bash', from, snap, join(out, 'pigz.gz')]);
        const t1 = now();
        await sha1File(join(out, 'pigz.gz'));
        res.pigz.push(t1 - t0);
        res.pigzSha1.push(now() - t0);
        res.pigzSize = (await stat(join(out, 'pigz.gz'))).size;
      }
    }
  }
  notes.push(`seal ${scale}×: our gzip decompresses (gzip, pigz, Node zlib) to zfs send's exact stream (sha1 ${raw.sha1.slice(0, 12)}…, ${raw.size} bytes)`);
  if (others) notes.push(...(await otherCompressions(w, snap, from, `${scale}×`, true)));
  await rm(out, { recursive: true, force: true });
  await execa('zfs', ['destroy', '-r', ds], { reject: false });
  return res;
}

/** xz, bzip2, none: the file is what the pass says and decompresses to zfs send's exact stream; with `timeTools`, against the tool alone. */
async function otherCompressions(w: Bench, snap: string, from: string | undefined, tag: string, timeTools: boolean): Promise<string[]> {
  const notes: string[] = [];
  const raw = from ? await rawSha1(snap, from) : await rawFullSha1(snap);
  const out = join(w.dir, 'other-out');
  await mkdir(out, { recursive: true });
  {
    for (const c of COMPRESSIONS) {
      if (c === 'gzip' && timeTools) continue;
      const path = join(out, `ours${fileSuffix(c)}`);
      const t0 = now();
      const f = await sendCompressed(w.zfs, snap, from, c, path);
      const ours = now() - t0;
      if ((await sha1File(path)) !== f.sha1) throw new Error(`seal ${c}: sha1 mismatch`);
      await checkDecompressed(path, c, raw.sha1);
      let tool = '';
      if (c !== 'none' && timeTools) {
        const cmd = c === 'xz' ? 'xz -c -T0' : 'bzip2 -c';
        const t1 = now();
        await execa('bash', ['-c', `set -o pipefail; zfs send -i "$1" "$2" | ${cmd} > "$3"`, 'bash', from!, snap, join(out, `tool${fileSuffix(c)}`)]);
        tool = `, \`zfs send | ${cmd}\` ${f2(now() - t1)} s`;
      }
      notes.push(`${tag} ${c}: ours ${f2(ours)} s for ${raw.size} bytes (sha1+size in the pass)${tool}; file sha1 as computed; decompresses to zfs send's exact stream`);
      await rm(path, { force: true });
    }
  }
  await rm(out, { recursive: true, force: true });
  return notes;
}

async function rawFullSha1(snap: string): Promise<{ sha1: string; size: number }> {
  const b = await execa('bash', ['-c', 'set -o pipefail; zfs send "$1" | tee >(wc -c >&2) | sha1sum', 'bash', snap]);
  return { sha1: b.stdout.split(' ')[0], size: Number(b.stderr.trim()) };
}


// ---------------------------------------------------------------- tarballs (issue 13, item 2)

interface TarballCase {
  tars: string[];
  sizes: string;
  eng: number[];
  engParts: Array<{ extract: number; chown: number; copy: number }>;
  ours: number[];
  note: string;
}

/**
 * eng's `buildimage` target from tarballs: gtar extracts the release and
 * the agents' tarballs into a stage dir, `chown -R root:root`, then the
 * original sequence's copy of stage/root (`rsync -a`) into a fresh clone;
 * against `buildimage assemble` of the same tarballs into a fresh clone
 * (prepare before, clean after, neither timed). The stage dir is on the
 * host's file system beside the bench (an agent's workspace is on ZFS,
 * which would make eng's extraction slower: this is the conservative side).
 */
async function benchTarballs(w: Bench, runs: number): Promise<TarballCase> {
  const src = join(w.dir, 'tar-src');
  // The release: the 1× service proto as root/, with a site/ beside it (eng's release tarballs have one).
  writeBenchProto(join(src, 'release/root'), { scale: 1 });
  await mkdir(join(src, 'release/site'), { recursive: true });
  await execa('bash', ['-c', 'echo site > "$1/release/site/README"', 'bash', src]);
  // Two agents: node_modules trees of their own (a slice of the service's packages each), as config-agent and registrar ship.
  const mods = join(src, 'release/root/opt/smartdc/benchsvc/node_modules');
  const pkgs = (await execa('bash', ['-c', 'ls "$1" | grep -v "^\\." | sort', 'bash', mods])).stdout.split('\n').filter(Boolean);
  for (const [i, agent] of ['config-agent', 'registrar'].entries()) {
    const d = join(src, agent, 'root/opt/smartdc/agents/lib/node_modules', agent, 'node_modules');
    await mkdir(d, { recursive: true });
    const slice = pkgs.slice(i * 60, i * 60 + 60);
    await execa('cp', ['-a', ...slice.map((p) => join(mods, p)), d]);
    await execa('bash', ['-c', 'echo "{\\"name\\":\\"$2\\"}" > "$1/package.json"', 'bash', join(d, '..'), agent]);
  }
  const tars = [
    join(w.dir, 'benchsvc-pkg-20261201T000000Z-gbench.tar.gz'),
    join(w.dir, 'config-agent.tar.gz'),
    join(w.dir, 'registrar.tar.gz'),
  ];
  // As eng makes them: gtar -z of root (and site), owners as on the build machine.
  await execa('tar', ['-C', join(src, 'release'), '-czf', tars[0], 'root', 'site']);
  for (const [i, agent] of ['config-agent', 'registrar'].entries()) await execa('tar', ['-C', join(src, agent), '-czf', tars[i + 1], 'root']);
  await rm(src, { recursive: true, force: true });
  const sizes = (await Promise.all(tars.map(async (t) => (await stat(t)).size / 1e6))).map((x) => `${x.toFixed(1)} MB`).join(' + ');
  const res: TarballCase = { tars, sizes, eng: [], engParts: [], ours: [], note: '' };
  const env = { BUILDIMAGE_WORK_DIR: join(w.dir, 'work'), BUILDIMAGE_LOG_LEVEL: 'warn' };
  const common = ['--source', w.sampleDir, '--dataset-root', w.datasetRoot];
  for (let i = 0; i < runs; i++) {
    const trees: Record<string, Map<string, string>> = {};
    for (const who of i % 2 ? ['ours', 'eng'] : ['eng', 'ours']) {
      say(`tarballs run ${i + 1}/${runs}: ${who}`);
      if (who === 'eng') {
        const uuid = randomUUID();
        const ds = `${w.datasetRoot}/${uuid}`;
        const mnt = join(w.dir, `eng-${uuid.slice(0, 8)}`);
        const stage = join(w.dir, `stage-${uuid.slice(0, 8)}`);
        await execa('zfs', ['clone', '-o', `mountpoint=${mnt}`, `${w.datasetRoot}/${w.originUuid}@final`, ds]);
        await mkdir(stage);
        const t0 = now();
        for (const t of tars) await execa('tar', ['-C', stage, '-xzf', t]);
        const t1 = now();
        await execa('chown', ['-R', 'root:root', stage]);
        const t2 = now();
        await execa('rsync', ['-a', `${stage}/root/`, `${mnt}/root/`]);
        const t3 = now();
        res.eng.push(t3 - t0);
        res.engParts.push({ extract: t1 - t0, chown: t2 - t1, copy: t3 - t2 });
        say(`  ${f2(t3 - t0)} s (gtar ${f2(t1 - t0)}, chown ${f2(t2 - t1)}, rsync ${f2(t3 - t2)})`);
        if (i === 0) trees.eng = await describeTree(join(mnt, 'root'));
        await rm(stage, { recursive: true, force: true });
        await execa('zfs', ['destroy', '-r', ds], { reject: false });
        await rm(mnt, { recursive: true, force: true });
      } else {
        const state = join(w.dir, `tar-state-${i}.json`);
        const out = join(w.dir, `tar-out-${i}`);
        await mkdir(out, { recursive: true });
        const p = await execa(BIN, ['prepare', '-i', w.originUuid, '-d', tars[0], ...tars.slice(1).flatMap((t) => ['--add', t]),
          '-m', JSON.stringify({ name: 'benchsvc', version: `1.1.${i}` }), ...common, '--output-dir', out, '--state', state, '--json'], { env, reject: false });
        if (p.exitCode !== 0) throw new Error(`buildimage prepare failed: ${p.stderr}`);
        const root = join((JSON.parse(String(p.stdout)) as { analog: { mountpoint: string } }).analog.mountpoint, 'root');
        const t0 = now();
        const a = await execa(BIN, ['assemble', '--state', state], { env, reject: false });
        const t = now() - t0;
        if (a.exitCode !== 0) throw new Error(`buildimage assemble failed: ${a.stderr}`);
        res.ours.push(t);
        say(`  ${f2(t)} s`);
        if (i === 0) trees.ours = await describeTree(root);
        const c = await execa(BIN, ['clean', '--state', state], { env, reject: false });
        if (c.exitCode !== 0) throw new Error(`buildimage clean failed: ${c.stderr}`);
        await rm(out, { recursive: true, force: true });
      }
    }
    if (i === 0) {
      const diffs = diffTrees(trees.eng, trees.ours);
      if (diffs.length) throw new Error(`tarballs: image roots differ: ${diffs.join('; ')}`);
      res.note = `tarballs: the image root assemble made equals eng's (gtar, chown -R, rsync -a) (${trees.ours.size} entries: type, mode, owner, size, content sha1, link target)`;
    }
  }
  return res;
}

function tarballReport(t: TarballCase): string[] {
  const ratios = t.ours.map((x, i) => x / t.eng[i]);
  const med = (xs: number[]) => stats(xs).median;
  return [
    '### Proto from tarballs: `buildimage assemble` / eng\'s gtar + `chown -R` + copy (ratio; min / **median** / max)',
    '',
    `Release tarball + two agent tarballs (${t.sizes}, gzip).`,
    '',
    '| runs | ours / eng | eng (s) | of which gtar / chown -R / rsync -a (s, median) | ours (s) |',
    '|---|---|---|---|---|',
    `| ${t.ours.length} | ${fmtStats(ratios)} | ${fmtStats(t.eng)} | ${f2(med(t.engParts.map((p) => p.extract)))} / ${f2(med(t.engParts.map((p) => p.chown)))} / ${f2(med(t.engParts.map((p) => p.copy)))} | ${fmtStats(t.ours)} |`,
  ];
}

// ---------------------------------------------------------------- several images (issue 16)

interface MultiCase {
  images: number;
  jobs: number;
  proto: string;
  /** Seconds: one `build --jobs` of the definition, and the same images as sequential single builds. */
  multi: number[];
  sequential: number[];
  note: string;
}

/**
 * 4 images from one definition built by one `buildimage build --jobs 2`,
 * against the same 4 built one after the other by single builds (each
 * `build -i -d -m -p`), interleaved pairs; the base is installed before,
 * so both only rebuild. Every image of both is checked to exist.
 */
async function benchMulti(w: Bench, runs: number, protoKind: 'service' | 'small'): Promise<MultiCase> {
  const IMAGES = 4;
  const JOBS = 2;
  const proto = join(w.dir, 'multi-proto');
  let protoText: string;
  if (protoKind === 'service') {
    const ps = writeBenchProto(proto, { scale: 1 });
    protoText = `the 1× service proto (${ps.files} files, ${(ps.bytes / 1e6).toFixed(0)} MB)`;
  } else {
    await mkdir(join(proto, 'opt/smartdc/benchsvc'), { recursive: true });
    await execa('bash', ['-c', 'for i in $(seq 1 200); do echo "module.exports = $i" > "$1/m$i.js"; done', 'bash', join(proto, 'opt/smartdc/benchsvc')]);
    protoText = 'a small proto (200 files), a check that the case runs';
  }
  const env = { BUILDIMAGE_WORK_DIR: join(w.dir, 'work'), BUILDIMAGE_LOG_LEVEL: 'warn' };
  const common = ['--source', w.sampleDir, '--dataset-root', w.datasetRoot];
  const names = Array.from({ length: IMAGES }, (_, i) => `svc${i}`);
  const res: MultiCase = { images: IMAGES, jobs: JOBS, proto: protoText, multi: [], sequential: [], note: '' };
  let v = 0;
  for (let i = 0; i < runs; i++) {
    for (const who of i % 2 ? ['sequential', 'multi'] : ['multi', 'sequential']) {
      const version = `2.0.${++v}`;
      const out = join(w.dir, `multi-out-${v}`);
      await mkdir(out, { recursive: true });
      say(`multi run ${i + 1}/${runs}: ${who}`);
      const t0 = now();
      if (who === 'multi') {
        const def = join(w.dir, `multi-${v}.json`);
        writeFileSync(def, JSON.stringify({ image: w.originUuid, dir: proto, packages: PACKAGES, manifest: { version }, images: names.map((n) => ({ name: n, manifest: { name: n } })) }));
        const r = await execa(BIN, ['build', '--config', def, '--jobs', String(JOBS), ...common, '--output-dir', out, '--json'], { env, reject: false, stdin: 'ignore' });
        if (r.exitCode !== 0) throw new Error(`buildimage build --jobs failed: ${r.stderr}`);
      } else {
        for (const n of names) {
          const r = await execa(BIN, ['build', '-i', w.originUuid, '-d', proto, '-m', JSON.stringify({ name: n, version }), '-p', PACKAGES.join(','), ...common, '--output-dir', out, '--json'], { env, reject: false, stdin: 'ignore' });
          if (r.exitCode !== 0) throw new Error(`buildimage build failed: ${r.stderr}`);
        }
      }
      const t = now() - t0;
      (who === 'multi' ? res.multi : res.sequential).push(t);
      say(`  ${f2(t)} s`);
      for (const n of names) await stat(join(out, `${n}-zfs-${version}.zfs.gz`));
      await rm(out, { recursive: true, force: true });
    }
  }
  await rm(proto, { recursive: true, force: true });
  res.note = `multi: every run made all ${IMAGES} images (each ${PACKAGES.length} packages) both ways`;
  return res;
}

function multiReport(m: MultiCase): string[] {
  return [
    `### ${m.images} images from one definition: \`build --jobs ${m.jobs}\` / ${m.images} sequential single builds (ratio; min / **median** / max)`,
    '',
    `Proto: ${m.proto}; packages ${PACKAGES.join(', ')} in each image. Goal: ≤ 0.6× on 2 cores.`,
    '',
    `| runs | --jobs ${m.jobs} / sequential | --jobs ${m.jobs} (s) | sequential (s) |`,
    '|---|---|---|---|',
    `| ${m.multi.length} | ${fmtStats(m.multi.map((x, i) => x / m.sequential[i]))} | ${fmtStats(m.multi)} | ${fmtStats(m.sequential)} |`,
  ];
}

// ---------------------------------------------------------------- package cache (issue 16, item 5)

/** Links the repository is served over: loopback, and a remote mirror's (100 Mbit/s, 20 ms to the first byte). */
const LINKS = [
  { name: 'loopback', link: undefined },
  { name: '100 Mbit/s, 20 ms', link: { latencyMs: 20, bytesPerSecond: 12.5e6 } },
] as const;

/** Incompressible, deterministic bytes (AES-CTR over zeros): package payloads of a realistic size. */
function noise(seed: string, bytes: number): Buffer {
  const c = createCipheriv('aes-128-ctr', createHash('md5').update(seed).digest(), Buffer.alloc(16));
  return Buffer.concat([c.update(Buffer.alloc(bytes)), c.final()]);
}

/** A package set shaped like a Triton service's (a runtime, its libraries, tools): 8 packages, about 48 MB. */
function cachePackages(): PackageSpec[] {
  const pkg = (name: string, version: string, mb: number, depends: string[] = []): PackageSpec => ({
    name,
    version,
    comment: `bench package ${name}`,
    description: `${name}: ${mb} MB of payload for the package cache bench.`,
    categories: 'misc',
    depends,
    files: [
      { path: `lib/${name}/payload.bin`, content: noise(`${name}-${version}`, mb * 2 ** 20) },
      { path: `bin/${name}`, content: `#!/bin/sh\necho ${name}\n`, mode: 0o755 },
    ],
  });
  return [
    pkg('benchssl', '3.0.15', 4),
    pkg('benchz', '1.3.1', 1),
    pkg('benchnode', '20.18.1', 16, ['benchssl>=3.0', 'benchz>=1.2']),
    pkg('benchperl', '5.40.0', 10),
    pkg('benchpython', '3.12.7', 12, ['benchssl>=3.0', 'benchz>=1.2']),
    pkg('benchcurl', '8.11.0', 2, ['benchssl>=3.0']),
    pkg('benchgsed', '4.9', 1),
    pkg('benchsudo', '1.9.16', 2),
  ];
}

interface CacheRun {
  cold: number;
  warm: number;
  coldGets: number;
  warmGets: number;
  warmHits: number;
}

interface CacheCase {
  packagesMb: number;
  packages: number;
  links: Array<{ name: string; runs: CacheRun[] }>;
  note: string;
}

/**
 * A cold build (empty cache) then a warm rebuild with the same packages,
 * `runs` pairs on each link, the package cache under a work dir of its
 * own; pkgadd's seconds from each build's --json timings, package
 * downloads from the repository server's request log.
 */
async function benchPackageCache(w: Bench, runs: number): Promise<CacheCase> {
  const specs = cachePackages();
  const repoDir = join(w.dir, 'pc-repo');
  const repo = writeRepository(repoDir, [...SAMPLE_PACKAGES, ...specs]);
  const files = repo.packages.filter((p) => specs.some((s) => p.pkgname === `${s.name}-${s.version}`));
  const res: CacheCase = { packagesMb: files.reduce((a, p) => a + p.size, 0) / 1e6, packages: files.length, links: [], note: '' };
  const proto = join(w.dir, 'pc-proto');
  // The bench's work dir, where the base was installed (runOurs leaves the cache off).
  const workDir = join(w.dir, 'work');
  const names = ['benchnode', 'benchpython', 'benchperl', 'benchcurl', 'benchgsed', 'benchsudo'];
  let version = 0;
  const digests: string[] = [];
  for (const { name, link } of LINKS) {
    // Per link: the proto's config files name that link's server.
    const trees = new Set<string>();
    const gets: string[] = [];
    const server = await startRepoServer({ dir: repoDir, link, onRequest: (m, p) => m === 'GET' && /\.(tgz|tbz)$/.test(p) && gets.push(p) });
    // The proto points the image's pkg_install.conf and repositories.conf at this server (as a component's proto could).
    await rm(proto, { recursive: true, force: true });
    await mkdir(join(proto, 'opt/smartdc/benchsvc'), { recursive: true });
    await writeFile(join(proto, 'opt/smartdc/benchsvc/server.js'), 'console.log(1)\n');
    setRepoUrl(proto, server.url);
    const row = { name, runs: [] as CacheRun[] };
    try {
      for (let i = 0; i < runs; i++) {
        await rm(join(workDir, 'cache'), { recursive: true, force: true });
        const one = async (): Promise<{ pkgadd: number; gets: number; hits: number }> => {
          const from = gets.length;
          const out = join(w.dir, `pc-out-${++version}`);
          await mkdir(out, { recursive: true });
          const r = await execa(BIN, ['build', '-i', w.originUuid, '-d', proto, '-m', JSON.stringify({ name: 'benchsvc', version: `2.0.${version}` }), '-p', names.join(','),
            '--source', w.sampleDir, '--dataset-root', w.datasetRoot, '--output-dir', out, '--json'], {
            env: { BUILDIMAGE_WORK_DIR: workDir, BUILDIMAGE_LOG_LEVEL: 'warn', SOURCE_DATE_EPOCH: '1734688800' },
            reject: false,
            stdin: 'ignore',
          });
          if (r.exitCode !== 0) throw new Error(`buildimage failed: ${r.stderr}`);
          const j = JSON.parse(String(r.stdout)) as { timings: Record<string, number>; packageCache?: { hits: number }; image: { outputs: { buildInfo: string } } };
          trees.add((JSON.parse(await readFile(j.image.outputs.buildInfo, 'utf8')) as { contents: { digest: string } }).contents.digest);
          await rm(out, { recursive: true, force: true });
          return { pkgadd: j.timings.pkgadd, gets: gets.length - from, hits: j.packageCache?.hits ?? 0 };
        };
        say(`package cache, ${name}, pair ${i + 1}/${runs}: cold`);
        const cold = await one();
        say(`  pkgadd ${f2(cold.pkgadd)} s, ${cold.gets} packages downloaded; warm`);
        const warm = await one();
        say(`  pkgadd ${f2(warm.pkgadd)} s, ${warm.gets} packages downloaded, ${warm.hits} from the cache`);
        row.runs.push({ cold: cold.pkgadd, warm: warm.pkgadd, coldGets: cold.gets, warmGets: warm.gets, warmHits: warm.hits });
      }
    } finally {
      await server.close();
    }
    res.links.push(row);
    if (trees.size !== 1) throw new Error(`package cache, ${name}: the images differ between cold and warm builds (${trees.size} contents digests)`);
    digests.push([...trees][0]);
  }
  await rm(join(workDir, 'cache'), { recursive: true, force: true });
  res.note = `package cache: on each link every cold and warm image had the same contents digest (${digests.map((d) => `${d.slice(0, 19)}…`).join(', ')}): the cache changes nothing in the image`;
  return res;
}

function packageCacheReport(c: CacheCase): string[] {
  return [
    '### Package cache: warm rebuild / cold build, pkgadd stage (ratio; min / **median** / max)',
    '',
    `${c.packages} packages (${c.packagesMb.toFixed(0)} MB, incompressible) installed with their dependencies by \`-p\`; the cache emptied before each cold build; the repository served on loopback, and paced to a remote mirror's link.`,
    '',
    '| link | pairs | packages downloaded cold | packages downloaded warm (goal 0) | warm / cold pkgadd (goal ≤ 0.5) | cold pkgadd (s) | warm pkgadd (s) |',
    '|---|---|---|---|---|---|---|',
    ...c.links.map((l) => `| ${l.name} | ${l.runs.length} | ${l.runs.map((r) => r.coldGets).join(', ')} | ${l.runs.map((r) => r.warmGets).join(', ')} | ${fmtStats(l.runs.map((r) => r.warm / r.cold))} | ${fmtStats(l.runs.map((r) => r.cold))} | ${fmtStats(l.runs.map((r) => r.warm))} |`),
  ];
}

// ---------------------------------------------------------------- the world

interface Bench {
  zfs: Zfs;
  pool: string;
  poolFile: string;
  datasetRoot: string;
  dir: string;
  sampleDir: string;
  originUuid: string;
}

async function reapStale(): Promise<void> {
  const r = await execa('zpool', ['list', '-H', '-o', 'name'], { reject: false });
  for (const name of String(r.stdout).split('\n').map((s) => s.trim())) {
    const m = /^bibench(\d+)$/.exec(name);
    if (m && !pidAlive(Number(m[1]))) await destroyFilePool(name, `/var/tmp/buildimage-bench/${name}.img`).catch(() => undefined);
  }
}

function machine(): string {
  const cpu = cpus();
  const fuse = !Number.isNaN(zfsFuseCpu());
  return [
    `- CPU: ${cpu.length} × ${cpu[0]?.model ?? '?'}; RAM ${(totalmem() / 2 ** 30).toFixed(0)} GiB`,
    `- kernel: ${sh('uname -sr')}; Node ${process.version}`,
    `- ZFS: ${fuse ? `zfs-fuse ${sh("dpkg-query -W -f '${Version}' zfs-fuse 2>/dev/null")}` : 'kernel ZFS'}, file-backed pool on a sparse file in /var/tmp`,
    `- ${sh('rsync --version | head -1')}; ${sh('pigz --version 2>&1')}; ${sh('gzip --version | head -1')}`,
  ].join('\n');
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const zfs = new Zfs();
  const startedAt = new Date();
  const load0 = loadavg();
  await reapStale();
  const maxScale = Math.max(...o.scales);
  // Pool: the largest proto twice (a build's clone and the seal snapshot), images and received copies.
  const poolGiB = Math.max(8, Math.ceil(maxScale * 0.3 * 5 + o.rssGb * 2.5 + 2));
  await mkdir(o.dir, { recursive: true });
  const df = await execa('df', ['-B1', '--output=avail', o.dir]);
  const avail = Number(String(df.stdout).split('\n')[1]);
  const need = (poolGiB + maxScale * 0.3 * 2 + o.rssGb) * 2 ** 30;
  if (avail < need) throw new Error(`need ~${(need / 2 ** 30).toFixed(0)} GiB free in ${o.dir}, have ${(avail / 2 ** 30).toFixed(0)} GiB`);

  const pool = `bibench${process.pid}`;
  const poolFile = join(o.dir, `${pool}.img`);
  const dir = join(o.dir, `run-${process.pid}`);
  await mkdir(dir, { recursive: true });
  say(`pool ${pool} (${poolGiB} GiB sparse) in ${o.dir}`);
  await ensureFilePool(pool, poolFile, poolGiB);
  const server = await startRepoServer({ dir: (writeRepository(join(dir, 'repo'), SAMPLE_PACKAGES), join(dir, 'repo')) });
  const report: string[] = [];
  try {
    const datasetRoot = `${pool}/images`;
    await zfs.create(datasetRoot);
    const sampleDir = join(dir, 'sample');
    const images = await makeSampleImages({ zfs, datasetRoot, outDir: sampleDir, repoUrl: server.url, tmpDir: dir });
    const w: Bench = { zfs, pool, poolFile, datasetRoot, dir, sampleDir, originUuid: images.origin.uuid };
    // The base is imported once, as on a build machine that built before (the original tool assumes it too).
    await installImage({ zfs, layout: new Layout(datasetRoot, join(dir, 'work')), source: await openSource(sampleDir) }, images.origin.uuid);

    const notes: string[] = [];
    if (o.only === 'multi') {
      const m = await benchMulti(w, o.runs, o.multiProto);
      const load1 = loadavg();
      report.push(`## Results, several images only (${startedAt.toISOString().slice(0, 16)}Z)`, '', machine(), `- load average at start ${load0.map(f2).join(' ')}, at end ${load1.map(f2).join(' ')}`, '');
      report.push(...multiReport(m), '', `- ${m.note}`, '', `Bench wall time: ${((Date.now() - startedAt.getTime()) / 60000).toFixed(1)} min.`, '');
      const text = report.join('\n');
      console.log(text);
      if (o.write) writeFileSync(o.write, text + '\n');
      return;
    }
    if (o.only === 'package-cache') {
      const c = await benchPackageCache(w, o.runs);
      const load1 = loadavg();
      report.push(`## Results, package cache only (${startedAt.toISOString().slice(0, 16)}Z)`, '', machine(), `- load average at start ${load0.map(f2).join(' ')}, at end ${load1.map(f2).join(' ')}`, '');
      report.push(...packageCacheReport(c), '', `- ${c.note}`, '', `Bench wall time: ${((Date.now() - startedAt.getTime()) / 60000).toFixed(1)} min.`, '');
      const text = report.join('\n');
      console.log(text);
      if (o.write) writeFileSync(o.write, text + '\n');
      return;
    }
    if (o.only === 'tarballs') {
      const t = await benchTarballs(w, o.runs);
      const load1 = loadavg();
      report.push(`## Results, tarballs only (${startedAt.toISOString().slice(0, 16)}Z)`, '', machine(), `- load average at start ${load0.map(f2).join(' ')}, at end ${load1.map(f2).join(' ')}`, '');
      report.push(...tarballReport(t), '', `- ${t.note}`, '', `Bench wall time: ${((Date.now() - startedAt.getTime()) / 60000).toFixed(1)} min.`, '');
      const text = report.join('\n');
      console.log(text);
      if (o.write) writeFileSync(o.write, text + '\n');
      return;
    }
    // Every compression, byte-exact, on the sample images (full and incremental streams).
    const img = (u: string) => `${datasetRoot}/${u}@final`;
    notes.push(...(await otherCompressions(w, img(images.origin.uuid), img(images.base.uuid), 'sample origin image (incremental stream)', false)));
    notes.push(...(await otherCompressions(w, img(images.base.uuid), undefined, 'sample base image (full stream)', false)));
    const rows: Array<{ scale: number; proto: ProtoStats; ours: RunResult[]; theirs: RunResult[] }> = [];
    const seals: SealResult[] = [];
    let version = 0;
    for (const scale of o.scales) {
      const proto = join(dir, `proto-${scale}`);
      say(`writing the ${scale}× proto`);
      const ps = writeBenchProto(proto, { scale });
      say(`${scale}×: ${ps.files} files, ${(ps.bytes / 1e6).toFixed(0)} MB, ${ps.dirs} dirs, ${ps.symlinks} symlinks`);
      const runs = scale === o.scales[0] ? o.runs : o.scaleRuns;
      const row = { scale, proto: ps, ours: [] as RunResult[], theirs: [] as RunResult[] };
      for (let i = 0; i < runs; i++) {
        const out = join(dir, `out-${scale}-${i}`);
        await mkdir(out, { recursive: true });
        const pair: Record<string, RunResult> = {};
        for (const who of i % 2 ? ['ours', 'original'] : ['original', 'ours']) {
          say(`${scale}× run ${i + 1}/${runs}: ${who}`);
          pair[who] = who === 'ours' ? await runOurs(w, proto, out, `1.0.${++version}`) : await runOriginal(w, proto, out);
          say(`  ${f2(pair[who].total)} s (${STAGES.map((s) => `${s} ${f2(pair[who].stages[s] ?? NaN)}`).join(', ')})`);
        }
        row.ours.push(pair.ours);
        row.theirs.push(pair.original);
        if (i === 0) notes.push(await validate(w, pair.ours, pair.original, `${scale}×`, scale === o.scales[0]));
        await rm(out, { recursive: true, force: true });
      }
      rows.push(row);
      if (o.sealRuns > 0) {
        say(`${scale}× seal pass: ours vs zfs send | pigz`);
        seals.push(await benchSeal(w, proto, scale, scale === o.scales[0] ? o.sealRuns : 1, o.otherCompressions && scale === o.scales[0], notes));
      }
      await rm(proto, { recursive: true, force: true });
    }

    let rssLine = '';
    if (o.rssGb > 0) {
      const proto = join(dir, 'proto-rss');
      say(`peak RSS: a ${o.rssGb} GiB image`);
      writeBenchProto(proto, { scale: 1 });
      // Big, barely compressible files so the image itself is ~rssGb GiB.
      await mkdir(join(proto, 'opt/smartdc/benchsvc/data'), { recursive: true });
      const chunks = Math.ceil(o.rssGb * 1024 / 256) ;
      for (let i = 0; i < chunks; i++) {
        await execa('bash', ['-c', `head -c ${256 * 2 ** 20} /dev/urandom > "$1"`, 'bash', join(proto, `opt/smartdc/benchsvc/data/blob${i}`)]);
      }
      const out = join(dir, 'out-rss');
      await mkdir(out, { recursive: true });
      const r = await runOurs(w, proto, out, `1.0.${++version}`);
      const size = (await stat(r.image)).size;
      rssLine = `| ${o.rssGb} GiB image (${(size / 2 ** 30).toFixed(2)} GiB .zfs.gz) | ${(r.rss! / 2 ** 20).toFixed(0)} MiB | ${f2(r.total)} s (${STAGES.map((s) => `${s} ${f2(r.stages[s] ?? NaN)}`).join(', ')}) |`;
      await rm(out, { recursive: true, force: true });
      await rm(proto, { recursive: true, force: true });
    }

    say('several images: 4 from one definition with --jobs 2 vs 4 sequential builds');
    const multi = await benchMulti(w, o.scaleRuns, o.multiProto);
    notes.push(multi.note);

    say('package cache: cold build, then warm rebuild');
    const cacheCase = await benchPackageCache(w, o.runs);
    notes.push(cacheCase.note);

    // ------------------------------------------------------------ report
    const load1 = loadavg();
    report.push(`## Results (${startedAt.toISOString().slice(0, 16)}Z)`, '', machine(), `- load average at start ${load0.map(f2).join(' ')}, at end ${load1.map(f2).join(' ')} (other work on the machine shows as spread)`, '');
    report.push('### Build: ours / original (ratio; min / **median** / max over runs)', '');
    report.push('| proto | runs | prepare | assemble (copy) | pkgadd | seal | whole build | original whole (s) | ours whole (s) | ours peak RSS | zfs-fuse CPU ours / original |');
    report.push('|---|---|---|---|---|---|---|---|---|---|---|');
    for (const r of rows) {
      const ratio = (s: (x: RunResult) => number) => fmtStats(r.ours.map((x, i) => s(x) / s(r.theirs[i])));
      report.push(
        `| ${r.scale}× (${r.proto.files} files, ${(r.proto.bytes / 1e6).toFixed(0)} MB) | ${r.ours.length} | ` +
          STAGES.map((s) => ratio((x) => x.stages[s])).join(' | ') +
          ` | ${ratio((x) => x.total)} | ${fmtStats(r.theirs.map((x) => x.total))} | ${fmtStats(r.ours.map((x) => x.total))} | ${(Math.max(...r.ours.map((x) => x.rss!)) / 2 ** 20).toFixed(0)} MiB | ${fmtStats(r.ours.map((x, i) => x.zfsCpu / r.theirs[i].zfsCpu))} |`,
      );
    }
    report.push('', 'prepare: the original\'s is only `zfs clone` (it assumes the base imported); ours looks the base up, checks it is imported, takes the lock, clones and mounts. The base is imported before the runs, so every run is a rebuild.', '', 'Absolute seconds, median (ours vs original):', '');
    report.push('| proto | prepare | assemble | pkgadd | seal |', '|---|---|---|---|---|');
    for (const r of rows) {
      const med = (xs: RunResult[], s: string) => stats(xs.map((x) => x.stages[s])).median;
      report.push(`| ${r.scale}× | ${STAGES.map((s) => `${f2(med(r.ours, s))} vs ${f2(med(r.theirs, s))}`).join(' | ')} |`);
    }
    if (rows.length > 1) {
      const base = rows[0];
      report.push('', '### Growth with proto size (median whole build, relative to the smallest proto)', '');
      report.push('| proto | ours | original |', '|---|---|---|');
      for (const r of rows) {
        const g = (xs: RunResult[], b: RunResult[]) => stats(xs.map((x) => x.total)).median / stats(b.map((x) => x.total)).median;
        report.push(`| ${r.scale}× | ${f2(g(r.ours, base.ours))}× | ${f2(g(r.theirs, base.theirs))}× |`);
      }
    }
    if (seals.length) {
      report.push('', '### Seal pass: `zfs send -i | compress` on the same snapshot', '');
      report.push('Throughput = raw send-stream MB / wall s. Ours = buildimage\'s `sendCompressed` (gzip in-process on every core, sha1 and size in the same pass); pigz = `zfs send | pigz -6 > file` (no hash), pigz+sha1 = the same followed by reading the file for its sha1, as the original did.', '');
      report.push('| proto | runs | send stream | ours MB/s | pigz MB/s | ours / pigz | pigz+sha1 MB/s | ours / pigz+sha1 | file ours / pigz |', '|---|---|---|---|---|---|---|---|---|');
      for (const s of seals) {
        const mbps = (xs: number[]) => stats(xs.map((t) => s.rawBytes / 1e6 / t)).median;
        report.push(
          `| ${s.scale}× | ${s.ours.length} | ${(s.rawBytes / 1e6).toFixed(0)} MB | ${mbps(s.ours).toFixed(1)} | ${mbps(s.pigz).toFixed(1)} | ${fmtStats(s.ours.map((t, i) => s.pigz[i] / t))} | ${mbps(s.pigzSha1).toFixed(1)} | ${fmtStats(s.ours.map((t, i) => s.pigzSha1[i] / t))} | ${(s.oursSize / s.pigzSize).toFixed(3)} |`,
        );
      }
    }
    if (rssLine) report.push('', '### Peak RSS of one build (VmHWM of the buildimage process)', '', '| image | peak RSS | time |', '|---|---|---|', rssLine);
    report.push('', ...multiReport(multi));
    report.push('', ...packageCacheReport(cacheCase));
    report.push('', '### Checks', '', ...notes.map((n) => `- ${n}`), '', `Bench wall time: ${((Date.now() - startedAt.getTime()) / 60000).toFixed(1)} min.`, '');
    const text = report.join('\n');
    console.log(text);
    if (o.write) writeFileSync(o.write, text + '\n');
  } finally {
    await server.close();
    if (!o.keep) {
      say('cleaning up');
      await destroyFilePool(pool, poolFile).catch((e) => say(`could not destroy ${pool}: ${(e as Error).message}`));
      await rm(dir, { recursive: true, force: true });
      await rmdir(o.dir).catch(() => undefined); // only when empty: never another run's files
    }
  }
}

main().catch((err) => {
  console.error(`bench: ${(err as Error).stack ?? err}`);
  process.exitCode = 1;
});
