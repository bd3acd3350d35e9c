/**
 * Counts the TCP packets between two pods at both ends of their path: on
 * each pod's own interface (inside its namespace, away from every device
 * the agent programs), what leaves it for the other and what arrives from
 * it. Once the traffic is over, a difference is a packet lost on the way:
 * the rules on the representor and the uplink are the only things between
 * the two that drop anything. An attempt that timed out with nothing lost
 * was slowed by the emulated machine, not stopped by a rule.
 */
import assert from "node:assert/strict";
import { inNetns } from "../scenario/shell.ts";
import type { BuiltInterface } from "../scenario/topology.ts";

/** Packets one way: counted where they left and where they arrived. */
export interface OneWay {
  sent: number;
  arrived: number;
}

/** Packets between two pods, each way. */
export interface PathCount {
  there: OneWay;
  back: OneWay;
}

/** Counting in place between two pods. */
export interface Ledger {
  /** The counts so far (read once the traffic is over and has settled). */
  read(): Promise<PathCount>;
}

function address(iface: BuiltInterface): string {
  const ip = iface.ips[0];
  if (!ip) throw new Error(`${iface.pod.name} has no address to count packets by`);
  return ip;
}

/** Adds a counting filter on `iface`'s `hook` for TCP packets from `src` to `dst`. */
async function count(iface: BuiltInterface, hook: "ingress" | "egress", src: string, dst: string) {
  const args = ["tc", "filter", "add", "dev", iface.interfaceName, hook, "prio", "1"];
  await inNetns(iface.netns, [
    ...args,
    "protocol",
    "ip",
    "flower",
    "ip_proto",
    "tcp",
    "src_ip",
    src,
    "dst_ip",
    dst,
    "action",
    "pass",
  ]);
}

interface ShownFilter {
  options?: { actions?: { stats?: { packets?: number } }[] };
}

/** The packets counted on `iface`'s `hook` (one counting filter there). */
async function counted(iface: BuiltInterface, hook: "ingress" | "egress"): Promise<number> {
  const text = await inNetns(iface.netns, [
    "tc",
    "-s",
    "-j",
    "filter",
    "show",
    "dev",
    iface.interfaceName,
    hook,
  ]);
  const shown = JSON.parse(text) as ShownFilter[];
  const packets = shown.flatMap((f) => f.options?.actions ?? []).map((a) => a.stats?.packets);
  if (packets.length !== 1 || packets[0] === undefined) {
    throw new Error(`no counting filter on ${iface.interfaceName} ${hook}: ${text}`);
  }
  return packets[0];
}

/** Starts counting the TCP packets between `a` and `b` at both ends. */
export async function countPackets(a: BuiltInterface, b: BuiltInterface): Promise<Ledger> {
  const [ipA, ipB] = [address(a), address(b)];
  for (const iface of [a, b]) {
    await inNetns(iface.netns, ["tc", "qdisc", "add", "dev", iface.interfaceName, "clsact"]);
  }
  await count(a, "egress", ipA, ipB);
  await count(b, "ingress", ipA, ipB);
  await count(b, "egress", ipB, ipA);
  await count(a, "ingress", ipB, ipA);
  return {
    async read() {
      // Arrivals first: a packet still on its way can only look lost, never make up for one.
      const there = { arrived: await counted(b, "ingress"), sent: await counted(a, "egress") };
      const back = { arrived: await counted(a, "ingress"), sent: await counted(b, "egress") };
      return { there, back };
    },
  };
}

/** Packets lost on the way, both ways together. */
export function lost(count: PathCount): number {
  return count.there.sent - count.there.arrived + count.back.sent - count.back.arrived;
}

/** One line for the log. */
export function describeCount(count: PathCount): string {
  return `packets there ${count.there.sent} sent, ${count.there.arrived} arrived; ` +
    `back ${count.back.sent} sent, ${count.back.arrived} arrived`;
}

/**
 * Judges the always-allowed destination: no packet to or from it was lost
 * (the counts are read once the traffic settled), and it was counted at all
 * (at least two packets from the sender per attempt). `timedOut` attempts
 * to it that lost nothing are logged, not failed: no rule stopped them.
 */
export function assertNothingLost(count: PathCount, attempts: number, timedOut: number): void {
  console.log(`  ${describeCount(count)}`);
  if (timedOut > 0 && lost(count) === 0) {
    console.log(`  ${timedOut} allowed attempts timed out with no packet lost: the guest stalled`);
  }
  assert.ok(count.there.sent >= 2 * attempts, `${attempts} attempts, but ${describeCount(count)}`);
  assert.equal(
    lost(count),
    0,
    `a packet of an allowed connection was dropped: ${describeCount(count)}`,
  );
}
