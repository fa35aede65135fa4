/**
 * The contents listing on real ZFS: a build writes `<stem>.contents.json.gz`
 * (proto and package files, deletions, links by their text) with its
 * content digest in build-info; two builds from the same inputs under one
 * SOURCE_DATE_EPOCH have the same digest and an image whose times are
 * clamped; `buildimage diff` of two builds that differ in one file.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { lstat, mkdir, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BuildResultSchema, DiffResultSchema } from '../../src/cli/schemas.js';
import { readListing } from '../../src/contents/file.js';
import { contentTypeFor } from '../../src/publish/bits.js';
import { Layout } from '../../src/core/layout.js';
import { BUILD_PROPERTY, OWNER_PROPERTY } from '../../src/host/zfs.js';
import type { Entry, Listing } from '../../src/contents/listing.js';
import { cli, errorLines } from '../helpers/cli.js';
import { assertNoLeaks } from '../helpers/leaks.js';
import { verifyPoolWithChain, world, type World } from '../helpers/world.js';

const EPOCH = 1_700_000_000;
const SERVER_JS = 'require("http").createServer().listen(80)\n';
const sha256 = (b: string | Buffer) => createHash('sha256').update(b).digest('hex');

async function makeProto(dir: string, server = SERVER_JS): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  await mkdir(join(dir, 'opt/smartdc/svc/node_modules/dep'), { recursive: true });
  await writeFile(join(dir, 'opt/smartdc/svc/server.js'), server);
  await writeFile(join(dir, 'opt/smartdc/svc/node_modules/dep/index.js'), 'module.exports = 1\n');
  await writeFile(join(dir, 'opt/smartdc/svc/bin.sh'), '#!/bin/sh\nexec node server.js\n', { mode: 0o755 });
  await symlink('server.js', join(dir, 'opt/smartdc/svc/main.js'));
}

interface Built {
  out: string;
  stem: string;
  listing: Listing;
  info: { contents?: { digest: string; added: number; changed: number; deleted: number } };
  manifest: { uuid: string; published_at: string };
  stderr: string;
}

describe('contents listing on real ZFS', function () {
  this.timeout(15 * 60 * 1000);
  let w: World;
  const built: Record<string, Built> = {};

  async function build(tag: string, proto: string, env: Record<string, string> = {}): Promise<Built> {
    const out = await w.outDir();
    const r = await cli(
      ['-i', w.origin.uuid, '-d', proto, '-m', JSON.stringify({ name: 'svc', version: '1.0.0' }), '-p', 'daemonkit', '-u', '-M', '-P', 'svc-zfs', '--output-dir', out, '--json'],
      { env: { ...w.env, ...env } },
    );
    assert.equal(r.code, 0, r.stderr);
    const result = BuildResultSchema.parse(JSON.parse(r.stdout));
    const stem = join(out, 'svc-zfs-1.0.0');
    assert.equal(result.image?.outputs.contents, `${stem}.contents.json.gz`);
    const b: Built = {
      out,
      stem,
      listing: await readListing(`${stem}.contents.json.gz`),
      info: JSON.parse(await readFile(`${stem}.build-info.json`, 'utf8')),
      manifest: JSON.parse(await readFile(`${stem}.imgmanifest`, 'utf8')),
      stderr: r.stderr,
    };
    built[tag] = b;
    return b;
  }

  before(async () => {
    w = await world();
  });

  it('a build writes the listing beside the image: proto and package files, deletions, links as text; its digest in build-info', async () => {
    const proto = join(w.dir, 'proto-contents');
    await makeProto(proto);
    const b = await build('a', proto, { SOURCE_DATE_EPOCH: String(EPOCH) });
    assert.ok((await readdir(b.out)).includes('svc-zfs-1.0.0.contents.json.gz'));
    const m = new Map<string, Entry>(b.listing.entries.map((e) => [e.path, e]));
    assert.deepEqual(m.get('/opt/smartdc/svc/server.js'), {
      path: '/opt/smartdc/svc/server.js',
      change: 'added',
      type: 'file',
      mode: '0644',
      uid: 0,
      gid: 0,
      size: SERVER_JS.length,
      sha256: sha256(SERVER_JS),
    });
    assert.equal(m.get('/opt/smartdc/svc/bin.sh')?.mode, '0755');
    assert.deepEqual(m.get('/opt/smartdc/svc/main.js'), { path: '/opt/smartdc/svc/main.js', change: 'added', type: 'symlink', mode: '0777', uid: 0, gid: 0, target: 'server.js' });
    // The package's files and its pkgdb entry.
    const pkgFiles = [...m.keys()].filter((p) => p.startsWith('/opt/local/pkg/daemonkit-'));
    assert.ok(pkgFiles.some((p) => p.endsWith('/+CONTENTS')), `daemonkit in the pkgdb: ${pkgFiles.join(' ')}`);
    assert.ok(b.listing.entries.some((e) => e.change === 'added' && e.type === 'file' && /^\/opt\/local\/(s?bin|lib|etc)\//.test(e.path) && e.sha256), 'a package file with its sha256');
    // -u upgraded what the origin had: the old version's pkgdb entry is deleted, and /etc/motd changed.
    const deleted = b.listing.entries.filter((e) => e.change === 'deleted');
    assert.ok(deleted.length > 0, 'deletions listed');
    assert.deepEqual(m.get('/opt/local/pkg/greeter-1.0/+CONTENTS'), { path: '/opt/local/pkg/greeter-1.0/+CONTENTS', change: 'deleted', type: 'file' });
    assert.equal(m.get('/opt/local/bin/greeter')?.change, 'changed');
    assert.ok(deleted.every((e) => Object.keys(e).sort().join() === 'change,path,type'));
    assert.equal(m.get('/etc/motd')?.change, 'changed');
    assert.equal(m.get('/etc'), undefined, 'the base is not listed');
    assert.equal(m.get('/usr'), undefined);

    assert.deepEqual(b.info.contents, { digest: b.listing.contentDigest, ...b.listing.counts });
    assert.deepEqual(b.listing.origin, { uuid: w.origin.uuid, name: w.origin.name, version: w.origin.version });
    assert.equal(b.listing.image.uuid, b.manifest.uuid);
    assert.match(b.stderr, /contents: \d+ added, \d+ changed, \d+ deleted against/);
    assert.match(b.stderr, /SOURCE_DATE_EPOCH: times of \d+ entries clamped to 2023-11-14T22:13:20.000Z/);
    await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir: w.workDir, outputDir: b.out, context: b.stderr });
  });

  it('two builds from the same inputs under one SOURCE_DATE_EPOCH: the same content digest, published_at and clamped times', async () => {
    const a = built.a;
    assert.ok(a, 'runs after the first test');
    const b = await build('b', join(w.dir, 'proto-contents'), { SOURCE_DATE_EPOCH: String(EPOCH) });
    assert.notEqual(a.manifest.uuid, b.manifest.uuid);
    assert.equal(b.listing.contentDigest, a.listing.contentDigest, 'same content digest');
    assert.deepEqual(b.listing.entries, a.listing.entries);
    assert.equal(b.manifest.published_at, new Date(EPOCH * 1000).toISOString());
    assert.equal(a.manifest.published_at, b.manifest.published_at);

    // The image as a compute node gets it: no time in it later than the epoch.
    const rx = await verifyPoolWithChain(w);
    const mnt = join(w.dir, 'rx-contents');
    try {
      await rx.receive(`${b.stem}.zfs.gz`, b.manifest.uuid, mnt);
      const late: string[] = [];
      const walk = async (dir: string): Promise<void> => {
        for (const name of await readdir(dir)) {
          const p = join(dir, name);
          const st = await lstat(p);
          if (st.mtimeMs > EPOCH * 1000) late.push(p);
          if (st.isDirectory()) await walk(p);
        }
      };
      await walk(join(mnt, 'root'));
      assert.deepEqual(late, [], 'no mtime later than SOURCE_DATE_EPOCH');
      assert.equal((await lstat(join(mnt, 'root/opt/smartdc/svc/server.js'))).mtimeMs, EPOCH * 1000);
    } finally {
      await rx.destroy();
    }
  });

  it('buildimage diff: two builds that differ in one file, through the real CLI', async () => {
    const a = built.a;
    assert.ok(a, 'runs after the first test');
    const proto = join(w.dir, 'proto-contents-2');
    await makeProto(proto, 'require("http").createServer().listen(8080)\n');
    const c = await build('c', proto, { SOURCE_DATE_EPOCH: String(EPOCH) });
    const A = `${a.stem}.contents.json.gz`;
    const C = `${c.stem}.contents.json.gz`;

    const text = await cli(['diff', A, C]);
    assert.equal(text.code, 1, `differ: exit 1\n${text.stderr}`);
    const lines = text.stdout.trim().split('\n');
    assert.deepEqual(
      lines.filter((l) => !l.startsWith('---') && !l.startsWith('+++')),
      ['/opt: 1 changed', '  ~ /opt/smartdc/svc/server.js: content (42 -> 44 bytes)', 'diff: 0 added, 0 removed, 1 changed'],
      text.stdout,
    );

    const json = await cli(['diff', A, C, '--json']);
    assert.equal(json.code, 1);
    const d = DiffResultSchema.parse(JSON.parse(json.stdout));
    assert.deepEqual(d.counts, { added: 0, removed: 0, changed: 1 });
    assert.equal(d.groups[0].changed[0].b?.sha256, sha256('require("http").createServer().listen(8080)\n'));

    const same = await cli(['diff', A, `${built.b.stem}.contents.json.gz`]);
    assert.equal(same.code, 0, same.stderr);
    assert.match(same.stdout, new RegExp(`diff: same contents \\(${a.listing.contentDigest}\\)$`));

    // Publish takes the listing with the image's other files; `diff` reads the published copy.
    const dest = join(w.dir, 'pub-contents');
    const pub = await cli(['publish', '-L', '-d', dest, '-b', 'master', '-n', 'svc', '-t', 'master-1', '-D', c.out, '--json'], { cwd: w.dir, timeoutMs: 60_000 });
    assert.equal(pub.code, 0, pub.stderr);
    const up = (JSON.parse(pub.stdout) as { steps: Array<{ op: string; path: string }> }).steps.filter((s) => s.op === 'upload' && s.path.endsWith('/svc-zfs-1.0.0.contents.json.gz'));
    assert.equal(up.length, 1, pub.stdout);
    assert.equal((await cli(['diff', up[0].path, C])).code, 0);
    assert.equal(contentTypeFor('svc-zfs-1.0.0.contents.json.gz'), 'application/gzip');

    const missing = await cli(['diff', A, join(c.out, 'nope.contents.json.gz')]);
    assert.equal(missing.code, 2);
    assert.deepEqual(errorLines(missing), [`buildimage: error: listing B (${join(c.out, 'nope.contents.json.gz')}): no such file (give the .contents.json.gz file a build wrote beside its image)`]);
  });

  it("a seal killed while the origin clone exists: clean (by the state file, or --all) destroys it with the analog", async () => {
    const proto = join(w.dir, 'proto-contents-kill');
    await makeProto(proto);
    const out = await w.outDir();
    const mf = JSON.stringify({ name: 'svc', version: '9.9.9' });
    for (const [i, all] of [false, true].entries()) {
      const state = join(w.dir, `contents-kill-${i}.json`);
      const p = await cli(['prepare', '-i', w.origin.uuid, '-d', proto, '-m', mf, '--state', state, '--output-dir', out], { env: w.env });
      assert.equal(p.code, 0, p.stderr);
      const s = JSON.parse(await readFile(state, 'utf8'));
      // As seal leaves it when killed mid-listing: recorded, then made.
      const view = new Layout(w.datasetRoot, w.workDir).originView(s.buildId);
      if (!all) {
        // A state file naming another dataset as the origin clone is refused before anything is done.
        await writeFile(state, JSON.stringify({ ...s, originView: { ...view, dataset: `${w.datasetRoot}/${w.origin.uuid}` } }), { mode: 0o600 });
        const bad = await cli(['clean', '--state', state], { env: w.env });
        assert.equal(bad.code, 2, bad.stderr);
        assert.match(errorLines(bad)[0], /names origin clone .* which this build does not own \(its origin clone is .*\/origin\); nothing was done/);
        assert.ok(await w.zfs.exists(`${w.datasetRoot}/${w.origin.uuid}@final`));
      }
      s.originView = view;
      await writeFile(state, JSON.stringify(s), { mode: 0o600 });
      await mkdir(view.mountpoint, { recursive: true });
      await w.zfs.clone(`${w.datasetRoot}/${w.origin.uuid}@final`, view.dataset, { mountpoint: view.mountpoint, readonly: 'on', [OWNER_PROPERTY]: 'origin-view', [BUILD_PROPERTY]: s.buildId });
      assert.ok(await w.zfs.exists(view.dataset));
      const c = all ? await cli(['clean', '--all', '--include-kept', '--dataset-root', w.datasetRoot, '--work-dir', w.workDir]) : await cli(['clean', '--state', state], { env: w.env });
      assert.equal(c.code, 0, c.stderr);
      assert.equal(await w.zfs.exists(view.dataset), false, 'the origin clone is gone');
      await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir: w.workDir, outputDir: out, context: c.stderr });
    }
  });
});
