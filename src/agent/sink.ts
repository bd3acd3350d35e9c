/**
 * The narrow interface between the sync loop and whatever enforces rules on
 * the node (the TC actuator with a representor lookup, in production). The
 * loop hands over only interfaces whose rules changed, and `null` for
 * interfaces that are gone; the sink answers per interface.
 */
import type { AgentOptions } from "../cli/flags.ts";
import { log } from "../log/klog.ts";
import type { InterfaceRules } from "../policy/model.ts";

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

/** Applies rule changes; never rejects for one interface's failure (report it in its result). */
export interface RulesSink {
  apply(changes: RulesChange[]): Promise<RulesResult[]>;
}

/**
 * The sink the daemon uses. For now it only logs what it would apply (at -v=2)
 * and reports success; the TC actuator will be wired in here.
 */
export function createSink(_options: AgentOptions): RulesSink {
  return {
    apply(changes) {
      for (const change of changes) {
        log.v(2, "would apply rules", {
          interface: change.key,
          removed: change.rules === null,
          ingressIsolated: change.rules?.ingress.isolated ?? false,
          egressIsolated: change.rules?.egress.isolated ?? false,
        });
      }
      return Promise.resolve(changes.map((change) => ({ key: change.key })));
    },
  };
}
