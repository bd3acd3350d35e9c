/**
 * What one sync does (./runner.ts decides when): renders the local pods
 * marked dirty (or all of them) with the policy engine, hands the sink only
 * the interfaces whose rules changed since they were last applied (and
 * `null` for interfaces that are gone), and reports the outcome in metrics,
 * log lines and pod Events.
 */
import {
  type ClusterState,
  formatObjectError,
  type ObjectError,
  podKey,
} from "../cluster/types.ts";
import { log } from "../log/klog.ts";
import type { DeviceAllocations } from "../interfaces/local.ts";
import { computeNodeRules } from "../policy/engine.ts";
import { MembershipCache } from "../policy/cluster_index.ts";
import { withinFilterLimit } from "../tc/limits.ts";
import { interfaceKey, type InterfaceRules } from "../policy/model.ts";
import type { AgentMetrics } from "./metrics.ts";
import type { RulesChange, RulesResult, RulesSink } from "./sink.ts";

/** Where a sync reports pods whose rules could not be applied (Kubernetes Events). */
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

/** What a {@link NodeSync} renders, where it hands the result, and whom it tells. */
export interface SyncOptions {
  /** The node whose pods are enforced. */
  node: string;
  networkPlugins: string[];
  /** The current cluster view. */
  snapshot: () => ClusterState;
  sink: RulesSink;
  metrics: AgentMetrics;
  /** Default: no Events. */
  warnings?: PodWarnings | null;
  /** Called after every sync. */
  onSync?: (report: SyncReport) => void;
  /** Milliseconds, for the sync duration; default `performance.now()`. */
  now?: () => number;
  /** Most TC filters one interface may need before it is enforced as deny-all; 0: no limit. */
  maxFiltersPerInterface?: number;
  /**
   * The kubelet's VF allocations for this sync; absent: the pods' annotations
   * alone. When they move, the source is expected to call {@link NodeSync.markAll}.
   */
  devices?: () => Promise<DeviceAllocations>;
}

interface Applied {
  podKey: string;
  text: string;
  rules: InterfaceRules;
  filters: number;
}

/** The pod (`namespace/name`) a change is about. */
function podOf(change: RulesChange): string {
  const rules = change.rules ?? change.previous;
  return rules ? podKey(rules.pod) : change.key.split("/").slice(0, 2).join("/");
}

/** Syncs the node's rules; mark work with {@link markDirty}/{@link markAll}, do it with {@link run}. */
export class NodeSync {
  readonly #applied = new Map<string, Applied>();
  /** Per interface over the filter limit, the warning last given. */
  readonly #overLimit = new Map<string, string>();
  /** Per interface, the error last logged (to log once per distinct error). */
  readonly #lastError = new Map<string, string>();
  readonly #now: () => number;
  /** Namespaces' members from the last sync, regrouped only where pods changed. */
  readonly #membership = new MembershipCache();
  #dirty = new Set<string>();
  #full = false;
  #loggedEngineErrors = new Set<string>();
  /** Whether the last sync applied everything it had to; null before the first sync. */
  lastSyncOk: boolean | null = null;
  /** Syncs completed. */
  syncCount = 0;

  constructor(private readonly options: SyncOptions) {
    this.#now = options.now ?? (() => performance.now());
  }

  /** Re-render these local pods (`namespace/name`) at the next sync; false when none given. */
  markDirty(pods: Iterable<string>): boolean {
    let added = false;
    for (const pod of pods) {
      this.#dirty.add(pod);
      added = true;
    }
    return added;
  }

  /** Re-render every local interface and hand all of them to the sink at the next sync. */
  markAll(): void {
    this.#full = true;
  }

  /** Runs one sync of what was marked; resolves true when everything was applied. */
  async run(): Promise<boolean> {
    const start = this.#now();
    let full = false;
    let dirty = new Set<string>();
    let changes: RulesChange[] = [];
    let results: RulesResult[] = [];
    let failures = 0;
    let syncError: string | undefined;
    try {
      // Asked before the work is taken: when the kubelet's allocations moved, its source
      // marks every pod (the daemon wires it to markAll), and this sync takes that up.
      const devices = this.options.devices ? await this.options.devices() : null;
      full = this.#full;
      dirty = this.#dirty;
      this.#full = false;
      this.#dirty = new Set();
      const rendered = computeNodeRules(this.options.snapshot(), {
        node: this.options.node,
        networkPlugins: this.options.networkPlugins,
        devices,
        ...(full ? {} : { only: dirty }),
        membership: this.#membership,
      });
      this.#reportEngineErrors(rendered.errors, full);
      const interfaces = rendered.interfaces.map((rules) =>
        withinFilterLimit(rules, this.options.maxFiltersPerInterface ?? 0)
      );
      changes = this.#diff(interfaces, full ? null : dirty, full);
      // A full sync also reads every device back: it repairs what someone else changed.
      results = changes.length > 0
        ? await this.options.sink.apply(changes, full ? { verify: "all" } : {})
        : [];
      failures = this.#record(changes, results);
      this.#reportOverLimit(interfaces);
    } catch (error) {
      syncError = error instanceof Error ? error.message : String(error);
      failures = Math.max(1, changes.length);
      this.options.metrics.errors.add(1, { kind: "sync" });
      log.error("sync failed; will retry", { err: syncError });
      if (full) this.#full = true;
      for (const pod of dirty) this.#dirty.add(pod);
      for (const change of changes) this.#dirty.add(podOf(change));
    }
    const durationMs = this.#now() - start;
    this.syncCount++;
    this.lastSyncOk = failures === 0;
    this.#observe(durationMs, failures, changes.length);
    log.v(2, "synced", {
      full,
      pods: full ? "all" : dirty.size,
      changes: changes.length,
      failures,
      ms: Math.round(durationMs),
    });
    this.options.onSync?.({ full, changes, results, durationMs, error: syncError });
    return failures === 0;
  }

  #observe(durationMs: number, failures: number, changes: number): void {
    const metrics = this.options.metrics;
    metrics.syncDuration.observe(durationMs / 1000);
    metrics.syncs.add(1, {
      result: failures === 0 ? "success" : failures < changes ? "partial" : "failure",
    });
    metrics.interfaces.set(this.#applied.size);
    let filters = 0;
    for (const entry of this.#applied.values()) filters += entry.filters;
    metrics.filters.set(this.options.sink.filtersInPlace?.() ?? filters);
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

  /** Records the sink's answers; returns the number of failures. */
  #record(changes: RulesChange[], results: RulesResult[]): number {
    const byKey = new Map(results.map((r) => [r.key, r]));
    let failures = 0;
    const failedPods = new Set<string>();
    const okPods = new Set<string>();
    for (const change of changes) {
      const result = byKey.get(change.key) ?? { key: change.key, error: "the sink gave no answer" };
      const pod = podOf(change);
      if (result.error !== undefined) {
        failures++;
        failedPods.add(pod);
        this.#dirty.add(pod);
        this.#reportFailure(change, result.error);
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
        this.options.warnings?.podRecovered(namespace, name);
      }
    }
    return failures;
  }

  /** Warns once per interface (and again when the figures change) that it is over the limit. */
  #reportOverLimit(interfaces: InterfaceRules[]): void {
    for (const rules of interfaces) {
      const key = interfaceKey(rules);
      if (!rules.overLimit) {
        this.#overLimit.delete(key);
        continue;
      }
      const message = `interface ${rules.interfaceName} (network ${rules.network}) needs ` +
        `${rules.overLimit.filters} TC filters, more than --max-filters-per-interface ` +
        `${rules.overLimit.max}: it is enforced as deny-all both ways`;
      if (this.#overLimit.get(key) === message) continue;
      this.#overLimit.set(key, message);
      log.warning("interface over the filter limit: deny all both ways", {
        pod: podKey(rules.pod),
        interface: rules.interfaceName,
        filters: rules.overLimit.filters,
        max: rules.overLimit.max,
      });
      this.options.warnings?.podWarning(rules.pod, "FilterLimitExceeded", message);
    }
  }

  #reportFailure(change: RulesChange, error: string): void {
    this.options.metrics.errors.add(1, { kind: "apply" });
    if (this.#lastError.get(change.key) !== error) {
      this.#lastError.set(change.key, error);
      log.warning("cannot apply rules; keeping what is programmed, will retry", {
        interface: change.key,
        err: error,
      });
    }
    const rules = change.rules ?? change.previous;
    if (!rules) return;
    this.options.warnings?.podWarning(
      rules.pod,
      "PolicyNotApplied",
      `network policy rules for interface ${rules.interfaceName} (network ${rules.network}) ` +
        `could not be ${change.rules ? "applied" : "removed"}: ${error}`,
    );
  }

  #reportEngineErrors(errors: ObjectError[], full: boolean): void {
    const lines = new Set<string>();
    for (const error of errors) {
      const line = formatObjectError(error);
      lines.add(line);
      if (this.#loggedEngineErrors.has(line)) continue;
      log.warning(line);
      const ref = error.ref;
      if (ref?.kind === "Pod") {
        this.options.warnings?.podWarning(
          { namespace: ref.namespace, name: ref.name, uid: ref.uid ?? "" },
          error.reason ?? "InterfaceNotEnforced",
          `${error.field}: ${error.message}`,
        );
      }
    }
    if (full) this.#loggedEngineErrors = lines;
    else for (const line of lines) this.#loggedEngineErrors.add(line);
  }
}
