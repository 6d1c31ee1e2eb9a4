// Retry delays: lws' backoff table with jitter and conceal (the Secure
// Streams README, lws_retry_get_delay_ms), as a pure function so that tests
// can drive it with a fake random source.

import type { Retry } from "../policy/reader.js";

/** lws' jitter when the policy does not give jitterpc. */
export const DEFAULT_JITTER_PERCENT = 30;
/** lws' delay when a retry policy has no backoff table. */
export const DEFAULT_DELAY_MS = 3000;
/** conceal of 65535 means retry forever. */
export const CONCEAL_FOREVER = 65535;
/** Cap of exponential backoff when the policy gives no max_backoff_ms. */
export const DEFAULT_MAX_BACKOFF_MS = 60000;

export interface RetryDecision {
  /** Whether to try again (false: report ALL_RETRIES_FAILED). */
  readonly retry: boolean;
  /** How long to wait before the next attempt, when retrying. */
  readonly delayMs: number;
}

/**
 * What to do after failed attempt number `failures` (1 for the first).
 * The delay is the table entry for this attempt (the last entry repeats past
 * the end of the table) plus a random 0..jitterpc% of it; or, when the
 * policy gives exp_backoff_ms (our extension), a random 0..min(max,
 * base × 2^(failures-1)) ("full jitter"). The first `conceal` failures are
 * retried; the next one is reported. Without a retry policy nothing is
 * retried.
 */
export function decideRetry(policy: Retry | undefined, failures: number, random: () => number): RetryDecision {
  if (!policy) return { retry: false, delayMs: 0 };
  const conceal = policy.conceal ?? 0;
  if (conceal !== CONCEAL_FOREVER && failures > conceal) return { retry: false, delayMs: 0 };
  const exp = policy.expBackoffMs;
  if (exp !== undefined) {
    const cap = Math.min(policy.maxBackoffMs ?? DEFAULT_MAX_BACKOFF_MS, exp * 2 ** Math.min(failures - 1, 31));
    return { retry: true, delayMs: Math.floor(cap * random()) };
  }
  const table = policy.backoff;
  const base = table.length ? table[Math.min(failures - 1, table.length - 1)]! : DEFAULT_DELAY_MS;
  const jitter = policy.jitterpc ?? DEFAULT_JITTER_PERCENT;
  return { retry: true, delayMs: Math.floor(base + (base * jitter * random()) / 100) };
}
