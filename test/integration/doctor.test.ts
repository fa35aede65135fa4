/**
 * `buildimage doctor` through the real CLI: ready on the test world, each
 * broken piece named with its fix and exit 1, network checks against the
 * local IMGAPI and Manta servers, bounded in time, and nothing left behind.
 */
import assert from 'node:assert/strict';
import { chmod, chown, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { DoctorResultSchema } from '../../src/cli/schemas.js';
import type { DoctorResult } from '../../src/setup/doctor.js';
import { cli } from '../helpers/cli.js';
import { findAll, parseXml } from '../helpers/xml.js';
import { serveSampleChain, world, type World } from '../helpers/world.js';
import { startImgapiServer } from '../servers/imgapi-server.js';
import { MantaTestServer } from '../servers/manta-server.js';
import { nodeRsaKey, tempDir } from '../servers/ssh-keys.js';

function check(r: DoctorResult, id: string) {
  const c = r.checks.find((x) => x.id === id);
  assert.ok(c, `check ${id} present`);
  return c;
}

/** A port with nothing listening: bound, then released. */
async function deadPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}

describe('doctor (CLI)', function () {
  this.timeout(120_000);
  let w: World;
  before(async () => {
    w = await world();
  });

  it('is ready on the test world: every needed check ok, --json parses, no probe dataset left', async () => {
    const r = await cli(['doctor', '-i', w.origin.uuid, '--output-dir', await w.outDir(), '--json'], { env: w.env });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const res = DoctorResultSchema.parse(JSON.parse(r.stdout));
    assert.equal(res.ok, true);
    for (const id of ['privileges', 'zfs', 'dataset-root', 'work-dir', 'output-dir', 'tools', 'source']) {
      assert.notEqual(check(res, id).status, 'fail', `${id}: ${check(res, id).detail}`);
    }
    assert.match(check(res, 'dataset-root').detail, /takes new datasets/);
    // Asked, or (after a build in this run installed it) not needed.
    assert.match(check(res, 'source').detail, new RegExp(`has ${w.origin.uuid}|base ${w.origin.uuid} .*is installed with its manifest`));
    assert.equal(check(res, 'manta').status, 'skip');
    const left = (await w.zfs.listChildren(w.datasetRoot)).filter((d) => d.includes('buildimage-doctor'));
    assert.deepEqual(left, []);
  });

  it('names each broken piece with its fix and exits 1', async () => {
    const dir = await tempDir('bi-doctor-');
    try {
      await writeFile(join(dir, 'afile'), 'x');
      const r = await cli(['doctor', '--dataset-root', `${w.datasetRoot}/missing`, '--source', join(dir, 'nosuch'), '--output-dir', join(dir, 'afile', 'sub')], {
        env: { BUILDIMAGE_WORK_DIR: join(dir, 'work') },
      });
      assert.equal(r.code, 1, r.stdout + r.stderr);
      const lines = r.stdout.split('\n');
      const fixAfter = (re: RegExp) => {
        const i = lines.findIndex((l) => re.test(l));
        assert.ok(i >= 0, `a line matching ${re}:\n${r.stdout}`);
        assert.match(lines[i + 1], /^\s+fix: \S/, `fix under ${lines[i]}`);
      };
      fixAfter(/^FAIL\s+dataset-root\s+.*missing does not exist/);
      fixAfter(/^FAIL\s+output-dir\s+/);
      fixAfter(/^FAIL\s+source\s+/);
      assert.match(lines.filter(Boolean).pop()!, /^doctor: 3 checks failed/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('--junit FILE: a JUnit report for Jenkins, one case per check, failures and skips as doctor judged them', async () => {
    const dir = await tempDir('bi-doctor-');
    try {
      const report = join(dir, 'reports', 'doctor.xml');
      const r = await cli(['doctor', '--dataset-root', `${w.datasetRoot}/missing`, '--source', join(dir, 'nosuch'), '--junit', report, '--json'], {
        env: { BUILDIMAGE_WORK_DIR: join(dir, 'work') },
      });
      assert.equal(r.code, 1, r.stdout + r.stderr);
      const res = DoctorResultSchema.parse(JSON.parse(r.stdout));
      const root = parseXml(await readFile(report, 'utf8'));
      const cases = findAll(root, 'testcase');
      assert.deepEqual(cases.map((c) => c.attrs.name), res.checks.map((c) => c.id));
      for (const [i, c] of res.checks.entries()) {
        assert.equal(findAll(cases[i], 'failure').length, c.status === 'fail' ? 1 : 0, c.id);
        assert.equal(findAll(cases[i], 'skipped').length, c.status === 'skip' ? 1 : 0, c.id);
      }
      const failed = cases.find((c) => c.attrs.name === 'dataset-root')!;
      assert.match(findAll(failed, 'failure')[0].text, /missing does not exist\nfix: zfs create -p /);
      assert.equal(findAll(root, 'testsuite')[0].attrs.failures, String(res.failed));
      assert.equal(findAll(root, 'testsuite')[0].attrs.skipped, '2');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('fails the work dir as a build would refuse it: writable by others, or owned by another user', async () => {
    const dir = await tempDir('bi-doctor-');
    try {
      const work = join(dir, 'work');
      await mkdir(work);
      await chmod(work, 0o777);
      const r = await cli(['doctor', '--output-dir', await w.outDir(), '--json'], { env: { ...w.env, BUILDIMAGE_WORK_DIR: work } });
      assert.equal(r.code, 1, r.stdout + r.stderr);
      const c = check(DoctorResultSchema.parse(JSON.parse(r.stdout)), 'work-dir');
      assert.equal(c.status, 'fail');
      assert.match(c.detail, /writable by others/);
      await chmod(work, 0o755);
      await chown(work, 4242, 4242);
      const r2 = await cli(['doctor', '--output-dir', await w.outDir(), '--json'], { env: { ...w.env, BUILDIMAGE_WORK_DIR: work } });
      assert.match(check(DoctorResultSchema.parse(JSON.parse(r2.stdout)), 'work-dir').detail, /owned by uid 4242/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('asks an IMGAPI source for the base image; a dead one fails fast', async () => {
    const srv = await startImgapiServer();
    try {
      // New uuids: not installed, so the source is asked.
      const chain = await serveSampleChain(srv, w);
      const env = { ...w.env, BUILDIMAGE_SOURCE: srv.url };
      let r = await cli(['doctor', '-i', chain.origin, '--json'], { env });
      let res = DoctorResultSchema.parse(JSON.parse(r.stdout));
      assert.equal(check(res, 'source').status, 'ok', check(res, 'source').detail);
      assert.match(check(res, 'source').detail, new RegExp(`answers.*has ${chain.origin} \\(triton-origin-sample@`));

      r = await cli(['doctor', '-i', '00000000-0000-4000-8000-00000000dead', '--json'], { env });
      assert.equal(r.code, 1);
      res = DoctorResultSchema.parse(JSON.parse(r.stdout));
      assert.match(check(res, 'source').detail, /not found/);

      const t0 = Date.now();
      r = await cli(['doctor', '--json', '--source', `http://127.0.0.1:${await deadPort()}`], { env: w.env });
      assert.equal(r.code, 1);
      res = DoctorResultSchema.parse(JSON.parse(r.stdout));
      assert.equal(check(res, 'source').status, 'fail');
      assert.ok(check(res, 'source').fix);
      assert.ok(Date.now() - t0 < 30_000, 'bounded');
    } finally {
      await srv.close();
    }
  });

  it('--publish checks the key and that Manta accepts it', async () => {
    const home = await tempDir('bi-doctor-home-');
    const key = nodeRsaKey();
    await mkdir(join(home, '.ssh'), { recursive: true });
    await writeFile(join(home, '.ssh', 'id_rsa'), key.pem, { mode: 0o600 });
    await writeFile(join(home, '.ssh', 'id_rsa.pub'), key.pubLine + '\n');
    const manta = await MantaTestServer.start({ Joyent_Dev: { keys: [key.pubLine] } });
    try {
      const env = { ...w.env, HOME: home, MANTA_URL: manta.url, MANTA_USER: 'Joyent_Dev' };
      let r = await cli(['doctor', '--publish', '--json'], { env });
      let res = DoctorResultSchema.parse(JSON.parse(r.stdout));
      assert.equal(check(res, 'credentials').status, 'ok', check(res, 'credentials').detail);
      assert.equal(check(res, 'manta').status, 'ok', check(res, 'manta').detail);
      // publish -p would sign with ~/.ssh/id_rsa (updates-imgadm's default): doctor says so rather than warning.
      assert.equal(check(res, 'updates-credentials').status, 'ok', check(res, 'updates-credentials').detail);
      assert.match(check(res, 'updates-credentials').detail, new RegExp(`from ${join(home, '.ssh', 'id_rsa')}`));

      r = await cli(['doctor', '--publish', '--json'], { env: { ...env, MANTA_USER: 'someone_else' } });
      res = DoctorResultSchema.parse(JSON.parse(r.stdout));
      assert.equal(r.code, 1);
      assert.equal(check(res, 'manta').status, 'fail');

      r = await cli(['doctor', '--publish', '--json'], { env: { ...env, HOME: join(home, 'empty') } });
      res = DoctorResultSchema.parse(JSON.parse(r.stdout));
      assert.equal(check(res, 'credentials').status, 'fail');
      assert.match(check(res, 'credentials').fix!, /MANTA_KEY_ID/);
      assert.equal(check(res, 'updates-credentials').status, 'warn', 'no key at all: -p could not sign');
    } finally {
      await manta.close();
      await rm(home, { recursive: true, force: true });
    }
  });
});
