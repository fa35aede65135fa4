/**
 * Manifests of installed images known on this machine (base/known): the
 * one buildimage kept when it installed the image, and imgadm's record on
 * SmartOS (read from a directory the test gives, with a record as imgadm
 * writes it). A bad one is ignored with a warning and the source is asked;
 * an installed image with a known manifest asks no source at all.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { installImage } from '../../src/base/install.js';
import { imgadmRecordPath, knownManifest, rememberManifest } from '../../src/base/known.js';
import type { ImageSource } from '../../src/base/source.js';
import { Layout } from '../../src/core/layout.js';
import type { Zfs } from '../../src/host/zfs.js';
import type { ImageManifest } from '../../src/image/manifest/types.js';
import { captureLogs } from '../helpers/logs.js';
import { testManifest } from '../helpers/manifests.js';

/**
 * A record in the form imgadm (smartos-live src/img/lib/database.js addImage)
 * writes to /var/imgadm/images/zones-<uuid>.json after `imgadm import`: the
 * manifest as the source served it, the pool, and the source URL.
 */
const IMGADM_UUID = 'c7e16ae8-cd4e-4c8a-8d35-ea1d39d7a8a0';
const IMGADM_RECORD = `{
  "manifest": {
    "v": 2,
    "uuid": "${IMGADM_UUID}",
    "owner": "00000000-0000-0000-0000-000000000000",
    "name": "base-64-lts",
    "version": "24.4.1",
    "state": "active",
    "disabled": false,
    "public": true,
    "published_at": "2025-01-09T21:03:11Z",
    "type": "zone-dataset",
    "os": "smartos",
    "files": [
      {
        "sha1": "9a7a2e0e8e2b0f2a6cc7f4b0d0c0d3d5b4f1e6a2",
        "size": 150208413,
        "compression": "gzip"
      }
    ],
    "description": "A 64-bit SmartOS image with just essential packages installed. Ideal for users who are comfortable with setting up their own environment and tools.",
    "homepage": "https://docs.tritondatacenter.com/public-cloud/instances/infrastructure/images",
    "urn": "sdc:sdc:base-64-lts:24.4.1",
    "requirements": {
      "min_platform": {
        "7.0": "20141030T081701Z"
      },
      "networks": [
        {
          "name": "net0",
          "description": "public"
        }
      ]
    },
    "tags": {
      "role": "os",
      "group": "base-64-lts"
    }
  },
  "zpool": "zones",
  "source": "https://images.smartos.org"
}
`;

const manifestOf = (over: Partial<ImageManifest> = {}) => testManifest(over, Buffer.from('image bytes'));

describe('known manifests of installed images', () => {
  let dir: string;
  let layout: Layout;
  let logs: ReturnType<typeof captureLogs>;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'bi-known-'));
    layout = new Layout('zones', join(dir, 'work'));
    logs = captureLogs();
  });
  afterEach(async () => {
    logs.stop();
    await rm(dir, { recursive: true, force: true });
  });
  const warnings = () => logs.lines.filter((l) => /warn/i.test(l)).join('');

  it('kept at install, read back whole; none known before', async () => {
    const m = manifestOf();
    assert.equal(await knownManifest(layout, m.uuid), undefined);
    await rememberManifest(layout, m);
    assert.equal(layout.installedManifest(m.uuid), join(dir, 'work', 'images', `${m.uuid}.imgmanifest`));
    const k = await knownManifest(layout, m.uuid);
    assert.deepEqual(k?.manifest, m);
    assert.equal(k?.from, layout.installedManifest(m.uuid));
    assert.equal(warnings(), '');
  });

  it('a kept manifest naming another image, not JSON, not a manifest, or not a regular file is ignored with a warning', async () => {
    const m = manifestOf();
    const path = layout.installedManifest(m.uuid);
    await mkdir(layout.manifestDir, { recursive: true });
    const other = manifestOf();
    const secret = join(dir, 'id_rsa');
    await writeFile(secret, '-----BEGIN OPENSSH PRIVATE KEY----- bait\n');
    const cases: [string, () => Promise<void>, RegExp][] = [
      ['wrong uuid', () => writeFile(path, JSON.stringify(other)), new RegExp(`names image ${other.uuid}, not ${m.uuid}`)],
      // JSON.parse's own message would quote the start of this one.
      ['not JSON', () => writeFile(path, 'OPENSSH PRIVATE KEY----- bait\n'), /is not JSON/],
      ['not a manifest', () => writeFile(path, JSON.stringify({ ...m, type: 'floppy' })), /is not a valid manifest: .*type/],
      ['a symlink', () => symlink(secret, path), /is a symlink/],
      ['a directory', () => mkdir(path), /is not a regular file/],
      ['too large', () => writeFile(path, ' '.repeat(1024 * 1024 + 1)), /is larger than/],
    ];
    for (const [what, make, re] of cases) {
      await rm(path, { recursive: true, force: true });
      await make();
      logs.lines.length = 0;
      assert.equal(await knownManifest(layout, m.uuid), undefined, what);
      assert.match(warnings(), re, what);
      assert.match(warnings(), new RegExp(`ignoring ${path}`), what);
      assert.doesNotMatch(warnings(), /OPENSSH/, `${what}: the content is never echoed`);
    }
  });

  it('the manifest directory as a link is neither read nor written through', async () => {
    const m = manifestOf();
    const elsewhere = join(dir, 'elsewhere');
    await mkdir(elsewhere);
    await writeFile(join(elsewhere, `${m.uuid}.imgmanifest`), JSON.stringify(m));
    await mkdir(layout.workDir, { recursive: true });
    await symlink(elsewhere, layout.manifestDir);
    assert.equal(await knownManifest(layout, m.uuid), undefined);
    assert.match(warnings(), /is a symlink/);
    await rm(join(elsewhere, `${m.uuid}.imgmanifest`));
    await rememberManifest(layout, m);
    assert.match(warnings(), /cannot keep the manifest/);
    assert.deepEqual(await readFile(join(elsewhere, `${m.uuid}.imgmanifest`)).catch(() => 'none'), 'none');
  });

  describe("imgadm's records (SmartOS)", () => {
    let imgadmDir: string;
    beforeEach(async () => {
      imgadmDir = join(dir, 'var-imgadm-images');
      await mkdir(imgadmDir);
      await writeFile(join(imgadmDir, `zones-${IMGADM_UUID}.json`), IMGADM_RECORD);
    });

    it('an image imgadm installed on the pool: its record gives the manifest', async () => {
      const k = await knownManifest(layout, IMGADM_UUID, { imgadmDir });
      assert.equal(k?.from, join(imgadmDir, `zones-${IMGADM_UUID}.json`));
      assert.equal(k?.manifest.name, 'base-64-lts');
      assert.equal(k?.manifest.version, '24.4.1');
      assert.equal(warnings(), '');
    });

    it('only where imgadm installs: a dataset root that is a pool; not read unless asked', async () => {
      assert.equal(imgadmRecordPath(imgadmDir, 'zones/abc/data', IMGADM_UUID), undefined);
      assert.equal(await knownManifest(new Layout('zones/abc/data', layout.workDir), IMGADM_UUID, { imgadmDir }), undefined);
      assert.equal(await knownManifest(layout, IMGADM_UUID), undefined);
      assert.equal(await knownManifest(new Layout('other', layout.workDir), IMGADM_UUID, { imgadmDir }), undefined);
    });

    it('our own kept manifest comes first', async () => {
      const m = manifestOf({ uuid: IMGADM_UUID, name: 'ours' });
      await rememberManifest(layout, m);
      assert.equal((await knownManifest(layout, IMGADM_UUID, { imgadmDir }))?.manifest.name, 'ours');
    });

    it('a record for another image or pool, or without a manifest, is ignored with a warning', async () => {
      const path = join(imgadmDir, `zones-${IMGADM_UUID}.json`);
      const record = JSON.parse(IMGADM_RECORD);
      for (const [what, bad, re] of [
        ['other uuid', { ...record, manifest: { ...record.manifest, uuid: '11111111-2222-4333-8444-555555555555' } }, /names image 11111111/],
        ['other pool', { ...record, zpool: 'tank' }, /is for another pool than zones/],
        ['no manifest', { zpool: 'zones' }, /holds no manifest object/],
      ] as const) {
        await writeFile(path, JSON.stringify(bad));
        logs.lines.length = 0;
        assert.equal(await knownManifest(layout, IMGADM_UUID, { imgadmDir }), undefined, what);
        assert.match(warnings(), re, what);
      }
    });
  });

  describe('installImage looks here first', () => {
    /** A source that must not be asked. */
    const noSource = (): ImageSource => ({
      description: 'unreachable',
      getManifest: async () => assert.fail('the source was asked for a manifest'),
      openFile: async () => assert.fail('the source was asked for a file'),
    });
    const installedZfs = { exists: async () => true } as unknown as Zfs;

    it('an installed image with a kept manifest: no source opened', async () => {
      const m = manifestOf({ state: 'disabled' });
      await rememberManifest(layout, m);
      let opened = 0;
      const r = await installImage({ zfs: installedZfs, layout, source: async () => (opened++, noSource()) }, m.uuid);
      assert.deepEqual(r.manifest, m);
      assert.deepEqual(r.imported, []);
      assert.equal(opened, 0, 'the source was not even opened');
    });

    it('an installed image imgadm imported: no source opened', async () => {
      const imgadmDir = join(dir, 'imgadm');
      await mkdir(imgadmDir);
      await writeFile(join(imgadmDir, `zones-${IMGADM_UUID}.json`), IMGADM_RECORD);
      const r = await installImage({ zfs: installedZfs, layout, source: noSource(), imgadmDir }, IMGADM_UUID);
      assert.equal(r.manifest.name, 'base-64-lts');
    });

    it('installed without a known manifest: the source is asked, and its answer kept', async () => {
      const m = manifestOf({ state: 'active' });
      let asked = 0;
      const source: ImageSource = { description: 'src', getManifest: async () => (asked++, m), openFile: async () => assert.fail('no file') };
      await installImage({ zfs: installedZfs, layout, source }, m.uuid);
      assert.equal(asked, 1);
      assert.deepEqual(JSON.parse(await readFile(layout.installedManifest(m.uuid), 'utf8')), m);
    });
  });
});
