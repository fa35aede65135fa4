/**
 * Hostile inputs new in issue 14 (items 5 and 6), through the real CLI:
 * - BUILDIMAGE_STATE, a state file path from the environment: refused
 *   exactly as the same path given to --state would be (a link, a file
 *   another user owns or can write, a FIFO, a directory);
 * - `-m @FILE` / `-m FILE` and `./buildimage.json` (read without --config):
 *   a link to a host secret, a FIFO, a device, a directory, a huge file.
 * Each gets one error line and exit 2, never shows the secret, never hangs,
 * and leaves the host (bait) and the work dir as they were.
 */
import assert from 'node:assert/strict';
import { chmod, chown, mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { cli, errorLines, type CliResult } from '../helpers/cli.js';
import { layBait, type Bait } from '../helpers/hostile.js';
import { TEST_TOP } from '../helpers/world.js';

const UUID = '41bd4100-eb86-409a-85b0-e649aadf6f62';
const FOREIGN_UID = 4244;

describe('hostile: paths from the environment and input files (issue 14)', function () {
  this.timeout(5 * 60 * 1000);
  let bait: Bait;
  let dir: string;
  let work: string;
  before(async () => {
    bait = await layBait('cli-inputs');
    await mkdir(TEST_TOP, { recursive: true });
    dir = await mkdtemp(join(TEST_TOP, 'cli-inputs-'));
    work = join(dir, 'work');
    await mkdir(join(dir, 'proto'));
  });
  after(async () => {
    await bait.remove();
    await rm(dir, { recursive: true, force: true });
  });

  async function run(args: string[], o: { cwd?: string; env?: Record<string, string> } = {}): Promise<CliResult> {
    // A read that blocked on a FIFO would hang here: the timeout turns that into a failure.
    return cli(args, { cwd: o.cwd ?? dir, env: { BUILDIMAGE_DATASET_ROOT: 'nopool/images', BUILDIMAGE_WORK_DIR: work, ...o.env }, timeoutMs: 30_000 });
  }

  async function assertRefused(r: CliResult, line: string | RegExp, what: string): Promise<void> {
    assert.equal(r.code, 2, `${what}: ${r.stderr}`);
    const lines = errorLines(r);
    assert.equal(lines.length, 1, `${what}: ${r.stderr}`);
    if (typeof line === 'string') assert.equal(lines[0], line, what);
    else assert.match(lines[0], line, what);
    for (const out of [r.stdout, r.stderr]) {
      assert.ok(!out.includes('PRIVATE KEY') && !out.includes(`bait ${process.pid}`), `${what}: the secret was shown:\n${out}`);
    }
    assert.deepEqual(await readdir(work).catch(() => []), [], `${what}: nothing made in the work dir`);
    await bait.assertUntouched(what);
  }

  it('BUILDIMAGE_STATE is checked as --state is: a link, a foreign or world-writable file, a FIFO, a directory', async () => {
    const link = join(dir, 'link-state.json');
    await symlink(bait.secret, link);
    const foreign = join(dir, 'foreign-state.json');
    await writeFile(foreign, '{}');
    await chown(foreign, FOREIGN_UID, FOREIGN_UID);
    const open = join(dir, 'open-state.json');
    await writeFile(open, '{}');
    await chmod(open, 0o666);
    const fifo = join(dir, 'fifo-state.json');
    await execa('mkfifo', [fifo]);
    for (const [path, line] of [
      [link, `buildimage: error: state file ${link} is a symlink: another user could have written it (use a state file only buildimage (root or you) wrote)`],
      [foreign, `buildimage: error: state file ${foreign} is owned by uid ${FOREIGN_UID}, not root or you: another user could have written it (use a state file only buildimage (root or you) wrote)`],
      [open, `buildimage: error: state file ${open} is writable by others (mode 0666): another user could have written it (use a state file only buildimage (root or you) wrote)`],
      [fifo, `buildimage: error: cannot read state file ${fifo}: not a regular file (pass the state file, not a directory)`],
      [bait.dir, `buildimage: error: cannot read state file ${bait.dir}: not a regular file (pass the state file, not a directory)`],
    ] as const) {
      for (const command of ['assemble', 'seal', 'clean']) {
        const fromEnv = await run([command], { env: { BUILDIMAGE_STATE: path } });
        await assertRefused(fromEnv, line, `${command} with BUILDIMAGE_STATE=${path}`);
        // The same line as the flag gives.
        assert.deepEqual(errorLines(await run([command, '--state', path])), errorLines(fromEnv), `${command}: BUILDIMAGE_STATE and --state agree`);
      }
    }
  });

  it('-m @FILE and -m FILE: a link to a secret, a FIFO, a device, a directory, a huge file', async () => {
    const link = join(dir, 'manifest-link.json');
    await symlink(bait.secret, link);
    const fifo = join(dir, 'manifest.fifo');
    await execa('mkfifo', [fifo]);
    const huge = join(dir, 'huge.json');
    await writeFile(huge, `{"name":"x","version":"1","description":"${'x'.repeat(300 * 1024)}"}`);
    for (const [m, line] of [
      [`@${link}`, `buildimage: error: -m file ${link} is not valid JSON (line 1, column 2)`],
      [link, `buildimage: error: -m file ${link} is not valid JSON (line 1, column 2)`],
      [`@${fifo}`, `buildimage: error: cannot read -m file ${fifo}: not a regular file (-m takes the manifest as JSON or @FILE)`],
      [fifo, `buildimage: error: cannot read -m file ${fifo}: not a regular file (-m takes the manifest as JSON or @FILE)`],
      ['@/dev/zero', 'buildimage: error: cannot read -m file /dev/zero: not a regular file (-m takes the manifest as JSON or @FILE)'],
      [`@${bait.dir}`, `buildimage: error: cannot read -m file ${bait.dir}: not a regular file (-m takes the manifest as JSON or @FILE)`],
      [`@${huge}`, `buildimage: error: -m file ${huge} is larger than 262144 bytes`],
    ] as const) {
      await assertRefused(await run(['-i', UUID, '-d', 'proto', '-m', m]), line, `-m ${m}`);
    }
  });

  it('./buildimage.json read without --config: a link to a secret, a FIFO, a directory, a huge file', async () => {
    const plants: Array<[string, (p: string) => Promise<unknown>, string]> = [
      ['a link to a secret', (p) => symlink(bait.secret, p), '--config buildimage.json is not valid JSON (line 1, column 2)'],
      ['a FIFO', (p) => execa('mkfifo', [p]), 'cannot read --config buildimage.json: not a regular file (run `buildimage init` to write one)'],
      ['a link to a directory', (p) => symlink(bait.dir, p), 'cannot read --config buildimage.json: not a regular file (run `buildimage init` to write one)'],
      ['a huge file', (p) => writeFile(p, `{"//":"${'x'.repeat(1024 * 1024)}"}`), '--config buildimage.json is larger than 1048576 bytes'],
    ];
    for (const [what, plant, line] of plants) {
      const repo = await mkdtemp(join(dir, 'repo-'));
      await plant(join(repo, 'buildimage.json'));
      for (const command of ['prepare', 'build']) {
        await assertRefused(await run([command, '--image-version', '1'], { cwd: repo }), `buildimage: error: ${line}`, `${command} with ./buildimage.json ${what}`);
      }
    }
  });
});
