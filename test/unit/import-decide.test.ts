/**
 * imgapi/import-state `decide()` for the states the table in
 * imgapi-admin.test.ts leaves out (issue 18 item 2): a `failed` image is
 * never resumed, whatever it holds (our file, no file, another channel,
 * disabled), and the order of the checks — name and version, then the
 * file, then the state — decides which reason is given.
 */
import assert from 'node:assert/strict';
import type { ImageManifest } from '../../src/image/manifest/types.js';
import { decide, importBody, planSteps, simulate, type Want } from '../../src/imgapi/import-state.js';

describe('import decisions: failed and mixed states (unit)', () => {
  const w: Want = { uuid: 'u', name: 'demo', version: '1.0', sha1: 'a'.repeat(40), size: 10, channel: 'dev' };
  const file = { sha1: w.sha1, size: 10, compression: 'gzip' as const };
  const img = (o: Partial<ImageManifest>): ImageManifest => ({ v: 2, uuid: 'u', name: 'demo', version: '1.0', state: 'active', channels: ['dev'], files: [file], ...o });
  const failed = { kind: 'conflict', reason: 'image u is on the server in state "failed"' };

  for (const [what, image] of [
    ['with our file, in our channel', img({ state: 'failed' })],
    ['with our file, in another channel', img({ state: 'failed', channels: ['experimental'] })],
    ['with our file, on a server without channels', img({ state: 'failed', channels: undefined })],
    ['with no file', img({ state: 'failed', files: [] })],
    ['with no file, in another channel', img({ state: 'failed', files: [], channels: ['staging'] })],
    ['with our file, disabled', img({ state: 'failed', disabled: true })],
  ] as const) {
    it(`a failed image ${what} is a conflict, not resumed`, () => {
      assert.deepEqual(decide(image, w), failed);
      assert.deepEqual(planSteps(image, w), { steps: [], end: failed });
    });
  }

  it('the uuid taken by another image is named before its state or file', () => {
    assert.deepEqual(decide(img({ state: 'failed', name: 'other', files: [{ ...file, sha1: 'b'.repeat(40) }] }), w), {
      kind: 'conflict',
      reason: 'image u on the server is other 1.0 (failed), not demo 1.0: the uuid is taken',
    });
    assert.equal((decide(img({ version: '2.0' }), w) as { reason: string }).reason, 'image u on the server is demo 2.0 (active), not demo 1.0: the uuid is taken');
  });

  it('another file is named before the failed state', () => {
    assert.deepEqual(decide(img({ state: 'failed', files: [{ ...file, size: 11 }] }), w), {
      kind: 'conflict',
      reason: `image u is on the server (failed) with a different file: sha1 ${w.sha1}, 11 bytes; ours is sha1 ${w.sha1}, 10 bytes`,
    });
  });

  it('an active image without a file is a conflict; with no state it counts as active', () => {
    assert.deepEqual(decide(img({ files: [] }), w), { kind: 'conflict', reason: 'image u is active on the server but has no file' });
    assert.deepEqual(decide(img({ state: undefined }), w), { kind: 'done', state: 'active' });
    assert.deepEqual(decide(img({ state: undefined, files: undefined }), w), { kind: 'conflict', reason: 'image u is active on the server but has no file' });
  });

  it('an unactivated image in another channel is added to ours before its file and activation', () => {
    assert.deepEqual(decide(img({ state: 'unactivated', channels: ['experimental'] }), w), { kind: 'step', step: 'channel-add', from: 'experimental' });
    assert.deepEqual(
      planSteps(img({ state: 'unactivated', channels: ['experimental'] }), w).steps.map((s) => s.step),
      ['channel-add', 'activate'],
    );
    // An empty channel list is a server without channels.
    assert.deepEqual(decide(img({ channels: [] }), w), { kind: 'done', state: 'active' });
  });

  it('a disabled image left unactivated ends disabled, not active, once activated', () => {
    assert.deepEqual(planSteps(img({ state: 'unactivated', disabled: true }), w), { steps: [{ kind: 'step', step: 'activate' }], end: { kind: 'done', state: 'disabled' } });
    assert.deepEqual(planSteps(img({ state: 'unactivated', disabled: false, files: [] }), w).end, { kind: 'done', state: 'active' });
  });

  it('what the server holds after each step, as planning assumes it', () => {
    const imported = simulate(undefined, { kind: 'step', step: 'import' }, w);
    assert.deepEqual(imported, { v: 2, uuid: 'u', name: 'demo', version: '1.0', state: 'unactivated', files: [], channels: ['dev'] });
    assert.deepEqual(simulate(imported, { kind: 'step', step: 'add-file' }, w).files, [{ sha1: w.sha1, size: 10, compression: 'gzip' }]);
    assert.deepEqual(simulate(img({ channels: ['staging'] }), { kind: 'step', step: 'channel-add', from: 'staging' }, w).channels, ['staging', 'dev']);
    assert.equal(simulate(img({ state: 'unactivated' }), { kind: 'step', step: 'activate' }, w).state, 'active');
  });
});

describe('the AdminImportImage body (unit)', () => {
  // Every field imgmanifest and AdminImportImage know, one of each kind.
  const everything = {
    v: 2,
    uuid: '11111111-1111-1111-1111-111111111111',
    owner: '00000000-0000-0000-0000-000000000000',
    name: 'demo',
    version: '1.0',
    description: 'd',
    homepage: 'https://example.com',
    eula: 'https://example.com/eula',
    disabled: false,
    public: true,
    acl: ['22222222-2222-2222-2222-222222222222'],
    requirements: { min_platform: { '7.0': '20240101T000000Z' } },
    users: [{ name: 'root' }],
    billing_tags: ['b'],
    traits: { t: true },
    tags: { role: 'x' },
    generate_passwords: true,
    inherited_directories: ['/opt'],
    origin: '33333333-3333-3333-3333-333333333333',
    error: { message: 'm' },
    published_at: '2024-05-01T12:00:00.000Z',
    urn: 'sdc:sdc:demo:1.0',
    type: 'zone-dataset',
    os: 'smartos',
  };
  const serverManaged = { files: [{ sha1: 'a'.repeat(40), size: 1, compression: 'gzip' }], state: 'active', channels: ['dev'], activated: true, icon: true };
  const zvolOnly = { nic_driver: 'virtio', disk_driver: 'virtio', cpu_type: 'host', image_size: 10240 };

  it('keeps every field the server accepts, as it is (but public:false), and drops only unknown ones', () => {
    const { body, dropped } = importBody({ ...everything, ...serverManaged, ...zvolOnly, expires_at: 'soon', bogus: 1 } as unknown as ImageManifest);
    assert.deepEqual(body, { ...everything, public: false });
    assert.deepEqual(dropped, ['expires_at', 'bogus']);
  });

  it('a zvol image keeps its zvol fields; the server-managed ones go either way, unwarned', () => {
    const { body, dropped } = importBody({ ...everything, type: 'zvol', ...serverManaged, ...zvolOnly } as unknown as ImageManifest);
    assert.deepEqual(body, { ...everything, type: 'zvol', public: false, ...zvolOnly });
    assert.deepEqual(dropped, []);
  });

  it('a field left undefined is neither sent nor warned about; a published_at that is not a string is dropped, and said', () => {
    const { body, dropped } = importBody({ ...everything, description: undefined, expires_at: undefined });
    assert.ok(!('description' in body));
    assert.deepEqual(dropped, []);
    // A manifest without published_at (IMGAPI sets one at activation): nothing to warn about.
    const none = importBody({ ...everything, published_at: undefined });
    assert.ok(!('published_at' in none.body));
    assert.deepEqual(none.dropped, []);
    const bad = importBody({ ...everything, published_at: 1714564800000 } as unknown as ImageManifest);
    assert.ok(!('published_at' in bad.body));
    assert.deepEqual(bad.dropped, ['published_at']);
    // v is the one field defaulted; a v given is kept.
    assert.equal(importBody({ ...everything, v: undefined } as unknown as ImageManifest).body.v, 2);
    assert.equal(importBody({ ...everything, v: 3 }).body.v, 3);
  });
});
