/**
 * Hostile suite (issue 12, items 9 and 12): user-given paths that no build
 * can use (/proc, dangling links, a file where a directory goes, a name too
 * long, a directory without permission) for --output-dir, --work-dir,
 * --state and --log-file; and SIGTERM, SIGHUP and SIGINT at each stage of a
 * real build, and a second signal. Each run must
 * end in bounded time with one error line and a non-zero exit (or succeed
 * safely), leaving nothing behind and the host untouched.
 */
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ResultPromise } from 'execa';
import { processesIn } from '../../src/host/chroot.js';
import { createPackage } from '../../testbed/packages.js';
import { cli, errorLines, startCli, type CliResult } from '../helpers/cli.js';
import { layBait, type Bait } from '../helpers/hostile.js';
import { assertNoLeaks } from '../helpers/leaks.js';
import { world, type World } from '../helpers/world.js';

/** A bad path must be refused in seconds, not after a build (or never); this bounds the wait. */
const REFUSAL_BOUND_MS = 90_000;
/** From a signal to the exit, cleanup included. */
const SIGNAL_BOUND_MS = 90_000;

const EXIT_CODES = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 } as const;
type Sig = keyof typeof EXIT_CODES;

/** Waits for the child at most `ms`; past that it is killed (-9) and the test fails. */
async function exitWithin(child: ResultPromise, ms: number, what: string, stderr: () => string): Promise<number> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), ms)));
  const r = await Promise.race([child, late]);
  clearTimeout(timer);
  if (r === 'late') {
    child.kill('SIGKILL');
    await child;
    assert.fail(`${what}: still running ${ms / 1000}s later (killed with -9)\n${stderr()}`);
  }
  return r.exitCode ?? -1;
}

describe('hostile: user-given paths and signals', function () {
  this.timeout(15 * 60 * 1000);
  let w: World;
  let bait: Bait;
  let proto: string;
  let big: string;
  const mf = JSON.stringify({ name: 'hostile-sig', version: '1.0.0' });
  const images = () => [w.base.uuid, w.origin.uuid];

  before(async () => {
    w = await world();
    bait = await layBait('bait-paths');
    proto = join(w.dir, 'proto-hostile-sig');
    await mkdir(join(proto, 'opt/h'), { recursive: true });
    await writeFile(join(proto, 'opt/h/app.js'), 'x\n');
    // A proto worth copying and sending for a while: signals land mid-copy and mid-send.
    big = await mkdtemp(join(w.dir, 'proto-hostile-big-'));
    for (let i = 0; i < 6; i++) await writeFile(join(big, `blob${i}`), randomBytes(8 * 1024 * 1024));
    createPackage(join(w.repoDir, 'All'), {
      name: 'slowpkg2',
      version: '1.0',
      comment: 'Takes its time installing',
      description: 'Sleeps in @exec so tests can interrupt pkg_add.',
      files: [{ path: 'share/slowpkg2/README', content: 'slow\n' }],
      exec: ['sleep 60'],
    });
  });

  after(async () => {
    await bait?.assertUntouched();
    await bait?.remove();
    await rm(big, { recursive: true, force: true });
  });

  async function noLeaks(context: string, outputDir?: string): Promise<void> {
    assert.deepEqual(await processesIn(w.workDir), [], 'no process left running in a build root');
    await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir: w.workDir, outputDir, images: images(), context });
    await bait.assertUntouched(context);
  }

  /** One error line naming `flag`, exit 2, in bounded time. */
  function assertRefused(r: CliResult, flag: string, why: RegExp): void {
    assert.notEqual(r.code, -1, `still running after ${REFUSAL_BOUND_MS / 1000}s: ${r.stderr}`);
    assert.equal(r.code, 2, r.stderr);
    const lines = errorLines(r);
    assert.equal(lines.length, 1, r.stderr);
    assert.ok(lines[0].includes(`(${flag})`), lines[0]);
    assert.match(lines[0], why);
    assert.doesNotMatch(r.stderr, /unexpected error|\n\s+at /);
  }

  describe('paths no build can use, refused in one line', () => {
    /** name → [path maker, what the line says]. Each is made fresh, pointing at the bait where it points anywhere. */
    const HOSTILE: Record<string, [() => Promise<string>, RegExp]> = {
      '/proc (Node\'s recursive mkdir never returns there)': [async () => `/proc/nope-${randomUUID().slice(0, 6)}/dir`, /this file system does not allow it \(ENOENT\)/],
      'a dangling symlink into the host': [
        async () => {
          const link = join(w.dir, `dangling-${randomUUID().slice(0, 6)}`);
          await symlink(join(bait.dir, 'made-by-build'), link);
          return join(link, 'dir');
        },
        /is a dangling symlink/,
      ],
      'a file where a directory goes': [
        async () => {
          const f = join(w.dir, `file-${randomUUID().slice(0, 6)}`);
          await writeFile(f, 'x');
          return join(f, 'dir');
        },
        /exists and is not a directory/,
      ],
      'a name too long': [async () => join(w.dir, 'n'.repeat(300), 'dir'), /name too long \(ENAMETOOLONG\)/],
    };
    const FLAGS: Array<[string, (p: string) => string[]]> = [
      ['--output-dir', (p) => ['--output-dir', p]],
      ['--work-dir', (p) => ['--work-dir', p]],
      ['--state', (p) => ['--state', join(p, 'state.json')]],
      ['--log-file', (p) => ['--log-file', join(p, 'build.log')]],
    ];
    for (const [flag, args] of FLAGS) {
      for (const [name, [make, why]] of Object.entries(HOSTILE)) {
        it(`${flag} on ${name}`, async () => {
          const path = await make();
          const out = await w.outDir();
          const r = await cli(['-i', w.origin.uuid, '-d', proto, '-m', mf, ...(flag === '--output-dir' ? [] : ['--output-dir', out]), ...args(path)], {
            env: w.env,
            timeoutMs: REFUSAL_BOUND_MS,
          });
          assertRefused(r, flag, why);
          await noLeaks(r.stderr, out);
        });
      }
    }

    it('a --output-dir without permission: refused in one line, or (as root) a build that succeeds there', async () => {
      const out = join(await w.outDir(), 'locked');
      await mkdir(out);
      await chmod(out, 0o000);
      const r = await cli(['-i', w.origin.uuid, '-d', proto, '-m', mf, '--output-dir', out], { env: w.env, timeoutMs: 5 * 60_000 });
      await chmod(out, 0o755);
      if (r.code === 0) assert.ok((await readdir(out)).some((n) => n.endsWith('.imgmanifest')), r.stderr);
      else assertRefused(r, '--output-dir', /permission denied/);
      await noLeaks(r.stderr, out);
    });
  });

  describe('signals at each stage of a real build', () => {
    /**
     * stage → how to get a build that is in it when `until` shows, and long enough to catch there.
     * pkgadd (in pkg_add, all three signals) is in test/integration/reliability.test.ts.
     */
    const STAGES: Array<[string, () => Promise<string[]>, RegExp]> = [
      ['prepare', async () => ['-d', proto], /== prepare/],
      ['assemble', async () => ['-d', big], /== assemble/],
      ['seal', async () => ['-d', big, '--compression', 'xz'], /sending /],
    ];
    for (const [stage, args, until] of STAGES) {
      for (const sig of ['SIGTERM', 'SIGHUP', 'SIGINT'] as Sig[]) {
        it(`${sig} in ${stage}: stops, cleans up and exits ${EXIT_CODES[sig]} in bounded time`, async () => {
          const out = await w.outDir();
          const b = startCli(['-i', w.origin.uuid, '-m', mf, '--output-dir', out, ...(await args())], w.env, until);
          await b.ready;
          b.child.kill(sig);
          const code = await exitWithin(b.child, SIGNAL_BOUND_MS, `${sig} in ${stage}`, b.stderr);
          assert.equal(code, EXIT_CODES[sig], b.stderr());
          const lines = b.stderr().split('\n').filter((l) => l.startsWith('buildimage: error:'));
          assert.deepEqual(lines, [`buildimage: error: interrupted by ${sig}`], b.stderr());
          assert.match(b.stderr(), new RegExp(`${stage} failed: interrupted by ${sig}; cleaning up`), 'the signal landed in the stage meant');
          await noLeaks(b.stderr(), out);
        });
      }
    }

    it('a second signal exits at once, in one line, saying what to clean', async () => {
      const out = await w.outDir();
      const state = join(w.dir, `second-${randomUUID().slice(0, 8)}.json`);
      const b = startCli(['-i', w.origin.uuid, '-d', proto, '-m', mf, '-p', 'slowpkg2', '--output-dir', out, '--state', state], w.env, /pkg_add -U slowpkg2/);
      await b.ready;
      b.child.kill('SIGTERM');
      // Two signals sent at once may arrive as one: the second goes once the first was seen.
      for (let i = 0; i < 100 && !/SIGTERM received/.test(b.stderr()); i++) await new Promise((r) => setTimeout(r, 50));
      b.child.kill('SIGTERM');
      const code = await exitWithin(b.child, SIGNAL_BOUND_MS, 'two SIGTERMs', b.stderr);
      assert.equal(code, 143, b.stderr());
      const lines = b.stderr().split('\n').filter((l) => l.startsWith('buildimage: error:'));
      assert.equal(lines.length, 1, b.stderr());
      assert.match(lines[0], /^buildimage: error: interrupted by SIGTERM \(SIGTERM received again\) \(run `buildimage clean` with the same --state/);
      // What it left, clean removes.
      const r = await cli(['clean', '--state', state], { env: w.env });
      assert.equal(r.code, 0, r.stderr);
      await noLeaks(`${b.stderr()}\n${r.stderr}`, out);
    });
  });
});
