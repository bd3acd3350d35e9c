/**
 * The sync loop's timing policy, as pure functions: when the next sync may
 * run after changes arrive (coalescing bursts, a minimum interval between
 * syncs, a bound on how long a steady stream of events can delay one).
 * Retries back off with `src/watching/backoff.ts`.
 */

/** How changes are coalesced into syncs. */
export interface CoalescePolicy {
  /** Quiet time after the last event before a sync starts (a burst becomes one sync). */
  debounceMs: number;
  /** Minimum time between the starts of two syncs. */
  minIntervalMs: number;
  /** The longest a pending change waits because events keep arriving. */
  maxDelayMs: number;
}

/**
 * Defaults for the daemon: 50 ms quiet time, 100 ms between syncs, at most
 * 100 ms of delay from events that keep arriving (a steady stream must not
 * hold a change back beyond what `--min-sync-interval` already does). A
 * sync renders only the pods a change touched (tens of ms at 10,000 pods),
 * so a change reaches the kernel within about 200 ms.
 */
export const DEFAULT_COALESCE: CoalescePolicy = {
  debounceMs: 50,
  minIntervalMs: 100,
  maxDelayMs: 100,
};

/** What the loop knows when deciding (all times in ms on one clock). */
export interface PendingState {
  /** When the oldest pending change arrived; null when nothing is pending. */
  firstChangeAt: number | null;
  /** When the newest pending change arrived. */
  lastChangeAt: number | null;
  /** When the previous sync started; null before the first. */
  lastSyncStartAt: number | null;
  /** Earliest time a retry may run (after a failed sync); null when none is due. */
  notBefore?: number | null;
}

/** The time the next sync should start, or null when nothing is pending. */
export function nextSyncAt(state: PendingState, policy: CoalescePolicy): number | null {
  if (state.firstChangeAt === null) return null;
  const last = state.lastChangeAt ?? state.firstChangeAt;
  const quiet = Math.min(last + policy.debounceMs, state.firstChangeAt + policy.maxDelayMs);
  const spaced = state.lastSyncStartAt === null
    ? -Infinity
    : state.lastSyncStartAt + policy.minIntervalMs;
  return Math.max(quiet, spaced, state.notBefore ?? -Infinity);
}
