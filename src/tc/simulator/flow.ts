/**
 * A probe's whole flow through TC: every packet of a TCP connection
 * (handshake and the answer), a UDP request and reply, an ICMP echo, or an
 * SCTP association. In software mode each packet goes through the sender's
 * representor ingress hook and the receiver's representor egress hook
 * (whichever of them is programmed; a plain address on the bridge has none),
 * as in the kernel VM. In hardware mode it goes through a switchdev
 * e-switch as an offload profile models it (`hardware.ts`). The flow is
 * allowed when every packet arrives, which is what the kernel harness's
 * probes observe.
 */
import type { TcFilter } from "../model.ts";
import { MLX5_PROFILE, type OffloadProfile } from "../offload/profile.ts";
import { Conntrack } from "./conntrack.ts";
import type { CtFlag } from "./flower.ts";
import { hardwarePacket } from "./hardware.ts";
import { runHook, type TraceStep } from "./hook.ts";
import { type Packet, reversed, type Tpid } from "./packet.ts";

/** Where packets are forwarded: by the kernel (the VM), or by a NIC's e-switch. */
export const SIMULATION_MODES = ["software", "hardware"] as const;

/** One of {@link SIMULATION_MODES}. */
export type SimulationMode = typeof SIMULATION_MODES[number];

/** How to simulate. */
export interface SimulationOptions {
  /** Default `software`. */
  mode?: SimulationMode;
  /** The NIC hardware mode models; default {@link MLX5_PROFILE}. */
  profile?: OffloadProfile;
}

/** One end of a flow: its address, and its representor's filters when it has a program. */
export interface FlowEnd {
  address: string;
  /** How reports name this end (e.g. `telco/upf-1 net1`); default: the address. */
  label?: string;
  filters?: readonly TcFilter[];
}

/** A filter a packet met, and on which end's representor. */
export interface FlowStep extends TraceStep {
  /** The end whose representor carries the filter ({@link FlowEnd.label}). */
  end: string;
}

/** What a probe sends. */
export interface FlowSpec {
  protocol: "TCP" | "UDP" | "SCTP" | "ICMP";
  port?: number;
  family: 4 | 6;
  /** VLAN tags on the wire, outermost first. */
  tags?: Tpid[];
  /** The outer tag's VLAN id. */
  vlanId?: number;
  /**
   * The sender's port (and ICMP echo id); default 40000. Flows that share a
   * conntrack need their own, as separate sockets have.
   */
  sport?: number;
}

/** One packet of the flow and what became of it. */
export interface PacketResult {
  /** e.g. `SYN`, `SYN-ACK`, `echo reply`. */
  name: string;
  /** `forward`: from the sender; `reply`: from the receiver. */
  direction: "forward" | "reply";
  verdict: "pass" | "drop";
  steps: FlowStep[];
  /** Hardware mode: true when the NIC decided it, false when it went to software. */
  inHardware?: boolean;
}

/** The flow's fate: allowed when every packet passed; the packets up to the first drop. */
export interface FlowResult {
  verdict: "allow" | "deny";
  packets: PacketResult[];
}

/** The packets of a probe, in order, with their direction. */
function packetsOf(
  from: string,
  to: string,
  spec: FlowSpec,
): [string, "forward" | "reply", Packet][] {
  const ethType = spec.family === 6 ? "ipv6" : "ip";
  const base = { tags: spec.tags ?? [], vlanId: spec.vlanId, ethType, src: from, dst: to } as const;
  if (spec.protocol === "ICMP") {
    const l4 = spec.family === 6 ? "icmpv6" : "icmp";
    const request: Packet = {
      ...base,
      l4,
      icmpType: spec.family === 6 ? 128 : 8,
      icmpId: spec.sport ?? 40000,
    };
    return [
      ["echo request", "forward", request],
      ["echo reply", "reply", reversed(request, { icmpType: spec.family === 6 ? 129 : 0 })],
    ];
  }
  const ports = { sport: spec.sport ?? 40000, dport: spec.port ?? 0 };
  if (spec.protocol === "UDP") {
    const request: Packet = { ...base, ...ports, l4: "udp" };
    return [["request", "forward", request], ["reply", "reply", reversed(request)]];
  }
  if (spec.protocol === "SCTP") {
    const init: Packet = { ...base, ...ports, l4: "sctp", sctpChunk: "INIT" };
    return [
      ["INIT", "forward", init],
      ["INIT-ACK", "reply", reversed(init, { sctpChunk: "INIT_ACK" })],
      ["COOKIE-ECHO", "forward", { ...init, sctpChunk: "COOKIE_ECHO" }],
      ["COOKIE-ACK", "reply", reversed(init, { sctpChunk: "COOKIE_ACK" })],
      ["answer", "reply", reversed(init, { sctpChunk: "DATA" })],
    ];
  }
  const syn: Packet = { ...base, ...ports, l4: "tcp", tcp: { syn: true } };
  return [
    ["SYN", "forward", syn],
    ["SYN-ACK", "reply", reversed(syn, { tcp: { syn: true, ack: true } })],
    ["ACK", "forward", { ...syn, tcp: { ack: true } }],
    ["answer", "reply", reversed(syn, { tcp: { ack: true } })],
    ["ACK of the answer", "forward", { ...syn, tcp: { ack: true } }],
  ];
}

/** One packet through the sender's ingress and the receiver's egress hook, in software. */
function softwarePacket(
  sender: FlowEnd,
  receiver: FlowEnd,
  packet: Packet,
  conntrack: Conntrack,
): Omit<PacketResult, "name" | "direction"> {
  const steps: FlowStep[] = [];
  let verdict: "pass" | "drop" = "pass";
  let ct: ReadonlySet<CtFlag> = new Set();
  for (const [end, hook] of [[sender, "ingress"], [receiver, "egress"]] as const) {
    if (!end.filters || verdict === "drop") continue;
    const result = runHook(end.filters, hook, packet, conntrack, ct);
    for (const step of result.trace) steps.push({ ...step, end: end.label ?? end.address });
    verdict = result.verdict;
    ct = new Set(result.trace.at(-1)?.ct ?? ct);
  }
  return { verdict, steps };
}

/**
 * Simulates a probe from `from` to `to`; `conntrack` carries state across
 * flows (in hardware mode, the hardware flow table too).
 */
export function simulateFlow(
  from: FlowEnd,
  to: FlowEnd,
  spec: FlowSpec,
  conntrack: Conntrack = new Conntrack(),
  options: SimulationOptions = {},
): FlowResult {
  const profile = options.profile ?? MLX5_PROFILE;
  const packets: PacketResult[] = [];
  for (const [name, direction, packet] of packetsOf(from.address, to.address, spec)) {
    const [sender, receiver] = direction === "forward" ? [from, to] : [to, from];
    const result = options.mode === "hardware"
      ? hardwarePacket(sender, receiver, packet, conntrack, profile)
      : softwarePacket(sender, receiver, packet, conntrack);
    packets.push({ name, direction, ...result });
    if (result.verdict === "drop") return { verdict: "deny", packets };
  }
  return { verdict: "allow", packets };
}
