/**
 * Bounded retries for transient host and network faults: exponential
 * backoff with a cap, an optional time budget, a server's Retry-After
 * honoured (within a cap), every wait cut short by SIGINT/SIGTERM. What
 * is safe to retry is the caller's decision.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { oneLine } from './errors.js';
import { abortReason, cancelSignalForNewWork } from './interrupt.js';
import { log } from './log.js';

export interface RetryPolicy {
  /** Total tries, the first included. */
  attempts: number;
  firstDelayMs: number;
  /** The doubling delay stops growing here (default 10 s). */
  maxDelayMs?: number;
  /** Longest Retry-After waited for (default maxDelayMs; Manta says 30 s when it has no storage nodes). */
  maxRetryAfterMs?: number;
  /** No retry starts whose wait would end later than this after the first try. */
  budgetMs?: number;
}

/** For Manta and the updates IMGAPI. */
export const DEFAULT_RETRY: RetryPolicy = { attempts: 5, firstDelayMs: 1000, maxDelayMs: 15_000, maxRetryAfterMs: 60_000 };

export interface RetryOptions extends RetryPolicy {
  /** Only errors this accepts are retried; others are thrown at once. */
  retryable: (err: unknown) => boolean;
  /** Called before each wait (`attempt` is the one that failed); default: a warning, `retryLine`. */
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
  /** Cuts the waits short; default the interruption signal for work starting now. */
  signal?: AbortSignal;
}

/** The one retry log line: `<error>; retrying in 1.0 s (attempt 2 of 5)`. */
export function retryLine(err: unknown, attempt: number, attempts: number, delayMs: number): string {
  const when = delayMs > 0 ? `in ${(delayMs / 1000).toFixed(1)} s` : 'now';
  return `${oneLine(err)}; retrying ${when} (attempt ${attempt + 1} of ${attempts})`;
}

/**
 * The waits of a policy: doubling from firstDelayMs up to maxDelayMs. An
 * error carrying `retryAfterMs` (a server's Retry-After) makes that wait
 * longer, up to maxRetryAfterMs, never shorter.
 */
export class Backoff {
  private delay: number;
  constructor(private readonly policy: RetryPolicy) {
    this.delay = policy.firstDelayMs;
  }

  /** The wait before the next try after `err`; the one after it doubles. */
  next(err?: unknown): number {
    const p = this.policy;
    const max = p.maxDelayMs ?? 10_000;
    const base = Math.min(this.delay, max);
    this.delay = Math.min(this.delay * 2, max);
    const after = (err as { retryAfterMs?: unknown } | undefined)?.retryAfterMs;
    if (typeof after !== 'number' || !(after >= 0)) return base;
    return Math.max(base, Math.min(after, p.maxRetryAfterMs ?? max));
  }

  reset(): void {
    this.delay = this.policy.firstDelayMs;
  }
}

/** Sleeps `ms`; an abort of `signal` ends it by throwing the signal's reason (or `err`). */
export async function pause(ms: number, signal: AbortSignal | undefined, err?: unknown): Promise<void> {
  await sleep(ms, undefined, { signal }).catch(() => {
    throw signal ? abortReason(signal, err) : err;
  });
}

/** Runs `fn` until it succeeds, `retryable` refuses its error, or the policy runs out; then throws the last error. */
export async function withRetry<T>(fn: (attempt: number) => Promise<T>, opts: RetryOptions): Promise<T> {
  const started = Date.now();
  // Work that starts after an interruption is cleanup: its waits run to the end.
  const signal = opts.signal ?? cancelSignalForNewWork();
  const backoff = new Backoff(opts);
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (attempt >= opts.attempts || !opts.retryable(err)) throw err;
      const wait = backoff.next(err);
      if (opts.budgetMs !== undefined && Date.now() - started + wait > opts.budgetMs) throw err;
      if (opts.onRetry) opts.onRetry(err, attempt, wait);
      else log.warn(retryLine(err, attempt, opts.attempts, wait));
      await pause(wait, signal, err);
    }
  }
}
