/**
 * Several images of one definition built in one process, up to N at a
 * time (`build --jobs N`). Each is a whole build of its own (runner
 * startBuild: its own state file, analog, build dir and outputs) run in its
 * own log context (every line names the image) and interruption scope (so
 * --fail-fast can stop the others, each cleaning up as after a signal). A
 * base image several of them need is received once: base/install's import
 * lock makes the others wait and find it installed.
 */
import { resolve } from 'node:path';
import { BuildimageError, ExitCode, InterruptedError, oneLine } from '../core/errors.js';
import { interruptedBy, stopScope, withInterruptScope, type InterruptScope } from '../core/interrupt.js';
import { log, withLogContext } from '../core/log.js';
import { checkDistinct, type DefinedImage } from '../settings/images.js';
import { startBuild, type BuildResult, type FailedStage, type RunOptions } from './runner.js';
import type { BuildDefinition, StageName } from './state.js';

export interface ImageJob {
  name: string;
  def: BuildDefinition;
  statePath?: string;
  /** --write-lock: this image's lockfile. */
  writeLock?: string;
}

/** built; failed; stopped (a signal, or --fail-fast after another failed; cleaned up); not started (stopped before its turn). */
export type ImageStatus = 'built' | 'failed' | 'stopped' | 'not started';

export interface ImageOutcome {
  name: string;
  status: ImageStatus;
  /** From its start to its end, cleanup included. */
  seconds: number;
  /** Seconds per finished stage, and the stage that failed or was stopped. */
  timings: Record<string, number>;
  failedStage?: FailedStage;
  result?: BuildResult;
  error?: { message: string; hint?: string; exitCode: number };
}

export interface ManyBuildResult {
  ok: boolean;
  /** How many at once. */
  jobs: number;
  /** Wall-clock seconds of the whole run. */
  seconds: number;
  images: ImageOutcome[];
}

/**
 * A --state for several images: one file each, the image's name before
 * `.json` (state.json → state.api.json); one image keeps the path given.
 */
export function imageStatePath(given: string | undefined, name: string, several: boolean): string | undefined {
  if (given === undefined || !several) return given;
  return given.endsWith('.json') ? `${given.slice(0, -'.json'.length)}.${name}.json` : `${given}.${name}`;
}

/** The jobs of a multi-image build: state files and lockfiles per image, none shared. */
export function imageJobs(defined: DefinedImage[], o: { state?: string; writeLock: boolean }): ImageJob[] {
  const several = defined.length > 1;
  const jobs = defined.map((d) => ({
    name: d.name ?? d.def.manifest.name,
    def: d.def,
    statePath: imageStatePath(o.state, d.name ?? '', several),
    ...(o.writeLock && d.lockFile ? { writeLock: d.lockFile } : {}),
  }));
  const named = (p: (j: ImageJob) => string | undefined) => jobs.filter((j) => p(j) !== undefined).map((j) => ({ name: j.name, path: resolve(p(j)!) }));
  checkDistinct(named((j) => j.statePath), 'share a state file', 'pass a --state path per image, or none');
  checkDistinct(named((j) => j.writeLock), 'write the same lockfile (--write-lock)', 'give each image its own "lock-file", or pass no --lock-file');
  return jobs;
}

export interface ManyOptions extends Omit<RunOptions, 'onTimings'> {
  jobs: number;
  failFast: boolean;
  stages: StageName[];
}

function errorOf(err: unknown): NonNullable<ImageOutcome['error']> {
  const b = err instanceof BuildimageError ? err : undefined;
  return { message: oneLine(err), ...(b?.hint ? { hint: b.hint } : {}), exitCode: b?.exitCode ?? ExitCode.BUILD_FAILED };
}

/** Builds every job, up to `opts.jobs` at once; never throws for a failed image (see the outcomes). */
export async function buildMany(jobs: ImageJob[], opts: ManyOptions): Promise<ManyBuildResult> {
  const t0 = Date.now();
  const outcomes = new Map<string, ImageOutcome>();
  const running = new Map<string, InterruptScope>();
  const queue = [...jobs];
  let stopping: string | undefined;
  const width = Math.max(1, Math.min(opts.jobs, jobs.length));

  const runOne = async (job: ImageJob): Promise<void> => {
    const start = Date.now();
    let timings: Record<string, number> = {};
    let failedStage: FailedStage | undefined;
    const done = (o: Omit<ImageOutcome, 'name' | 'seconds' | 'timings'>): void => {
      outcomes.set(job.name, { name: job.name, ...o, seconds: (Date.now() - start) / 1000, timings: { ...timings }, ...(failedStage ? { failedStage } : {}) });
    };
    try {
      const result = await withLogContext({ image: job.name, noLive: width > 1 }, () =>
        withInterruptScope(async (scope) => {
          running.set(job.name, scope);
          try {
            return await startBuild(job.def, {
              ...opts,
              statePath: job.statePath,
              stages: opts.stages,
              ...(job.writeLock ? { writeLock: job.writeLock } : {}),
              onTimings: (t, f) => {
                timings = t;
                failedStage = f;
              },
            });
          } finally {
            running.delete(job.name);
          }
        }),
      );
      done({ status: 'built', result });
      log.info(`image ${job.name}: built`);
    } catch (err) {
      const stopped = err instanceof InterruptedError;
      // The image's line (its build logged the failure as it happened; the table and the lines at the end say it again).
      done({ status: stopped ? 'stopped' : 'failed', error: errorOf(err) });
      if (!stopped && opts.failFast && !stopping) {
        stopping = job.name;
        for (const [name, scope] of running) {
          log.warn(`stopping image ${name}: image ${job.name} failed (--fail-fast)`);
          stopScope(scope, `image ${job.name} failed (--fail-fast)`);
        }
      }
    }
  };

  const worker = async (): Promise<void> => {
    for (let job = queue.shift(); job; job = queue.shift()) {
      const why = interruptedBy() ? `interrupted by ${interruptedBy()}` : stopping ? `image ${stopping} failed (--fail-fast)` : undefined;
      if (why) {
        outcomes.set(job.name, { name: job.name, status: 'not started', seconds: 0, timings: {}, error: { message: `not started: ${why}`, exitCode: ExitCode.BUILD_FAILED } });
        continue;
      }
      await runOne(job);
    }
  };
  log.info(`building ${jobs.length} image${jobs.length === 1 ? '' : 's'} (${jobs.map((j) => j.name).join(', ')}), ${width} at a time`);
  await Promise.all(Array.from({ length: width }, worker));
  const images = jobs.map((j) => outcomes.get(j.name)!);
  return { ok: images.every((i) => i.status === 'built'), jobs: width, seconds: (Date.now() - t0) / 1000, images };
}

/**
 * The one error of a multi-image build some of whose images did not build:
 * it names them (each has had its own line); --json prints every image's
 * outcome beside it. A signal's exit code wins, else the first failure's.
 */
export function manyBuildError(r: ManyBuildResult): BuildimageError {
  const bad = r.images.filter((i) => i.status !== 'built');
  const signal = interruptedBy();
  const failed = bad.filter((i) => i.status === 'failed');
  const exitCode = signal ? new InterruptedError(signal).exitCode : (failed[0]?.error?.exitCode ?? ExitCode.BUILD_FAILED);
  const names = (failed.length ? failed : bad).map((i) => i.name);
  const what = signal ? `interrupted by ${signal}` : `${failed.length} of ${r.images.length} image${r.images.length === 1 ? '' : 's'} failed: ${names.slice(0, 12).join(', ')}${names.length > 12 ? ` and ${names.length - 12} more` : ''}`;
  const { ok: _ok, ...report } = r;
  return new BuildimageError(what, {
    exitCode,
    hint: bad.length > failed.length && !signal ? `${bad.length - failed.length} more stopped or not started (--fail-fast); each image's line is above` : 'each image\'s line is above',
    report: report as unknown as Record<string, unknown>,
  });
}
