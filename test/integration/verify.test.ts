/**
 * Provenance end to end through the real CLI on the test world: a build
 * where publish's key is at hand signs its provenance at seal and `verify`
 * accepts the image (and rejects it after one byte changes, or with another
 * key); build-info carries sha256/sha512 of every output; a build with no
 * key still succeeds, and `publish --state` signs its provenance before
 * uploading it, with SHA256SUMS that the real `sha256sum -c` accepts.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { BuildInfoSchema } from '../../src/build/build-info.js';
import { PublishResultSchema, VerifyResultSchema } from '../../src/cli/schemas.js';
import { sha256Fingerprint, parsePublicKeyLine } from '../../src/http/signature.js';
import { cli, errorLines } from '../helpers/cli.js';
import { assertNoLeaks } from '../helpers/leaks.js';
import { world, type World } from '../helpers/world.js';
import { sshKeygen, type TestKey } from '../servers/ssh-keys.js';

const hex = (alg: string, b: Buffer) => createHash(alg).update(b).digest('hex');

describe('provenance and verify (CLI)', function () {
  this.timeout(10 * 60 * 1000);
  let w: World;
  let home: string;
  let empty: string;
  let key: TestKey;
  let other: TestKey;
  let proto: string;
  /** publish's key in ~/.ssh, named by MANTA_KEY_ID; no agent. */
  const keyed = () => ({ ...w.env, HOME: home, MANTA_KEY_ID: sha256Fingerprint(parsePublicKeyLine(key.pubLine).blob), SSH_AUTH_SOCK: '' });
  /** No key anywhere: no MANTA_KEY_ID, an empty home, no agent. */
  const keyless = () => ({ ...w.env, HOME: empty, MANTA_KEY_ID: '', SSH_AUTH_SOCK: '' });

  before(async () => {
    w = await world();
    home = join(w.dir, 'prov-home');
    empty = join(w.dir, 'prov-empty-home');
    await mkdir(join(home, '.ssh'), { recursive: true, mode: 0o700 });
    await mkdir(empty, { recursive: true });
    key = await sshKeygen(join(home, '.ssh'), 'id_rsa', 'rsa', { bits: 2048 });
    other = await sshKeygen(w.dir, 'prov_other', 'ed25519');
    proto = join(w.dir, 'prov-proto');
    await mkdir(join(proto, 'opt/app'), { recursive: true });
    await writeFile(join(proto, 'opt/app/run.sh'), '#!/bin/sh\necho hi\n', { mode: 0o755 });
  });

  const build = async (name: string, env: Record<string, string>, state?: string) => {
    const out = await w.outDir();
    const r = await cli(
      ['build', '-i', w.origin.uuid, '-d', proto, '-m', JSON.stringify({ name, version: '1.0.0' }), '-p', 'greeter', '--output-dir', out, ...(state ? ['--state', state] : [])],
      { env: { ...env, BUILD_URL: 'https://jenkins.example/job/prov/3/' } },
    );
    assert.equal(r.code, 0, r.stderr);
    return { out, stem: join(out, `${name}-zfs-1.0.0`), stderr: r.stderr, stdout: r.stdout };
  };

  it('a build with the key signs at seal; verify accepts the image, rejects one changed byte, another key and a tampered payload', async () => {
    const b = await build('prov', keyed());
    const image = `${b.stem}.zfs.gz`;
    const prov = `${b.stem}.provenance.dsse.json`;
    assert.ok(b.stdout.trim().split('\n').pop()!.includes(prov), 'the result line names the provenance');
    assert.match(b.stderr, /provenance signed with SHA256:/);

    // build-info: the image's sha256/sha512 from seal's pass, and every other output's.
    const bytes = await readFile(image);
    const info = BuildInfoSchema.parse(JSON.parse(await readFile(`${b.stem}.build-info.json`, 'utf8')));
    assert.equal(info.image.file.sha256, hex('sha256', bytes));
    assert.equal(info.image.file.sha512, hex('sha512', bytes));
    for (const [k, suffix] of [['manifest', '.imgmanifest'], ['packages', '.packages.json']]) {
      const body = await readFile(b.stem + suffix);
      assert.deepEqual(info.outputs?.[k], { sha256: hex('sha256', body), sha512: hex('sha512', body), size: body.length }, k);
    }

    // The statement: subject, the base chain, packages, builder, BUILD_URL.
    const env = JSON.parse(await readFile(prov, 'utf8'));
    assert.equal(env.payloadType, 'application/vnd.in-toto+json');
    const st = JSON.parse(Buffer.from(env.payload, 'base64').toString());
    assert.deepEqual(st.subject, [{ name: 'prov-zfs-1.0.0.zfs.gz', digest: { sha256: hex('sha256', bytes), sha1: hex('sha1', bytes) } }]);
    const deps = st.predicate.buildDefinition.resolvedDependencies as { uri?: string; digest?: Record<string, string>; annotations?: Record<string, unknown> }[];
    assert.deepEqual(deps.slice(0, 2).map((d) => [d.uri, d.digest?.sha1]), [
      [`urn:uuid:${w.origin.uuid}`, w.origin.files![0].sha1],
      [`urn:uuid:${w.base.uuid}`, w.base.files![0].sha1],
    ]);
    assert.ok(deps.some((d) => d.uri === `file://${proto}` && /^[0-9a-f]{64}$/.test(d.digest?.sha256 ?? '')), 'the proto with its tree digest');
    assert.ok(deps.some((d) => d.uri === 'pkg:pkgsrc/greeter@1.1'), 'greeter with its resolved version');
    assert.equal(st.predicate.runDetails.metadata.invocationId, 'https://jenkins.example/job/prov/3/');
    assert.deepEqual(st.predicate.buildDefinition.externalParameters.packages, ['greeter']);

    const pub = `${key.path}.pub`;
    let r = await cli(['verify', image, '--key', pub]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim().split('\n').length, 1);
    assert.match(r.stdout, /^verified prov-zfs-1\.0\.0\.zfs\.gz: sha256 [0-9a-f]{64} signed by SHA256:/);
    r = await cli(['verify', image, '--key', pub, '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(VerifyResultSchema.safeParse(JSON.parse(r.stdout)).success, r.stdout);

    // One byte of the image changed.
    const bad = join(b.out, 'changed.zfs.gz');
    const flipped = Buffer.from(bytes);
    flipped[flipped.length >> 1] ^= 1;
    await writeFile(bad, flipped);
    r = await cli(['verify', bad, '--key', pub, '--provenance', prov]);
    assert.equal(r.code, 4, r.stderr);
    assert.equal(errorLines(r).length, 1, r.stderr);
    assert.match(errorLines(r)[0], /does not match its provenance: sha256/);

    // Another key.
    r = await cli(['verify', image, '--key', `${other.path}.pub`]);
    assert.equal(r.code, 4, r.stderr);
    assert.match(errorLines(r)[0], /is not signed by key SHA256:.*no signature in it verifies/);

    // The payload changed (a digest swapped for the changed file's), its signature kept.
    const forged = join(b.out, 'forged.dsse.json');
    const st2 = { ...st, subject: [{ name: 'changed.zfs.gz', digest: { sha256: hex('sha256', flipped), sha1: hex('sha1', flipped) } }] };
    await writeFile(forged, JSON.stringify({ ...env, payload: Buffer.from(JSON.stringify(st2)).toString('base64') }));
    r = await cli(['verify', bad, '--key', pub, '--provenance', forged]);
    assert.equal(r.code, 4, r.stderr);
    assert.equal(errorLines(r).length, 1, r.stderr);
    assert.match(errorLines(r)[0], /is not signed by key/);
    await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir: w.workDir, outputDir: b.out, images: [w.base.uuid, w.origin.uuid] });
  });

  it('a build with no key succeeds unsigned; publish --state signs it before upload, with SHA256SUMS that sha256sum -c accepts', async () => {
    const state = join(w.dir, 'prov-state', 'state.json');
    const b = await build('nokey', keyless(), state);
    assert.match(b.stderr, /provenance not signed here \(MANTA_KEY_ID is not set/);
    const pub = `${key.path}.pub`;
    let r = await cli(['verify', `${b.stem}.zfs.gz`, '--key', pub]);
    assert.equal(r.code, 4, r.stderr);
    assert.match(errorLines(r)[0], /is not signed/);

    const dest = join(w.dir, 'prov-published');
    const stamp = 'master-20240101T000000Z-g0123abc';
    const bits = join(w.dir, 'prov-bits');
    await mkdir(bits, { recursive: true });
    r = await cli(['publish', '-L', '-b', 'master', '-n', 'nokey', '-t', stamp, '-d', dest, '-D', bits, '--state', state, '--json'], { env: keyed() });
    assert.equal(r.code, 0, r.stderr);
    const res = PublishResultSchema.parse(JSON.parse(r.stdout));
    const rels = res.steps.filter((s) => s.op === 'upload').map((s) => (s as { rel: string }).rel);
    assert.ok(rels.includes('nokey/nokey-zfs-1.0.0.provenance.dsse.json'), rels.join(', '));
    assert.ok(res.steps.some((s) => s.op === 'put' && s.what === 'sha256sums' && s.path === join(dest, stamp, 'SHA256SUMS')));
    assert.match(r.stderr, /signed nokey\/nokey-zfs-1\.0\.0\.provenance\.dsse\.json with SHA256:/);

    // What was published verifies, and the standard tool checks every file.
    const there = join(dest, stamp, 'nokey');
    r = await cli(['verify', join(there, 'nokey-zfs-1.0.0.zfs.gz'), '--key', pub]);
    assert.equal(r.code, 0, r.stderr);
    const check = await execa('sha256sum', ['-c', 'SHA256SUMS'], { cwd: join(dest, stamp), reject: false });
    assert.equal(check.exitCode, 0, String(check.stdout) + String(check.stderr));
    assert.ok(String(check.stdout).includes('nokey/nokey-zfs-1.0.0.provenance.dsse.json: OK'), String(check.stdout));
    assert.ok(String(check.stdout).includes('nokey/nokey-zfs-1.0.0.zfs.gz: OK'));
    // A changed published byte: sha256sum -c says so.
    const img = join(there, 'nokey-zfs-1.0.0.zfs.gz');
    const copy = join(w.dir, 'prov-copy.zfs.gz');
    await copyFile(img, copy);
    const bytes = await readFile(img);
    bytes[0] ^= 1;
    await writeFile(img, bytes);
    assert.notEqual((await execa('sha256sum', ['-c', '--quiet', 'SHA256SUMS'], { cwd: join(dest, stamp), reject: false })).exitCode, 0);
    await copyFile(copy, img);

    // A rerun signs nothing again and uploads nothing.
    r = await cli(['publish', '-L', '-b', 'master', '-n', 'nokey', '-t', stamp, '-d', dest, '-D', bits, '--state', state, '--json'], { env: keyed() });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(PublishResultSchema.parse(JSON.parse(r.stdout)).uploaded, 0);
    await cli(['clean', '--state', state]);
    await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir: w.workDir, outputDir: b.out, images: [w.base.uuid, w.origin.uuid] });
  });
});
