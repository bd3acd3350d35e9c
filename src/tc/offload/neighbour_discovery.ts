/**
 * Whether a software-only neighbour-discovery pass is safe. ARP and IPv6
 * neighbour discovery pass statelessly before any `ct` (after one, conntrack
 * calls ND invalid); a NIC without an ICMP flex parser cannot match the ICMPv6
 * type, so in hardware such a filter does not exist and ND packets go on to
 * the filters after it. That is safe when, on every path an ND packet can
 * take in hardware, it either passes or meets a `ct` action — which never
 * holds ICMPv6 in hardware, so software re-runs that filter's chain from its
 * start — in a chain where an ND pass comes before that `ct` action.
 */
import type { TcFilter } from "../model.ts";

const ND_TYPES = new Set([133, 134, 135, 136, 137]);

/** Whether `filter` passes IPv6 neighbour discovery and nothing else. */
export function isNeighbourDiscoveryPass(filter: TcFilter): boolean {
  const { match } = filter;
  return match.ipProto === "icmpv6" && match.icmpType !== undefined &&
    ND_TYPES.has(match.icmpType) && filter.actions.length === 1 &&
    filter.actions[0].kind === "pass" && match.srcIp === undefined &&
    match.dstIp === undefined && match.ctState === undefined;
}

/** Whether an untracked ND packet of `nd`'s encapsulation can match `filter`. */
function ndCanMatch(filter: TcFilter, nd: TcFilter): boolean {
  if (filter.protocol !== "all") {
    if (filter.protocol !== nd.protocol) return false;
    if (filter.match.vlanEthType !== nd.match.vlanEthType) return false;
    if (filter.match.cvlanEthType !== nd.match.cvlanEthType) return false;
  }
  const { ipProto, icmpType, ctState, dstPort } = filter.match;
  if (ipProto !== undefined && ipProto !== "icmpv6") return false;
  if (icmpType !== undefined && icmpType !== nd.match.icmpType) return false;
  if (dstPort !== undefined) return false;
  // Before any ct action a packet is untracked: a filter asking for +trk never matches it.
  return ctState === undefined || !ctState.includes("+trk");
}

function order(a: TcFilter, b: TcFilter): number {
  return a.prio - b.prio || a.handle - b.handle;
}

/**
 * Why hardware would decide an ND packet that `nd` passes differently, or
 * null when it never does. `hardware` are the filters the NIC holds.
 */
export function neighbourDiscoveryProblem(
  nd: TcFilter,
  filters: readonly TcFilter[],
  hardware: ReadonlySet<TcFilter>,
  missResumes: "chain" | "action",
): string | null {
  const ndPasses = filters.filter((f) =>
    isNeighbourDiscoveryPass(f) && f.protocol === nd.protocol &&
    f.match.icmpType === nd.match.icmpType && f.match.vlanEthType === nd.match.vlanEthType &&
    f.match.cvlanEthType === nd.match.cvlanEthType
  );
  const visited = new Set<number>();
  /** Walks chain `chain` in hardware from after `from` (its start when null). */
  const walk = (chain: number, from: TcFilter | null): string | null => {
    const inChain = filters.filter((f) => f.hook === nd.hook && f.chain === chain).sort(order);
    const start = from ? inChain.indexOf(from) + 1 : 0;
    for (const filter of inChain.slice(start)) {
      if (!hardware.has(filter) || !ndCanMatch(filter, nd)) continue;
      const first = filter.actions[0];
      if (first.kind === "ct") {
        // A ct miss: software re-runs this chain from its start and must meet an ND pass first.
        if (missResumes !== "chain") {
          return `chain ${chain} prio ${filter.prio} handle ${filter.handle} sends ND through ` +
            `ct, and after a miss software resumes at that ct action, past any ND pass`;
        }
        const covered = ndPasses.some((p) => p.chain === chain && order(p, filter) < 0);
        if (!covered) {
          return `chain ${chain} prio ${filter.prio} handle ${filter.handle} sends ND ` +
            `through ct with no ND pass before it in that chain`;
        }
        continue;
      }
      if (first.kind === "pass") return null;
      if (first.kind === "drop") {
        return `chain ${chain} prio ${filter.prio} handle ${filter.handle} drops ND in hardware`;
      }
      if (visited.has(first.chain)) return null;
      visited.add(first.chain);
      const below = walk(first.chain, null);
      if (below !== null) return below;
      // A filter that matched jumped away; packets it does not match go on here.
    }
    return null; // Falling off a chain: the offloaded bridge forwards it, as software passes it.
  };
  return walk(nd.chain, nd);
}
