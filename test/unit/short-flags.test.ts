/**
 * A short flag means one thing in every command: `-i` is `--image` (the
 * base image uuid) in build, prepare, doctor and init alike. The one
 * exception is publish, whose short flags are bits-upload.sh's (eng's
 * Makefile passes them): there `-d` is the upload dir and `-p` imports into
 * the updates IMGAPI, as they always were. README says so.
 */
import assert from 'node:assert/strict';
import { flagsFor } from '../../src/cli/flags.js';
import { COMMANDS, SETTINGS, flagName, settingsOf, type Setting } from '../../src/settings/table.js';

/** bits-upload.sh's short flags, kept as publish's. */
const PUBLISH_COMPAT = new Set(['d', 'p']);

describe('short flags', () => {
  it('each names one long flag across the commands (publish keeps bits-upload.sh\'s -d and -p)', () => {
    const longs = new Map<string, Set<string>>();
    for (const command of COMMANDS) {
      for (const id of settingsOf(command)) {
        const s = SETTINGS[id] as Setting;
        if (!s.char || (command === 'publish' && PUBLISH_COMPAT.has(s.char))) continue;
        longs.set(s.char, new Set([...(longs.get(s.char) ?? []), flagName(id)]));
      }
    }
    const ambiguous = [...longs].filter(([, l]) => l.size > 1).map(([c, l]) => `-${c}: --${[...l].join(', --')}`);
    assert.deepEqual(ambiguous, []);
  });

  it('init: -i is --image, as in build; --base still works', () => {
    const f = flagsFor('init').image as { char?: string; aliases?: string[] };
    assert.equal(f.char, 'i');
    assert.deepEqual(f.aliases, ['base']);
    assert.equal((flagsFor('build').image as { char?: string }).char, 'i');
  });
});
