/**
 * The build definition's stage hooks (settings/hooks), run on the host by
 * the pipeline as an observer (build/events): before a stage and after it
 * finished, in the definition's order, each with the step timeout, a clean
 * environment plus BUILDIMAGE_ROOT/STATE/STAGE, its definition's directory
 * as cwd, and its output in the log line by line. A hook that fails fails
 * the stage with one line naming it; the pipeline cleans up as for any
 * failure.
 *
 * Hooks run as root, so they come only from the definition or the command
 * line of the process that defined the build. A discrete stage reads them
 * from the state file, which is not enough: prepare puts the digest of the
 * hooks on the zone analog (a ZFS property only root sets) and a later
 * stage runs its state's hooks only when they have that digest.
 */
import { createHash } from 'node:crypto';
import { resolve } from 'node:path';
import { BuildError, StateError } from '../core/errors.js';
import { log } from '../core/log.js';
import { runLines } from '../host/exec.js';
import type { Zfs } from '../host/zfs.js';
import { hookName, type Hook, HOOK_STAGES } from '../settings/hooks.js';
import type { BuildObserver, StageEventPayload } from './events.js';
import { STAGES, type StageName, type StateFile } from './state.js';

// The hook events' stages are the pipeline's (settings may not import build): a compile-time check both ways.
const sameStages: [readonly StageName[], readonly (typeof HOOK_STAGES)[number][]] = [HOOK_STAGES, STAGES];
void sameStages;

/** On the analog: the digest of the hooks the build was defined with (prepare sets it). */
export const HOOKS_PROPERTY = 'com.tritondatacenter.buildimage:hooks';

/** Variables a hook keeps from this process: where programs are and how to print; never credentials. */
const KEPT_ENV = ['PATH', 'HOME', 'LANG', 'LC_ALL', 'LC_CTYPE', 'TZ', 'TMPDIR', 'SOURCE_DATE_EPOCH'] as const;
const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export function hooksDigest(hooks: readonly Hook[] | undefined): string {
  const canonical = (hooks ?? []).map((h) => ({ event: h.event, argv: h.argv, cwd: h.cwd }));
  return `sha256:${createHash('sha256').update(JSON.stringify(canonical)).digest('hex')}`;
}

/** Right after prepare made the analog: what a later stage will check its state's hooks against. */
export async function recordHooks(zfs: Zfs, sf: StateFile): Promise<void> {
  await zfs.set(sf.state.analog!.dataset, { [HOOKS_PROPERTY]: hooksDigest(sf.state.definition.hooks) });
}

/**
 * A discrete stage's hooks come from its state file: run only the hooks
 * prepare was given. A state without hooks needs no digest (a build from
 * before hooks existed has none).
 */
export async function checkRecordedHooks(zfs: Zfs, sf: StateFile): Promise<void> {
  const hooks = sf.state.definition.hooks ?? [];
  if (hooks.length === 0) return;
  const recorded = await zfs.getOne(sf.state.analog!.dataset, HOOKS_PROPERTY);
  if (recorded !== hooksDigest(hooks)) {
    throw new StateError(
      `state file ${sf.path} names hooks (${hookName(hooks[0])}${hooks.length > 1 ? ', ...' : ''}) that build ${sf.state.buildId} was not defined with; nothing was run`,
      'hooks come only from the build definition: a state file changed by hand is not acted on; `buildimage clean` and prepare again',
    );
  }
}

export interface HookRunOptions {
  stepTimeoutMs: number;
  /** What a hook's output lines go to (the log). */
  onLine?: (hook: string, line: string) => void;
}

function hookEnv(p: StageEventPayload, event: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const k of KEPT_ENV) if (process.env[k] !== undefined) env[k] = process.env[k]!;
  env.PATH ??= DEFAULT_PATH;
  Object.assign(env, {
    BUILDIMAGE_STATE: p.statePath,
    BUILDIMAGE_STAGE: p.stage,
    BUILDIMAGE_HOOK: event,
    BUILDIMAGE_BUILD_ID: p.buildId,
    BUILDIMAGE_OUTPUT_DIR: p.outputDir,
    ...(p.imageRoot ? { BUILDIMAGE_ROOT: p.imageRoot } : {}),
  });
  return env;
}

export async function runHook(h: Hook, p: StageEventPayload, o: HookRunOptions): Promise<void> {
  const name = hookName(h);
  const program = h.argv[0].includes('/') ? resolve(h.cwd, h.argv[0]) : h.argv[0];
  log.info(`${name}`);
  const prefix = `${h.event} ${h.argv[0]}`;
  const r = await runLines(program, h.argv.slice(1), {
    cwd: h.cwd,
    env: hookEnv(p, h.event),
    timeoutMs: o.stepTimeoutMs,
    onLine: (line) => (o.onLine ? o.onLine(prefix, line) : log.info(`${prefix} | ${line}`)),
  });
  if (r.notStarted) throw new BuildError(`${name} could not be started: ${program} ${r.notStarted}`, { hint: 'fix the hook in the build definition' });
  if (r.timedOut) throw new BuildError(`${name} timed out after ${Math.round(o.stepTimeoutMs / 1000)}s`, { hint: 'raise --timeout if it is just slow' });
  if (r.signal) throw new BuildError(`${name} was killed by ${r.signal}`);
  if (r.exitCode !== 0) throw new BuildError(`${name} exited ${r.exitCode}`);
}

/** The definition's hooks as the pipeline's observer: before hooks at stageBefore, after hooks once a stage is done. */
export function hookObserver(hooks: readonly Hook[] | undefined, o: HookRunOptions): BuildObserver | undefined {
  if (!hooks?.length) return undefined;
  const run = async (event: string, p: StageEventPayload) => {
    for (const h of hooks) if (h.event === event) await runHook(h, p, o);
  };
  return {
    stageBefore: (p) => run(`before.${p.stage}`, p),
    stageAfter: async (p) => {
      if (p.outcome === 'ok') await run(`after.${p.stage}`, p);
    },
  };
}
