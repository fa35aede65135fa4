/**
 * One process-wide interruption flag, set by SIGINT/SIGTERM/SIGHUP while a
 * build or publish runs (`onInterruptSignals`); long-running work (child processes, streams, waits) takes
 * `interruptSignal()` so that a signal stops it promptly, while
 * cleanup runs without it so it can finish after an interruption.
 *
 * A signal must be answered whatever the work is doing: a step whose
 * promise never settles (a wait that takes no signal) is left behind after
 * `STOP_GRACE_MS` (`stopOnInterrupt`), a second signal exits at once, and
 * so does a cleanup still running `EXIT_DEADLINE_MS` after the first.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { InterruptedError } from './errors.js';
import { log } from './log.js';

/** SIGHUP is a closed terminal or Jenkins console: stop and clean up as for SIGTERM. */
export const INTERRUPT_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/**
 * How long an interrupted step gets to stop by itself before cleanup starts
 * without it: longer than exec's 5 s from SIGTERM to SIGKILL of a child.
 */
export const STOP_GRACE_MS = 10_000;

/** From the first signal: how long stopping and cleaning up may take before the process exits anyway. */
export const EXIT_DEADLINE_MS = 3 * 60_000;

/** What the command layer does to exit at once (one error line, the signal's exit code); nothing until it says. */
let forcedExit: ((err: InterruptedError) => void) | undefined;

export function onForcedExit(fn: ((err: InterruptedError) => void) | undefined): void {
  forcedExit = fn;
}

let controller = new AbortController();
let received: NodeJS.Signals | undefined;

/**
 * One build among several in this process (`build --jobs N`): its own
 * interruption, so that --fail-fast stops the others without a signal; a
 * signal to the process stops every scope.
 */
export interface InterruptScope {
  readonly controller: AbortController;
  received?: NodeJS.Signals;
}

const scopes = new AsyncLocalStorage<InterruptScope>();

function currentController(): AbortController {
  return scopes.getStore()?.controller ?? controller;
}

/** Runs `fn` in its own interruption scope (see InterruptScope); the process's interruption reaches it too. */
export function withInterruptScope<T>(fn: (scope: InterruptScope) => Promise<T>): Promise<T> {
  const scope: InterruptScope = { controller: new AbortController() };
  const outer = controller.signal;
  const follow = (): void => {
    if (!scope.controller.signal.aborted) {
      scope.received = received;
      scope.controller.abort(outer.reason);
    }
  };
  if (outer.aborted) follow();
  else outer.addEventListener('abort', follow, { once: true });
  return scopes.run(scope, () => fn(scope)).finally(() => outer.removeEventListener('abort', follow));
}

/** Stops one scope's work as a signal would (its cleanup still runs): `why` is the one line its build ends with. */
export function stopScope(scope: InterruptScope, why: string): void {
  if (scope.controller.signal.aborted) return;
  scope.received = 'SIGTERM';
  scope.controller.abort(new InterruptedError('SIGTERM', { reason: `stopped: ${why}` }));
}

export function interruptSignal(): AbortSignal {
  return currentController().signal;
}

/**
 * The signal for work starting now: undefined once interrupted, because
 * whatever starts after an interruption is cleanup and must run to the end.
 */
export function cancelSignalForNewWork(): AbortSignal | undefined {
  const signal = currentController().signal;
  return signal.aborted ? undefined : signal;
}

/** What to throw when `signal` ended some work: its reason when that is an Error. */
export function abortReason<T = Error>(signal: AbortSignal, fallback?: T): Error | T {
  return signal.reason instanceof Error ? signal.reason : (fallback ?? new Error('aborted'));
}

export function interrupt(signal: NodeJS.Signals): void {
  if (received) return;
  received = signal;
  controller.abort(new InterruptedError(signal));
}

export function interruptedBy(): NodeJS.Signals | undefined {
  return scopes.getStore()?.received ?? received;
}

/** The error a stopped piece of work ends with: the signal's, or its scope's (--fail-fast). */
export function interruptError(): InterruptedError | undefined {
  const by = interruptedBy();
  if (!by) return undefined;
  const reason: unknown = currentController().signal.reason;
  return reason instanceof InterruptedError ? reason : new InterruptedError(by);
}

export function throwIfInterrupted(): void {
  const err = interruptError();
  if (err) throw err;
}

/**
 * Until the returned function is called, SIGINT/SIGTERM/SIGHUP log
 * `<signal> received: <message>` and set the flag (instead of killing the
 * process), so that the running step stops and cleanup runs. A second
 * signal, or `deadlineMs` after the first, exits through `onForcedExit`'s
 * function without waiting for cleanup to finish.
 */
export function onInterruptSignals(message: string, opts: { deadlineMs?: number } = {}): () => void {
  // One handler for the process however many builds run in it (build --jobs N): a signal is answered once.
  const reg = { message, deadlineMs: opts.deadlineMs };
  registrations.push(reg);
  if (registrations.length === 1) for (const sig of INTERRUPT_SIGNALS) process.on(sig, handler);
  return () => {
    const i = registrations.indexOf(reg);
    if (i >= 0) registrations.splice(i, 1);
    if (registrations.length === 0) {
      for (const sig of INTERRUPT_SIGNALS) process.off(sig, handler);
      clearTimeout(deadline);
      deadline = undefined;
    }
  };
}

const registrations: Array<{ message: string; deadlineMs?: number }> = [];
let deadline: NodeJS.Timeout | undefined;

function exitNow(sig: NodeJS.Signals, why: string): void {
  log.error(`${why}: exiting without finishing cleanup`);
  forcedExit?.(new InterruptedError(sig, { detail: why, hint: 'run `buildimage clean` with the same --state (or `clean --all`) to remove what is left' }));
}

function handler(sig: NodeJS.Signals): void {
  if (received) {
    exitNow(received, `${sig} received again`);
    return;
  }
  const first = registrations[0];
  log.warn(`${sig} received: ${first?.message ?? 'stopping'}`);
  interrupt(sig);
  const ms = first?.deadlineMs ?? EXIT_DEADLINE_MS;
  deadline = setTimeout(() => exitNow(sig, `still stopping ${Math.round(ms / 1000)}s after ${sig}`), ms);
  // The deadline must not keep an otherwise finished process alive.
  deadline.unref();
}

/**
 * `work`'s outcome; but once interrupted, if `work` has not settled within
 * `graceMs`, the interruption is thrown so that cleanup can run: a step
 * stuck in a wait that no signal reaches must not hold the build forever.
 */
export function stopOnInterrupt<T>(work: Promise<T>, graceMs = STOP_GRACE_MS): Promise<T> {
  const signal = currentController().signal;
  return new Promise<T>((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    const onAbort = (): void => {
      timer = setTimeout(() => {
        log.warn(`the interrupted step has not stopped after ${graceMs / 1000}s; cleaning up without it`);
        reject(abortReason<Error>(signal));
      }, graceMs);
    };
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
    };
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (v) => {
        done();
        resolve(v);
      },
      (err: Error) => {
        done();
        reject(err);
      },
    );
  });
}

/** For tests: forget an earlier interruption. */
export function resetInterrupt(): void {
  controller = new AbortController();
  received = undefined;
}
