/**
 * The rule model: what the agent enforces on one pod interface, per
 * direction. Produced by the policy engine (./engine.ts), consumed by the
 * TC generator, `render`, and the agent. Plain data, deterministic order.
 */
import type { ObjectError, Protocol } from "../cluster/types.ts";

/** An inclusive port range; `{first: 0, last: 65535}` means every port. */
export interface PortRange {
  first: number;
  last: number;
}

/** Every port of a protocol. */
export const ALL_PORTS: PortRange = { first: 0, last: 65535 };

/**
 * Traffic allowed to (egress) or from (ingress) a set of addresses:
 * every address in `cidrs` × every range in `ports` under `protocol`.
 * Protocol `any` allows every protocol and port (ICMP included); its
 * `ports` is empty.
 */
export interface AllowEntry {
  /** Canonical prefixes, merged, IPv4 first, in address order. */
  cidrs: string[];
  protocol: Protocol | "any";
  /** Sorted, merged, non-adjacent ranges. */
  ports: PortRange[];
}

/** One direction's verdict for an interface. */
export interface DirectionRules {
  /** True when some applicable policy isolates this direction; otherwise all traffic passes. */
  isolated: boolean;
  /** The isolating policies (`namespace/name`), sorted, to explain a verdict. */
  policies: string[];
  /** What is allowed when isolated (empty when open, or for a default deny). */
  allow: AllowEntry[];
}

/** The rules for one pod interface on a policed secondary network. */
export interface InterfaceRules {
  pod: { namespace: string; name: string; uid: string };
  /** `namespace/name` of the NetworkAttachmentDefinition. */
  network: string;
  pluginType: string;
  /** The network's VLAN on the wire (its config's `vlan`); absent: untagged. */
  vlan?: number;
  /** True when pods of the network may send 802.1Q-tagged frames (config `trunk`). */
  trunk?: boolean;
  /** The interface name inside the pod (e.g. `net1`). */
  interfaceName: string;
  /** The VF's PCI address; the representor is found from it. */
  pciAddress: string;
  /** The pod's own addresses on this network. */
  ips: string[];
  /** Traffic the pod receives. */
  ingress: DirectionRules;
  /** Traffic the pod sends. */
  egress: DirectionRules;
  /**
   * Set when the agent cannot tell which rules apply to this VF (claimed by
   * two pods or networks, or on several possible networks): enforced as
   * deny-all both ways. Says why.
   */
  denyAll?: string;
  /**
   * Set when the interface's TC program would exceed the filter budget
   * (src/tc/limits.ts): it is then enforced as deny-all both ways.
   */
  overLimit?: { filters: number; max: number };
}

/** The engine's output for a node: its interfaces' rules and the problems seen. */
export interface NodeRules {
  node: string;
  interfaces: InterfaceRules[];
  errors: ObjectError[];
}

/** A stable identifier for an interface: `namespace/pod/network/interface`. */
export function interfaceKey(rules: Pick<InterfaceRules, "pod" | "network" | "interfaceName">) {
  return `${rules.pod.namespace}/${rules.pod.name}/${rules.network}/${rules.interfaceName}`;
}
