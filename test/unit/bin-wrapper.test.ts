/**
 * bin/buildimage, the file npm links as `buildimage`: a sh wrapper that
 * finds its real directory through npm's bin symlinks and execs node with a
 * small young generation; and oclif.manifest.json, which lets a run import
 * only the command it runs.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, mkdirSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { BIN, REPO } from '../helpers/cli.js';

describe('bin/buildimage (the npm bin)', function () {
  this.timeout(20_000);
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'bi-bin-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('through a chain of relative and absolute symlinks, execs `node --max-semi-space-size=1 <repo>/bin/run.js` with the arguments intact', async () => {
    // A stand-in `node` first in PATH that reports how it was called.
    mkdirSync(join(dir, 'fakebin'));
    writeFileSync(join(dir, 'fakebin', 'node'), '#!/bin/sh\necho "pid $$"\nfor a in "$@"; do echo "arg $a"; done\n');
    chmodSync(join(dir, 'fakebin', 'node'), 0o755);
    // As npm links it: <prefix>/bin/buildimage -> ../lib/node_modules/buildimage/bin/buildimage (here: -> another link -> the file).
    mkdirSync(join(dir, 'lib'));
    symlinkSync(BIN, join(dir, 'lib', 'real-link'));
    mkdirSync(join(dir, 'bin'));
    symlinkSync('../lib/real-link', join(dir, 'bin', 'buildimage'));
    const r = await execa('sh', ['-c', 'echo "shell $$"; exec "$0" "$@"', join(dir, 'bin', 'buildimage'), 'build', '-m', '{"name": "a b"}', ''], {
      env: { PATH: `${join(dir, 'fakebin')}:/usr/bin:/bin` },
    });
    const lines = r.stdout.split('\n');
    assert.deepEqual(lines.filter((l) => l.startsWith('arg ')), [
      'arg --max-semi-space-size=1',
      `arg ${join(REPO, 'bin', 'run.js')}`,
      'arg build',
      'arg -m',
      'arg {"name": "a b"}',
      'arg ',
    ]);
    // exec all the way: node has the pid the caller started (signals and exit status are node's own).
    assert.equal(lines.find((l) => l.startsWith('pid '))!.slice(4), lines.find((l) => l.startsWith('shell '))!.slice(6));
  });

  it('runs the real CLI', async () => {
    const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string; bin: Record<string, string> };
    assert.equal(join(REPO, pkg.bin.buildimage), BIN);
    const r = await execa(BIN, ['--version']);
    assert.match(r.stdout, new RegExp(`^buildimage/${pkg.version.replace(/\./g, '\\.')} `));
  });
});

describe('oclif.manifest.json (written by npm run build)', () => {
  it('lists every command in dist/commands, each loadable from its own file', () => {
    const manifest = JSON.parse(readFileSync(join(REPO, 'oclif.manifest.json'), 'utf8')) as {
      commands: Record<string, { isESM: boolean; relativePath: string[]; flags: Record<string, unknown> }>;
    };
    const files = readdirSync(join(REPO, 'dist', 'commands')).filter((f) => f.endsWith('.js')).map((f) => f.slice(0, -3)).sort();
    assert.deepEqual(Object.keys(manifest.commands).sort(), files);
    for (const [id, c] of Object.entries(manifest.commands)) {
      assert.equal(c.isESM, true, id);
      assert.deepEqual(c.relativePath, ['dist', 'commands', `${id}.js`]);
    }
    assert.ok('image' in manifest.commands.build.flags, 'build has its -i/--image flag');
  });
});
