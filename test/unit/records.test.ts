/**
 * Credentials in URL-valued settings (--source, -S) and in CI variables
 * never reach what is recorded or published: the state file,
 * build-info.json, the image's /etc/motd (issue 12, item 4). The process
 * given the real --source still uses it.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildInfo } from '../../src/build/build-info.js';
import { renderMotd } from '../../src/build/stages/assemble.js';
import { newState, StateFile } from '../../src/build/state.js';
import { recordedUrl, redactUrl } from '../../src/core/redact.js';
import type { ImageManifest } from '../../src/image/manifest/types.js';
import { recordedDefinition } from '../../src/settings/definition.js';
import { resolveSettings } from '../../src/settings/resolve.js';
import { sampleDefinition } from './state.test.js';

const SECRETS = ['hunter2', 's3cr3t-t0ken', 'sig-abc', 'jenkinspw'];
const SOURCE = 'https://builder:hunter2@images.example.com:8443/imgapi?token=s3cr3t-t0ken&channel=dev#frag';
const REPO = 'https://ci:hunter2@github.com/org/svc.git?access_token=s3cr3t-t0ken';

function assertNoSecret(text: string, where: string): void {
  for (const s of SECRETS) assert.ok(!text.includes(s), `${where} has ${s}:\n${text}`);
}

describe('records without credentials', () => {
  it('recordedUrl: scheme, host, port, path and query keys kept; user, password, query values, fragment dropped', () => {
    assert.equal(recordedUrl(SOURCE), 'https://images.example.com:8443/imgapi?token=…&channel=dev');
    assert.equal(recordedUrl('https://u:p@h/'), 'https://h');
    assert.equal(recordedUrl('http://u@h/p?sig=sig-abc&sig=2'), 'http://h/p?sig=…&sig=…');
    assert.equal(recordedUrl('ci:hunter2@git.example.com:org/repo.git'), 'git.example.com:org/repo.git');
    // Nothing to hide: unchanged (the default source, a directory, an scp-like remote).
    for (const t of ['https://updates.tritondatacenter.com', '/var/images', 'git@github.com:org/repo.git', 'https://h/p/']) assert.equal(recordedUrl(t), t);
    assert.equal(redactUrl(SOURCE), 'https://images.example.com:8443/imgapi?…');
  });

  it('-S is kept without credentials from the start; --source is recorded without them', async () => {
    const s = await resolveSettings('build', { 'source-repo': REPO, source: SOURCE }, { env: {} });
    assert.equal(s['source-repo'], 'https://github.com/org/svc.git?access_token=…');
    assert.equal(s.source, SOURCE, 'the process given --source uses it as given');
    assert.equal(recordedDefinition({ ...sampleDefinition, source: SOURCE }).source, recordedUrl(SOURCE));
  });

  it('the state file records --source without credentials; this process keeps the real one', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'bi-records-'));
    try {
      const sf = new StateFile(join(dir, 'state.json'), newState({ ...sampleDefinition, source: SOURCE, sourceRepo: REPO }));
      await sf.save();
      assertNoSecret(await readFile(sf.path, 'utf8'), 'the state file');
      assert.equal(sf.state.definition.source, SOURCE);
      assert.equal((await StateFile.load(sf.path)).state.definition.source, recordedUrl(SOURCE));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('build-info.json: the source, CI variables and the git remote without credentials', async () => {
    const state = newState({ ...sampleDefinition, source: SOURCE, sourceRepo: REPO, protoDir: '/nonexistent-proto' });
    state.base = { uuid: 'u', name: 'b', version: '1', dataset: 'p/u', imported: [], manifest: {} };
    const manifest = { uuid: 'x', name: 'x', version: '1', files: [{ sha1: 'a', size: 1, compression: 'gzip' }] } as unknown as ImageManifest;
    const env = { BUILD_URL: 'https://admin:jenkinspw@jenkins.example/job/x/1/?token=sig-abc', GIT_COMMIT: 'abc' };
    const info = await buildInfo(state, manifest, env);
    assertNoSecret(JSON.stringify(info), 'build-info.json');
    assert.equal(info.inputs.source, 'https://images.example.com:8443/imgapi?token=…&channel=dev');
    assert.equal(info.ci?.BUILD_URL, 'https://jenkins.example/job/x/1/?token=…');
  });

  it('the motd shows the repository without credentials, even from an old state file', () => {
    const motd = renderMotd({ name: 'svc', version: '1', sourceRepo: REPO, origin: { name: 'o', version: '1' } });
    assertNoSecret(motd, 'the motd');
    assert.ok(motd.includes('https://github.com/org/svc.git'));
  });
});
