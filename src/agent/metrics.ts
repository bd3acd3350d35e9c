/**
 * The agent's Prometheus metrics and their text exposition format
 * (version 0.0.4): counters, gauges and one histogram, no dependencies.
 */

import type { DropTotal } from "./drop_counters.ts";

type LabelSet = Record<string, string>;

function labelText(labels: LabelSet): string {
  const entries = Object.entries(labels);
  if (entries.length === 0) return "";
  const escape = (v: string) => v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
  return `{${entries.map(([k, v]) => `${k}="${escape(v)}"`).join(",")}}`;
}

/** A counter or gauge family, one value per label set. */
class Family {
  readonly #values = new Map<string, { labels: LabelSet; value: number }>();
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: "counter" | "gauge",
  ) {}
  add(delta: number, labels: LabelSet = {}): void {
    const key = labelText(labels);
    const entry = this.#values.get(key) ?? { labels, value: 0 };
    entry.value += delta;
    this.#values.set(key, entry);
  }
  set(value: number, labels: LabelSet = {}): void {
    this.#values.set(labelText(labels), { labels, value });
  }
  /** Forgets one label set (e.g. of a device that went away). */
  delete(labels: LabelSet): void {
    this.#values.delete(labelText(labels));
  }
  /** Forgets every label set (before the family is set anew). */
  clear(): void {
    this.#values.clear();
  }
  get(labels: LabelSet = {}): number {
    return this.#values.get(labelText(labels))?.value ?? 0;
  }
  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} ${this.type}`];
    for (const { labels, value } of this.#values.values()) {
      lines.push(`${this.name}${labelText(labels)} ${value}`);
    }
    return lines.join("\n");
  }
}

/** A histogram with fixed buckets (seconds). */
class Histogram {
  readonly #counts: number[];
  #sum = 0;
  #count = 0;
  constructor(readonly name: string, readonly help: string, readonly buckets: number[]) {
    this.#counts = buckets.map(() => 0);
  }
  observe(value: number): void {
    this.buckets.forEach((bound, i) => {
      if (value <= bound) this.#counts[i]++;
    });
    this.#sum += value;
    this.#count++;
  }
  get count(): number {
    return this.#count;
  }
  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    this.buckets.forEach((bound, i) => {
      lines.push(`${this.name}_bucket{le="${bound}"} ${this.#counts[i]}`);
    });
    lines.push(`${this.name}_bucket{le="+Inf"} ${this.#count}`);
    lines.push(`${this.name}_sum ${this.#sum}`, `${this.name}_count ${this.#count}`);
    return lines.join("\n");
  }
}

/** Kinds of errors counted in `mnp_errors_total`. */
export type ErrorKind = "object" | "apply" | "watch" | "event" | "sync";

/** Every metric the agent exports. */
export class AgentMetrics {
  /** Syncs run, by result (`success`, `partial`, `failure`). */
  readonly syncs = new Family("mnp_syncs_total", "Syncs run, by result.", "counter");
  /** How long each sync took. */
  readonly syncDuration = new Histogram(
    "mnp_sync_duration_seconds",
    "Time from the start of a sync to the sink's answer.",
    [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
  );
  /** Interfaces whose rules are currently in place. */
  readonly interfaces = new Family(
    "mnp_interfaces_programmed",
    "Pod interfaces whose rules were applied successfully and are in place.",
    "gauge",
  );
  /** TC filters currently in place, as reported by the sink. */
  readonly filters = new Family(
    "mnp_filters_programmed",
    "TC filters in place on the node's devices (representors and uplinks), as reported by the sink.",
    "gauge",
  );
  /** Errors by kind. */
  readonly errors = new Family("mnp_errors_total", "Errors, by kind.", "counter");
  /** Watches re-established, by resource. */
  readonly watchRestarts = new Family(
    "mnp_watch_restarts_total",
    "Watches re-established after they ended or failed, by resource.",
    "counter",
  );
  /** Full relists, by resource (after 410 Gone). */
  readonly relists = new Family(
    "mnp_watch_relists_total",
    "Full relists after the watch position expired (410 Gone), by resource.",
    "counter",
  );
  /** Whether the API server is reachable (1) or not (0). */
  readonly apiServerUp = new Family(
    "mnp_apiserver_connected",
    "1 while every watch is connected to the API server, else 0.",
    "gauge",
  );

  /** Packets dropped by policy, per interface and direction. */
  readonly policyDroppedPackets = new Family(
    "mnp_policy_dropped_packets_total",
    "Packets dropped by policy, per pod interface and direction (the counters of the drop filters).",
    "counter",
  );
  /** Bytes dropped by policy, per interface and direction. */
  readonly policyDroppedBytes = new Family(
    "mnp_policy_dropped_bytes_total",
    "Bytes dropped by policy, per pod interface and direction, as the kernel counts them.",
    "counter",
  );

  /** Devices repaired after someone else changed them, by what was wrong. */
  readonly repairs = new Family(
    "mnp_repairs_total",
    "Devices read back and repaired because the kernel no longer held what was applied, by reason.",
    "counter",
  );
  /** Foreign filters ahead of or inside our program, per device. */
  readonly foreignFiltersAhead = new Family(
    "mnp_foreign_filters_ahead",
    "Filters not written by the agent that traffic meets before or inside its program, per device.",
    "gauge",
  );
  /** Filters in the NIC, per device. */
  readonly filtersInHardware = new Family(
    "mnp_tc_filters_in_hardware",
    "Filters of the agent that the kernel reports in hardware (in_hw), per device.",
    "gauge",
  );
  /** Filters in software only, per device. */
  readonly filtersSoftwareOnly = new Family(
    "mnp_tc_filters_software_only",
    "Filters of the agent in software only (not_in_hw, skip_hw, or a device without " +
      "hw-tc-offload), per device.",
    "gauge",
  );

  /** Sets the drop counters to these totals (interfaces not listed are gone). */
  publishDrops(totals: readonly DropTotal[]): void {
    this.policyDroppedPackets.clear();
    this.policyDroppedBytes.clear();
    for (const total of totals) {
      const labels = {
        namespace: total.rules.pod.namespace,
        pod: total.rules.pod.name,
        interface: total.rules.interfaceName,
        direction: total.direction,
      };
      this.policyDroppedPackets.set(total.packets, labels);
      this.policyDroppedBytes.set(total.bytes, labels);
    }
  }

  /** The exposition text for `/metrics`. */
  render(): string {
    return [
      this.syncs,
      this.syncDuration,
      this.interfaces,
      this.filters,
      this.errors,
      this.watchRestarts,
      this.relists,
      this.apiServerUp,
      this.policyDroppedPackets,
      this.policyDroppedBytes,
      this.repairs,
      this.foreignFiltersAhead,
      this.filtersInHardware,
      this.filtersSoftwareOnly,
    ].map((m) => m.render()).join("\n") + "\n";
  }
}
