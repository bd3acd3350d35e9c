/**
 * Flower matching as the kernel does it for the keys the generator writes:
 * the filter's protocol against the frame's outer ethertype, the outer VLAN
 * id, VLAN and CVLAN ethertypes, address prefixes, IP protocol, destination port (single or
 * range), ICMP type and conntrack state flags. An absent key is a wildcard; a
 * key the packet does not carry never matches.
 */
import { parseCidr, parseIp } from "../../net/ip.ts";
import type { EthProtocol, FlowerMatch } from "../model.ts";
import type { Packet } from "./packet.ts";

/** Conntrack state flags as flower's `ct_state` names them. */
export type CtFlag = "trk" | "est" | "new" | "rel" | "inv" | "rpl";

/** The flags a packet carries after a `ct` action (empty before any). */
export type CtState = ReadonlySet<CtFlag>;

/** The frame's outermost ethertype, which a filter's protocol is compared with. */
function outerType(packet: Packet): EthProtocol {
  return packet.tags[0] ?? packet.ethType;
}

/** The ethertype after the first tag (for `vlan_ethtype`), or null when untagged. */
function afterFirstTag(packet: Packet): string | null {
  if (packet.tags.length === 0) return null;
  return packet.tags.length > 1 ? "802.1q" : packet.ethType;
}

/** The ethertype after the second tag (for `cvlan_ethtype`), or null. */
function afterSecondTag(packet: Packet): string | null {
  return packet.tags.length >= 2 ? packet.ethType : null;
}

function inPrefix(address: string | undefined, prefix: string): boolean {
  const cidr = parseCidr(prefix);
  const ip = address === undefined ? null : parseIp(address);
  if (!cidr || !ip || ip.family !== cidr.family) return false;
  const bits = BigInt((cidr.family === 4 ? 32 : 128) - cidr.prefix);
  return (ip.value >> bits) === (cidr.base >> bits);
}

/** Parses `+trk+est-rpl` into required-set and required-unset flags. */
export function parseCtState(text: string): { set: CtFlag[]; unset: CtFlag[] } {
  const set: CtFlag[] = [];
  const unset: CtFlag[] = [];
  for (const [, sign, name] of text.matchAll(/([+-])(trk|est|new|rel|inv|rpl)/g)) {
    (sign === "+" ? set : unset).push(name as CtFlag);
  }
  return { set, unset };
}

/** Whether a filter of `protocol` with `match` takes the packet, given its conntrack state. */
export function flowerMatches(
  protocol: EthProtocol,
  match: FlowerMatch,
  packet: Packet,
  ct: CtState,
): boolean {
  if (protocol !== "all" && protocol !== outerType(packet)) return false;
  if (match.vlanId !== undefined && (packet.tags.length === 0 || packet.vlanId !== match.vlanId)) {
    return false;
  }
  if (match.vlanEthType && match.vlanEthType !== afterFirstTag(packet)) return false;
  if (match.cvlanEthType && match.cvlanEthType !== afterSecondTag(packet)) return false;
  if (match.srcIp && !inPrefix(packet.src, match.srcIp)) return false;
  if (match.dstIp && !inPrefix(packet.dst, match.dstIp)) return false;
  if (match.ipProto && match.ipProto !== packet.l4) return false;
  if (match.dstPort) {
    const ported = packet.l4 === "tcp" || packet.l4 === "udp" || packet.l4 === "sctp";
    if (!ported || packet.dport === undefined) return false;
    if (packet.dport < match.dstPort.first || packet.dport > match.dstPort.last) return false;
  }
  if (match.icmpType !== undefined && match.icmpType !== packet.icmpType) return false;
  if (match.ctState) {
    const { set, unset } = parseCtState(match.ctState);
    if (!set.every((flag) => ct.has(flag)) || unset.some((flag) => ct.has(flag))) return false;
  }
  return true;
}
