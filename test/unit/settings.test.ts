/**
 * The settings table is the one definition of every setting: the commands'
 * flags, the definition file's keys, the build definition's fields and the
 * README's table are made from it. These tests hold each of those to it,
 * and check where a value comes from (command line > --config > env > default).
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Config } from '@oclif/core';
import { settingsMarkdown } from '../../src/cli/settings-doc.js';
import { UsageError } from '../../src/core/errors.js';
import { DefinitionSchema, buildDefinition } from '../../src/settings/definition.js';
import { DefinitionFileSchema, loadDefinitionFile, resolveSettings } from '../../src/settings/resolve.js';
import { COMMANDS, SETTINGS, envFor, flagName, settingsOf, type Setting, type SettingId } from '../../src/settings/table.js';
import { flagsFor, forParsing } from '../../src/cli/flags.js';
import { REPO } from '../helpers/cli.js';

const UUID = '41bd4100-eb86-409a-85b0-e649aadf6f62';
const ids = Object.keys(SETTINGS) as SettingId[];
const table = (id: SettingId) => SETTINGS[id] as Setting;

describe('settings table', () => {
  let dir: string;
  let proto: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'bi-settings-'));
    proto = join(dir, 'proto');
    await mkdir(proto);
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('the README table is the settings table rendered (npm run docs)', async () => {
    const readme = await readFile(join(REPO, 'README.md'), 'utf8');
    assert.ok(readme.includes(settingsMarkdown()), 'README.md settings table differs from src/settings/table.ts: run npm run docs');
  });

  it('no command has two settings with one long or short flag', () => {
    for (const command of COMMANDS) {
      const names = settingsOf(command).map(flagName);
      const chars = settingsOf(command).flatMap((id) => table(id).char ?? []);
      assert.deepEqual(names, [...new Set(names)], `${command}: long flags`);
      assert.deepEqual(chars, [...new Set(chars)], `${command}: short flags`);
    }
  });

  it("each command's oclif flags are its settings, with their short flags, and nothing else", async () => {
    const config = await Config.load(REPO);
    for (const command of COMMANDS) {
      const flags = config.findCommand(command)!.flags as Record<string, { char?: string }>;
      const names = Object.keys(flags).filter((f) => f !== 'json').sort();
      assert.deepEqual(names, settingsOf(command).map(flagName).sort(), command);
      for (const id of settingsOf(command)) assert.equal(flags[flagName(id)].char, table(id).char, `${command} --${flagName(id)}`);
    }
  });

  it('each flag declares its variable as oclif `env` (as help shows it), and no other way', async () => {
    const config = await Config.load(REPO);
    for (const command of COMMANDS) {
      const flags = config.findCommand(command)!.flags as Record<string, { env?: string; description?: string }>;
      for (const id of settingsOf(command)) {
        assert.equal(flags[flagName(id)].env, envFor(id, command), `${command} --${flagName(id)}`);
        assert.doesNotMatch(flags[flagName(id)].description ?? '', /env:/, `${command} --${flagName(id)}: the variable only as oclif's env`);
      }
    }
    // Parsing: oclif itself reads no variable (resolve.ts does, after buildimage.json).
    const parsing = forParsing(flagsFor('assemble'))!;
    assert.ok(Object.values(parsing).every((f) => f.env === undefined));
    assert.equal(flagsFor('assemble').state.env, 'BUILDIMAGE_STATE');
  });

  it('BUILDIMAGE_STATE is --state for build, the stages and clean; not for publish', async () => {
    const env = { BUILDIMAGE_STATE: '/ws/.buildimage/state.json', BUILDIMAGE_DATASET_ROOT: 'p/x' };
    for (const c of ['build', 'prepare', 'assemble', 'pkgadd', 'seal', 'clean'] as const) {
      assert.equal((await resolveSettings(c, {}, { env })).state, '/ws/.buildimage/state.json', c);
      assert.equal((await resolveSettings(c, { state: 'given.json' }, { env })).state, 'given.json', `${c}: the flag wins`);
    }
    assert.equal((await resolveSettings('publish', {}, { env })).state, undefined);
    assert.equal((await resolveSettings('seal', {}, { env: {} })).state, '.buildimage/state.json');
  });

  it('a value from the definition file is named by its key there, not by the flag', async () => {
    const file = join(dir, 'keys.json');
    await writeFile(file, JSON.stringify({ prefix: '../evil', 'min-platform': 'soon' }));
    await assert.rejects(resolveSettings('build', { config: file }, { env: {} }), (e: Error) => e instanceof UsageError && e.message === `"prefix" in --config ${file} must be a file name prefix (letters, digits, . _ + -), got "../evil"`);
    await writeFile(file, JSON.stringify({ 'min-platform': 'soon' }));
    await assert.rejects(resolveSettings('build', { config: file }, { env: {} }), (e: Error) => e instanceof UsageError && e.message.startsWith(`"min-platform" in --config ${file} must be a platform stamp`));
    // The command line's value is named by its flag, the variable's by the variable.
    await assert.rejects(resolveSettings('build', { config: file, 'min-platform': 'later' }, { env: {} }), /^UsageError: --min-platform must be/);
    await assert.rejects(resolveSettings('clean', {}, { env: { BUILDIMAGE_DATASET_ROOT: 'a/../b' } }), /^UsageError: BUILDIMAGE_DATASET_ROOT \(--dataset-root\): /);
  });

  it('the definition file is read as a regular file of at most 1 MiB, and its text is never in a message', async () => {
    const secret = join(dir, 'secret');
    await writeFile(secret, 'root:$6$secrethash:19000:0:99999:7:::\n');
    assert.throws(() => loadDefinitionFile(secret), (e: Error) => e instanceof UsageError && e.message === `--config ${secret} is not valid JSON` && !e.message.includes('secrethash'));
    assert.throws(() => loadDefinitionFile(dir), (e: Error) => e instanceof UsageError && e.message === `cannot read --config ${dir}: not a regular file`);
    const big = join(dir, 'big.json');
    await writeFile(big, `{"//":"${'x'.repeat(1024 * 1024)}"}`);
    assert.throws(() => loadDefinitionFile(big), (e: Error) => e instanceof UsageError && e.message === `--config ${big} is larger than 1048576 bytes`);
  });

  it('the definition file takes exactly the settings with a config key, and its fields are exactly those with a field', () => {
    // Plus "images" (several images, each with those keys again) and "$schema" (for editors).
    assert.deepEqual(Object.keys(DefinitionFileSchema.shape).sort(), [...ids.filter((id) => table(id).config), '$schema', 'images'].sort());
    // Plus what --locked read from the lockfile (settings/lockfile), once, when the build is defined.
    assert.deepEqual(Object.keys(DefinitionSchema.shape).sort(), [...ids.flatMap((id) => table(id).field ?? []), 'packageLock'].sort());
  });

  it('a value comes from the command line, else --config, else the environment, else the default', async () => {
    const file = join(dir, 'def.json');
    await writeFile(file, JSON.stringify({ source: 'from-file', packages: ['a', 'b'], motd: true, 'output-dir': 'out' }));
    const env = { BUILDIMAGE_SOURCE: '/from/env' };
    const line = await resolveSettings('build', { config: file, source: '/from/line' }, { env });
    assert.equal(line.source, '/from/line');
    const fromFile = await resolveSettings('build', { config: file }, { env });
    assert.equal(fromFile.source, join(dir, 'from-file'), 'a relative path in the file is relative to the file');
    assert.deepEqual(fromFile.packages, ['a', 'b']);
    assert.equal(fromFile.motd, true);
    assert.equal(fromFile['output-dir'], join(dir, 'out'));
    assert.equal((await resolveSettings('build', {}, { env })).source, '/from/env');
    const none = await resolveSettings('build', {}, { env: {} });
    assert.equal(none.source, 'https://updates.tritondatacenter.com');
    assert.equal(none.motd, false);
    assert.equal(none.timeout, 30 * 60_000);
    assert.equal(none.state, undefined, 'build keeps no state file unless asked');
    assert.equal((await resolveSettings('seal', {}, { env: {} })).state, '.buildimage/state.json');
  });

  it('the manifest: the file\'s, -m merged over it, --image-version over both', async () => {
    const file = join(dir, 'mf.json');
    await writeFile(file, JSON.stringify({ image: UUID, dir: 'proto', manifest: { name: 'svc', version: '0', description: 'from file' } }));
    const s = await resolveSettings('build', { config: file, manifest: '{"version":"1","tags":{"a":"b"}}', 'image-version': '2' }, { env: { BUILDIMAGE_DATASET_ROOT: 'p/x' } });
    const def = await buildDefinition(s);
    assert.deepEqual(def.manifest, { name: 'svc', version: '2', description: 'from file', tags: { a: 'b' } });
    assert.equal(def.protoDir, proto);
    assert.equal(def.prefix, 'svc-zfs', 'the prefix defaults to NAME-zfs');
    assert.equal(def.datasetRoot, 'p/x');
  });

  it('missing and malformed values are one UsageError naming the flag the user knows', async () => {
    const env = { BUILDIMAGE_DATASET_ROOT: 'p/x' };
    await assert.rejects(async () => buildDefinition(await resolveSettings('build', { dir: proto, manifest: '{"name":"a","version":"1"}' }, { env })), (e: Error) => e instanceof UsageError && /^missing -i \(the base image uuid\)$/.test(e.message));
    await assert.rejects(resolveSettings('build', { image: 'nope' }, { env }), /: -i must be an image uuid/);
    await assert.rejects(resolveSettings('build', { timeout: '5x' }, { env }), /: --timeout must be a duration/);
    await assert.rejects(resolveSettings('clean', {}, { env: { BUILDIMAGE_DATASET_ROOT: 'bad//name' } }), /invalid dataset root name/);
    const file = join(dir, 'bad.json');
    await writeFile(file, JSON.stringify({ imgae: UUID }));
    assert.throws(() => loadDefinitionFile(file), /unknown key "imgae"/);
  });

  // Issue 12, item 8: the version (and the name, through the prefix) names the output files.
  it('a version that is not one file-name component fails before prepare, naming the flag (and the STAMP fix for feature/x)', async () => {
    const env = { BUILDIMAGE_DATASET_ROOT: 'p/x' };
    const define = async (flags: Record<string, unknown>) =>
      buildDefinition(await resolveSettings('build', { image: UUID, dir: proto, manifest: '{"name":"svc","version":"1"}', ...flags }, { env }));
    const usage = (re: RegExp) => (e: Error) => e instanceof UsageError && re.test(e.message);
    await assert.rejects(define({ 'image-version': 'feature/x-20240101T000000Z-gabcdef0' }), (e: Error) =>
      e instanceof UsageError && /^--image-version becomes part of output file names .* has "\/"/.test(e.message) && /tr \/ -/.test((e).hint ?? ''));
    for (const v of ['../x', 'a/b', '../../../../tmp/evil']) await assert.rejects(define({ 'image-version': v }), usage(/^--image-version .* has "\/"/));
    for (const v of ['.', '..']) await assert.rejects(define({ 'image-version': v }), usage(/^--image-version .* is "\.\.?"/));
    await assert.rejects(define({ 'image-version': 'x'.repeat(300) }), usage(/^--image-version .* longer than 200 bytes/));
    await assert.rejects(define({ 'image-version': 'a\nb' }), usage(/control character/));
    // From -m (or the definition file): named as -m "version".
    await assert.rejects(define({ manifest: '{"name":"svc","version":"a/../../b"}' }), usage(/^-m "version" becomes part of output file names .* has "\/"/));
    // Prefix and version together too long for a file name.
    await assert.rejects(define({ prefix: 'p'.repeat(150), 'image-version': 'v'.repeat(100) }), usage(/would be too long/));
    // A name with "/" cannot make the default prefix: say so, not "-P must be...".
    await assert.rejects(define({ manifest: '{"name":"a/b","version":"1"}' }), (e: Error) => e instanceof UsageError && /^-m "name" is "a\/b": it cannot make the output file prefix/.test(e.message));
    assert.equal((await define({ 'image-version': 'master-20240101T000000Z-gabcdef0' })).manifest.version, 'master-20240101T000000Z-gabcdef0');
  });
});
