/**
 * buildimage.json with several images: how "images" is read (each image's
 * keys over the shared ones, the manifest merged key by key), the JSON
 * Schema made from it for editors (committed, and fresh), and the per-image
 * state files and lockfiles of a multi-image build.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { definitionSchemaText } from '../../scripts/render-schema.js';
import { imageJobs, imageStatePath } from '../../src/build/multi.js';
import { DEFINITION_SCHEMA_FILE } from '../../src/core/package.js';
import { UsageError } from '../../src/core/errors.js';
import { selectImages } from '../../src/settings/images.js';
import { DefinitionFileSchema, imageDefinitionFile, loadDefinitionFile, resolveSettings } from '../../src/settings/resolve.js';
import { renderDefinition } from '../../src/setup/init.js';
import { REPO } from '../helpers/cli.js';
import type { BuildDefinition } from '../../src/build/state.js';

const Ajv = createRequire(import.meta.url)('ajv') as new (o: object) => { compile(s: object): ((d: unknown) => boolean) & { errors?: unknown } };

const UUID = '11111111-2222-4333-8444-555555555555';
const OTHER = '22222222-2222-4333-8444-555555555555';

describe('buildimage.json with "images"', () => {
  let dir: string;
  before(async () => (dir = await mkdtemp(join(tmpdir(), 'bi-defs-'))));
  after(() => rm(dir, { recursive: true, force: true }));

  async function file(name: string, json: unknown): Promise<string> {
    const p = join(dir, name);
    await writeFile(p, typeof json === 'string' ? json : JSON.stringify(json));
    return p;
  }

  it('reads images over shared defaults: keys replaced, the manifest merged key by key, "//" comments dropped', async () => {
    const p = await file('two.json', {
      '//': 'shared',
      image: UUID,
      packages: ['a', 'b'],
      manifest: { version: '1', description: 'shared', tags: { x: true } },
      images: [
        { '//': 'first', name: 'api', manifest: { name: 'api', description: 'mine' } },
        { name: 'web', image: OTHER, packages: [], motd: true, manifest: { name: 'web' } },
      ],
    });
    const f = loadDefinitionFile(p);
    assert.deepEqual(f.images?.map((i) => i.name), ['api', 'web']);
    const api = imageDefinitionFile(f, 'api').values;
    const web = imageDefinitionFile(f, 'web').values;
    assert.deepEqual(api, { image: UUID, packages: ['a', 'b'], manifest: { version: '1', description: 'mine', tags: { x: true }, name: 'api' } });
    assert.deepEqual(web, { image: OTHER, packages: [], motd: true, manifest: { version: '1', description: 'shared', tags: { x: true }, name: 'web' } });
  });

  it('a one-image file reads as it always did (no "images")', async () => {
    const p = await file('one.json', { image: UUID, manifest: { name: 'x', version: '1' } });
    assert.deepEqual(loadDefinitionFile(p), { path: p, values: { image: UUID, manifest: { name: 'x', version: '1' } } });
  });

  it('each image resolved: the command line over the image over the shared keys; each its own lockfile; --only in the definition\'s order', async () => {
    const p = await file('three.json', { image: UUID, manifest: { version: '1' }, images: [{ name: 'a', manifest: { name: 'a' } }, { name: 'b', prefix: 'bee', manifest: { name: 'b' } }, { name: 'c' }] });
    const flags = { config: p, only: ['c', 'a'], packages: 'z' };
    const top = await resolveSettings('build', flags, { env: {} });
    const sel = await selectImages('build', flags, top, {});
    assert.equal(sel.multi, true);
    assert.deepEqual(sel.images.map((i) => i.name), ['a', 'c']);
    assert.deepEqual(sel.images[0].settings.packages, ['z'], 'the command line wins');
    assert.equal(sel.images[0].settings['lock-file'], join(dir, 'three.a.lock.json'));
    assert.equal(sel.images[1].settings['lock-file'], join(dir, 'three.c.lock.json'));
    const err = await selectImages('build', { config: p, only: ['nope'] }, await resolveSettings('build', { config: p, only: ['nope'] }, { env: {} }), {}).catch((e: unknown) => e);
    assert.ok(err instanceof UsageError);
    assert.equal(err.message, `--only nope: --config ${p} has no such image`);
    assert.equal(err.hint, 'its images: a, b, c');
    const prep = await selectImages('prepare', { config: p }, await resolveSettings('prepare', { config: p }, { env: {} }), {}).catch((e: unknown) => e);
    assert.match((prep as Error).message, /lists 3 images: prepare builds one, named with --only/);
  });

  it('several images: a --state each (state.NAME.json), none shared; one image keeps the path given', () => {
    assert.equal(imageStatePath('.buildimage/state.json', 'api', true), '.buildimage/state.api.json');
    assert.equal(imageStatePath('s', 'api', true), 's.api');
    assert.equal(imageStatePath('.buildimage/state.json', 'api', false), '.buildimage/state.json');
    assert.equal(imageStatePath(undefined, 'api', true), undefined);
    const def = {} as BuildDefinition;
    const jobs = imageJobs(
      [
        { name: 'a', def, lockFile: '/x/one.lock.json' },
        { name: 'b', def, lockFile: '/x/one.lock.json' },
      ],
      { state: 'st.json', writeLock: false },
    );
    assert.deepEqual(jobs.map((j) => j.statePath), ['st.a.json', 'st.b.json']);
    assert.throws(
      () => imageJobs([{ name: 'a', def, lockFile: '/x/one.lock.json' }, { name: 'b', def, lockFile: '/x/one.lock.json' }], { writeLock: true }),
      /images a and b would write the same lockfile \(--write-lock\)/,
    );
  });

  it('buildimage.schema.json is the definition schema rendered (npm run docs)', async () => {
    const committed = await readFile(join(REPO, DEFINITION_SCHEMA_FILE), 'utf8');
    assert.ok(committed === definitionSchemaText(), `${DEFINITION_SCHEMA_FILE} differs from src/settings: run npm run docs`);
  });

  it('the JSON Schema agrees with the loader: init\'s files and a multi-image file pass, what the loader refuses fails', async () => {
    const validate = new Ajv({ strict: false, allErrors: true }).compile(JSON.parse(definitionSchemaText()) as object);
    const good = [
      JSON.parse(renderDefinition('smartdc-service', { name: 'svc', description: 'd', base: UUID, sourceRepo: 'https://example.com/x' })),
      JSON.parse(renderDefinition('plain', { name: 'svc', description: 'd', base: UUID })),
      { image: UUID, '//': 'c', images: [{ name: 'a', '//x': 'c', dir: 'p', add: [{ archive: 'a.tgz', dir: '/opt' }], manifest: { name: 'a' } }] },
    ];
    for (const g of good) {
      assert.ok(validate(g), JSON.stringify(validate.errors));
      assert.ok(DefinitionFileSchema.safeParse(Object.fromEntries(Object.entries(g as object).filter(([k]) => !k.startsWith('//')))).success || 'images' in (g as object));
    }
    const bad = [
      { images: [] },
      { images: [{ dir: 'p' }] },
      { images: [{ name: '..' }] },
      { images: [{ name: 'a/b' }] },
      { images: [{ name: 'é' }] },
      { images: [{ name: 'x'.repeat(65) }] },
      { images: [{ name: 'a', images: [] }] },
      { images: [{ name: 'a', config: 'x.json' }] },
      { images: [{ name: 'a', 'dataset-root': 'x' }] },
      { pakages: [] },
    ];
    for (const b of bad) {
      assert.equal(validate(b), false, JSON.stringify(b));
      const p = await file('bad.json', b);
      assert.throws(() => loadDefinitionFile(p), UsageError, JSON.stringify(b));
    }
  });
});
