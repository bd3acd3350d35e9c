/**
 * The hardware side of conntrack: act_ct's per-zone flow table, which a NIC
 * mirrors in its tables. A software `ct` action offers the packet's
 * connection to it (act_ct's `tcf_ct_flow_table_process_conn`), and a `ct`
 * action in hardware hits only connections in it. The rules come from the
 * offload profile (`../offload/profile.ts`); the connections' state from the
 * conntrack model.
 */
import type { OffloadProfile } from "../offload/profile.ts";
import type { Conntrack, CtResult } from "./conntrack.ts";
import type { CtFlag } from "./flower.ts";
import type { Packet } from "./packet.ts";

function tearsDown(packet: Packet, profile: OffloadProfile): boolean {
  return packet.l4 === "tcp" && profile.conntrack.teardown.value.some((f) => packet.tcp?.[f]);
}

/**
 * After a software `ct` action in `zone` gave `flags`: puts the packet's
 * connection in the zone's flow table when the profile's rule for its
 * protocol holds, or takes it out on a FIN or RST.
 */
export function offerToFlowTable(
  conntrack: Conntrack,
  zone: number,
  packet: Packet,
  flags: CtResult,
  profile: OffloadProfile,
): void {
  const connection = conntrack.connection(zone, packet);
  if (!connection) return; // Not confirmed: act_ct offers only committed connections.
  if (tearsDown(packet, profile)) return conntrack.setOffload(zone, packet, undefined);
  const rule = profile.conntrack.offload.value[connection.l4];
  if (connection.offload || !rule) return;
  if (rule.established && !flags.has("est")) return;
  if (rule.assured && !connection.assured) return;
  if (rule.tcpEstablished && connection.tcp !== "ESTABLISHED") return;
  conntrack.setOffload(zone, packet, "both");
}

/**
 * A `ct` action in hardware: the flags a hit gives, or null when the packet's
 * connection is not in `zone`'s flow table (a miss: software takes over).
 */
export function hardwareCt(
  conntrack: Conntrack,
  zone: number,
  packet: Packet,
  profile: OffloadProfile,
): Set<CtFlag> | null {
  const connection = conntrack.connection(zone, packet);
  if (!connection?.offload || tearsDown(packet, profile)) return null;
  if (connection.reply && connection.offload !== "both") return null;
  const { flags, replyFlag } = profile.conntrack.hit.value;
  return new Set(connection.reply ? [...flags, replyFlag] : flags);
}
