/**
 * Scripts in the build definition (settings/scripts, the `scripts` setting):
 * `--run` takes a path or the object form, buildimage.json's paths are
 * relative to the file, each script is read once (regular file, bounded,
 * no link) and recorded with its sha256; the environment a script gets is
 * the clean one plus its own variables (build/scripts). The run itself is
 * tested on real ZFS (test/integration/scripts, test/hostile/scripts).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { scriptEnv, scriptTempName } from '../../src/build/scripts.js';
import { UsageError } from '../../src/core/errors.js';
import { buildDefinition } from '../../src/settings/definition.js';
import { resolveSettings } from '../../src/settings/resolve.js';
import { MAX_SCRIPT_VARS, checkScripts, parseScriptArg, scriptConfigToText, scriptName } from '../../src/settings/scripts.js';

const UUID = '41bd4100-eb86-409a-85b0-e649aadf6f62';

describe('scripts in the build definition', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'bi-scripts-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('--run takes a path (made absolute) or {"path", "env"}; variables are checked', () => {
    assert.deepEqual(parseScriptArg('/a/b.sh', '--run'), [{ path: '/a/b.sh', env: {} }]);
    assert.deepEqual(parseScriptArg('b.sh', '--run'), [{ path: join(process.cwd(), 'b.sh'), env: {} }]);
    assert.deepEqual(parseScriptArg('{"path": "/x.sh", "env": {"A_1": "v w"}}', '--run'), [{ path: '/x.sh', env: { A_1: 'v w' } }]);
    const bad = (text: string, re: RegExp) => assert.throws(() => parseScriptArg(text, '--run'), (e: Error) => e instanceof UsageError && re.test(e.message));
    bad('', /--run takes a script path/);
    bad('{"path": "/x.sh", "env": {"1A": "v"}}', /^--run: "1A" is not a variable name/);
    bad('{"path": "/x.sh", "env": {"A": "v\\u0000"}}', /^--run: variable A has a NUL character/);
    bad(`{"path": "/x.sh", "env": {"A": "${'x'.repeat(5000)}"}}`, /^--run: variable A is longer than 4096 bytes/);
    bad(JSON.stringify({ path: '/x.sh', env: Object.fromEntries(Array.from({ length: MAX_SCRIPT_VARS + 1 }, (_, i) => [`V${i}`, ''])) }), /at most 32 variables/);
    bad('{"path": "/x.sh", "shell": "rm -rf /"}', /^--run takes \{"path"/);
    bad('{not json', /not valid JSON/);
  });

  it("buildimage.json's paths are relative to the file, and always become the object form (a path may start with \"{\")", () => {
    assert.deepEqual(scriptConfigToText(['a.sh', { path: '/abs/b.sh', env: { X: '1' } }, '{odd}.sh'], '/comp'), [
      '{"path":"/comp/a.sh"}',
      '{"path":"/abs/b.sh","env":{"X":"1"}}',
      '{"path":"/comp/{odd}.sh"}',
    ]);
    assert.deepEqual(parseScriptArg('{"path":"/comp/{odd}.sh"}', 'x'), [{ path: '/comp/{odd}.sh', env: {} }]);
  });

  it('each script is read once: its name, size and sha256 recorded; a link, a directory or too big a file refused, naming where it came from', async () => {
    const s = join(dir, 'setup.sh');
    await writeFile(s, '#!/bin/sh\necho hi\n');
    const [rec] = await checkScripts([{ path: s, env: { A: 'b' } }], '--run');
    assert.deepEqual(rec, { path: s, name: 'setup.sh', size: 18, sha256: createHash('sha256').update('#!/bin/sh\necho hi\n').digest('hex'), env: { A: 'b' } });
    await symlink(s, join(dir, 'link.sh'));
    await assert.rejects(checkScripts([{ path: join(dir, 'link.sh'), env: {} }], '"scripts" in --config f.json'), (e: Error) => e instanceof UsageError && e.message === `cannot read script ("scripts" in --config f.json) ${join(dir, 'link.sh')}: it is a symbolic link`);
    await assert.rejects(checkScripts([{ path: dir, env: {} }], '--run'), /not a regular file/);
    await writeFile(join(dir, 'big.sh'), Buffer.alloc(256 * 1024 + 1));
    await assert.rejects(checkScripts([{ path: join(dir, 'big.sh'), env: {} }], '--run'), /is larger than 262144 bytes/);
    await assert.rejects(checkScripts(Array.from({ length: 33 }, () => ({ path: s, env: {} })), '--run'), /at most 32 scripts/);
    assert.equal(scriptName('/a/we\nird.sh'), '"we\\nird.sh"');
  });

  it('the definition records the scripts: --run replaces the file\'s list; the file\'s are relative to it', async () => {
    const a = join(dir, 'a.sh');
    const b = join(dir, 'b.sh');
    await writeFile(a, 'a\n');
    await writeFile(b, 'b\n');
    const config = join(dir, 'buildimage.json');
    await writeFile(config, JSON.stringify({ image: UUID, dir: '.', manifest: { name: 'n', version: '1' }, scripts: ['a.sh', { path: 'b.sh', env: { K: 'v' } }] }));
    const env = { BUILDIMAGE_DATASET_ROOT: 'pool/x' };
    const fromFile = await buildDefinition(await resolveSettings('build', { config }, { env }));
    assert.deepEqual(
      fromFile.scripts?.map((x) => [x.path, x.name, x.env]),
      [
        [a, 'a.sh', {}],
        [b, 'b.sh', { K: 'v' }],
      ],
    );
    const fromLine = await buildDefinition(await resolveSettings('build', { config, run: [b] }, { env }));
    assert.deepEqual(fromLine.scripts?.map((x) => x.path), [b]);
    await rm(a);
    await assert.rejects(resolveSettings('build', { config }, { env }).then(buildDefinition), (e: Error) => e.message === `cannot read script ("scripts" in --config ${config}) ${a}: no such file`);
  });

  it("a script's environment is the clean one and its own variables, nothing of buildimage's", () => {
    process.env.MANTA_KEY_ID_TEST_ONLY = 'secret';
    try {
      const env = scriptEnv({ NAME: 'svc' });
      assert.deepEqual(Object.keys(env).sort(), ['HOME', 'LANG', 'LC_ALL', 'NAME', 'PATH', 'TZ']);
      assert.equal(env.HOME, '/root');
      assert.equal(env.TZ, 'UTC');
    } finally {
      delete process.env.MANTA_KEY_ID_TEST_ONLY;
    }
    assert.equal(scriptTempName(2), '.buildimage-script-2');
  });
});
