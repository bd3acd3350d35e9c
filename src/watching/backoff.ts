/**
 * Capped exponential backoff with jitter, as a pure function: how long to wait
 * before reconnecting a watch, and (in the agent, above) before retrying a
 * failed sync.
 */

/** Capped exponential backoff. */
export interface BackoffPolicy {
  initialMs: number;
  maxMs: number;
  /** Extra random share added to each delay (0.2: up to +20%), still capped at maxMs. */
  jitter: number;
}

/** Defaults: 500 ms doubling up to 30 s, +20% jitter. */
export const DEFAULT_BACKOFF: BackoffPolicy = { initialMs: 500, maxMs: 30_000, jitter: 0.2 };

/** The delay before retry number `attempt` (1-based); `random` is in [0, 1). */
export function backoffDelay(attempt: number, policy: BackoffPolicy, random = 0): number {
  const exponent = Math.max(0, Math.min(attempt - 1, 30));
  const base = Math.min(policy.maxMs, policy.initialMs * 2 ** exponent);
  return Math.min(policy.maxMs, Math.round(base * (1 + policy.jitter * random)));
}
