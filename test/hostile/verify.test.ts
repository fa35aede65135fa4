/**
 * Hostile inputs of `buildimage verify` (issue 15), through the real CLI:
 * the public key (a link to a host secret, a FIFO, a directory, a private
 * key, a huge file), the envelope (huge, deeply nested, not an envelope,
 * a link, a FIFO, a validly signed payload that is a deep nest or a forged
 * subject list) and the image (a FIFO, a link). Each: one error line,
 * exit 2 (unreadable input) or 4 (does not verify), bounded in time,
 * nothing of the secret shown, the host (bait) untouched, nothing written.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { parsePublicKeyLine } from '../../src/http/signature.js';
import { publishKeySigner } from '../../src/provenance/envelope-file.js';
import { signEnvelope, unsignedEnvelope } from '../../src/provenance/dsse.js';
import { sha256Fingerprint } from '../../src/http/signature.js';
import { cli, errorLines, type CliResult } from '../helpers/cli.js';
import { layBait, type Bait } from '../helpers/hostile.js';
import { TEST_TOP } from '../helpers/world.js';
import { sshKeygen, type TestKey } from '../servers/ssh-keys.js';

describe('hostile: verify (issue 15)', function () {
  this.timeout(5 * 60 * 1000);
  let bait: Bait;
  let dir: string;
  let key: TestKey;
  let image: string;
  let good: string;
  before(async () => {
    bait = await layBait('verify');
    await mkdir(TEST_TOP, { recursive: true });
    dir = await mkdtemp(join(TEST_TOP, 'verify-'));
    await mkdir(join(dir, 'keys'), { mode: 0o700 });
    key = await sshKeygen(join(dir, 'keys'), 'id_ed25519', 'ed25519');
    image = join(dir, 'img-zfs-1.zfs.gz');
    await writeFile(image, Buffer.alloc(4096, 7));
    good = join(dir, 'img-zfs-1.provenance.dsse.json');
    await writeFile(good, JSON.stringify(await signed(Buffer.from(JSON.stringify({ _type: 'https://in-toto.io/Statement/v1', subject: [{ name: 'x', digest: { sha256: '0'.repeat(64) } }], predicateType: 'p' })))));
  });
  after(async () => {
    await bait.remove();
    await rm(dir, { recursive: true, force: true });
  });

  async function signed(payload: Buffer) {
    const keyId = sha256Fingerprint(parsePublicKeyLine(key.pubLine).blob);
    return signEnvelope(unsignedEnvelope(payload), await publishKeySigner({ keyId, sshDir: join(dir, 'keys') }));
  }

  const files = () => readdir(dir);

  async function run(args: string[]): Promise<CliResult> {
    // A read that blocked on a FIFO would hang: the timeout turns that into a failure.
    const t0 = Date.now();
    const r = await cli(['verify', ...args], { cwd: dir, timeoutMs: 30_000 });
    assert.ok(Date.now() - t0 < 30_000, 'bounded');
    return r;
  }

  async function assertOneLine(r: CliResult, code: number, line: RegExp, what: string, before: string[]): Promise<void> {
    assert.equal(r.code, code, `${what}: ${r.stderr}`);
    const lines = errorLines(r);
    assert.equal(lines.length, 1, `${what}: ${r.stderr}`);
    assert.match(lines[0], line, what);
    assert.ok(lines[0].length < 600, `${what}: one short line`);
    for (const out of [r.stdout, r.stderr]) {
      assert.ok(!out.includes('PRIVATE KEY') && !out.includes(`bait ${process.pid}`), `${what}: a secret was shown:\n${out}`);
    }
    assert.deepEqual(await files(), before, `${what}: nothing written`);
    await bait.assertUntouched(what);
  }

  it('--key: a link to a host secret, a FIFO, a directory, a private key, a huge file, a missing file', async () => {
    const link = join(dir, 'link.pub');
    await symlink(bait.secret, link);
    const fifo = join(dir, 'fifo.pub');
    await execa('mkfifo', [fifo]);
    const huge = join(dir, 'huge.pub');
    await writeFile(huge, 'ssh-ed25519 ' + 'A'.repeat(1024 * 1024));
    const before = await files();
    await assertOneLine(await run([image, '--key', link]), 2, /public key \(--key\) .*link\.pub is a symlink/, 'link', before);
    await assertOneLine(await run([image, '--key', fifo]), 2, /fifo\.pub is not a regular file/, 'FIFO', before);
    await assertOneLine(await run([image, '--key', join(dir, 'keys')]), 2, /is not a regular file/, 'directory', before);
    await assertOneLine(await run([image, '--key', key.path]), 2, /is not an OpenSSH public key .*pass the \.pub file/, 'private key', before);
    await assertOneLine(await run([image, '--key', huge]), 2, /is larger than/, 'huge', before);
    await assertOneLine(await run([image, '--key', join(dir, 'nope.pub')]), 2, /does not exist/, 'missing', before);
    await assertOneLine(await run([image]), 2, /missing --key/, 'no --key', before);
  });

  it('the envelope: huge, deeply nested, not JSON, not an envelope, a link, a FIFO; a signed payload that is a deep nest or no statement', async () => {
    const pub = `${key.path}.pub`;
    const put = async (name: string, body: string | Buffer) => {
      const p = join(dir, name);
      await writeFile(p, body);
      return p;
    };
    const huge = await put('huge.json', Buffer.alloc(9 * 1024 * 1024, 0x20));
    const nested = await put('nested.json', '['.repeat(2_000_000) + ']'.repeat(2_000_000));
    const nestedObj = await put('nested-obj.json', '{"payloadType":"x","payload":"","signatures":[],"a":' + '{"a":'.repeat(100_000) + '1' + '}'.repeat(100_001));
    const notJson = await put('text.json', 'hello');
    const notEnv = await put('other.json', JSON.stringify({ payloadType: 'x', payload: '!!', signatures: [] }));
    const manySigs = await put('sigs.json', JSON.stringify({ payloadType: 'x', payload: '', signatures: Array.from({ length: 10_000 }, () => ({ sig: 'AA==' })) }));
    const deepSigned = await put('deep-signed.json', JSON.stringify(await signed(Buffer.from('['.repeat(1_000_000) + ']'.repeat(1_000_000)))));
    const noStatement = await put('nostatement.json', JSON.stringify(await signed(Buffer.from(JSON.stringify({ _type: 'https://in-toto.io/Statement/v1', subject: [] })))));
    const link = join(dir, 'link.dsse.json');
    await symlink(bait.secret, link);
    const fifo = join(dir, 'fifo.dsse.json');
    await execa('mkfifo', [fifo]);
    const before = await files();
    const v = (p: string) => run([image, '--key', pub, '--provenance', p]);
    await assertOneLine(await v(huge), 2, /huge\.json is larger than 8388608 bytes/, 'huge', before);
    await assertOneLine(await v(nested), 2, /nested\.json is not a DSSE envelope|nested\.json is not JSON/, 'nested array', before);
    await assertOneLine(await v(nestedObj), 2, /nested-obj\.json is not a DSSE envelope/, 'nested object', before);
    await assertOneLine(await v(notJson), 2, /text\.json is not JSON/, 'not JSON', before);
    await assertOneLine(await v(notEnv), 2, /other\.json is not a DSSE envelope \(payload: not base64\)/, 'not an envelope', before);
    await assertOneLine(await v(manySigs), 2, /sigs\.json is not a DSSE envelope \(signatures/, 'ten thousand signatures', before);
    await assertOneLine(await v(link), 2, /link\.dsse\.json is a symlink/, 'link', before);
    await assertOneLine(await v(fifo), 2, /fifo\.dsse\.json is not a regular file/, 'FIFO', before);
    await assertOneLine(await v(deepSigned), 4, /payload type|not JSON|not an in-toto statement/, 'signed deep nest', before);
    await assertOneLine(await v(noStatement), 4, /payload type|not an in-toto statement/, 'signed, no statement', before);
    // Unsigned, and the default name beside an image that has none.
    await assertOneLine(await run([join(dir, 'other-zfs-1.zfs.gz'), '--key', pub]), 2, /other-zfs-1\.provenance\.dsse\.json does not exist \(pass --provenance FILE\)/, 'none beside', before);
  });

  it('the image: a FIFO, a link to a host secret: refused, never read', async () => {
    const pub = `${key.path}.pub`;
    const fifo = join(dir, 'fifo-zfs-1.zfs.gz');
    await execa('mkfifo', [fifo]);
    const link = join(dir, 'link-zfs-1.zfs.gz');
    await symlink(bait.secret, link);
    const stmt = { _type: 'https://in-toto.io/Statement/v1', subject: [{ name: 'x', digest: { sha256: '0'.repeat(64) } }], predicateType: 'p' };
    const rightType = join(dir, 'right.json');
    await writeFile(rightType, JSON.stringify(await signed(Buffer.from(JSON.stringify(stmt)))));
    const before = await files();
    await assertOneLine(await run([fifo, '--key', pub, '--provenance', rightType]), 2, /fifo-zfs-1\.zfs\.gz is not a regular file/, 'FIFO image', before);
    await assertOneLine(await run([link, '--key', pub, '--provenance', rightType]), 2, /link-zfs-1\.zfs\.gz is a symlink/, 'link image', before);
    await assertOneLine(await run([image, '--key', pub, '--provenance', rightType]), 4, /does not match its provenance: sha256/, 'another image', before);
    await assertOneLine(await run([image, '--key', pub, '--provenance', good]), 4, /does not match its provenance/, 'good envelope, other subject', before);
  });
});
