/**
 * Why one packet is allowed or dropped, at the policy level: cluster state
 * and a question (ends, network, protocol, port) in; out, for each direction
 * the agent checks (the sender's egress, the receiver's ingress, where the
 * sender or receiver is a policed pod interface), the policies that isolate
 * it and every rule — down to the peer and port entry — that allows the
 * packet. Uses the engine's own applicability (./engine.ts), peer resolution
 * (./cluster_index.ts) and grants (./grants.ts), so its answer is the rule
 * model's. Pure.
 */
import type {
  ClusterState,
  Direction,
  MultiNetworkPolicy,
  PolicyRule,
  Protocol,
} from "../cluster/types.ts";
import { parseIp, setHas } from "../net/ip.ts";
import type { LocalInterface } from "../interfaces/local.ts";
import { ClusterIndex, policyId } from "./cluster_index.ts";
import { applicablePolicies, type EngineOptions, isolatingPolicies } from "./engine.ts";
import {
  type EndsQuestion,
  ExplainInputError,
  type ResolvedEnd,
  resolvePacketEnds,
} from "./explain_ends.ts";
import { grantsOf } from "./grants.ts";
import type { Grant } from "./normalise.ts";

/** A packet's protocol: a policy's, or ICMP (allowed only by rules without ports). */
export type PacketProtocol = Protocol | "ICMP";

/** Every {@link PacketProtocol}, for the command line. */
export const PACKET_PROTOCOLS: readonly PacketProtocol[] = ["TCP", "UDP", "SCTP", "ICMP"];

/** The packet asked about: its ends, network and family, protocol and destination port. */
export interface PacketQuestion extends EndsQuestion {
  protocol: PacketProtocol;
  /** The destination port: required for TCP, UDP and SCTP, absent for ICMP. */
  port?: number;
}

/** One end of the packet, as reported. */
export interface EndReport {
  /** `namespace/name`, when the end is a pod. */
  pod?: string;
  /** The address, when the end is one. */
  address?: string;
  /** The pod's interface on the network. */
  interface?: string;
  /** The pod's node, whose agent polices its interface. */
  node?: string;
  /** The end's address on the network. */
  ip: string;
  /** Whether the agent on the pod's node polices this interface. */
  policed: boolean;
  /** Why the end is not policed (for an address, whose address it is when a pod's). */
  reason?: string;
}

/**
 * One rule entry that allows the packet: `spec.<direction>[rule]`, its peer
 * `from`/`to`[peer] (null: the rule has no peers, so every peer) and its
 * `ports`[port] (null: the rule has no ports, so every protocol and port).
 */
export interface RuleMatch {
  policy: string;
  rule: number;
  peer: number | null;
  port: number | null;
}

/** The verdict of one direction the agent checks, and why. */
export interface DirectionReport {
  direction: Direction;
  pod: string;
  interface: string;
  node: string;
  verdict: "allow" | "deny";
  /** Whether some applicable policy isolates this direction. */
  isolated: boolean;
  /** The isolating policies (`namespace/name`), sorted. */
  isolatedBy: string[];
  /** Every rule entry that allows the packet; empty when isolated and denied. */
  allowedBy: RuleMatch[];
  /** Set when the agent cannot tell which rules apply to the VF: deny-all both ways, and why. */
  denyAll?: string;
}

/** The answer: the packet's fate end to end (deny if any direction denies) and each direction's. */
export interface Explanation {
  verdict: "allow" | "deny";
  protocol: PacketProtocol;
  port?: number;
  network: string;
  from: EndReport;
  to: EndReport;
  directions: DirectionReport[];
}

const byId = (a: MultiNetworkPolicy, b: MultiNetworkPolicy) =>
  policyId(a) < policyId(b) ? -1 : policyId(a) > policyId(b) ? 1 : 0;

/** Whether a grant covers the packet from or to `peer`. */
function grantAllows(grant: Grant, peer: ReturnType<typeof parseIp>, packet: PacketQuestion) {
  if (!peer || !setHas(grant.addresses, peer)) return false;
  if (grant.protocol === "any") return true;
  const port = packet.port;
  return grant.protocol === packet.protocol && port !== undefined &&
    grant.ports.some((range) => range.first <= port && port <= range.last);
}

/** The entries of one rule that allow the packet: each peer × each port entry, alone. */
function ruleMatches(
  index: ClusterIndex,
  policy: MultiNetworkPolicy,
  direction: Direction,
  ruleIndex: number,
  iface: LocalInterface,
  peer: ReturnType<typeof parseIp>,
  packet: PacketQuestion,
): RuleMatch[] {
  const rule = policy[direction][ruleIndex];
  if (rule.invalid) return [];
  const peers = rule.peers.length === 0 ? [null] : rule.peers.map((_, i) => i);
  const ports = rule.ports.length === 0 ? [null] : rule.ports.map((_, i) => i);
  const out: RuleMatch[] = [];
  for (const p of peers) {
    for (const q of ports) {
      const reduced: PolicyRule = {
        peers: p === null ? [] : [rule.peers[p]],
        ports: q === null ? [] : [rule.ports[q]],
      };
      const grants = grantsOf(index, policy, direction, reduced, iface.network, iface.pod);
      if (grants.some((grant) => grantAllows(grant, peer, packet))) {
        out.push({ policy: policyId(policy), rule: ruleIndex, peer: p, port: q });
      }
    }
  }
  return out;
}

/** One direction of a policed interface, for a packet from or to `peerIp`. */
function checkDirection(
  index: ClusterIndex,
  iface: LocalInterface,
  direction: Direction,
  peerIp: string,
  packet: PacketQuestion,
): DirectionReport {
  const base = {
    direction,
    pod: `${iface.pod.namespace}/${iface.pod.name}`,
    interface: iface.interfaceName,
    node: iface.pod.nodeName,
  };
  if (iface.denyAll !== undefined) {
    return {
      ...base,
      verdict: "deny",
      isolated: true,
      isolatedBy: [],
      allowedBy: [],
      denyAll: iface.denyAll,
    };
  }
  const applicable = applicablePolicies(index, iface.pod, iface.network);
  const isolating = isolatingPolicies(applicable, direction).sort(byId);
  if (isolating.length === 0) {
    return { ...base, verdict: "allow", isolated: false, isolatedBy: [], allowedBy: [] };
  }
  const peer = parseIp(peerIp);
  const allowedBy = isolating.flatMap((policy) =>
    policy[direction].flatMap((_, i) =>
      ruleMatches(index, policy, direction, i, iface, peer, packet)
    )
  );
  return {
    ...base,
    verdict: allowedBy.length > 0 ? "allow" : "deny",
    isolated: true,
    isolatedBy: isolating.map(policyId),
    allowedBy,
  };
}

function endReport(end: ResolvedEnd): EndReport {
  if (!end.pod) {
    const reason = end.owner === undefined
      ? "an address"
      : `the address of ${end.owner}: name the pod to check its side`;
    return { address: end.name, ip: end.ip, policed: false, reason };
  }
  return {
    pod: end.name,
    interface: end.status?.interfaceName ?? "",
    node: end.pod.nodeName,
    ip: end.ip,
    policed: end.policed !== undefined,
    ...(end.unpoliced !== undefined ? { reason: end.unpoliced } : {}),
  };
}

/**
 * Explains a new packet (a connection's first, an echo request): each
 * direction the agent checks, its verdict, the isolating policies and every
 * rule entry that allows it. Throws {@link ExplainInputError} when the
 * question cannot be answered as asked (unknown pod, no address, ambiguous
 * network, missing or superfluous port).
 */
export function explainPacket(
  state: ClusterState,
  question: PacketQuestion,
  options: Pick<EngineOptions, "networkPlugins">,
): Explanation {
  if (question.protocol === "ICMP" && question.port !== undefined) {
    throw new ExplainInputError("ICMP has no port");
  }
  if (question.protocol !== "ICMP" && question.port === undefined) {
    throw new ExplainInputError(`${question.protocol} needs a port`);
  }
  const ends = resolvePacketEnds(state, question, options.networkPlugins);
  const index = new ClusterIndex(state);
  const directions: DirectionReport[] = [];
  if (ends.from.policed) {
    directions.push(checkDirection(index, ends.from.policed, "egress", ends.to.ip, question));
  }
  if (ends.to.policed) {
    directions.push(checkDirection(index, ends.to.policed, "ingress", ends.from.ip, question));
  }
  return {
    verdict: directions.some((d) => d.verdict === "deny") ? "deny" : "allow",
    protocol: question.protocol,
    ...(question.port !== undefined ? { port: question.port } : {}),
    network: ends.network,
    from: endReport(ends.from),
    to: endReport(ends.to),
    directions,
  };
}
