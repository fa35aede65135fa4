/**
 * Scripts in the image (--run, buildimage.json "scripts") on real ZFS: two
 * scripts and a host hook whose effects (a user in /etc/passwd, a chown'd directory, the
 * docs removed) are in the sealed image received back and in its contents
 * listing; a clean environment (no credential of the agent's); a failing
 * script and one that times out fail the build with one line, and nothing
 * they started (background children too) is left running or mounted.
 */
import assert from 'node:assert/strict';
import { lstat, mkdir, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BuildInfoSchema } from '../../src/build/build-info.js';
import { readListing } from '../../src/contents/file.js';
import { cli, errorLines, type CliResult } from '../helpers/cli.js';
import { assertNoLeaks } from '../helpers/leaks.js';
import { verifyPoolWithChain, world, type World } from '../helpers/world.js';

/** Pids whose command line is exactly `argv` (a sleep with a duration no other test uses). */
export async function processesRunning(argv: string[]): Promise<number[]> {
  const want = argv.join('\0');
  const out: number[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const cmd = await readFile(`/proc/${name}/cmdline`, 'utf8').catch(() => '');
    if (cmd.replace(/\0$/, '') === want) out.push(Number(name));
  }
  return out;
}

const SECRETS = { MANTA_KEY_ID: 'aa:bb:secret-key-id', GITHUB_TOKEN: 'ghp_secret_token_value', SSH_AUTH_SOCK: '/tmp/agent.secret', AWS_SECRET_ACCESS_KEY: 'secret-aws' };

describe('scripts in the image on real ZFS', function () {
  this.timeout(10 * 60 * 1000);
  let w: World;
  let proto: string;

  before(async () => {
    w = await world();
    proto = join(w.dir, 'proto-scripts');
    await rm(proto, { recursive: true, force: true });
    await mkdir(join(proto, 'opt/svc'), { recursive: true });
    await writeFile(join(proto, 'opt/svc/server.js'), 'console.log(1)\n');
  });

  async function expectFailure(r: CliResult, re: RegExp, out: string): Promise<void> {
    assert.equal(r.code, 1, r.stderr);
    const lines = errorLines(r);
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0], re);
    await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir: w.workDir, outputDir: out, context: r.stderr });
    assert.deepEqual(await readdir(out), [], 'no outputs from a failed build');
  }

  it('a build with two scripts: their effects are in the sealed image and its contents listing; a clean environment; nothing left running', async () => {
    const def = join(w.dir, 'def-scripts');
    await rm(def, { recursive: true, force: true });
    await mkdir(join(def, 'scripts'), { recursive: true });
    await writeFile(
      join(def, 'scripts/10-user.sh'),
      [
        '#!/bin/sh',
        'set -e',
        'echo "adding user svc"',
        "echo 'svc:x:901:901:service:/home/svc:/bin/sh' >> /etc/passwd",
        'mkdir -p /opt/svc/data',
        'chown 901:901 /opt/svc/data',
        // A background child: stopped when the script is done, the build goes on.
        'sleep 1718 &',
        'echo "user added"',
        '',
      ].join('\n'),
    );
    await writeFile(
      join(def, 'scripts/20-clean.sh'),
      [
        '#!/bin/sh',
        'test -e /opt/local/share/doc/greeter/NEWS || { echo "no docs to remove" >&2; exit 7; }',
        'rm -rf /opt/local/share/doc',
        'env | sort > /etc/script-env',
        'echo "pid 1 here: $(cat /proc/1/cmdline | tr "\\0" " ")"',
        'printf "no newline at the end"',
        '',
      ].join('\n'),
    );
    await writeFile(
      join(def, 'buildimage.json'),
      JSON.stringify({
        scripts: ['scripts/10-user.sh', { path: 'scripts/20-clean.sh', env: { SVC_USER: 'svc', GREETING: 'hello world' } }],
        // And a hook on the host (issue 17: two scripts and a hook, each with its effect in the image).
        hooks: { 'after.assemble': ['sh', '-c', 'echo "$BUILDIMAGE_STAGE" > "$BUILDIMAGE_ROOT/etc/hooked"'] },
      }),
    );
    const out = await w.outDir();
    const r = await cli(['--config', join(def, 'buildimage.json'), '-i', w.origin.uuid, '-d', proto, '-m', JSON.stringify({ name: 'scripted', version: '1.0.0' }), '-u', '--output-dir', out], {
      env: { ...w.env, ...SECRETS },
    });
    assert.equal(r.code, 0, r.stderr);
    // Each output line in the log, prefixed with the script's name; the last one without its newline too.
    assert.match(r.stderr, /10-user\.sh: adding user svc/);
    assert.match(r.stderr, /10-user\.sh: user added/);
    assert.match(r.stderr, /20-clean\.sh: no newline at the end/);
    assert.match(r.stderr, /20-clean\.sh: pid 1 here: \/usr\/bin\/sleep infinity/, 'the script is in a PID namespace of its own');
    assert.deepEqual(await processesRunning(['sleep', '1718']), [], 'the background child was stopped');
    await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir: w.workDir, outputDir: out, context: r.stderr });

    const stem = join(out, 'scripted-zfs-1.0.0');
    const info = BuildInfoSchema.parse(JSON.parse(await readFile(`${stem}.build-info.json`, 'utf8')));
    assert.deepEqual(
      info.inputs.scripts?.map((s) => s.name),
      ['10-user.sh', '20-clean.sh'],
    );
    assert.equal(info.inputs.scripts?.[0].path, join(def, 'scripts/10-user.sh'));
    assert.match(info.inputs.scripts[0].sha256, /^[0-9a-f]{64}$/);

    // The contents listing has the scripts' effects, and nothing of the scripts themselves.
    const listing = await readListing(`${stem}.contents.json.gz`);
    const m = new Map(listing.entries.map((e) => [e.path, e]));
    assert.equal(m.get('/etc/passwd')?.change, 'changed');
    assert.deepEqual({ ...m.get('/opt/svc/data') }, { path: '/opt/svc/data', change: 'added', type: 'dir', mode: '0755', uid: 901, gid: 901 });
    assert.ok(![...m.keys()].some((p) => p.startsWith('/opt/local/share/doc')), 'the docs are not in the image');
    assert.ok(![...m.keys()].some((p) => p.includes('.buildimage-script')), 'no script left in the image');
    assert.equal(m.get('/etc/hooked')?.change, 'added', 'the after.assemble hook wrote into the image root');

    // The image itself, received back.
    const mnt = join(w.dir, 'rx-scripts');
    const rx = await verifyPoolWithChain(w);
    try {
      const manifest = JSON.parse(await readFile(`${stem}.imgmanifest`, 'utf8'));
      await rx.receive(`${stem}.zfs.gz`, manifest.uuid, mnt);
      const root = join(mnt, 'root');
      assert.match(await readFile(join(root, 'etc/passwd'), 'utf8'), /\nsvc:x:901:901:service:\/home\/svc:\/bin\/sh\n$/);
      const st = await stat(join(root, 'opt/svc/data'));
      assert.deepEqual([st.isDirectory(), st.uid, st.gid], [true, 901, 901]);
      await assert.rejects(lstat(join(root, 'opt/local/share/doc')), 'docs removed');
      assert.ok((await stat(join(root, 'opt/local/bin/greeter'))).isFile(), 'the packages are there');
      assert.equal(await readFile(join(root, 'etc/hooked'), 'utf8'), 'assemble\n', "the hook's file, with the stage it ran after");
      assert.deepEqual((await readdir(root)).filter((n) => n.startsWith('.buildimage')), []);
      for (const d of ['dev', 'proc']) assert.deepEqual(await readdir(join(root, d)), [], `${d} is an empty mountpoint`);
      // The clean environment: the base, the definition's variables, what sh itself sets; nothing of the agent's.
      const env = Object.fromEntries(
        (await readFile(join(root, 'etc/script-env'), 'utf8'))
          .trim()
          .split('\n')
          .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
      );
      assert.deepEqual(
        Object.keys(env).filter((k) => !['PWD', 'SHLVL', 'OLDPWD', '_'].includes(k)).sort(),
        ['GREETING', 'HOME', 'LANG', 'LC_ALL', 'PATH', 'SVC_USER', 'TZ'],
      );
      assert.equal(env.HOME, '/root');
      assert.equal(env.TZ, 'UTC');
      assert.equal(env.LANG, 'C');
      assert.equal(env.GREETING, 'hello world');
      const text = await readFile(join(root, 'etc/script-env'), 'utf8');
      for (const v of Object.values(SECRETS)) assert.ok(!text.includes(v), `${v} reached the script`);
    } finally {
      await rx.destroy();
      await rm(mnt, { recursive: true, force: true });
    }
  });

  it('a failing script fails the build with one line naming it and its exit status; what it started is stopped; nothing left', async () => {
    const dir = join(w.dir, 'fail-scripts');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'fail.sh'), '#!/bin/sh\necho "about to fail"\nsleep 1719 &\nexit 3\n');
    const out = await w.outDir();
    const r = await cli(['-i', w.origin.uuid, '-d', proto, '-m', JSON.stringify({ name: 'failing', version: '1.0.0' }), '--run', join(dir, 'fail.sh'), '--output-dir', out], { env: w.env });
    await expectFailure(r, /^buildimage: error: script fail\.sh failed with exit status 3 \(its output is in the log/, out);
    assert.match(r.stderr, /fail\.sh: about to fail/);
    assert.deepEqual(await processesRunning(['sleep', '1719']), []);
  });

  it('a script that runs too long is killed with its background children (--timeout); nothing left', async () => {
    const dir = join(w.dir, 'slow-scripts');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'slow.sh'), '#!/bin/sh\nsleep 1720 &\necho started\nsleep 1721\n');
    const out = await w.outDir();
    const r = await cli(
      ['-i', w.origin.uuid, '-d', proto, '-m', JSON.stringify({ name: 'slow', version: '1.0.0' }), '--run', join(dir, 'slow.sh'), '--timeout', '20s', '--output-dir', out],
      { env: w.env },
    );
    await expectFailure(r, /^buildimage: error: script slow\.sh timed out after 20s; it was stopped with everything it started \(raise --timeout/, out);
    assert.deepEqual(await processesRunning(['sleep', '1720']), []);
    assert.deepEqual(await processesRunning(['sleep', '1721']), []);
  });

  it('discrete stages run the script defined at prepare, and refuse one changed since', async () => {
    const dir = join(w.dir, 'staged-scripts');
    await mkdir(dir, { recursive: true });
    const script = join(dir, 'mark.sh');
    await writeFile(script, '#!/bin/sh\necho staged > /etc/staged\n');
    const out = await w.outDir();
    const state = join(dir, 'state.json');
    const o = { env: { ...w.env, BUILDIMAGE_STATE: state } };
    let r = await cli(['prepare', '-i', w.origin.uuid, '-d', proto, '-m', JSON.stringify({ name: 'staged', version: '1.0.0' }), '--run', script, '--output-dir', out], o);
    assert.equal(r.code, 0, r.stderr);
    r = await cli(['assemble'], o);
    assert.equal(r.code, 0, r.stderr);
    await writeFile(script, '#!/bin/sh\necho changed > /etc/staged\n');
    r = await cli(['pkgadd'], o);
    assert.equal(r.code, 1, r.stderr);
    assert.match(errorLines(r)[0], /^buildimage: error: script mark\.sh \(.*mark\.sh\) changed since the build was defined: sha256 [0-9a-f]{64}, defined as [0-9a-f]{64} \(/);
    await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir: w.workDir, outputDir: out, context: r.stderr });

    // Again, unchanged between the stages: its effect is in the image.
    await rm(state, { force: true });
    r = await cli(['prepare', '-i', w.origin.uuid, '-d', proto, '-m', JSON.stringify({ name: 'staged', version: '1.0.0' }), '--run', script, '--output-dir', out], o);
    assert.equal(r.code, 0, r.stderr);
    for (const stage of ['assemble', 'pkgadd', 'seal']) {
      r = await cli([stage], o);
      assert.equal(r.code, 0, r.stderr);
    }
    const listing = await readListing(join(out, 'staged-zfs-1.0.0.contents.json.gz'));
    const e = listing.entries.find((x) => x.path === '/etc/staged');
    assert.equal(e?.change, 'added');
    assert.equal(e?.size, 'changed\n'.length);
    await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir: w.workDir, outputDir: out, context: r.stderr });
  });
});
