/**
 * Splits a direction's allow list into disjoint address regions, each with
 * the exact union of ports allowed to it. Addresses are then matched in one
 * chain and ports in another, so an allow of I addresses on P ports costs
 * about I + P filters, and overlapping entries with different ports stay
 * exact (a packet never needs to "fall back" to another entry).
 */
import type { Protocol } from "../cluster/types.ts";
import { cidrRange, type Family, formatCidr, parseCidr, setToCidrs } from "../net/ip.ts";
import type { AllowEntry, PortRange } from "../policy/model.ts";
import { mergeRanges } from "../policy/normalise.ts";

/** The ports allowed to a region: every protocol, or ranges per protocol. */
export type PortSpec =
  | { any: true }
  | { any: false; ranges: Partial<Record<Protocol, PortRange[]>> };

/** Addresses (of one family) that share one port spec. */
export interface Region {
  cidrs: string[];
  ports: PortSpec;
  /** Text key of `ports`, equal for equal specs. */
  portsKey: string;
}

const PROTOCOLS: Protocol[] = ["TCP", "UDP", "SCTP"];
function portSpecOf(entries: AllowEntry[]): PortSpec {
  if (entries.some((entry) => entry.protocol === "any")) return { any: true };
  const ranges: Partial<Record<Protocol, PortRange[]>> = {};
  for (const protocol of PROTOCOLS) {
    const merged = mergeRanges(
      entries.filter((entry) => entry.protocol === protocol).flatMap((entry) => entry.ports),
    );
    if (merged.length > 0) ranges[protocol] = merged;
  }
  return { any: false, ranges };
}

/** A text key for a port spec. */
export function portSpecKey(spec: PortSpec): string {
  if (spec.any) return "any";
  return PROTOCOLS.filter((p) => spec.ranges[p])
    .map((p) => `${p}:${spec.ranges[p]!.map((r) => `${r.first}-${r.last}`).join(",")}`)
    .join(";");
}

/** Regions already computed, per allow list (never mutated once built) and family. */
const computed = new WeakMap<AllowEntry[], Map<Family, Region[]>>();

/**
 * Disjoint regions of one family covering exactly the union of the entries'
 * addresses. The result is shared by every caller with the same list: read it,
 * never change it.
 */
export function regionsFor(entries: AllowEntry[], family: Family): Region[] {
  let byFamily = computed.get(entries);
  if (!byFamily) computed.set(entries, byFamily = new Map());
  let regions = byFamily.get(family);
  if (!regions) byFamily.set(family, regions = computeRegions(entries, family));
  return regions;
}

function computeRegions(entries: AllowEntry[], family: Family): Region[] {
  // Boundary events in one array, sorted once: a Map keyed by BigInt would hash IPv6
  // addresses on their low 64 bits only, and addresses differing above them collide.
  const events: { at: bigint; delta: number }[] = [];
  entries.forEach((entry, index) => {
    for (const text of entry.cidrs) {
      const cidr = parseCidr(text);
      if (!cidr || cidr.family !== family) continue;
      const [start, end] = cidrRange(cidr);
      events.push({ at: start, delta: index + 1 }, { at: end + 1n, delta: -(index + 1) });
    }
  });
  events.sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
  const active = new Map<number, number>();
  const byKey = new Map<string, { entries: number[]; intervals: [bigint, bigint][] }>();
  let covering: number[] = [];
  let key = "";
  for (let i = 0; i < events.length; i++) {
    const point = events[i].at;
    let changed = false;
    for (; i < events.length && events[i].at === point; i++) {
      const { delta } = events[i];
      const index = Math.abs(delta) - 1;
      const count = (active.get(index) ?? 0) + Math.sign(delta);
      if (count === 0) active.delete(index);
      else active.set(index, count);
      changed = true;
    }
    i--;
    if (changed) {
      covering = [...active.keys()].sort((a, b) => a - b);
      key = covering.join(",");
    }
    if (active.size === 0 || i + 1 >= events.length) continue;
    const group = byKey.get(key) ?? { entries: covering, intervals: [] };
    const last = group.intervals[group.intervals.length - 1];
    const start = point;
    const end = events[i + 1].at - 1n;
    if (last && last[1] + 1n === start) last[1] = end;
    else group.intervals.push([start, end]);
    byKey.set(key, group);
  }
  const byPorts = new Map<string, Region>();
  for (const group of byKey.values()) {
    const ports = portSpecOf(group.entries.map((index) => entries[index]));
    const portsKey = portSpecKey(ports);
    const set = family === 4
      ? { v4: group.intervals.map(([s, e]) => [Number(s), Number(e)] as const), v6: [] }
      : { v4: [], v6: group.intervals };
    const cidrs = setToCidrs(set).map(formatCidr);
    const region = byPorts.get(portsKey);
    if (region) { for (const cidr of cidrs) region.cidrs.push(cidr); }
    else byPorts.set(portsKey, { cidrs, ports, portsKey });
  }
  return [...byPorts.values()].sort((a, b) => (a.portsKey < b.portsKey ? -1 : 1));
}
