/** Small builders for hand-written TC programs in tests. */
import type { EthProtocol, FlowerMatch, TcAction, TcFilter } from "../../src/tc/model.ts";

/** `ct zone Z [commit]`. */
export const ct = (zone = 3, commit = false): TcAction => ({ kind: "ct", zone, commit });
/** `goto chain N`. */
export const goto = (chain: number): TcAction => ({ kind: "goto", chain });
/** `pass`. */
export const PASS: TcAction = { kind: "pass" };
/** `drop`. */
export const DROP: TcAction = { kind: "drop" };

/** A builder of ingress-hook filters (handle 1) whose protocol defaults to `protocol`. */
export function filterBuilder(protocol: EthProtocol) {
  return (
    chain: number,
    prio: number,
    match: FlowerMatch,
    actions: TcAction[],
    more: Partial<TcFilter> = {},
  ): TcFilter => ({ hook: "ingress", chain, prio, handle: 1, protocol, match, actions, ...more });
}

/** A filter as the Go agent writes it: chain 0 of its `ingress` qdisc, one pass or drop, no mark. */
export function goAgentFilter(
  prio: number,
  protocol: EthProtocol,
  match: FlowerMatch,
  kind: "pass" | "drop",
  handle = 1,
): TcFilter {
  return { hook: "ingress", chain: 0, prio, handle, protocol, match, actions: [{ kind }] };
}
