/**
 * One process-wide interruption flag. The pipeline installs the signal
 * handlers; long-running work (child processes, streams, waits) takes
 * `interruptSignal()` so that SIGINT/SIGTERM stops it promptly, while
 * cleanup runs without it so it can finish after an interruption.
 */
import { InterruptedError } from './errors.js';

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

/** For tests: forget an earlier interruption. */
export function resetInterrupt(): void {
  controller = new AbortController();
  received = undefined;
}
