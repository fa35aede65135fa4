/**
 * Provenance: DSSE's PAE and its published test vector, envelopes signed
 * with every key type publish can use (a file, and a real ssh-agent) and
 * checked by our verify and by sshpk, rejections (payload tampered, wrong
 * key), the statement's shape, and the one-pass digests it relies on.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmod, cp, mkdir, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { execa } from 'execa';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { digestFile } from '../../src/core/files.js';
import { parsePublicKeyLine, sha256Fingerprint, type Signer } from '../../src/http/signature.js';
import { SshWriter } from '../../src/http/ssh-wire.js';
import { HashCounter } from '../../src/image/streams.js';
import { decodeBase64, IN_TOTO_PAYLOAD_TYPE, pae, signEnvelope, unsignedEnvelope, verifyEnvelope, type Envelope } from '../../src/provenance/dsse.js';
import { envelopeFor, publishKeySigner } from '../../src/provenance/envelope-file.js';
import { makeStatement, SLSA_PROVENANCE_V1, STATEMENT_TYPE } from '../../src/provenance/statement.js';
import { provenancePathFor } from '../../src/provenance/verify.js';
import { protoTreeDigest, TreeTooLarge } from '../../src/provenance/proto-digest.js';
import { sumsLine } from '../../src/publish/plan.js';
import { splitPackage } from '../../src/build/provenance.js';
import { haveBinary, sshKeygen, sshpk, startSshAgent, tempDir, type TestKey } from '../servers/ssh-keys.js';

/** Decimal → fixed-width big-endian bytes. */
const be = (dec: string, size: number): Buffer => Buffer.from(BigInt(dec).toString(16).padStart(size * 2, '0'), 'hex');

describe('provenance: DSSE envelopes', () => {
  it("PAE and the ECDSA P-256 test vector of DSSE's protocol.md", () => {
    const body = Buffer.from('hello world');
    const type = 'http://example.com/HelloWorld';
    assert.equal(pae(type, body).toString(), 'DSSEv1 29 http://example.com/HelloWorld 11 hello world');
    // Lengths are bytes, not characters.
    assert.equal(pae('t', Buffer.from('é')).toString(), 'DSSEv1 1 t 2 é');
    const point = Buffer.concat([
      Buffer.from([4]),
      be('46950820868899156662930047687818585632848591499744589407958293238635476079160', 32),
      be('5640078356564379163099075877009565129882514886557779369047442380624545832820', 32),
    ]);
    const blob = new SshWriter().string('ecdsa-sha2-nistp256').string('nistp256').string(point).toBuffer();
    const env: Envelope = {
      payload: 'aGVsbG8gd29ybGQ=',
      payloadType: type,
      signatures: [{ sig: 'A3JqsQGtVsJ2O2xqrI5IcnXip5GToJ3F+FnZ+O88SjtR6rDAajabZKciJTfUiHqJPcIAriEGAHTVeCUjW2JIZA==' }],
    };
    assert.deepEqual(verifyEnvelope(env, blob), body, 'the spec vector verifies (raw r||s)');
    assert.equal(verifyEnvelope({ ...env, payloadType: 'http://example.com/HelloWorle' }, blob), undefined, 'the type is authenticated');
    assert.equal(verifyEnvelope({ ...env, payload: Buffer.from('hello worle').toString('base64') }, blob), undefined);
  });

  it('base64: standard and URL-safe both decode; anything else is refused', () => {
    assert.deepEqual(decodeBase64('-_8='), Buffer.from([0xfb, 0xff]));
    assert.deepEqual(decodeBase64('+/8='), Buffer.from([0xfb, 0xff]));
    assert.equal(decodeBase64('a b'), undefined);
  });

  describe('signed with the key publish uses, from a file and from the ssh-agent', function () {
    this.timeout(60_000);
    let dir: string;
    let agentDir: string;
    let agent: Awaited<ReturnType<typeof startSshAgent>> | undefined;
    const keys: Record<string, TestKey> = {};
    const types = [
      ['rsa', 'rsa', 2048],
      ['ecdsa-p256', 'ecdsa', 256],
      ['ecdsa-p521', 'ecdsa', 521],
      ['ed25519', 'ed25519', undefined],
    ] as const;
    before(async function () {
      if (!haveBinary('ssh-keygen') || !haveBinary('ssh-agent')) this.skip();
      dir = await tempDir('prov-keys-');
      agentDir = await tempDir('prov-agent-');
      for (const [name, type, bits] of types) keys[name] = await sshKeygen(dir, `id_${name.replace('-', '_')}`, type, bits ? { bits } : {});
      agent = await startSshAgent(agentDir);
      for (const k of Object.values(keys)) await agent.add(k.path);
    });
    after(async () => {
      await agent?.stop();
      if (dir) await rm(dir, { recursive: true, force: true });
      if (agentDir) await rm(agentDir, { recursive: true, force: true });
    });

    const statement = Buffer.from(JSON.stringify({ _type: STATEMENT_TYPE, subject: [{ name: 'x', digest: { sha256: 'ab' } }], predicateType: SLSA_PROVENANCE_V1 }));
    const blobOf = (k: TestKey) => parsePublicKeyLine(k.pubLine).blob;

    for (const [name] of types) {
      for (const from of ['file', 'agent'] as const) {
        it(`${name} (${from}): verify accepts; sshpk agrees; tampered payload and another key are rejected`, async () => {
          const k = keys[name];
          const keyId = sha256Fingerprint(blobOf(k));
          // The file: in the ssh dir; the agent: an ssh dir without it.
          const signer: Signer = await publishKeySigner(from === 'file' ? { keyId, sshDir: dir } : { keyId, sshDir: agentDir, agentSocket: agent!.socket });
          assert.equal(signer.source.startsWith('ssh-agent'), from === 'agent');
          const env = await signEnvelope(unsignedEnvelope(statement), signer);
          assert.equal(env.payloadType, IN_TOTO_PAYLOAD_TYPE);
          assert.equal(env.signatures.length, 1);
          assert.equal(env.signatures[0].keyid, keyId, 'keyid: the OpenSSH SHA256 fingerprint');
          assert.deepEqual(verifyEnvelope(env, blobOf(k)), statement);

          // An independent verifier: sshpk (ECDSA as DER, RSA PKCS#1 v1.5 SHA-256, Ed25519 raw).
          const pub = sshpk.parseKey(k.pubLine, 'ssh');
          const hash = name === 'ecdsa-p521' ? 'sha512' : name === 'ed25519' ? 'sha512' : 'sha256';
          const sig = sshpk.parseSignature(Buffer.from(env.signatures[0].sig, 'base64'), pub.type, name.startsWith('ecdsa') ? 'asn1' : 'raw');
          const v = pub.createVerify(hash);
          v.update(pae(env.payloadType, statement));
          assert.equal(v.verify(sig), true, 'sshpk verifies our signature over the PAE');

          const tampered = { ...env, payload: Buffer.from(statement.toString().replace('"x"', '"y"')).toString('base64') };
          assert.equal(verifyEnvelope(tampered, blobOf(k)), undefined, 'payload tampered');
          const other = keys[name === 'rsa' ? 'ed25519' : 'rsa'];
          assert.equal(verifyEnvelope(env, blobOf(other)), undefined, 'another key');
        });
      }
    }

    it('a build with no key writes an unsigned envelope and says why; with MANTA_KEY_ID and HOME it signs', async () => {
      const home = await tempDir('prov-home-');
      try {
        const none = await envelopeFor({ a: 1 }, { HOME: home });
        assert.equal(none.envelope.signatures.length, 0);
        assert.match(none.unsigned!, /MANTA_KEY_ID is not set/);
        await mkdir(join(home, '.ssh'));
        const k = keys.ed25519;
        await writeFile(join(home, '.ssh', 'id_ed25519'), k.privateText, { mode: 0o600 });
        await writeFile(join(home, '.ssh', 'id_ed25519.pub'), k.pubLine + '\n');
        const signed = await envelopeFor({ a: 1 }, { HOME: home, MANTA_KEY_ID: sha256Fingerprint(blobOf(k)) });
        assert.equal(signed.keyid, sha256Fingerprint(blobOf(k)));
        assert.ok(verifyEnvelope(signed.envelope, blobOf(k)));
      } finally {
        await rm(home, { recursive: true, force: true });
      }
    });
  });
});

describe('provenance: the statement', () => {
  it('is an in-toto Statement v1 with a SLSA v1 predicate: subject, base chain, proto, source, packages, builder, BUILD_URL', () => {
    const s = makeStatement({
      image: { name: 'demo-zfs-1.zfs.gz', sha256: 'a'.repeat(64), sha1: 'b'.repeat(40) },
      parameters: { packages: ['nginx'] },
      baseChain: [{ uuid: 'u1', name: 'base', version: '1', sha1: 'c'.repeat(40) }, { uuid: 'u0' }],
      proto: [{ uri: 'file:///p', digest: { sha256: 'd'.repeat(64) } }],
      packages: [{ name: 'nginx', version: '1.25.3nb1' }],
      source: { remote: 'https://github.com/x/y.git', commit: 'e'.repeat(40), branch: 'master', dirty: false },
      tool: { version: '0.1.0', node: 'v20' },
      buildId: 'id',
      buildUrl: 'https://jenkins/job/1/',
      startedOn: 't0',
      finishedOn: 't1',
    }) as any;
    assert.equal(s._type, 'https://in-toto.io/Statement/v1');
    assert.equal(s.predicateType, 'https://slsa.dev/provenance/v1');
    assert.deepEqual(s.subject, [{ name: 'demo-zfs-1.zfs.gz', digest: { sha256: 'a'.repeat(64), sha1: 'b'.repeat(40) } }]);
    const deps = s.predicate.buildDefinition.resolvedDependencies;
    assert.deepEqual(deps[0].digest, { sha1: 'c'.repeat(40) });
    assert.equal(deps[0].uri, 'urn:uuid:u1');
    assert.equal(deps[1].uri, 'urn:uuid:u0');
    assert.ok(deps.some((d: any) => d.digest?.gitCommit === 'e'.repeat(40) && d.uri === 'git+https://github.com/x/y.git'));
    assert.ok(deps.some((d: any) => d.uri === 'pkg:pkgsrc/nginx@1.25.3nb1'));
    assert.deepEqual(s.predicate.buildDefinition.externalParameters, { packages: ['nginx'] });
    assert.deepEqual(s.predicate.runDetails.builder, { id: 'pkg:npm/buildimage@0.1.0', version: { buildimage: '0.1.0', node: 'v20' } });
    assert.equal(s.predicate.runDetails.metadata.invocationId, 'https://jenkins/job/1/');
  });

  it("pkg_info's name-version splits at the last dash before a digit", () => {
    assert.deepEqual(splitPackage('py311-setuptools-69.0.3'), { name: 'py311-setuptools', version: '69.0.3' });
    assert.deepEqual(splitPackage('nginx-1.25.3nb1'), { name: 'nginx', version: '1.25.3nb1' });
    assert.deepEqual(splitPackage('oddname'), { name: 'oddname' });
  });

  it('the provenance file sits beside the image: <stem>.provenance.dsse.json', () => {
    assert.equal(provenancePathFor('/o/demo-zfs-1.0.zfs.gz'), '/o/demo-zfs-1.0.provenance.dsse.json');
    assert.equal(provenancePathFor('/o/demo-zfs-1.0.zfs.xz'), '/o/demo-zfs-1.0.provenance.dsse.json');
  });
});

describe('provenance: digests people verify with', () => {
  const data = Buffer.from('z'.repeat(200_000));
  const hex = (a: string) => createHash(a).update(data).digest('hex');

  it('HashCounter adds sha256 and sha512 to the pass that computes sha1', async () => {
    const h = new HashCounter({ sha256: true, sha512: true });
    await pipeline(Readable.from([data.subarray(0, 5), data.subarray(5)]), h, new Writable({ write: (_c, _e, cb) => cb() }));
    assert.deepEqual(h.digest(), { sha1: hex('sha1'), size: data.length, md5: undefined, sha256: hex('sha256'), sha512: hex('sha512') });
  });

  it('digestFile takes several algorithms and reads the file once', async () => {
    const dir = await tempDir('prov-digest-');
    try {
      await writeFile(join(dir, 'f'), data);
      const reads: number[] = [];
      const { digests, size } = await digestFile(join(dir, 'f'), ['md5', 'sha1', 'sha256', 'sha512'], (b) => reads.push(b));
      assert.equal(size, data.length);
      for (const a of ['md5', 'sha1', 'sha256', 'sha512'] as const) assert.equal(digests[a].toString('hex'), hex(a));
      assert.equal(reads.at(-1), data.length, 'progress counts each byte once');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('SHA256SUMS lines are sha256sum(1)\'s, names with a backslash or newline escaped as GNU does', () => {
    assert.equal(sumsLine('ab', 'demo/x.zfs.gz'), 'ab  demo/x.zfs.gz\n');
    assert.equal(sumsLine('ab', 'c\\d'), '\\ab  c\\\\d\n');
    assert.equal(sumsLine('ab', 'e\nf'), '\\ab  e\\nf\n');
  });
});

describe('provenance: the proto tree digest', () => {
  it('is the same for two copies of a tree (times aside), changes with a byte, a mode or a link target; follows no link and opens no FIFO', async function () {
    this.timeout(30_000);
    const dir = await tempDir('prov-tree-');
    try {
      const a = join(dir, 'a');
      await mkdir(join(a, 'opt/app'), { recursive: true });
      await writeFile(join(a, 'opt/app/run.sh'), '#!/bin/sh\n', { mode: 0o755 });
      const secret = join(dir, 'secret');
      await writeFile(secret, 'host secret');
      await symlink(secret, join(a, 'opt/app/key'));
      const b = join(dir, 'b');
      await cp(a, b, { recursive: true, verbatimSymlinks: true });
      for (const t of [a, b]) await execa('mkfifo', [join(t, 'opt/app/pipe')]);
      await utimes(join(b, 'opt/app/run.sh'), 1, 1);
      const da = await protoTreeDigest(a);
      assert.match(da, /^[0-9a-f]{64}$/);
      assert.equal(await protoTreeDigest(b), da, 'a copy with other times');
      await writeFile(secret, 'another host secret');
      assert.equal(await protoTreeDigest(a), da, 'a link is recorded by its target, never read through');
      await chmod(join(b, 'opt/app/run.sh'), 0o644);
      assert.notEqual(await protoTreeDigest(b), da, 'mode');
      await chmod(join(b, 'opt/app/run.sh'), 0o755);
      await writeFile(join(b, 'opt/app/run.sh'), '#!/bin/sh\n#\n');
      assert.notEqual(await protoTreeDigest(b), da, 'content');
      await assert.rejects(protoTreeDigest(a, 3), TreeTooLarge);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
