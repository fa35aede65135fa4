/**
 * The manifest rules read closely: each value list, pattern bound and limit
 * at its edge, and the exact problem a user sees for each kind of bad field
 * (the one line `-m` or an origin manifest is refused with). manifest.test.ts
 * compares our verdicts with imgmanifest's; this file pins the rules where
 * imgmanifest has no verdict of its own or we are stricter.
 */
import assert from 'node:assert/strict';
import { BuildError, UsageError } from '../../src/core/errors.js';
import { buildImageManifest, parseMinPlatformFromUname } from '../../src/image/manifest/create.js';
import { parseManifestInput } from '../../src/image/manifest/input.js';
import { isPlatformStamp, isUuid, type ImageManifest, type ManifestInput, type ManifestProblem } from '../../src/image/manifest/types.js';
import { LIMITS, validate, validateManifest } from '../../src/image/manifest/validate.js';

const UUID = '4c5d7a2e-0e0b-4b8b-9d8a-1c2b3d4e5f60';
const SHA1 = 'a'.repeat(40);

function created(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    v: 2,
    uuid: UUID,
    owner: '00000000-0000-0000-0000-000000000000',
    name: 'x',
    version: '1.0',
    type: 'zone-dataset',
    os: 'smartos',
    published_at: '2024-01-31T12:00:00.000Z',
    files: [{ sha1: SHA1, size: 1, compression: 'gzip' }],
    ...over,
  };
}

const messages = (problems: ManifestProblem[]): string[] => problems.map((p) => p.message);
const check = (over: Record<string, unknown>, profile: 'created' | 'import' = 'created') => messages(validateManifest(created(over), profile));
const zvol = { type: 'zvol', nic_driver: 'virtio', disk_driver: 'virtio', cpu_type: 'host', image_size: 10240 };

describe('manifest rules at their edges', () => {
  describe('patterns are anchored at both ends', () => {
    it('uuid and platform stamp', () => {
      assert.equal(isUuid(UUID), true);
      assert.equal(isUuid(`x${UUID}`), false);
      assert.equal(isUuid(`${UUID}0`), false);
      assert.equal(isPlatformStamp('20180807T230146Z'), true);
      assert.equal(isPlatformStamp('20180807T230146Zx'), false);
      // Platform stamps start in 2012 (SmartOS's first 7.x platforms).
      assert.equal(isPlatformStamp('20120101T000000Z'), true);
      assert.equal(isPlatformStamp('20111231T235959Z'), false);
      assert.equal(isPlatformStamp('20180007T230146Z'), false);
      assert.equal(isPlatformStamp('20181300T230146Z'), false);
    });

    it('published_at', () => {
      assert.deepEqual(check({ published_at: '2024-01-31T12:00:00Z' }), []);
      // An expanded year (+00YYYY) is a date to Date.parse, not to IMGAPI.
      for (const bad of ['x2024-01-31T12:00:00Z', '2024-01-31T12:00:00Zx', '+002024-01-31T12:00:00Z']) {
        assert.deepEqual(check({ published_at: bad }), [`"published_at" must be a date like 2024-01-31T12:00:00.000Z, got ${JSON.stringify(bad)}`]);
      }
    });

    it('files[].sha1: exactly 40 lower-case hex digits', () => {
      for (const bad of [`${SHA1}0`, `x${SHA1}`]) {
        assert.deepEqual(check({ files: [{ sha1: bad, size: 1, compression: 'gzip' }] }), [`"files[0].sha1" must be 40 lower-case hex digits, got "${bad}"`]);
      }
    });

    it('SDC version keys of min_platform: digits, dot-separated, any length', () => {
      for (const key of ['7', '7.0', '7.0.1', '10.20']) {
        assert.deepEqual(check({ requirements: { min_platform: { [key]: '20180807T230146Z' } } }), [], key);
      }
      for (const key of ['x7.0', '7.0x', '7.', '.7']) {
        assert.deepEqual(check({ requirements: { min_platform: { [key]: '20180807T230146Z' } } }), [
          `"requirements.min_platform" key ${JSON.stringify(key)} is not an SDC version like "7.0"`,
        ], key);
      }
    });

    it('dataset_guid of what we write: decimal digits only, and only checked on what we write', () => {
      const guid = (g: string) => ({ files: [{ sha1: SHA1, size: 1, compression: 'gzip', dataset_guid: g }] });
      assert.deepEqual(check(guid('12345')), []);
      for (const bad of ['x12345', '12345x']) {
        assert.deepEqual(check(guid(bad)), [`"files[0].dataset_guid" must be a decimal ZFS guid string, got "${bad}"`]);
      }
      assert.deepEqual(check(guid('x'), 'import'), []);
    });

    it('URLs: http or https, leading blanks allowed (imgmanifest trims), at most 1024 characters', () => {
      for (const ok of ['https://a.example', ' \thttp://a.example', 'HTTP://A', `https://${'a'.repeat(LIMITS.url - 8)}`]) {
        assert.deepEqual(check({ homepage: ok }), [], ok);
      }
      assert.deepEqual(check({ homepage: 'xhttp://a' }), ['"homepage" must be an http: or https: URL']);
      assert.deepEqual(check({ eula: 'ftp://a' }), ['"eula" must be an http: or https: URL']);
      assert.deepEqual(check({ eula: 5 }), ['"eula" must be a string']);
      const long = `https://${'a'.repeat(LIMITS.url - 7)}`;
      assert.deepEqual(check({ homepage: long }), [`"homepage" is too long: ${LIMITS.url + 1} characters (max ${LIMITS.url})`]);
    });
  });

  describe('value lists', () => {
    it('every os, type, state and bootrom IMGAPI knows is accepted', () => {
      for (const os of ['smartos', 'linux', 'windows', 'bsd', 'illumos', 'other']) assert.deepEqual(check({ os }), [], os);
      for (const type of ['zone-dataset', 'lx-dataset', 'docker', 'lxd', 'other']) assert.deepEqual(check({ type }), [], type);
      for (const state of ['active', 'unactivated', 'disabled', 'failed', 'creating']) assert.deepEqual(check({ state }, 'import'), [], state);
      for (const bootrom of ['bios', 'uefi']) assert.deepEqual(check({ requirements: { brand: 'bhyve', bootrom } }), [], bootrom);
      assert.deepEqual(check({ requirements: { brand: 'bhyve', bootrom: 'pxe' } }), ['"requirements.bootrom" must be one of bios, uefi; got "pxe"']);
      assert.deepEqual(check({ os: 'plan9' }), ['"os" must be one of smartos, linux, windows, bsd, illumos, other; got "plan9"']);
    });

    it('"null" type and os only on a placeholder that is being created or failed', () => {
      assert.deepEqual(check({ type: 'null', os: 'null', state: 'creating' }, 'import'), []);
      assert.deepEqual(check({ type: 'null', os: 'null', state: 'failed' }, 'import'), []);
      assert.deepEqual(check({ type: 'null', state: 'active' }, 'import'), ['"type" must be one of zone-dataset, lx-dataset, zvol, docker, lxd, other; got "null"']);
      assert.deepEqual(check({ type: 'bogus', state: 'failed' }, 'import'), ['"type" must be one of zone-dataset, lx-dataset, zvol, docker, lxd, other; got "bogus"']);
      assert.deepEqual(check({ os: 'null' }), ['"os" must be one of smartos, linux, windows, bsd, illumos, other; got "null"']);
    });

    it('served fields are allowed in a served manifest and checked there, refused in a new one', () => {
      assert.deepEqual(check({ activated: true, icon: false, error: { message: 'x' }, channels: ['dev'], state: 'active' }, 'import'), []);
      assert.deepEqual(check({ activated: 'x', icon: 'x', error: 'x' }, 'import'), [
        '"activated" must be true or false, got "x"',
        '"icon" must be true or false, got "x"',
        '"error" must be an object',
      ]);
      assert.deepEqual(check({ icon: true, activated: true, error: {} }), [
        '"icon" is managed by IMGAPI and must not be in a new image\'s manifest',
        '"activated" is managed by IMGAPI and must not be in a new image\'s manifest',
        '"error" is managed by IMGAPI and must not be in a new image\'s manifest',
      ]);
      assert.deepEqual(validateManifest(created({ error: 'x' }), 'import'), [{ field: 'error', code: 'Invalid', message: '"error" must be an object' }]);
      for (const key of ['state', 'activated', 'channels', 'icon', 'error']) {
        assert.throws(
          () => parseManifestInput(JSON.stringify({ name: 'x', version: '1', [key]: 'x' })),
          (e: unknown) => e instanceof UsageError && e.message === `manifest (-m): "${key}" is managed by IMGAPI and cannot be given`,
          key,
        );
      }
    });
  });

  describe('each kind of bad field, as the user reads it', () => {
    it('v: a number or numeric string; only 2', () => {
      assert.deepEqual(check({ v: '2' }), []);
      for (const [v, shown] of [[true, 'true'], ['x', '"x"'], [-1, '-1'], [null, 'null']] as const) {
        assert.deepEqual(check({ v }), [`"v" must be a non-negative number, got ${shown}`], shown);
      }
      for (const [v, shown] of [[0, '0'], [1, '1'], ['3', '"3"']] as const) {
        assert.deepEqual(check({ v }), [`"v" must be 2 (only v2 manifests are supported), got ${shown}`], shown);
      }
    });

    it('files: an array of one (two for lxd) objects', () => {
      const file = { sha1: SHA1, size: 1, compression: 'gzip' };
      assert.deepEqual(check({ files: 'x' }), ['"files" must be an array']);
      assert.deepEqual(check({ files: [] }), ['"files" is empty (one entry with sha1, size and compression is needed)']);
      assert.deepEqual(check({ files: [file, file] }), ['"files" has 2 entries (max 1)']);
      assert.deepEqual(check({ type: 'lxd', files: [file, file] }), []);
      assert.deepEqual(check({ type: 'lxd', files: [file, file, file] }), ['"files" has 3 entries (max 2)']);
      assert.deepEqual(check({ files: ['x'] }), ['"files[0]" must be an object']);
      assert.deepEqual(check({ files: [{ ...file, compression: 'zstd' }] }), ['"files[0].compression" must be one of gzip, bzip2, xz, none; got "zstd"']);
    });

    it('strings, arrays and objects', () => {
      assert.deepEqual(check({ urn: 5 }), ['"urn" must be a string']);
      assert.deepEqual(check({ urn: 'sdc:x' }), []);
      assert.deepEqual(check({ acl: 'x' }), ['"acl" must be an array of UUIDs']);
      assert.deepEqual(check({ users: 'x' }), ['"users" must be an array of {"name": ...} objects']);
      assert.deepEqual(check({ traits: [] }), ['"traits" must be an object']);
    });

    it('the allowed characters of a version are named', () => {
      assert.deepEqual(check({ version: '1 0' }), ['"version" "1 0" has invalid characters (only letters, digits and ".", "-", "_", "/", "+" are allowed)']);
    });

    it('a value is shown up to 60 characters, longer ones clipped with "…"', () => {
      const at = `a${' '.repeat(57)}`; // 60 characters as JSON
      assert.deepEqual(check({ version: at }), [`"version" ${JSON.stringify(at)} has invalid characters (only letters, digits and ".", "-", "_", "/", "+" are allowed)`]);
      const over = `${at} `;
      assert.deepEqual(check({ version: over }), [`"version" ${JSON.stringify(over).slice(0, 60)}… has invalid characters (only letters, digits and ".", "-", "_", "/", "+" are allowed)`]);
    });

    it('zvol-only fields: strings, and image_size a positive integer', () => {
      assert.deepEqual(check(zvol), []);
      assert.deepEqual(check({ ...zvol, nic_driver: 5 }), ['"nic_driver" must be a string']);
      assert.deepEqual(check({ ...zvol, image_size: 0 }), ['"image_size" must be a positive integer (MiB), got 0']);
      assert.deepEqual(check({ type: 'zvol' }), [
        '"nic_driver" is missing (required for type "zvol")',
        '"disk_driver" is missing (required for type "zvol")',
        '"cpu_type" is missing (required for type "zvol")',
        '"image_size" is missing (required for type "zvol")',
      ]);
      // In -m the drivers may come later (the origin's): not required there.
      assert.deepEqual(messages(validate({ name: 'x', version: '1', type: 'zvol' }, 'input')), []);
    });

    it('inherited_directories only on a zone-dataset image once the type is known', () => {
      assert.deepEqual(check({ ...zvol, inherited_directories: ['/opt'] }), ['"inherited_directories" is only allowed for type "zone-dataset" images (type is "zvol")']);
      assert.deepEqual(check({ ...zvol, inherited_directories: ['/opt'] }, 'import'), ['"inherited_directories" is only allowed for type "zone-dataset" images (type is "zvol")']);
      assert.deepEqual(messages(validate({ name: 'x', version: '1', inherited_directories: ['/opt'] }, 'input')), []);
      // Once built, no type is no zone-dataset either.
      assert.deepEqual(check({ type: undefined, inherited_directories: ['/opt'] }), [
        '"type" is missing',
        '"inherited_directories" is only allowed for type "zone-dataset" images (type is undefined)',
      ]);
    });

    it('requirements.networks entries: exactly name and description', () => {
      const nets = (n: unknown) => check({ requirements: { networks: n } });
      assert.deepEqual(nets([{ name: 'net0', description: 'public' }]), []);
      assert.deepEqual(nets('x'), ['"requirements.networks" must be an array']);
      for (const bad of [{ description: 'public', x: 1 }, { name: 'net0', x: 1 }, { name: 'net0', description: 'public', x: 1 }]) {
        assert.deepEqual(nets([bad]), [`"requirements.networks" entries must be exactly {"name", "description"}; got ${JSON.stringify(bad)}`], JSON.stringify(bad));
      }
    });

    it('ram: min_ram up to max_ram; a bad max_ram is one problem, not two', () => {
      assert.deepEqual(check({ requirements: { min_ram: 512, max_ram: 512 } }), []);
      assert.deepEqual(check({ requirements: { min_ram: 1024, max_ram: 512 } }), ['"requirements.min_ram" (1024) must be <= "requirements.max_ram" (512)']);
      assert.deepEqual(check({ requirements: { min_ram: 5, max_ram: -1 } }), ['"requirements.max_ram" must be a positive integer (MiB), got -1']);
    });

    it('activated (true or "true") needs published_at and files, in any profile', () => {
      const served = created({ activated: 'true' });
      delete served.published_at;
      assert.deepEqual(messages(validateManifest(served, 'import')), ['"published_at" is missing (required when "activated" is true)']);
      assert.deepEqual(check({ activated: true }, 'import'), []);
    });

    it('a field present with no value is as good as absent', () => {
      assert.deepEqual(check({ description: undefined, homepage: undefined }), []);
    });

    it('nesting: 64 levels are fine, a 65th is refused', () => {
      const nest = (levels: number): unknown => (levels === 0 ? 'x' : { a: nest(levels - 1) });
      assert.deepEqual(check({ tags: nest(64) }), []);
      assert.deepEqual(check({ tags: nest(65) }), ['"tags" is nested too deeply (max 64 levels)']);
    });
  });

  describe('-m', () => {
    it('refuses each v1-only field by name', () => {
      for (const f of ['creator_uuid', 'vendor_uuid', 'creator_name', 'platform_type', 'cloud_name', 'created_at', 'updated_at']) {
        assert.throws(
          () => parseManifestInput(JSON.stringify({ name: 'x', version: '1', [f]: 'x' })),
          (e: unknown) => e instanceof UsageError && e.message === `manifest (-m) looks like a v1 image manifest ("${f}"); give v2 fields only, e.g. name, version, description, tags`,
          f,
        );
      }
    });

    it('takes a text of exactly the size limit, and refuses one character more', () => {
      const body = '{"name":"x","version":"1"}';
      const at = body + ' '.repeat(LIMITS.inputChars - body.length);
      assert.equal(parseManifestInput(at).name, 'x');
      assert.throws(
        () => parseManifestInput(`${at} `),
        (e: unknown) => e instanceof UsageError && e.message === `manifest (-m) is too large: ${LIMITS.inputChars + 1} characters (max ${LIMITS.inputChars})`,
      );
    });
  });

  describe('buildImageManifest', () => {
    const origin: ImageManifest = {
      v: 2,
      uuid: '11111111-2222-4333-8444-555555555555',
      name: 'origin',
      version: '1',
      type: 'zone-dataset',
      os: 'smartos',
      requirements: { min_platform: { '7.0': '20150101T000000Z' }, brand: 'joyent' },
      files: [{ sha1: SHA1, size: 1, compression: 'gzip' }],
    };
    const build = (input: ManifestInput, o: Partial<Parameters<typeof buildImageManifest>[0]> = {}) =>
      buildImageManifest({ input, origin, uuid: UUID, file: { sha1: SHA1, size: 2, compression: 'gzip' }, publishedAt: '2024-01-31T12:00:00.000Z', ...o });

    it('every field in the documented order, whatever order -m gave; files last', () => {
      const input = {
        image_size: 10240, cpu_type: 'host', disk_driver: 'virtio', nic_driver: 'virtio', inherited_directories: undefined,
        generate_passwords: true, tags: {}, traits: {}, billing_tags: ['b'], users: [{ name: 'u' }], requirements: { brand: 'bhyve' },
        acl: [UUID], type: 'zvol', published_at: '2024-01-31T12:00:00.000Z', public: false, disabled: false, urn: 'sdc:x',
        eula: 'https://e', homepage: 'https://h', description: 'd', version: '1', name: 'x', owner: UUID, os: 'smartos',
      } as ManifestInput;
      assert.deepEqual(Object.keys(build(input)), [
        'v', 'uuid', 'owner', 'name', 'version', 'description', 'homepage', 'eula', 'urn',
        'disabled', 'public', 'published_at', 'type', 'os', 'origin', 'acl', 'requirements',
        'users', 'billing_tags', 'traits', 'tags', 'generate_passwords',
        'nic_driver', 'disk_driver', 'cpu_type', 'image_size', 'files',
      ]);
    });

    it('inherited_directories in its place on a zone-dataset image', () => {
      const m = build({ name: 'x', version: '1', inherited_directories: ['/opt'], generate_passwords: false, tags: {}, os: 'smartos' });
      assert.deepEqual(Object.keys(m), ['v', 'uuid', 'owner', 'name', 'version', 'published_at', 'type', 'os', 'origin', 'requirements', 'tags', 'generate_passwords', 'inherited_directories', 'files']);
      // Before a key it does not know, whether -m gave it after that key or the origin passed it on.
      const given = build({ name: 'x', version: '1', future_field: 1, inherited_directories: ['/opt'] } as unknown as ManifestInput);
      assert.deepEqual(Object.keys(given).slice(-3), ['inherited_directories', 'future_field', 'files']);
      const inherited = build({ name: 'x', version: '1', future_field: 1 } as unknown as ManifestInput, { origin: { ...origin, inherited_directories: ['/opt'] } });
      assert.deepEqual(inherited.inherited_directories, ['/opt']);
      assert.deepEqual(Object.keys(inherited).slice(-3), ['inherited_directories', 'future_field', 'files']);
    });

    it('an unknown key goes after every known one, image_size included', () => {
      const m = build({ name: 'x', version: '1', type: 'zvol', future_field: 1, image_size: 10240 } as unknown as ManifestInput);
      assert.deepEqual(Object.keys(m).slice(-3), ['image_size', 'future_field', 'files']);
    });

    it('keys it does not know keep their value, after the known ones and before files', () => {
      const m = build({ name: 'x', version: '1', future_field: 1 } as unknown as ManifestInput);
      assert.deepEqual(Object.keys(m).slice(-2), ['future_field', 'files']);
      assert.equal(m.future_field, 1);
    });

    it('is a plain object: every key can be changed and removed, as in JSON.parse\'s', () => {
      const m = build({ name: 'x', version: '1', description: 'd' });
      assert.deepEqual(Object.getOwnPropertyDescriptor(m, 'description'), { value: 'd', writable: true, enumerable: true, configurable: true });
      delete m.description;
      assert.equal('description' in m, false);
    });

    it('a field given with no value is inherited as if absent', () => {
      const m = build({ name: 'x', version: '1', os: undefined, type: undefined });
      assert.equal(m.os, 'smartos');
      assert.equal(m.type, 'zone-dataset');
    });

    it('without a host stamp, -m\'s min_platform wins over the origin\'s, and no empty min_platform appears', () => {
      assert.deepEqual(build({ name: 'x', version: '1', requirements: { min_platform: { '7.0': '20200101T000000Z' } } }).requirements, {
        min_platform: { '7.0': '20200101T000000Z' },
      });
      const bare = build({ name: 'x', version: '1', requirements: { brand: 'joyent' } }, { origin: { ...origin, requirements: undefined } });
      assert.deepEqual(bare.requirements, { brand: 'joyent' });
      assert.equal(Object.hasOwn(bare.requirements, 'min_platform'), false);
    });
  });

  describe('min_platform from uname -v', () => {
    it('the text after the first "_", wherever it is', () => {
      assert.deepEqual(parseMinPlatformFromUname('a_20180807T230146Z'), { '7.0': '20180807T230146Z' });
      assert.deepEqual(parseMinPlatformFromUname('20180807T230146Z'), { '7.0': '20180807T230146Z' });
    });

    it('says where the stamp comes from when it is not one', () => {
      assert.throws(
        () => parseMinPlatformFromUname('joyent_x'),
        (e: unknown) =>
          e instanceof BuildError &&
          e.message === 'uname -v "joyent_x" does not look like a SmartOS platform stamp (e.g. joyent_20180807T230146Z)' &&
          e.hint === "the image's requirements.min_platform comes from the platform of the SmartOS host it is built on",
      );
    });
  });
});
