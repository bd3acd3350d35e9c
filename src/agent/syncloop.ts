/**
 * The sync loop: collects which local pods changes may affect, coalesces them
 * into bounded-frequency syncs, renders those pods' interfaces with the policy
 * engine, and hands the sink only the interfaces whose rules changed (and
 * `null` for interfaces that are gone). Failed interfaces are retried with
 * backoff; a periodic full resync hands every interface to the sink again.
 */
import { type ClusterState, formatObjectError, type ObjectError } from "../cluster/types.ts";
import { log } from "../log/klog.ts";
import { computeNodeRules } from "../policy/engine.ts";
import { interfaceKey, type InterfaceRules } from "../policy/model.ts";
import { podKey } from "../watching/affected.ts";
import type { AgentMetrics } from "./metrics.ts";
import type { RulesChange, RulesResult, RulesSink } from "./sink.ts";
import { backoffDelay, type BackoffPolicy } from "../watching/backoff.ts";
import { type CoalescePolicy, nextSyncAt } from "./timing.ts";

/** How the loop renders and paces syncs. */
export interface SyncLoopOptions {
  node: string;
  networkPlugins: string[];
  coalesce: CoalescePolicy;
  /** Period of the full resync safety net (0: never). */
  resyncMs: number;
  /** Backoff for retrying interfaces the sink failed to apply. */
  retry: BackoffPolicy;
}

/** Where the loop reports pods whose rules could not be applied (Kubernetes Events). */
export interface PodWarnings {
  podWarning(
    pod: { namespace: string; name: string; uid: string },
    reason: string,
    message: string,
  ): void;
  podRecovered(namespace: string, name: string): void;
}

/** What one sync did, for observers and tests. */
export interface SyncReport {
  full: boolean;
  changes: RulesChange[];
  results: RulesResult[];
  durationMs: number;
  error?: string;
}

interface Applied {
  podKey: string;
  text: string;
  rules: InterfaceRules;
  filters: number;
}

/** The loop; feed it with {@link markDirty}/{@link markAll}, start it with {@link enable}. */
export class SyncLoop {
  readonly #applied = new Map<string, Applied>();
  /** Per interface, the error last logged (to log once per distinct error). */
  readonly #lastError = new Map<string, string>();
  #dirty = new Set<string>();
  #full = false;
  #firstChangeAt: number | null = null;
  #lastChangeAt: number | null = null;
  #lastSyncStartAt: number | null = null;
  #notBefore: number | null = null;
  #retryAttempt = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #resyncTimer: ReturnType<typeof setTimeout> | undefined;
  #running: Promise<void> | null = null;
  #enabled = false;
  #stopped = false;
  #loggedEngineErrors = new Set<string>();
  /** Whether the last sync applied everything it had to; null before the first sync. */
  lastSyncOk: boolean | null = null;
  /** Syncs completed. */
  syncCount = 0;

  constructor(
    private readonly options: SyncLoopOptions,
    private readonly snapshot: () => ClusterState,
    private readonly sink: RulesSink,
    private readonly metrics: AgentMetrics,
    private readonly warnings: PodWarnings | null = null,
    private readonly onSync: (report: SyncReport) => void = () => {},
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Starts syncing (after the caches synced): one full sync first. */
  enable(): void {
    if (this.#enabled || this.#stopped) return;
    this.#enabled = true;
    this.markAll();
  }

  /** Re-render these local pods (`namespace/name`) at the next sync. */
  markDirty(pods: Iterable<string>): void {
    let added = false;
    for (const pod of pods) {
      this.#dirty.add(pod);
      added = true;
    }
    if (added) this.#changed();
  }

  /** Re-render every local interface and hand all of them to the sink at the next sync. */
  markAll(): void {
    this.#full = true;
    this.#changed();
  }

  /** Stops scheduling and waits for a sync in progress. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    clearTimeout(this.#resyncTimer);
    await this.#running;
  }

  #changed(): void {
    const now = this.now();
    this.#firstChangeAt ??= now;
    this.#lastChangeAt = now;
    this.#schedule();
  }

  #schedule(): void {
    if (!this.#enabled || this.#stopped || this.#running) return;
    const at = nextSyncAt({
      firstChangeAt: this.#firstChangeAt,
      lastChangeAt: this.#lastChangeAt,
      lastSyncStartAt: this.#lastSyncStartAt,
      notBefore: this.#notBefore,
    }, this.options.coalesce);
    clearTimeout(this.#timer);
    if (at === null) return;
    this.#timer = setTimeout(() => {
      this.#running = this.#sync().finally(() => {
        this.#running = null;
        this.#schedule();
      });
    }, Math.max(0, at - this.now()));
  }

  async #sync(): Promise<void> {
    const start = this.now();
    this.#lastSyncStartAt = start;
    const full = this.#full;
    const dirty = this.#dirty;
    this.#full = false;
    this.#dirty = new Set();
    this.#firstChangeAt = null;
    this.#lastChangeAt = null;
    let changes: RulesChange[] = [];
    let results: RulesResult[] = [];
    let failures = 0;
    let syncError: string | undefined;
    try {
      const state = this.#scoped(this.snapshot(), full ? null : dirty);
      const rendered = computeNodeRules(state, {
        node: this.options.node,
        networkPlugins: this.options.networkPlugins,
      });
      this.#reportEngineErrors(rendered.errors, state, full);
      changes = this.#diff(rendered.interfaces, full ? null : dirty, full);
      results = changes.length > 0 ? await this.sink.apply(changes) : [];
      failures = this.#record(changes, results);
    } catch (error) {
      syncError = error instanceof Error ? error.message : String(error);
      failures = Math.max(1, changes.length);
      this.metrics.errors.add(1, { kind: "sync" });
      log.error("sync failed; will retry", { err: syncError });
      if (full) this.#full = true;
      for (const pod of dirty) this.#dirty.add(pod);
      for (const change of changes) this.#dirty.add(this.#podOf(change));
    }
    const durationMs = this.now() - start;
    this.syncCount++;
    this.lastSyncOk = failures === 0;
    this.metrics.syncDuration.observe(durationMs / 1000);
    this.metrics.syncs.add(1, {
      result: failures === 0 ? "success" : failures < changes.length ? "partial" : "failure",
    });
    this.metrics.interfaces.set(this.#applied.size);
    let filters = 0;
    for (const entry of this.#applied.values()) filters += entry.filters;
    this.metrics.filters.set(filters);
    if (failures > 0) {
      this.#notBefore = this.now() +
        backoffDelay(++this.#retryAttempt, this.options.retry, Math.random());
      if (this.#firstChangeAt === null) this.#firstChangeAt = this.#lastChangeAt = this.now();
    } else {
      this.#retryAttempt = 0;
      this.#notBefore = null;
    }
    if (full && this.options.resyncMs > 0 && !this.#stopped) {
      clearTimeout(this.#resyncTimer);
      this.#resyncTimer = setTimeout(() => this.markAll(), this.options.resyncMs);
    }
    log.v(2, "synced", {
      full,
      pods: full ? "all" : dirty.size,
      changes: changes.length,
      failures,
      ms: Math.round(durationMs),
    });
    this.onSync({ full, changes, results, durationMs, error: syncError });
  }

  /** The state with local pods outside `dirty` moved off the node (they stay peers). */
  #scoped(state: ClusterState, dirty: Set<string> | null): ClusterState {
    if (dirty === null) return state;
    const node = this.options.node;
    return {
      ...state,
      pods: state.pods.map((pod) =>
        pod.nodeName === node && !dirty.has(podKey(pod)) ? { ...pod, nodeName: "" } : pod
      ),
    };
  }

  #diff(
    interfaces: InterfaceRules[],
    dirty: Set<string> | null,
    force: boolean,
  ): RulesChange[] {
    const changes: RulesChange[] = [];
    const seen = new Set<string>();
    for (const rules of interfaces) {
      const key = interfaceKey(rules);
      seen.add(key);
      const previous = this.#applied.get(key);
      if (force || !previous || previous.text !== JSON.stringify(rules)) {
        changes.push({ key, rules });
      }
    }
    for (const [key, entry] of this.#applied) {
      if (seen.has(key) || (dirty !== null && !dirty.has(entry.podKey))) continue;
      changes.push({ key, rules: null, previous: entry.rules });
    }
    return changes;
  }

  #podOf(change: RulesChange): string {
    const rules = change.rules ?? change.previous;
    return rules ? podKey(rules.pod) : change.key.split("/").slice(0, 2).join("/");
  }

  /** Records the sink's answers; returns the number of failures. */
  #record(changes: RulesChange[], results: RulesResult[]): number {
    const byKey = new Map(results.map((r) => [r.key, r]));
    let failures = 0;
    const failedPods = new Set<string>();
    const okPods = new Set<string>();
    for (const change of changes) {
      const result = byKey.get(change.key) ?? { key: change.key, error: "the sink gave no answer" };
      const pod = this.#podOf(change);
      if (result.error !== undefined) {
        failures++;
        failedPods.add(pod);
        this.#dirty.add(pod);
        this.metrics.errors.add(1, { kind: "apply" });
        if (this.#lastError.get(change.key) !== result.error) {
          this.#lastError.set(change.key, result.error);
          log.warning("cannot apply rules; keeping what is programmed, will retry", {
            interface: change.key,
            err: result.error,
          });
        }
        const rules = change.rules ?? change.previous;
        if (rules) {
          this.warnings?.podWarning(
            rules.pod,
            "PolicyNotApplied",
            `network policy rules for interface ${rules.interfaceName} (network ${rules.network}) ` +
              `could not be ${change.rules ? "applied" : "removed"}: ${result.error}`,
          );
        }
        continue;
      }
      this.#lastError.delete(change.key);
      okPods.add(pod);
      if (change.rules) {
        this.#applied.set(change.key, {
          podKey: pod,
          text: JSON.stringify(change.rules),
          rules: change.rules,
          filters: result.filters ?? 0,
        });
      } else {
        this.#applied.delete(change.key);
      }
    }
    for (const pod of okPods) {
      if (!failedPods.has(pod)) {
        const [namespace, name] = pod.split("/");
        this.warnings?.podRecovered(namespace, name);
      }
    }
    return failures;
  }

  #reportEngineErrors(errors: ObjectError[], state: ClusterState, full: boolean): void {
    const lines = new Set<string>();
    for (const error of errors) {
      const line = formatObjectError(error);
      lines.add(line);
      if (this.#loggedEngineErrors.has(line)) continue;
      log.warning(line);
      const match = /^Pod ([^/]+)\/(.+)$/.exec(error.object);
      const pod = match && state.pods.find((p) => p.namespace === match[1] && p.name === match[2]);
      if (pod && pod.nodeName === this.options.node) {
        this.warnings?.podWarning(
          pod,
          "InterfaceNotEnforced",
          `${error.field}: ${error.message}`,
        );
      }
    }
    if (full) this.#loggedEngineErrors = lines;
    else for (const line of lines) this.#loggedEngineErrors.add(line);
  }
}
