/** Bounded retry with exponential backoff, for transient host and network faults. */
import { setTimeout as sleep } from 'node:timers/promises';
import { cancelSignalForNewWork } from './interrupt.js';

export interface RetryOptions {
  attempts: number;
  firstDelayMs: number;
  maxDelayMs?: number;
  /** Only errors this accepts are retried; others are thrown at once. */
  retryable: (err: unknown) => boolean;
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
}

export async function withRetry<T>(fn: (attempt: number) => Promise<T>, opts: RetryOptions): Promise<T> {
  let delay = opts.firstDelayMs;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (attempt >= opts.attempts || !opts.retryable(err)) throw err;
      opts.onRetry?.(err, attempt, delay);
      await sleep(delay, undefined, { signal: cancelSignalForNewWork() }).catch(() => {
        throw err;
      });
      delay = Math.min(delay * 2, opts.maxDelayMs ?? 10_000);
    }
  }
}
