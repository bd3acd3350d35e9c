/**
 * TC objects as the agent programs them: flower filters with gact and ct
 * actions on a representor's clsact hooks. The generator produces them,
 * the serializer writes them as `tc -batch` text, the parser reads them
 * back from `tc -json`, and the actuator diffs them.
 */

/** clsact hook: `ingress` sees what the pod sends, `egress` what it receives. */
export type Hook = "ingress" | "egress";

/** Both hooks, in the order a read lists their filters. */
export const HOOKS: readonly Hook[] = ["ingress", "egress"];

/** Ethernet protocol a filter is attached for. */
export type EthProtocol = "all" | "ip" | "ipv6" | "arp" | "802.1q" | "802.1ad";

/** Inner ethertypes named in `vlan_ethtype` / `cvlan_ethtype`. */
export type InnerEthType = "ip" | "ipv6" | "arp" | "802.1q";

/** IP protocols the generator matches. */
export type IpProto = "tcp" | "udp" | "sctp" | "icmpv6";

/** An inclusive destination port range (`first === last` for one port). */
export interface TcPortRange {
  first: number;
  last: number;
}

/** The flower keys the generator uses; absent keys are wildcards. */
export interface FlowerMatch {
  vlanEthType?: InnerEthType;
  cvlanEthType?: InnerEthType;
  /** 802.1Q VLAN id of the outer tag. */
  vlanId?: number;
  /** Canonical flag string in the order trk, est, new, rel, inv, rpl: e.g. `+trk+est+rpl`. */
  ctState?: string;
  ipProto?: IpProto;
  srcIp?: string;
  dstIp?: string;
  dstPort?: TcPortRange;
  icmpType?: number;
}

/** Actions, in the order the kernel runs them. */
export type TcAction =
  | { kind: "pass" }
  | { kind: "drop" }
  | { kind: "goto"; chain: number }
  | { kind: "ct"; zone: number; commit: boolean };

/** One flower filter. */
export interface TcFilter {
  hook: Hook;
  chain: number;
  prio: number;
  handle: number;
  protocol: EthProtocol;
  match: FlowerMatch;
  actions: TcAction[];
  /**
   * The cookie of the first action, as lower-case hex: {@link OWNER_COOKIE} on
   * every filter the agent writes; a filter without it is not ours.
   */
  cookie?: string;
  /** `skip_hw`: kept in software only (`--offload=off`). */
  skipHw?: boolean;
}

/**
 * The mark every filter of the agent carries, as the TC cookie of its first
 * action: "mnp-tc" and a format byte (1). Ownership is decided by it alone.
 */
export const OWNER_COOKIE = "6d6e702d746301";

/**
 * The mark of a filter the agent writes only while an interface's checks
 * are being put in place for the first time (src/tc/transition.ts): it
 * tracks connections but does not yet enforce. Also the agent's (format byte 2).
 */
export const TRANSITION_COOKIE = "6d6e702d746302";

/** Whether a filter carries the agent's mark (enforcing or transitional). */
export function isMarked(filter: Pick<TcFilter, "cookie">): boolean {
  return filter.cookie === OWNER_COOKIE || filter.cookie === TRANSITION_COOKIE;
}

/** Whether a filter is one of the agent's transitional ones ({@link TRANSITION_COOKIE}). */
export function isTransitional(filter: Pick<TcFilter, "cookie">): boolean {
  return filter.cookie === TRANSITION_COOKIE;
}

/** Where the kernel says a filter is: in the NIC (how many times), or software only. */
export interface FilterOffload {
  /** `in_hw`: at least one hardware device holds it. */
  inHw: boolean;
  /** `in_hw_count`: how many hardware devices hold it. */
  inHwCount: number;
}

/** What one representor should carry (or carries): nothing, or clsact plus filters. */
export interface TcProgram {
  device: string;
  /** False: no qdisc and no filters at all (both directions open). */
  enabled: boolean;
  /** Conntrack zone used by this representor's ct actions. */
  zone: number;
  /** Generation of the policy chains (1-9); a change writes a new one, then swaps. */
  generation: number;
  filters: TcFilter[];
}

/** What the kernel has on a representor, as read back. */
export interface TcState {
  device: string;
  /** Whether a clsact qdisc is attached. */
  clsact: boolean;
  /**
   * Whether an `ingress` qdisc is attached instead (the layout of the Go agent
   * this one replaces): its one hook is read as `ingress`.
   */
  ingressQdisc?: boolean;
  /** Other qdiscs found (not ours: reported, never deleted). */
  foreignQdiscs: string[];
  /**
   * A netdev's clsact ingress bound to a shared block (src/tc/blocks.ts):
   * its index. Its filters are the block's, read and written there.
   */
  ingressBlock?: number;
  /** A shared block: the uplinks it is to be bound to and is not (a bind is due). */
  unbound?: string[];
  filters: TcFilter[];
  /** Filters the parser could not represent (not ours: reported, never deleted). */
  foreignFilters?: string[];
  /** What each filter's first action has counted, by {@link counterKey}, when the driver read it. */
  counters?: Map<string, FilterCounter>;
  /** Where each filter is (hardware or software only), by {@link counterKey}, when the driver read it. */
  offload?: Map<string, FilterOffload>;
}

/** Packets and bytes a filter's first action has seen (for a `drop` filter: dropped). */
export interface FilterCounter {
  packets: number;
  bytes: number;
}

/** The key of a filter's counter: where the filter sits. */
export function counterKey(filter: Pick<TcFilter, "hook" | "chain" | "prio" | "handle">): string {
  return `${filter.hook} ${filter.chain} ${filter.prio} ${filter.handle}`;
}

/** Chain ids: generation × variant × index, so two generations never collide. */
export function chainId(generation: number, variant: number, index: number): number {
  return generation * 1_000_000 + variant * 100_000 + index;
}

/** Generations the agent uses; chains of other ids are not ours. */
export const MAX_GENERATION = 9;

/** The generation a chain id belongs to (0 for chain 0 and foreign chains). */
export function chainGeneration(chain: number): number {
  const generation = Math.floor(chain / 1_000_000);
  return generation >= 1 && generation <= MAX_GENERATION ? generation : 0;
}

/** Structured changes to a representor, applied in order by a driver. */
export type TcCommand =
  | {
    op: "qdisc-add";
    /** The shared block to bind the clsact's ingress to (an uplink of a VF-LAG bond). */
    block?: number;
  }
  | { op: "qdisc-del"; kind?: "clsact" | "ingress" }
  | { op: "filter-add"; filter: TcFilter }
  | { op: "filter-replace"; filter: TcFilter }
  | { op: "filter-del"; filter: TcFilter }
  | { op: "chain-del"; hook: Hook; chain: number };
