/**
 * The sync loop the daemon drives: a {@link NodeSync} (what a sync does) run
 * by a {@link Runner} (when it runs: coalesced, bounded frequency, retried
 * with backoff, and a periodic full resync as a safety net).
 */
import type { BackoffPolicy } from "../watching/backoff.ts";
import { type Clock, Runner, SYSTEM_CLOCK } from "./runner.ts";
import { NodeSync, type SyncOptions } from "./sync.ts";
import type { CoalescePolicy } from "./timing.ts";

export type { PodWarnings, SyncReport } from "./sync.ts";

/** What the loop renders, where it hands the result, and how it paces syncs. */
export interface SyncLoopOptions extends Omit<SyncOptions, "now"> {
  coalesce: CoalescePolicy;
  /** Period of the full resync safety net (0: never). */
  resyncMs: number;
  /** Backoff for retrying interfaces the sink failed to apply. */
  retry: BackoffPolicy;
  /** Default: the real clock. */
  clock?: Clock;
}

/** The loop; feed it with {@link markDirty}/{@link markAll}, start it with {@link enable}. */
export class SyncLoop {
  readonly #sync: NodeSync;
  readonly #runner: Runner;
  #enabled = false;

  constructor(options: SyncLoopOptions) {
    const clock = options.clock ?? SYSTEM_CLOCK;
    this.#sync = new NodeSync({ ...options, now: () => clock.now() });
    this.#runner = new Runner((trigger) => {
      if (trigger.periodic) this.#sync.markAll();
      return this.#sync.run();
    }, { coalesce: options.coalesce, periodMs: options.resyncMs, retry: options.retry, clock });
  }

  /** Whether the last sync applied everything it had to; null before the first sync. */
  get lastSyncOk(): boolean | null {
    return this.#sync.lastSyncOk;
  }

  /** Syncs completed. */
  get syncCount(): number {
    return this.#sync.syncCount;
  }

  /** Starts syncing (after the caches synced): one full sync first. */
  enable(): void {
    if (this.#enabled) return;
    this.#enabled = true;
    this.#runner.start();
    this.markAll();
  }

  /** Re-render these local pods (`namespace/name`) at the next sync. */
  markDirty(pods: Iterable<string>): void {
    if (this.#sync.markDirty(pods)) this.#runner.run();
  }

  /** Re-render every local interface and hand all of them to the sink at the next sync. */
  markAll(): void {
    this.#sync.markAll();
    this.#runner.run();
  }

  /** Stops scheduling and waits for a sync in progress. */
  stop(): Promise<void> {
    return this.#runner.stop();
  }
}
