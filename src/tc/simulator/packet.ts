/**
 * Packets as the TC simulator sees them: the headers that flower keys and
 * conntrack read, and nothing else.
 */

/** An outer tag's TPID: 802.1Q (0x8100) or 802.1ad (0x88a8). */
export type Tpid = "802.1q" | "802.1ad";

/** L4 protocols the simulator models. */
export type L4 = "tcp" | "udp" | "sctp" | "icmp" | "icmpv6";

/** TCP flags that drive conntrack's state machine. */
export interface TcpFlags {
  syn?: boolean;
  ack?: boolean;
  fin?: boolean;
  rst?: boolean;
}

/** The headers of one packet. */
export interface Packet {
  /** VLAN tags, outermost first (empty: untagged). */
  tags: Tpid[];
  /** The outer tag's VLAN id, when the frame is tagged and the id matters. */
  vlanId?: number;
  /** The ethertype after the tags. */
  ethType: "ip" | "ipv6" | "arp";
  src?: string;
  dst?: string;
  l4?: L4;
  sport?: number;
  dport?: number;
  /** ICMP or ICMPv6 type. */
  icmpType?: number;
  /** ICMP echo identifier, which conntrack uses as the "port". */
  icmpId?: number;
  tcp?: TcpFlags;
  /** SCTP: the first chunk's type. */
  sctpChunk?: "INIT" | "INIT_ACK" | "COOKIE_ECHO" | "COOKIE_ACK" | "DATA" | "ABORT";
  /**
   * ICMP errors: the packet whose delivery failed (as it was sent), which
   * conntrack relates to that packet's connection.
   */
  inner?: Packet;
}

/** The reply direction of a packet: addresses and ports swapped. */
export function reversed(packet: Packet, changes: Partial<Packet> = {}): Packet {
  return {
    ...packet,
    src: packet.dst,
    dst: packet.src,
    sport: packet.dport,
    dport: packet.sport,
    ...changes,
  };
}
