/**
 * A conntrack model, one table per zone, good for the flows the probes send:
 * the TCP handshake and data both ways (Linux's state table for SYN, SYN-ACK
 * and ACK, with loose pickup of a mid-stream ACK), UDP request and reply,
 * ICMP and ICMPv6 echo, SCTP INIT and INIT-ACK, ICMP errors related to a
 * tracked connection, and invalid TCP. An entry outlives its packet only when
 * a `ct commit` confirmed it, as with act_ct. Each entry also carries
 * conntrack's ASSURED bit and whether act_ct handed it to the zone's flow
 * table (what a NIC's hardware conntrack holds): see `flowtable.ts`.
 */
import type { CtFlag } from "./flower.ts";
import type { L4, Packet } from "./packet.ts";

/** The TCP states the model tells apart. */
export type TcpState = "SYN_SENT" | "SYN_RECV" | "ESTABLISHED" | "CLOSING";

interface Entry {
  /** The original direction's tuple key. */
  orig: string;
  l4: L4;
  seenReply: boolean;
  tcp?: TcpState;
  /**
   * Conntrack's ASSURED bit: TCP on a valid packet in ESTABLISHED after the
   * reply was seen (the handshake's last ACK, or the answer to a picked-up
   * connection); UDP on a packet after the reply (the kernel also waits 2 s,
   * which the model, having no clock, does not count).
   */
  assured: boolean;
  /** In the zone's flow table (offloaded), and in which directions. */
  offload?: "both" | "original";
}

/** A committed connection as seen by one of its packets. */
export interface Connection {
  l4: L4;
  tcp?: TcpState;
  assured: boolean;
  seenReply: boolean;
  /** The packet travels in the connection's reply direction. */
  reply: boolean;
  /** In the zone's flow table, and in which directions; absent: not offloaded. */
  offload?: "both" | "original";
}

const ECHO_REQUEST: Record<string, number> = { icmp: 8, icmpv6: 128 };
const ECHO_REPLY: Record<string, number> = { icmp: 0, icmpv6: 129 };
/** ICMP/ICMPv6 error types that carry the packet they refer to. */
const ERRORS: Record<string, number[]> = { icmp: [3, 11, 12], icmpv6: [1, 2, 3, 4] };

function tuple(packet: Packet): string {
  const isIcmp = packet.l4 === "icmp" || packet.l4 === "icmpv6";
  const sport = isIcmp ? packet.icmpId ?? 0 : packet.sport ?? 0;
  const dport = isIcmp ? packet.icmpId ?? 0 : packet.dport ?? 0;
  return `${packet.l4}|${packet.src}|${sport}|${packet.dst}|${dport}`;
}

function replyTuple(packet: Packet): string {
  const isIcmp = packet.l4 === "icmp" || packet.l4 === "icmpv6";
  const sport = isIcmp ? packet.icmpId ?? 0 : packet.sport ?? 0;
  const dport = isIcmp ? packet.icmpId ?? 0 : packet.dport ?? 0;
  return `${packet.l4}|${packet.dst}|${dport}|${packet.src}|${sport}`;
}

/** The flags a packet gets from a `ct` action in one zone. */
export type CtResult = Set<CtFlag>;

/** The conntrack tables of all zones. */
export class Conntrack {
  readonly #zones = new Map<number, Map<string, Entry>>();

  #table(zone: number): Map<string, Entry> {
    let table = this.#zones.get(zone);
    if (!table) this.#zones.set(zone, table = new Map());
    return table;
  }

  /** Entries (connections) committed in a zone. */
  size(zone: number): number {
    return new Set(this.#zones.get(zone)?.values()).size;
  }

  /** The committed connection `packet` belongs to in `zone`, or null; changes nothing. */
  connection(zone: number, packet: Packet): Connection | null {
    if (packet.ethType === "arp" || !packet.l4 || packet.inner) return null;
    const key = tuple(packet);
    const entry = this.#zones.get(zone)?.get(key);
    if (!entry) return null;
    const { l4, tcp, assured, seenReply, offload } = entry;
    return { l4, tcp, assured, seenReply, reply: entry.orig !== key, offload };
  }

  /** Puts the connection of `packet` in `zone`'s flow table, or takes it out (`undefined`). */
  setOffload(zone: number, packet: Packet, offload: "both" | "original" | undefined): void {
    const entry = packet.l4 ? this.#zones.get(zone)?.get(tuple(packet)) : undefined;
    if (entry) entry.offload = offload;
  }

  /** Runs the packet through `zone`'s table; commits its connection when `commit`. */
  process(zone: number, packet: Packet, commit: boolean): CtResult {
    const table = this.#table(zone);
    if (packet.ethType === "arp" || !packet.l4) return new Set(["trk", "inv"]);
    if (packet.inner && ERRORS[packet.l4]?.includes(packet.icmpType ?? -1)) {
      // An error about a packet of a tracked connection: related to it.
      const about = table.get(tuple(packet.inner)) ?? table.get(replyTuple(packet.inner));
      return new Set(about ? ["trk", "rel"] : ["trk", "inv"]);
    }
    const key = tuple(packet);
    const found = table.get(key);
    const isReply = found !== undefined && found.orig !== key;
    let entry = found;
    let flags: CtFlag[];
    if (!entry) {
      const start = this.#start(packet);
      if (!start) return new Set(["trk", "inv"]);
      entry = start.entry;
      flags = start.flags;
    } else {
      const next = this.#advance(entry, packet, isReply);
      if (!next) return new Set(["trk", "inv"]);
      flags = next;
    }
    if (commit && !found) {
      table.set(entry.orig, entry);
      table.set(replyTuple(packet), entry);
    }
    return new Set(["trk", ...flags]);
  }

  /** A new connection's first packet, or null when it cannot start one. */
  #start(packet: Packet): { entry: Entry; flags: CtFlag[] } | null {
    const entry: Entry = { orig: tuple(packet), l4: packet.l4!, seenReply: false, assured: false };
    switch (packet.l4) {
      case "tcp": {
        const { syn, ack, rst } = packet.tcp ?? {};
        if (rst) return null;
        if (syn && !ack) entry.tcp = "SYN_SENT";
        else if (syn && ack) return null; // SYN-ACK with no connection: invalid.
        else entry.tcp = "ESTABLISHED"; // Loose pickup of a mid-stream packet.
        return { entry, flags: ["new"] };
      }
      case "icmp":
      case "icmpv6":
        return packet.icmpType === ECHO_REQUEST[packet.l4] ? { entry, flags: ["new"] } : null;
      case "sctp":
        return packet.sctpChunk === "INIT" ? { entry, flags: ["new"] } : null;
      default:
        return { entry, flags: ["new"] };
    }
  }

  /** A later packet of a tracked connection: its flags, or null when invalid. */
  #advance(entry: Entry, packet: Packet, isReply: boolean): CtFlag[] | null {
    // The reply bit as it was before this packet: conntrack sets it after the protocol handler.
    const hadReply = entry.seenReply;
    if (entry.l4 === "tcp") {
      const { syn, ack, fin, rst } = packet.tcp ?? {};
      const old = entry.tcp;
      switch (entry.tcp) {
        case "SYN_SENT":
          if (isReply && syn && ack) entry.tcp = "SYN_RECV";
          else if (!isReply && syn && !ack) return ["new"]; // A retransmitted SYN.
          else return null; // e.g. the first ACK when the SYN-ACK was never seen here.
          break;
        case "SYN_RECV":
          if (!isReply && ack && !syn) entry.tcp = "ESTABLISHED";
          else if (!(isReply && syn && ack)) return null;
          break;
        default:
          if (syn) return null;
          if (fin || rst) entry.tcp = "CLOSING";
      }
      const stays = (old === "SYN_RECV" || old === "ESTABLISHED") && entry.tcp === "ESTABLISHED";
      if (hadReply && stays) entry.assured = true;
    }
    if (entry.l4 === "udp" && hadReply) entry.assured = true;
    if (entry.l4 === "icmp" || entry.l4 === "icmpv6") {
      const expected = isReply ? ECHO_REPLY[entry.l4] : ECHO_REQUEST[entry.l4];
      if (packet.icmpType !== expected) return null;
    }
    if (isReply) entry.seenReply = true;
    if (isReply) return ["est", "rpl"];
    return entry.seenReply ? ["est"] : ["new"];
  }
}
