/**
 * Canonical form of a direction's allow list: duplicates removed, address
 * sets merged, port ranges merged, traffic already allowed for every
 * protocol not repeated per protocol, and a deterministic order.
 */
import type { Protocol } from "../cluster/types.ts";
import {
  type AddressSet,
  difference,
  formatSet,
  isEmptySet,
  setsEqual,
  unionAll,
} from "../net/ip.ts";
import type { AllowEntry, PortRange } from "./model.ts";

/** One allowance before normalisation: addresses × ports under a protocol. */
export interface Grant {
  addresses: AddressSet;
  protocol: Protocol | "any";
  ports: PortRange[];
}

/** Sorts and merges overlapping or adjacent ranges. */
export function mergeRanges(ranges: PortRange[]): PortRange[] {
  const sorted = ranges.slice().sort((a, b) => a.first - b.first || a.last - b.last);
  const out: PortRange[] = [];
  for (const range of sorted) {
    const last = out[out.length - 1];
    if (last && range.first <= last.last + 1) last.last = Math.max(last.last, range.last);
    else out.push({ ...range });
  }
  return out;
}

const PROTOCOL_ORDER: Record<Grant["protocol"], number> = { any: 0, TCP: 1, UDP: 2, SCTP: 3 };

function rangesKey(ranges: PortRange[]): string {
  return ranges.map((r) => `${r.first}-${r.last}`).join(",");
}

/**
 * Remembers unions of address sets by the identity of their inputs, for one
 * render: interfaces whose policies share rules union the same sets again.
 * Sets are never mutated, so identity is enough.
 */
export class UnionMemo {
  #ids = new WeakMap<AddressSet, number>();
  #next = 0;
  #unions = new Map<string, AddressSet>();

  #id(set: AddressSet): number {
    let id = this.#ids.get(set);
    if (id === undefined) {
      id = this.#next++;
      this.#ids.set(set, id);
    }
    return id;
  }

  /** The union of `sets`, computed once per distinct input. */
  union(sets: AddressSet[]): AddressSet {
    if (sets.length === 1) return sets[0];
    const key = sets.map((set) => this.#id(set)).sort((a, b) => a - b).join(",");
    let result = this.#unions.get(key);
    if (!result) {
      result = unionAll(sets);
      this.#unions.set(key, result);
    }
    return result;
  }
}

/** Turns grants into the canonical allow list. */
export function normaliseGrants(grants: Grant[], memo = new UnionMemo()): AllowEntry[] {
  const anyAddresses = unionAll(grants.filter((g) => g.protocol === "any").map((g) => g.addresses));
  const byPorts = new Map<
    string,
    { protocol: Grant["protocol"]; ports: PortRange[]; sets: AddressSet[] }
  >();
  if (!isEmptySet(anyAddresses)) {
    byPorts.set("any|", { protocol: "any", ports: [], sets: [anyAddresses] });
  }
  for (const grant of grants) {
    if (grant.protocol === "any") continue;
    const addresses = difference(grant.addresses, anyAddresses);
    if (isEmptySet(addresses) || grant.ports.length === 0) continue;
    const ports = mergeRanges(grant.ports);
    const key = `${grant.protocol}|${rangesKey(ports)}`;
    const group = byPorts.get(key);
    if (group) group.sets.push(addresses);
    else byPorts.set(key, { protocol: grant.protocol, ports, sets: [addresses] });
  }
  const byAddresses = new Map<
    string,
    { protocol: Grant["protocol"]; ports: PortRange[][]; addresses: AddressSet }[]
  >();
  for (const group of byPorts.values()) {
    const addresses = memo.union(group.sets);
    const key = `${group.protocol}|${roughSetKey(addresses)}`;
    const bucket = byAddresses.get(key) ?? [];
    const existing = bucket.find((other) => setsEqual(other.addresses, addresses));
    // Port lists are merged once per address set below, not once per group (quadratic).
    if (existing) existing.ports.push(group.ports);
    else bucket.push({ protocol: group.protocol, ports: [group.ports], addresses });
    byAddresses.set(key, bucket);
  }
  const entries = [...byAddresses.values()].flat().map((group) => ({
    sortKey: group.addresses,
    entry: {
      cidrs: formatSet(group.addresses),
      protocol: group.protocol,
      ports: group.ports.length === 1 ? group.ports[0] : mergeRanges(group.ports.flat()),
    } satisfies AllowEntry,
  }));
  entries.sort((a, b) =>
    PROTOCOL_ORDER[a.entry.protocol] - PROTOCOL_ORDER[b.entry.protocol] ||
    (a.entry.ports[0]?.first ?? 0) - (b.entry.ports[0]?.first ?? 0) ||
    (a.entry.ports[0]?.last ?? 0) - (b.entry.ports[0]?.last ?? 0) ||
    compareSets(a.sortKey, b.sortKey)
  );
  return entries.map((e) => e.entry);
}

/** A cheap key that equal sets share (different sets may share it too). */
function roughSetKey(set: AddressSet): string {
  const v4 = set.v4;
  const v6 = set.v6;
  return `${v4.length}:${v4[0]?.[0]}:${v4[v4.length - 1]?.[1]}|${v6.length}:${v6[0]?.[0]}:${
    v6[v6.length - 1]?.[1]
  }`;
}

function compareSets(a: AddressSet, b: AddressSet): number {
  const first = (s: AddressSet): [number, bigint] =>
    s.v4.length > 0 ? [4, BigInt(s.v4[0][0])] : s.v6.length > 0 ? [6, s.v6[0][0]] : [0, 0n];
  const [fa, va] = first(a);
  const [fb, vb] = first(b);
  if (fa !== fb) return fa - fb;
  if (va !== vb) return va < vb ? -1 : 1;
  const ka = formatSet(a).join(",");
  const kb = formatSet(b).join(",");
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}
