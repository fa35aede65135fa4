/**
 * One process-wide interruption flag, set by SIGINT/SIGTERM while a
 * build or publish runs (`onInterruptSignals`); long-running work (child processes, streams, waits) takes
 * `interruptSignal()` so that SIGINT/SIGTERM stops it promptly, while
 * cleanup runs without it so it can finish after an interruption.
 */
import { InterruptedError } from './errors.js';
import { log } from './log.js';

let controller = new AbortController();
let received: NodeJS.Signals | undefined;

export function interruptSignal(): AbortSignal {
  return controller.signal;
}

/**
 * The signal for work starting now: undefined once interrupted, because
 * whatever starts after an interruption is cleanup and must run to the end.
 */
export function cancelSignalForNewWork(): AbortSignal | undefined {
  return controller.signal.aborted ? undefined : controller.signal;
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
  return received;
}

export function throwIfInterrupted(): void {
  if (received) throw new InterruptedError(received);
}

/**
 * Until the returned function is called, SIGINT/SIGTERM log
 * `<signal> received: <message>` and set the flag (instead of killing the
 * process), so that the running step stops and cleanup runs.
 */
export function onInterruptSignals(message: string): () => void {
  const handler = (sig: NodeJS.Signals): void => {
    log.warn(`${sig} received: ${message}`);
    interrupt(sig);
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return () => {
    process.off('SIGINT', handler);
    process.off('SIGTERM', handler);
  };
}

/** For tests: forget an earlier interruption. */
export function resetInterrupt(): void {
  controller = new AbortController();
  received = undefined;
}
