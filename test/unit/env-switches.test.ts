/**
 * Switches in the environment are read one way (core/env.ts), by every
 * reader: `UPDATES_IMGADM_INSECURE=0` must keep TLS verification on, and a
 * value that is neither on nor off is an error naming the variable (issue
 * 12, item 15).
 */
import assert from 'node:assert/strict';
import { ENV_SWITCHES, envSwitch, parseSwitch } from '../../src/core/env.js';
import { UsageError } from '../../src/core/errors.js';
import { allowDirty, mantaEnv, updatesEnv } from '../../src/publish/env.js';
import { openSource } from '../../src/base/open.js';
import { resolveSettings } from '../../src/settings/resolve.js';

const badValue = (name: string) => (e: Error) => e instanceof UsageError && e.message.startsWith(`${name} must be 1, true, yes or on`);

describe('environment switches', () => {
  it('on: 1 true yes on; off: 0 false no off, empty, unset (any case, spaces around)', () => {
    for (const v of ['1', 'true', 'TRUE', 'yes', 'On', ' 1 ']) assert.equal(parseSwitch(v, 'X'), true, v);
    for (const v of ['0', 'false', 'False', 'no', 'OFF', '', ' ']) assert.equal(parseSwitch(v, 'X'), false, JSON.stringify(v));
    for (const v of ['2', 'maybe', 'y', 'n', '00', '1;rm -rf /', 'truee']) assert.throws(() => parseSwitch(v, 'X'), badValue('X'), v);
    assert.equal(envSwitch('BUILDIMAGE_NO_LIVE', {}), false);
  });

  it('UPDATES_IMGADM_INSECURE=0 keeps TLS verification on; MANTA_TLS_INSECURE=false too', () => {
    assert.equal(updatesEnv({ UPDATES_IMGADM_INSECURE: '0' }).insecure, false);
    assert.equal(updatesEnv({ UPDATES_IMGADM_INSECURE: 'false' }).insecure, false);
    assert.equal(updatesEnv({ UPDATES_IMGADM_INSECURE: '1' }).insecure, true);
    assert.equal(mantaEnv({ MANTA_TLS_INSECURE: 'false' }).insecure, false);
    assert.equal(mantaEnv({ MANTA_TLS_INSECURE: 'no' }).insecure, false);
    assert.equal(mantaEnv({ MANTA_TLS_INSECURE: '1' }).insecure, true);
    assert.throws(() => updatesEnv({ UPDATES_IMGADM_INSECURE: 'maybe' }), badValue('UPDATES_IMGADM_INSECURE'));
    assert.throws(() => mantaEnv({ MANTA_TLS_INSECURE: 'yes please' }), badValue('MANTA_TLS_INSECURE'));
  });

  it('BITS_UPLOAD_ALLOW_DIRTY=0 does not allow a dirty stamp', () => {
    assert.equal(allowDirty({ BITS_UPLOAD_ALLOW_DIRTY: '0' }), false);
    assert.equal(allowDirty({ ENGBLD_BITS_UPLOAD_ALLOW_DIRTY: 'no' }), false);
    assert.equal(allowDirty({ ENGBLD_BITS_UPLOAD_ALLOW_DIRTY: '1' }), true);
  });

  it('the source switches read the same way: IMGADM_INSECURE=true is on, =maybe an error', async () => {
    const src = (env: NodeJS.ProcessEnv) => openSource('https://images.example.com', undefined, env);
    assert.equal(((await src({ IMGADM_INSECURE: 'true' })) as unknown as { client: { opts: { insecure?: boolean } } }).client.opts.insecure, true);
    assert.equal(((await src({ BUILDIMAGE_INSECURE: '0' })) as unknown as { client: { opts: { insecure?: boolean } } }).client.opts.insecure, false);
    await assert.rejects(src({ BUILDIMAGE_INSECURE: 'maybe' }), badValue('BUILDIMAGE_INSECURE'));
  });

  it("every command checks its switches before anything else (a bad one is a usage error naming it)", async () => {
    await assert.rejects(resolveSettings('publish', {}, { env: { UPDATES_IMGADM_INSECURE: 'maybe' } }), badValue('UPDATES_IMGADM_INSECURE'));
    await assert.rejects(resolveSettings('seal', {}, { env: { BUILDIMAGE_NO_LIVE: '2' } }), badValue('BUILDIMAGE_NO_LIVE'));
    await assert.rejects(resolveSettings('build', {}, { env: { IMGADM_INSECURE: 'si' } }), badValue('IMGADM_INSECURE'));
    // A switch another command reads is not this one's business.
    await resolveSettings('seal', {}, { env: { MANTA_TLS_INSECURE: 'maybe' } });
  });

  it('every switch is in the README table (made from ENV_SWITCHES)', async () => {
    const { settingsMarkdown } = await import('../../src/cli/settings-doc.js');
    for (const s of ENV_SWITCHES) assert.ok(settingsMarkdown().includes(`| \`${s.name}\` |`), s.name);
  });

  // Issue 14, item 10: one table for every boolean variable, a flag's included.
  it("a boolean setting's variable is a switch: in the one switches table, and read by the same rule", async () => {
    const { settingsMarkdown } = await import('../../src/cli/settings-doc.js');
    const { SETTINGS } = await import('../../src/settings/table.js');
    const switches = settingsMarkdown().split('| env | commands | when on |')[1];
    const vars = Object.values(SETTINGS).flatMap((s) => (s.type === 'boolean' && 'env' in s && s.env ? [s.env as string] : []));
    assert.deepEqual(vars, ['BUILDIMAGE_KEEP_ON_FAILURE']);
    for (const v of vars) {
      assert.match(switches, new RegExp(`^\\| \`${v}\` \\| build, prepare, assemble, pkgadd, seal \\| \`--keep-on-failure\`: `, 'm'));
      assert.equal((await resolveSettings('assemble', {}, { env: { [v]: 'On' } }))['keep-on-failure'], true);
      assert.equal((await resolveSettings('assemble', {}, { env: { [v]: 'no' } }))['keep-on-failure'], false);
      await assert.rejects(resolveSettings('assemble', {}, { env: { [v]: 'y' } }), badValue(v));
    }
  });
});
