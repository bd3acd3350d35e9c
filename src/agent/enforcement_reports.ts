/**
 * Where the TC sink's findings about the kernel go — repairs, foreign
 * filters ahead of ours, offload status, offload warnings — once the daemon
 * has its metrics and its Event recorder (the sink is built first).
 */
import type { Drift } from "../tc/drift.ts";
import type { AgentMetrics } from "./metrics.ts";
import type { OffloadReports } from "./offload_policy.ts";
import type { PodRef } from "./tc_sink.ts";

/** Records Warning Events on pods (the daemon's Event recorder). */
export interface PodNotices {
  podNotice(pod: PodRef, reason: string, message: string): void;
}

/** The Event reason for a foreign filter that can change what the agent's program decides. */
export const FOREIGN_FILTER = "ForeignFilterAhead";

/** Turns the sink's findings into metrics and Events. */
export class EnforcementReports implements OffloadReports {
  #metrics?: AgentMetrics;
  #events?: PodNotices | null;

  /** Connects the daemon's metrics and Events (before, findings only reach the log). */
  attach(metrics: AgentMetrics, events: PodNotices | null): void {
    this.#metrics = metrics;
    this.#events = events;
  }

  /** A device was repaired. */
  repaired(_device: string, drift: Drift): void {
    this.#metrics?.repairs.add(1, { reason: drift.reason });
  }

  /** The foreign filters ahead of ours on a device changed. */
  foreignAhead(device: string, pods: PodRef[], ahead: string[]): void {
    this.#metrics?.foreignFiltersAhead.set(ahead.length, { device });
    if (ahead.length === 0) return;
    this.warn(
      pods,
      FOREIGN_FILTER,
      `${device} carries ${ahead.length} TC filters the agent did not write where traffic meets ` +
        `them before or inside its policy program (${ahead[0]}${
          ahead.length > 1 ? ", ..." : ""
        }): they can change what the policy decides; the agent leaves them in place`,
    );
  }

  /** A device no longer carries a program of ours (cleaned, or gone): its gauges go. */
  released(device: string): void {
    this.#metrics?.foreignFiltersAhead.delete({ device });
    this.#metrics?.filtersInHardware.delete({ device });
    this.#metrics?.filtersSoftwareOnly.delete({ device });
  }

  status(device: string, inHardware: number, softwareOnly: number): void {
    this.#metrics?.filtersInHardware.set(inHardware, { device });
    this.#metrics?.filtersSoftwareOnly.set(softwareOnly, { device });
  }

  warn(pods: PodRef[], reason: string, message: string): void {
    for (const pod of pods) this.#events?.podNotice(pod, reason, message);
  }
}
