/**
 * Key lookup and signing through a real ssh-agent (openssh-client) over
 * SSH_AUTH_SOCK, with keys made by ssh-keygen in a temp dir.
 */
import assert from 'node:assert/strict';
import { copyFile, mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { SshAgent } from '../../src/http/ssh-agent.js';
import { findSigner, KeyError, parsePrivateKey } from '../../src/http/keys.js';
import { keyObjectSigner, mantaKeyId, parsePublicKeyLine, sha256Fingerprint, signDateHeader } from '../../src/http/signature.js';
import { presignUrl } from '../../src/manta/presign.js';
import { MantaClient } from '../../src/manta/client.js';
import { MantaTestServer } from '../servers/manta-server.js';
import { haveBinary, httpSignature, sshKeygen, sshpk, startSshAgent, tempDir, type TestAgent, type TestKey } from '../servers/ssh-keys.js';

const DATE = 'Wed, 01 May 2024 12:00:00 GMT';

function verifies(authorization: string, pubLine: string): boolean {
  const parsed = httpSignature.parseRequest({ headers: { authorization, date: DATE }, method: 'GET', url: '/', httpVersion: '1.1' }, { clockSkew: 1e12 });
  return httpSignature.verifySignature(parsed, sshpk.parseKey(pubLine, 'ssh'));
}

(haveBinary('ssh-agent') && haveBinary('ssh-keygen') ? describe : describe.skip)('ssh-agent signing (integration)', function () {
  this.timeout(60_000);
  let dir: string;
  let agent: TestAgent;
  let keys: Record<'rsa' | 'ecdsa' | 'ed25519' | 'locked', TestKey>;
  const empty = (): string => join(dir, 'empty-ssh');

  before(async () => {
    dir = await tempDir('buildimage-agent-');
    await mkdir(join(dir, 'empty-ssh'));
    keys = {
      rsa: await sshKeygen(dir, 'id_rsa', 'rsa', { bits: 2048 }),
      ecdsa: await sshKeygen(dir, 'id_ecdsa', 'ecdsa', { bits: 256 }),
      ed25519: await sshKeygen(dir, 'id_ed25519', 'ed25519'),
      locked: await sshKeygen(dir, 'locked_key', 'ed25519', { passphrase: 'pass phrase' }),
    };
    agent = await startSshAgent(dir);
    for (const k of [keys.rsa, keys.ecdsa, keys.ed25519]) await agent.add(k.path);
  });
  after(async () => {
    await agent?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('lists the agent identities (REQUEST_IDENTITIES)', async () => {
    const ids = await new SshAgent(agent.socket).identities();
    const want = [keys.rsa, keys.ecdsa, keys.ed25519].map((k) => parsePublicKeyLine(k.pubLine).blob.toString('base64')).sort();
    assert.deepEqual(ids.map((i) => i.blob.toString('base64')).sort(), want);
    assert.ok(ids.some((i) => i.comment === 'id_rsa@test'));
  });

  it('signs with each key type (SIGN_REQUEST); RSA and Ed25519 equal the file-key signatures byte for byte', async () => {
    for (const type of ['rsa', 'ecdsa', 'ed25519'] as const) {
      const k = keys[type];
      const fp = sha256Fingerprint(parsePublicKeyLine(k.pubLine).blob);
      const s = await findSigner({ keyId: fp, sshDir: empty(), agentSocket: agent.socket });
      assert.match(s.source, /^ssh-agent/);
      const h = await signDateHeader(s, mantaKeyId('acct', undefined, s.fingerprint), DATE);
      assert.ok(verifies(h.authorization, k.pubLine), `${type} verifies`);
      if (type !== 'ecdsa') {
        const p = parsePrivateKey(k.privateText);
        assert.ok(!p.locked);
        const file = await signDateHeader(keyObjectSigner(p.key, k.path), mantaKeyId('acct', undefined, s.fingerprint), DATE);
        assert.equal(h.authorization, file.authorization, `${type}: agent = file`);
      }
    }
  });

  it('prefers an unlocked key file over the agent, and the agent over a passphrase-protected file', async () => {
    const ssh = join(dir, 'home-ssh');
    await mkdir(ssh, { recursive: true });
    for (const n of ['id_rsa', 'id_rsa.pub', 'locked_key', 'locked_key.pub']) await copyFile(join(dir, n), join(ssh, n));
    const rsaFp = sha256Fingerprint(parsePublicKeyLine(keys.rsa.pubLine).blob);
    assert.equal((await findSigner({ keyId: rsaFp, sshDir: ssh, agentSocket: agent.socket })).source, join(ssh, 'id_rsa'));

    const lockedFp = sha256Fingerprint(parsePublicKeyLine(keys.locked.pubLine).blob);
    await assert.rejects(findSigner({ keyId: lockedFp, sshDir: ssh, agentSocket: agent.socket }), (e: KeyError) =>
      /locked_key is protected by a passphrase and not in the ssh-agent; run ssh-add/.test(e.message),
    );
    // Once the agent holds it (added from a decrypted copy, as ssh-add would after the prompt), it is usable.
    const unlocked = join(dir, 'locked_unlocked');
    await copyFile(keys.locked.path, unlocked);
    await execa('ssh-keygen', ['-p', '-q', '-P', 'pass phrase', '-N', '', '-f', unlocked]);
    await agent.add(unlocked);
    const s = await findSigner({ keyId: lockedFp, sshDir: ssh, agentSocket: agent.socket });
    assert.match(s.source, /^ssh-agent/);
  });

  it('says where it looked when the key is nowhere, and when the agent socket is dead', async () => {
    await assert.rejects(
      findSigner({ keyId: 'MD5:00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff', sshDir: empty(), agentSocket: agent.socket }),
      /could not be located in .*empty-ssh, SSH agent$/,
    );
    await assert.rejects(
      findSigner({ keyId: 'MD5:00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff', sshDir: empty(), agentSocket: join(dir, 'no.sock') }),
      /SSH agent \(cannot talk to ssh-agent at .*no\.sock/,
    );
    await assert.rejects(findSigner({ keyId: 'MD5:00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff', sshDir: empty() }), /SSH_AUTH_SOCK is not set/);
  });

  it('the local Manta server accepts requests and presigned URLs signed through the agent', async () => {
    const srv = await MantaTestServer.start({ acct: { keys: [keys.ed25519.pubLine, keys.ecdsa.pubLine, keys.rsa.pubLine] } });
    try {
      for (const k of [keys.ed25519, keys.ecdsa, keys.rsa]) {
        const s = await findSigner({ keyId: sha256Fingerprint(parsePublicKeyLine(k.pubLine).blob), sshDir: empty(), agentSocket: agent.socket });
        const c = new MantaClient({ url: srv.url, user: 'acct', signer: s });
        try {
          await c.mkdir(`/acct/stor/${s.info.type}`);
        } finally {
          c.close();
        }
        await srv.seed(`/acct/stor/${s.info.type}/obj`, 'x');
        const u = await presignUrl({ url: srv.url, user: 'acct', signer: s, path: `/acct/stor/${s.info.type}/obj` });
        assert.equal((await fetch(u)).status, 200, `${s.info.type} presigned`);
      }
    } finally {
      await srv.close();
    }
  });
});
