/**
 * Reliability on real ZFS: signals, kill -9 at bad moments, full disks,
 * timeouts, concurrency, and bases that try to point mounts at the host.
 * Every failure leaves the machine as it found it, apart from a cached,
 * whole base image.
 */
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { processesIn } from '../../src/host/chroot.js';
import { run } from '../../src/host/exec.js';
import { sendCompressed } from '../../src/image/streams.js';
import { createPackage } from '../../testbed/packages.js';
import { writeZoneDataset } from '../../testbed/zoneroot.js';
import { cli, errorLines, REPO, startCli } from '../helpers/cli.js';
import { assertNoLeaks } from '../helpers/leaks.js';
import { world, type World } from '../helpers/world.js';

describe('reliability', function () {
  this.timeout(10 * 60 * 1000);
  let w: World;
  let proto: string;
  const mf = JSON.stringify({ name: 'rel', version: '1.0.0' });
  /** Images this suite imported on purpose (they stay cached, as they should). */
  const cached: string[] = [];
  const images = () => [w.base.uuid, w.origin.uuid, ...cached];

  before(async () => {
    w = await world();
    proto = join(w.dir, 'proto-rel');
    await mkdir(join(proto, 'opt/rel'), { recursive: true });
    await writeFile(join(proto, 'opt/rel/app.js'), 'x\n');
    // A package whose @exec takes a while: a build to interrupt in pkgadd.
    createPackage(join(w.repoDir, 'All'), {
      name: 'slowpkg',
      version: '1.0',
      comment: 'Takes its time installing',
      description: 'Sleeps in @exec so tests can interrupt pkg_add.',
      files: [{ path: 'share/slowpkg/README', content: 'slow\n' }],
      exec: ['sleep 60'],
    });
  });

  async function noStrayProcesses(): Promise<void> {
    assert.deepEqual(await processesIn(w.workDir), [], 'no process left running in a build root');
  }

  // SIGHUP: a closed terminal or Jenkins console cleans up as SIGTERM does (the other stages: test/hostile/signals-and-paths).
  for (const [signal, code] of [['SIGTERM', 143], ['SIGINT', 130], ['SIGHUP', 129]] as const) {
    it(`${signal} during pkg_add stops children, cleans up and exits ${code}`, async () => {
      const out = await w.outDir();
      const b = startCli(['-i', w.origin.uuid, '-d', proto, '-m', mf, '-p', 'slowpkg', '--output-dir', out], { ...w.env }, /Executing 'sleep 60'|pkg_add -U slowpkg/);
      await b.ready;
      await new Promise((r) => setTimeout(r, 500));
      b.child.kill(signal);
      const r = await b.child;
      assert.equal(r.exitCode, code, b.stderr());
      assert.match(String(r.stderr), new RegExp(`buildimage: error: interrupted by ${signal}`));
      await noStrayProcesses();
      await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir: w.workDir, outputDir: out, images: images() });
    });
  }

  it('a reader that goes away (stdout and stderr closed, as `| head` does) does not stop the build: it finishes and cleans up', async () => {
    const out = await w.outDir();
    const b = startCli(['-i', w.origin.uuid, '-d', proto, '-m', mf, '-p', 'greeter', '--output-dir', out], { ...w.env }, /== assemble/);
    await b.ready;
    b.child.stdout!.destroy();
    b.child.stderr!.destroy();
    const r = await b.child;
    assert.equal(r.exitCode, 0, `exit ${r.exitCode} ${r.signal ?? ''}: ${b.stderr()}`);
    const names = await readdir(out);
    assert.ok(names.some((n) => n.endsWith('.zfs.gz')) && names.some((n) => n.endsWith('.imgmanifest')), names.join(' '));
    await noStrayProcesses();
    await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir: w.workDir, outputDir: out, images: images() });
  });

  it('kill -9 mid-pkgadd: clean --state undoes it, and a new prepare on the same state works', async () => {
    const out = await w.outDir();
    const state = join(w.dir, `k9-${randomUUID().slice(0, 8)}.json`);
    let r = await cli(['prepare', '-i', w.origin.uuid, '-d', proto, '-m', mf, '-p', 'slowpkg', '--state', state, '--output-dir', out], { env: w.env });
    assert.equal(r.code, 0, r.stderr);
    r = await cli(['assemble', '--state', state], { env: w.env });
    assert.equal(r.code, 0, r.stderr);
    const b = startCli(['pkgadd', '--state', state], w.env, /pkg_add -U slowpkg/);
    await b.ready;
    await new Promise((res) => setTimeout(res, 500));
    b.child.kill('SIGKILL');
    await b.child;
    const analog = JSON.parse(await readFile(state, 'utf8')).analog;
    assert.ok(await w.zfs.exists(analog.dataset), 'the killed build left its analog');
    r = await cli(['clean', '--state', state], { env: w.env });
    assert.equal(r.code, 0, r.stderr);
    await noStrayProcesses();
    await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir: w.workDir, outputDir: out, images: images() });

    // Killed again, then the next job's prepare on the same state file takes over.
    r = await cli(['prepare', '-i', w.origin.uuid, '-d', proto, '-m', mf, '--state', state, '--output-dir', out], { env: w.env });
    assert.equal(r.code, 0, r.stderr);
    const first = JSON.parse(await readFile(state, 'utf8')).analog.dataset;
    r = await cli(['prepare', '-i', w.origin.uuid, '-d', proto, '-m', mf, '--state', state, '--output-dir', out], { env: w.env });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /whose process is gone; cleaning it up first/);
    assert.equal(await w.zfs.exists(first), false);
    for (const st of ['assemble', 'pkgadd', 'seal']) {
      r = await cli([st, '--state', state], { env: w.env });
      assert.equal(r.code, 0, r.stderr);
    }
    await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir: w.workDir, images: images() });
  });

  it('kill -9 mid-send: clean --state removes the half-written image and the analog', async () => {
    const big = await mkdtemp(join(w.dir, 'proto-send-'));
    for (let i = 0; i < 6; i++) await writeFile(join(big, `blob${i}`), randomBytes(8 * 1024 * 1024));
    const out = await w.outDir();
    const state = join(w.dir, `send-${randomUUID().slice(0, 8)}.json`);
    for (const args of [
      ['prepare', '-i', w.origin.uuid, '-d', big, '-m', mf, '--state', state, '--output-dir', out, '--compression', 'xz'],
      ['assemble', '--state', state],
      ['pkgadd', '--state', state],
    ]) {
      const r = await cli(args, { env: w.env });
      assert.equal(r.code, 0, r.stderr);
    }
    const b = startCli(['seal', '--state', state], w.env, /sending /);
    await b.ready;
    await new Promise((res) => setTimeout(res, 300));
    b.child.kill('SIGKILL');
    await b.child;
    const left = await readdir(out);
    const r = await cli(['clean', '--state', state], { env: w.env });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await readdir(out), [], `temp outputs removed (were: ${left.join(' ')})`);
    await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir: w.workDir, outputDir: out, images: images() });
    await rm(big, { recursive: true, force: true });
  });

  it('a step that overruns --timeout fails naming it, and cleans up', async () => {
    const out = await w.outDir();
    const r = await cli(['-i', w.origin.uuid, '-d', proto, '-m', mf, '-p', 'slowpkg', '--output-dir', out, '--timeout', '3s'], { env: w.env });
    assert.equal(r.code, 1, r.stderr);
    assert.match(errorLines(r)[0], /timed out after 3s: .*pkg_add -U slowpkg/);
    await noStrayProcesses();
    await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir: w.workDir, outputDir: out, images: images() });
  });

  it('a dataset root too small for the proto fails at copy with a clear message', async () => {
    const small = `${w.datasetRoot}/small${randomUUID().slice(0, 6)}`;
    await w.zfs.create(small, { quota: '24M' });
    await w.zfs.markOwned(small, 'image');
    const big = await mkdtemp(join(w.dir, 'proto-big-'));
    for (let i = 0; i < 8; i++) await writeFile(join(big, `blob${i}`), randomBytes(5 * 1024 * 1024));
    const out = await w.outDir();
    try {
      const r = await cli(['-i', w.origin.uuid, '-d', big, '-m', mf, '--output-dir', out, '--dataset-root', small], { env: w.env });
      assert.equal(r.code, 1, r.stderr);
      assert.match(errorLines(r)[0], /no space left copying .* into the image.*pool or quota is full/);
      await assertNoLeaks({ datasetRoot: small, workDir: w.workDir, outputDir: out, images: images() });
    } finally {
      await w.zfs.destroyOwned(small);
      await rm(big, { recursive: true, force: true });
    }
  });

  it('four builds at once from a base not yet imported: all succeed, the base is imported once', async () => {
    // The sample chain under fresh uuids, in a directory source of its own.
    const src = join(w.dir, `conc-${randomUUID().slice(0, 8)}`);
    await mkdir(src);
    const base = JSON.parse(await readFile(join(w.sampleDir, 'minimal-64-lts-sample-24.4.1.imgmanifest'), 'utf8'));
    const origin = JSON.parse(await readFile(join(w.sampleDir, 'triton-origin-sample-24.4.1.imgmanifest'), 'utf8'));
    base.uuid = randomUUID();
    origin.uuid = randomUUID();
    origin.origin = base.uuid;
    cached.push(base.uuid, origin.uuid);
    for (const [m, stem] of [[base, 'minimal-64-lts-sample-24.4.1'], [origin, 'triton-origin-sample-24.4.1']] as const) {
      await writeFile(join(src, `${stem}.imgmanifest`), JSON.stringify(m));
      await run('cp', [join(w.sampleDir, `${stem}.zfs.gz`), join(src, `${stem}.zfs.gz`)]);
    }
    const outs = await Promise.all([1, 2, 3, 4].map(() => w.outDir()));
    const results = await Promise.all(
      outs.map((out, i) => cli(['-i', origin.uuid, '-d', proto, '-m', JSON.stringify({ name: `c${i}`, version: '1' }), '-p', 'greeter', '--output-dir', out, '--source', src], { env: w.env })),
    );
    for (const r of results) assert.equal(r.code, 0, r.stderr);
    const imports = results.map((r) => (r.stderr.match(new RegExp(`importing image ${base.uuid}`, 'g')) ?? []).length);
    assert.equal(imports.reduce((a, b) => a + b, 0), 1, 'base imported by exactly one build');
    const uuids = new Set<string>();
    for (const [i, out] of outs.entries()) {
      const m = JSON.parse(await readFile(join(out, `c${i}-zfs-1.imgmanifest`), 'utf8'));
      uuids.add(m.uuid);
      assert.equal(m.origin, origin.uuid);
    }
    assert.equal(uuids.size, 4, 'each build has its own image uuid');
    await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir: w.workDir, images: images() });
  });

  it('clean --all during a running build leaves that build alone', async () => {
    const out = await w.outDir();
    const b = startCli(['-i', w.origin.uuid, '-d', proto, '-m', mf, '-p', 'slowpkg', '--output-dir', out, '--timeout', '5s'], { ...w.env }, /pkg_add -U slowpkg/);
    await b.ready;
    const r = await cli(['clean', '--all', '--json'], { env: w.env });
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout);
    assert.equal(report.destroyed.length, 0, `nothing destroyed: ${r.stdout}`);
    assert.equal(report.skipped.length, 1);
    const done = await b.child;
    // The build itself then times out in slowpkg's @exec and cleans up after itself.
    assert.equal(done.exitCode, 1);
    assert.match(String(done.stderr), /timed out after 5s/);
    assert.doesNotMatch(String(done.stderr), /does not belong|not created by buildimage|no longer exists/);
    await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir: w.workDir, outputDir: out, images: images(), context: String(done.stderr) });
  });

  it('a base whose root/lib is a symlink to the host gets no mount over the host', async () => {
    // A full image whose /lib points at the host's /lib: mounting there would shadow the host.
    const ds = `${w.datasetRoot}/evil-scratch`;
    const mnt = join(w.dir, 'evil-mnt');
    await w.zfs.create(ds, { mountpoint: mnt });
    await w.zfs.markOwned(ds, 'image');
    const src = join(w.dir, `evil-${randomUUID().slice(0, 8)}`);
    await mkdir(src);
    const uuid = randomUUID();
    cached.push(uuid);
    try {
      await writeZoneDataset(mnt, { repoUrl: w.repoUrl });
      await rm(join(mnt, 'root/lib'), { recursive: true });
      await symlink('/lib', join(mnt, 'root/lib'));
      await w.zfs.snapshot(`${ds}@final`);
      const file = await sendCompressed(w.zfs, `${ds}@final`, undefined, 'gzip', join(src, 'evil.zfs.gz'));
      const m = { v: 2, uuid, owner: '00000000-0000-0000-0000-000000000000', name: 'evil', version: '1', state: 'active', type: 'zone-dataset', os: 'smartos', published_at: '2025-01-01T00:00:00Z', files: [file] };
      await writeFile(join(src, 'evil.imgmanifest'), JSON.stringify(m));
    } finally {
      await w.zfs.destroyOwned(ds);
    }
    const before = await readdir('/lib');
    const out = await w.outDir();
    const r = await cli(['-i', uuid, '-d', proto, '-m', mf, '--output-dir', out, '--source', src], { env: w.env });
    assert.equal(r.code, 1, r.stderr);
    const context = r.stderr;
    assert.match(errorLines(r)[0], new RegExp(`base image ${uuid}: .*/root/lib is a symlink \\(to /lib\\), not a directory: refusing to write or mount through it`));
    assert.deepEqual(await readdir('/lib'), before);
    const mounts = (await readFile('/proc/self/mounts', 'utf8')).split('\n').filter((l) => / \/lib /.test(l));
    assert.deepEqual(mounts, [], 'nothing mounted on the host /lib');
    await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir: w.workDir, outputDir: out, images: images(), context });
  });

  it('no child process is started through a shell', async () => {
    const offenders: string[] = [];
    async function scan(dir: string): Promise<void> {
      for (const e of await readdir(dir, { withFileTypes: true })) {
        const p = join(dir, e.name);
        if (e.isDirectory()) await scan(p);
        else if (e.name.endsWith('.ts')) {
          const text = await readFile(p, 'utf8');
          if (/shell:\s*true|execSync\(|exec\(\s*['"`]|['"]sh['"],\s*\[\s*['"]-c['"]/.test(text)) offenders.push(p);
        }
      }
    }
    await scan(join(REPO, 'src'));
    await scan(join(REPO, 'commands'));
    assert.deepEqual(offenders, []);
  });
});

