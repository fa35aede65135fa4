/**
 * What a build tells the world around it, stage by stage: the observer the
 * pipeline is given (build/pipeline runStages). The host hooks of the build
 * definition are one observer (build/hooks); the commands give another that
 * fires oclif hook events for plugins (cli/events). Nothing here knows oclif.
 *
 * The payloads are a stable, versioned interface (docs/plugins.md): fields
 * are only ever added within a version; a change to a field's meaning or a
 * removal is a new `version`.
 */
import type { StageName } from './state.js';
import type { Outputs } from './state.js';

/** The payloads' version: docs/plugins.md says what each version has. */
export const EVENTS_VERSION = 1 as const;

/** The oclif hook events a plugin subscribes to (package.json `oclif.hooks`). */
export const EVENT_NAMES = { stageBefore: 'stage:before', stageAfter: 'stage:after', buildDone: 'build:done' } as const;
export type EventName = (typeof EVENT_NAMES)[keyof typeof EVENT_NAMES];

/** `stage:before`, and what `stage:after` has too. */
export interface StageEventPayload {
  version: typeof EVENTS_VERSION;
  buildId: string;
  stage: StageName;
  /** The build's state file (JSON; read it, never write it). */
  statePath: string;
  /** The image's `/` on the host while it exists (after prepare made it, until seal destroyed it); else absent. */
  imageRoot?: string;
  /** Where the outputs go (seal writes them there). */
  outputDir: string;
}

export interface StageAfterPayload extends StageEventPayload {
  /** `ok`: the stage (and its definition's after-hooks) finished; `failed`: it did not, and the build is being cleaned up (or kept). */
  outcome: 'ok' | 'failed';
  /** The failure's one line, with `failed`. */
  error?: string;
  seconds: number;
}

export interface BuildDonePayload {
  version: typeof EVENTS_VERSION;
  buildId: string;
  statePath: string;
  ok: boolean;
  /** The stages this build completed, in order. */
  completed: StageName[];
  /** With `ok: false`: the stage that failed and the one line why. */
  failedStage?: StageName;
  error?: string;
  /** With `ok: true`: the image's uuid and every output's path (as in the state file's `outputs`). */
  imageUuid?: string;
  outputs?: Outputs;
  outputDir: string;
}

/**
 * Told about every stage. A throw from `stageBefore`, or from `stageAfter`
 * with outcome `ok`, fails the stage (one line, then the normal cleanup);
 * from `stageAfter` of a failed stage or from `buildDone` it is only logged:
 * the build has already failed or finished.
 */
export interface BuildObserver {
  stageBefore?(p: Readonly<StageEventPayload>): Promise<void>;
  stageAfter?(p: Readonly<StageAfterPayload>): Promise<void>;
  buildDone?(p: Readonly<BuildDonePayload>): Promise<void>;
}

/** A payload no observer can change under the build (nor for the next one). */
export function frozen<T extends object>(p: T): Readonly<T> {
  const copy = structuredClone(p);
  const freeze = (o: object) => {
    for (const v of Object.values(o)) if (v && typeof v === 'object') freeze(v as object);
    Object.freeze(o);
  };
  freeze(copy);
  return copy;
}

/** Several observers, told in order (the definition's host hooks first, then plugins). */
export function allOf(observers: Array<BuildObserver | undefined>): BuildObserver {
  const list = observers.filter((o): o is BuildObserver => !!o);
  return {
    async stageBefore(p) {
      for (const o of list) await o.stageBefore?.(p);
    },
    async stageAfter(p) {
      for (const o of list) await o.stageAfter?.(p);
    },
    async buildDone(p) {
      for (const o of list) await o.buildDone?.(p);
    },
  };
}
