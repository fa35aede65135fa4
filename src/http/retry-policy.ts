/**
 * Bounded retries for HTTP calls: exponential backoff with a cap, a
 * server's Retry-After honoured (within a cap), every wait cut short by
 * SIGINT/SIGTERM. What is safe to retry is the caller's decision.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { interruptSignal } from '../core/interrupt.js';

export interface RetryPolicy {
  /** Total tries, the first included. */
  attempts: number;
  firstDelayMs: number;
  maxDelayMs: number;
  /** Longest Retry-After we wait for (Manta says 30 s when it has no storage nodes). */
  maxRetryAfterMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 5, firstDelayMs: 1000, maxDelayMs: 15_000, maxRetryAfterMs: 60_000 };

export type Verdict = { retry: false } | { retry: true; afterMs?: number };

export async function retrying<T>(
  fn: (attempt: number) => Promise<T>,
  classify: (err: unknown) => Verdict,
  policy: RetryPolicy,
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void,
): Promise<T> {
  let delay = policy.firstDelayMs;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      const v = classify(err);
      if (!v.retry || attempt >= policy.attempts) throw err;
      const wait = v.afterMs !== undefined ? Math.min(v.afterMs, policy.maxRetryAfterMs) : delay;
      onRetry?.(err, attempt, wait);
      await sleep(wait, undefined, { signal: interruptSignal() }).catch(() => {
        throw interruptSignal().reason ?? err;
      });
      delay = Math.min(delay * 2, policy.maxDelayMs);
    }
  }
}
