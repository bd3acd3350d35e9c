/**
 * Updates that cost what changed (pure): when a program differs from what a
 * device carries only in the allow filters (prio {@link POLICY_PRIO.allow})
 * of chains no packet passes two of, those filters are edited in place in
 * the current generation — adds, then replaces, then deletes — instead of
 * writing a whole new generation. Every packet still meets the old or the
 * new verdict at every moment (docs/tc-rule-pipeline.md, "Updates"):
 *
 * - the allow filters of such a chain are disjoint in the old program and
 *   in the new one, so a packet matches at most one of each; new filters
 *   come before old ones go, and a filter whose key stays is replaced
 *   atomically under its handle, so a packet matches the old filter, the
 *   new one, or both, never neither where both allow it;
 * - no changed chain reaches another by goto, so a packet's path holds at
 *   most one changed chain, and the rest of its path is the same in both
 *   programs.
 *
 * Anything else (chain 0, other prios, chains added or gone, overlapping
 * filters, foreign filters in a changed chain) is left to the generation
 * swap.
 */
import { cidrRange, parseCidr } from "../net/ip.ts";
import { filterContent, sameFilters } from "./compare.ts";
import { POLICY_PRIO } from "./layout.ts";
import type { TcCommand, TcFilter, TcProgram } from "./model.ts";

/** An in-place edit: the commands, and the program the device then carries (its handles). */
export interface InPlaceEdit {
  commands: TcCommand[];
  /** The desired program with the handles the device uses for its allow filters. */
  program: TcProgram;
}

/** Everything of a filter but its handle and actions: filters with equal keys collide. */
function matchKey(filter: TcFilter): string {
  const match = Object.entries(filter.match).sort(([a], [b]) => (a < b ? -1 : 1));
  return JSON.stringify([filter.protocol, match]);
}

/** `hook/chain` of a filter. */
function chainKey(filter: TcFilter): string {
  return `${filter.hook}/${filter.chain}`;
}

function byChain(filters: readonly TcFilter[]): Map<string, TcFilter[]> {
  const chains = new Map<string, TcFilter[]>();
  for (const filter of filters) {
    if (filter.chain === 0) continue;
    const key = chainKey(filter);
    const list = chains.get(key);
    if (list) list.push(filter);
    else chains.set(key, [filter]);
  }
  return chains;
}

const DISCRETE = [
  "vlanEthType",
  "cvlanEthType",
  "vlanId",
  "ctState",
  "ipProto",
  "icmpType",
] as const;
const RANGED = ["srcIp", "dstIp", "dstPort"] as const;
type Ranged = typeof RANGED[number];

/** The inclusive range a ranged key covers. */
function rangeOf(filter: TcFilter, key: Ranged): [bigint, bigint] | null {
  if (key === "dstPort") {
    const port = filter.match.dstPort!;
    return [BigInt(port.first), BigInt(port.last)];
  }
  const cidr = parseCidr(filter.match[key]!);
  // Families never share a chain's prio (its protocol is one of ip or ipv6).
  return cidr ? cidrRange(cidr) : null;
}

/** Whether filters sharing every discrete key are pairwise disjoint on one ranged key. */
function disjointOnOneKey(group: readonly TcFilter[]): boolean {
  if (group.length < 2) return true;
  for (const key of RANGED) {
    if (!group.every((f) => f.match[key] !== undefined)) continue;
    const others = RANGED.filter((k) => k !== key);
    const rest = (f: TcFilter) => JSON.stringify(others.map((k) => f.match[k] ?? null));
    if (new Set(group.map(rest)).size !== 1) continue;
    const ranges = group.map((f) => rangeOf(f, key));
    if (ranges.some((r) => r === null)) return false;
    const sorted = (ranges as [bigint, bigint][]).sort((a, b) => (a[0] < b[0] ? -1 : 1));
    return sorted.every((range, i) => i === 0 || range[0] > sorted[i - 1][1]);
  }
  return false;
}

/**
 * Whether no packet can match two of `filters` (all at one prio of one
 * chain), provably: they share which discrete keys they set, so differing
 * values tell them apart, and filters with equal values differ in the
 * non-overlapping ranges of one key. False when it cannot be shown.
 */
export function provablyDisjoint(filters: readonly TcFilter[]): boolean {
  if (filters.length < 2) return true;
  const present = (f: TcFilter) =>
    `${f.protocol === "all"}:${DISCRETE.filter((k) => f.match[k] !== undefined).join(",")}`;
  if (new Set(filters.map(present)).size !== 1) return false;
  const groups = new Map<string, TcFilter[]>();
  for (const filter of filters) {
    const key = JSON.stringify([filter.protocol, DISCRETE.map((k) => filter.match[k] ?? null)]);
    const group = groups.get(key);
    if (group) group.push(filter);
    else groups.set(key, [filter]);
  }
  return [...groups.values()].every(disjointOnOneKey);
}

/** The chains each chain can send a packet to. */
function gotoGraph(filters: readonly TcFilter[]): Map<string, Set<string>> {
  const graph = new Map<string, Set<string>>();
  for (const filter of filters) {
    for (const action of filter.actions) {
      if (action.kind !== "goto") continue;
      const from = chainKey(filter);
      const targets = graph.get(from) ?? new Set<string>();
      targets.add(`${filter.hook}/${action.chain}`);
      graph.set(from, targets);
    }
  }
  return graph;
}

/** Whether some packet could pass two of `chains` (one reaches another by gotos). */
function onOnePath(chains: ReadonlySet<string>, graph: Map<string, Set<string>>): boolean {
  for (const start of chains) {
    const seen = new Set<string>();
    const stack = [...(graph.get(start) ?? [])];
    while (stack.length > 0) {
      const chain = stack.pop()!;
      if (seen.has(chain)) continue;
      seen.add(chain);
      if (chains.has(chain)) return true;
      stack.push(...(graph.get(chain) ?? []));
    }
  }
  return false;
}

/** One changed chain's edit: its allow filters with the device's handles, and the commands. */
interface ChainEdit {
  allow: TcFilter[];
  adds: TcCommand[];
  replaces: TcCommand[];
  deletes: TcCommand[];
}

/** The edit of one chain's allow filters, or null when their keys are not unique. */
function editChain(current: readonly TcFilter[], desired: readonly TcFilter[]): ChainEdit | null {
  const have = new Map<string, TcFilter>();
  for (const filter of current) {
    const key = matchKey(filter);
    if (have.has(key)) return null;
    have.set(key, filter);
  }
  const used = new Set(current.map((f) => f.handle));
  let fresh = 1;
  const edit: ChainEdit = { allow: [], adds: [], replaces: [], deletes: [] };
  const wanted = new Set<string>();
  for (const filter of desired) {
    const key = matchKey(filter);
    if (wanted.has(key)) return null;
    wanted.add(key);
    const existing = have.get(key);
    if (existing) {
      const kept = { ...filter, handle: existing.handle };
      edit.allow.push(kept);
      if (filterContent(existing) !== filterContent(kept)) {
        edit.replaces.push({ op: "filter-replace", filter: kept });
      }
      continue;
    }
    while (used.has(fresh)) fresh++;
    used.add(fresh);
    const added = { ...filter, handle: fresh };
    edit.allow.push(added);
    edit.adds.push({ op: "filter-add", filter: added });
  }
  for (const [key, filter] of have) {
    if (!wanted.has(key)) edit.deletes.push({ op: "filter-del", filter });
  }
  return edit;
}

/**
 * The in-place edit from `ours` (the agent's filters on a device, all in
 * chain 0 or the desired program's generation) to `desired`, or null when
 * only a generation swap is safe. `shared` names the `hook/chain` of chains
 * that also hold filters that are not ours.
 */
export function planInPlace(
  ours: readonly TcFilter[],
  desired: TcProgram,
  shared: ReadonlySet<string>,
): InPlaceEdit | null {
  const isAllow = (f: TcFilter) => f.prio === POLICY_PRIO.allow;
  if (
    !sameFilters(
      ours.filter((f) => f.chain === 0),
      desired.filters.filter((f) => f.chain === 0),
    )
  ) {
    return null;
  }
  const have = byChain(ours);
  const want = byChain(desired.filters);
  if (have.size !== want.size) return null;
  const edits = new Map<string, ChainEdit>();
  for (const [key, wanted] of want) {
    const current = have.get(key);
    if (!current) return null;
    if (!sameFilters(current.filter((f) => !isAllow(f)), wanted.filter((f) => !isAllow(f)))) {
      return null;
    }
    const currentAllow = current.filter(isAllow);
    const wantedAllow = wanted.filter(isAllow);
    const edit = editChain(currentAllow, wantedAllow);
    if (!edit) return null;
    if (edit.adds.length + edit.replaces.length + edit.deletes.length === 0) {
      if (edit.allow.length > 0) edits.set(key, edit);
      continue;
    }
    if (shared.has(key) || !provablyDisjoint(currentAllow) || !provablyDisjoint(wantedAllow)) {
      return null;
    }
    edits.set(key, edit);
  }
  const changed = new Set(
    [...edits].filter(([, e]) => e.adds.length + e.replaces.length + e.deletes.length > 0)
      .map(([key]) => key),
  );
  if (changed.size > 1 && onOnePath(changed, gotoGraph([...ours, ...desired.filters]))) {
    return null;
  }
  // Each chain's allow filters, in the desired order, with the device's handles.
  const taken = new Map<string, number>();
  const filters = desired.filters.map((filter) => {
    if (filter.chain === 0 || !isAllow(filter)) return filter;
    const key = chainKey(filter);
    const index = taken.get(key) ?? 0;
    taken.set(key, index + 1);
    return edits.get(key)!.allow[index];
  });
  const all = [...edits.values()];
  return {
    commands: [
      ...all.flatMap((e) => e.adds),
      ...all.flatMap((e) => e.replaces),
      ...all.flatMap((e) => e.deletes),
    ],
    program: { ...desired, filters },
  };
}
