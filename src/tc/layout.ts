/**
 * The layout every device's program shares: chain-0 and policy-chain
 * priorities, the chain index of each stage within a variant, and how chain
 * ids are handed out (in increasing order, so gotos only go forward).
 * Documented in docs/tc-rule-pipeline.md.
 */
import type { Protocol } from "../cluster/types.ts";
import {
  chainId,
  type EthProtocol,
  type FlowerMatch,
  type Hook,
  type IpProto,
  OWNER_COOKIE,
  type TcAction,
  type TcFilter,
} from "./model.ts";

/** Prio layout of chain 0. */
export const DISPATCH_PRIO = {
  arp: 1,
  neighbourDiscovery: 4,
  ip: 11,
  taggedDrop: 21,
  otherPass: 31,
} as const;

/** Prio layout of policy and port chains. */
export const POLICY_PRIO = { replies: 1, invalid: 2, allow: 3, final: 9 } as const;

/** IPv6 neighbour discovery: router and neighbour solicitation and advertisement, redirect. */
export const ND_TYPES = [133, 134, 135, 136, 137];
/** Flower's name of each policy protocol. */
export const IP_PROTO: Record<Protocol, IpProto> = { TCP: "tcp", UDP: "udp", SCTP: "sctp" };

/** A filter from its parts, carrying the agent's mark ({@link OWNER_COOKIE}). */
export function filter(
  hook: Hook,
  chain: number,
  prio: number,
  handle: number,
  protocol: EthProtocol,
  match: FlowerMatch,
  actions: TcAction[],
): TcFilter {
  return { hook, chain, prio, handle, protocol, match, actions, cookie: OWNER_COOKIE };
}

/** Chain indexes within a variant: the source stage first, then the destination stage. */
export const STAGE_INDEX = { source: 0, destination: 50_000, repliesOnly: 50_001 } as const;

/** The highest chain index a variant may use (chain ids are generation × variant × index). */
const MAX_INDEX = 99_999;

/** Hands out chain ids of one variant, in increasing order (gotos only go forward). */
export class ChainIds {
  #next: number;
  constructor(readonly generation: number, readonly variant: number, first: number) {
    this.#next = first;
  }
  /** The next chain id. */
  take(): number {
    if (this.#next > MAX_INDEX) {
      throw new Error(`more than ${MAX_INDEX} chains in one variant of a device's program`);
    }
    return chainId(this.generation, this.variant, this.#next++);
  }
}
