/**
 * The narrow interface between the sync loop and whatever enforces rules on
 * the node (the TC actuator with a representor lookup, in production). The
 * loop hands over only interfaces whose rules changed, and `null` for
 * interfaces that are gone; the sink answers per interface.
 */
import type { InterfaceRules } from "../policy/model.ts";
import type { DropCounters } from "./drop_counters.ts";
import type { PodNotices } from "./enforcement_reports.ts";
import type { AgentMetrics } from "./metrics.ts";

/** One interface to bring to its rules. */
export interface RulesChange {
  /** `interfaceKey()` of src/policy/model.ts: `namespace/pod/network/interface`. */
  key: string;
  /** The rules to enforce; null: the interface is gone, remove what was programmed for it. */
  rules: InterfaceRules | null;
  /**
   * For `rules: null`, the rules last applied (the sink may need the PCI address to find the
   * representor); absent if unknown.
   */
  previous?: InterfaceRules;
}

/** The sink's answer for one interface. */
export interface RulesResult {
  key: string;
  /** Set when the interface could not be brought to its rules; says why (one line). */
  error?: string;
  /** TC filters the interface carries afterwards, when known (for metrics). */
  filters?: number;
}

/** How a sink applies a batch of changes. */
export interface ApplyOptions {
  /**
   * Devices to read back from the kernel and repair even when their rules did
   * not change (`"all"` on a full resync); default none.
   */
  verify?: ReadonlySet<string> | "all";
}

/** Applies rule changes; never rejects for one interface's failure (report it in its result). */
export interface RulesSink {
  apply(changes: RulesChange[], options?: ApplyOptions): Promise<RulesResult[]>;
  /** Reads the given devices (or all) back from the kernel and repairs what differs. */
  repair?(devices: ReadonlySet<string> | "all", cause: string): Promise<void>;
  /**
   * TC filters in place on every device the sink programs (uplinks included);
   * absent: the sum of the interfaces' results.
   */
  filtersInPlace?(): number;
  /** Hands the sink the daemon's metrics and Event recorder (for what it finds in the kernel). */
  attach?(metrics: AgentMetrics, events: PodNotices | null): void;
  /** What the sink's programs have dropped by policy, when it can tell. */
  readonly drops?: DropCounters;
}
