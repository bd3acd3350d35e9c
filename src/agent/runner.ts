/**
 * Decides when one async function runs, like kube-proxy's
 * BoundedFrequencyRunner: requests are coalesced (debounce, a minimum interval
 * between starts, a bound on the delay; see ./timing.ts), a failed run is
 * retried with backoff, a periodic run is requested every period, and two
 * runs never overlap. What the function does is not its business.
 */
import { log } from "../log/klog.ts";
import { backoffDelay, type BackoffPolicy } from "../watching/backoff.ts";
import { type CoalescePolicy, nextSyncAt } from "./timing.ts";

/** A timer handle as a {@link Clock} returns it (the runtime's, or a fake clock's number). */
export type TimerId = number | ReturnType<typeof setTimeout>;

/** The time source and timers a runner uses (a fake one in tests). */
export interface Clock {
  /** Milliseconds on a monotonic clock. */
  now(): number;
  setTimeout(callback: () => void, ms: number): TimerId;
  clearTimeout(id: TimerId | undefined): void;
}

/** The real clock: `performance.now()` and the global timers. */
export const SYSTEM_CLOCK: Clock = {
  now: () => performance.now(),
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (id) => clearTimeout(id),
};

/** Why a run happens. */
export interface RunTrigger {
  /** The periodic timer asked for this run (possibly together with other requests). */
  periodic: boolean;
}

/** The function a runner runs: resolves true when it did all it had to, false to be retried. */
export type RunFunction = (trigger: RunTrigger) => Promise<boolean>;

/** When runs happen. */
export interface RunnerOptions {
  coalesce: CoalescePolicy;
  /** Time from {@link Runner.start} and from each periodic run to the next periodic one (0: never). */
  periodMs: number;
  /** Backoff between a failed run and its retry. */
  retry: BackoffPolicy;
  /** Default: {@link SYSTEM_CLOCK}. */
  clock?: Clock;
  /** Jitter source in [0, 1); default `Math.random`. */
  random?: () => number;
}

/** Runs a function at a bounded frequency; request runs with {@link run}, begin with {@link start}. */
export class Runner {
  readonly #clock: Clock;
  readonly #random: () => number;
  #firstRequestAt: number | null = null;
  #lastRequestAt: number | null = null;
  #lastStartAt: number | null = null;
  #notBefore: number | null = null;
  #attempt = 0;
  #periodic = false;
  #timer: TimerId | undefined;
  #periodTimer: TimerId | undefined;
  #running: Promise<void> | null = null;
  #started = false;
  #stopped = false;

  constructor(private readonly fn: RunFunction, private readonly options: RunnerOptions) {
    this.#clock = options.clock ?? SYSTEM_CLOCK;
    this.#random = options.random ?? Math.random;
  }

  /** Whether a run is in progress. */
  get running(): boolean {
    return this.#running !== null;
  }

  /** Begins scheduling (requests made before wait until now) and the periodic timer. */
  start(): void {
    if (this.#started || this.#stopped) return;
    this.#started = true;
    this.#armPeriod();
    this.#schedule();
  }

  /** Requests a run; requests close together become one run. */
  run(): void {
    if (this.#stopped) return;
    const now = this.#clock.now();
    this.#firstRequestAt ??= now;
    this.#lastRequestAt = now;
    this.#schedule();
  }

  /** Stops scheduling and waits for a run in progress. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#clock.clearTimeout(this.#timer);
    this.#clock.clearTimeout(this.#periodTimer);
    await this.#running;
  }

  #armPeriod(): void {
    if (this.options.periodMs <= 0 || this.#stopped) return;
    this.#clock.clearTimeout(this.#periodTimer);
    this.#periodTimer = this.#clock.setTimeout(() => {
      this.#periodTimer = undefined;
      this.#periodic = true;
      this.run();
    }, this.options.periodMs);
  }

  #schedule(): void {
    if (!this.#started || this.#stopped || this.#running) return;
    const at = nextSyncAt({
      firstChangeAt: this.#firstRequestAt,
      lastChangeAt: this.#lastRequestAt,
      lastSyncStartAt: this.#lastStartAt,
      notBefore: this.#notBefore,
    }, this.options.coalesce);
    this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    if (at === null) return;
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = undefined;
      this.#running = this.#runOnce().finally(() => {
        this.#running = null;
        this.#schedule();
      });
    }, Math.max(0, at - this.#clock.now()));
  }

  async #runOnce(): Promise<void> {
    this.#lastStartAt = this.#clock.now();
    this.#firstRequestAt = null;
    this.#lastRequestAt = null;
    const trigger: RunTrigger = { periodic: this.#periodic };
    this.#periodic = false;
    let ok: boolean;
    try {
      ok = await this.fn(trigger);
    } catch (error) {
      ok = false;
      log.error("run failed; will retry", {
        err: error instanceof Error ? error.message : String(error),
      });
    }
    if (ok) {
      this.#attempt = 0;
      this.#notBefore = null;
    } else {
      const now = this.#clock.now();
      this.#notBefore = now + backoffDelay(++this.#attempt, this.options.retry, this.#random());
      if (this.#firstRequestAt === null) this.#firstRequestAt = this.#lastRequestAt = now;
    }
    if (trigger.periodic) this.#armPeriod();
  }
}
