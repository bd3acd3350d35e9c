/**
 * The TC program for one representor, from its interface's rule model
 * (pure). Layout, documented in docs/tc-rule-pipeline.md:
 *
 * chain 0 (dispatch), on each clsact hook:
 *   ARP and IPv6 neighbour discovery pass (untagged, 802.1Q, QinQ);
 *   IP traffic of each encapsulation × family ("variant") goes through
 *   conntrack (`ct zone Z`) into that variant's policy chain;
 *   tagged frames nothing above classified are dropped on an isolated hook;
 *   anything else (non-IP) passes.
 * policy chain G (per variant, per generation):
 *   replies (`+trk+est+rpl`) and related packets pass; invalid drop;
 *   isolated: each allowed address region jumps to its port chain, which
 *   commits and passes the allowed ports and drops the rest; then drop.
 *   open: commit and pass everything.
 * Originating-direction packets of established connections are checked
 * again, so a revoked peer is cut at once.
 */
import type { Protocol } from "../cluster/types.ts";
import type { Family } from "../net/ip.ts";
import type { DirectionRules, InterfaceRules } from "../policy/model.ts";
import {
  chainId,
  type EthProtocol,
  type FlowerMatch,
  type Hook,
  type InnerEthType,
  type IpProto,
  type TcAction,
  type TcFilter,
  type TcProgram,
} from "./model.ts";
import { regionsFor } from "./regions.ts";

/** An encapsulation × family combination the program classifies. */
export interface Variant {
  index: number;
  family: Family;
  protocol: EthProtocol;
  match: FlowerMatch;
}

function tagged(outer: "none" | "802.1q" | "qinq", inner: InnerEthType) {
  if (outer === "none") return { protocol: inner as EthProtocol, match: {} };
  if (outer === "802.1q") {
    return { protocol: "802.1q" as EthProtocol, match: { vlanEthType: inner } };
  }
  return {
    protocol: "802.1ad" as EthProtocol,
    match: { vlanEthType: "802.1q" as InnerEthType, cvlanEthType: inner },
  };
}

const ENCAPSULATIONS = ["none", "802.1q", "qinq"] as const;

/** The six variants: untagged, 802.1Q and QinQ, each for IPv4 and IPv6. */
export const VARIANTS: readonly Variant[] = ENCAPSULATIONS.flatMap((outer, o) =>
  ([4, 6] as Family[]).map((family, f) => ({
    index: o * 2 + f,
    family,
    ...tagged(outer, family === 4 ? "ip" : "ipv6"),
  }))
);

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

const ND_TYPES = [133, 134, 135, 136, 137];
const IP_PROTO: Record<Protocol, IpProto> = { TCP: "tcp", UDP: "udp", SCTP: "sctp" };

/** Parameters that are not in the rule model. */
export interface GenerateOptions {
  device: string;
  zone: number;
  generation: number;
}

function filter(
  hook: Hook,
  chain: number,
  prio: number,
  handle: number,
  protocol: EthProtocol,
  match: FlowerMatch,
  actions: TcAction[],
): TcFilter {
  return { hook, chain, prio, handle, protocol, match, actions };
}

function dispatchChain(hook: Hook, isolated: boolean, zone: number, generation: number) {
  const out: TcFilter[] = [];
  ENCAPSULATIONS.forEach((outer, o) => {
    const arp = tagged(outer, "arp");
    out.push(
      filter(hook, 0, DISPATCH_PRIO.arp + o, 1, arp.protocol, arp.match, [{ kind: "pass" }]),
    );
    const v6 = tagged(outer, "ipv6");
    ND_TYPES.forEach((type, i) => {
      out.push(filter(
        hook,
        0,
        DISPATCH_PRIO.neighbourDiscovery + o,
        i + 1,
        v6.protocol,
        { ...v6.match, ipProto: "icmpv6", icmpType: type },
        [{ kind: "pass" }],
      ));
    });
  });
  for (const variant of VARIANTS) {
    out.push(filter(
      hook,
      0,
      DISPATCH_PRIO.ip + variant.index,
      1,
      variant.protocol,
      { ...variant.match },
      [
        { kind: "ct", zone, commit: false },
        { kind: "goto", chain: chainId(generation, variant.index, 0) },
      ],
    ));
  }
  if (isolated) {
    out.push(filter(hook, 0, DISPATCH_PRIO.taggedDrop, 1, "802.1q", {}, [{ kind: "drop" }]));
    out.push(filter(hook, 0, DISPATCH_PRIO.taggedDrop + 1, 1, "802.1ad", {}, [{ kind: "drop" }]));
  }
  out.push(filter(hook, 0, DISPATCH_PRIO.otherPass, 1, "all", {}, [{ kind: "pass" }]));
  return out;
}

function commitPass(zone: number): TcAction[] {
  return [{ kind: "ct", zone, commit: true }, { kind: "pass" }];
}

function* policyChains(
  hook: Hook,
  rules: DirectionRules,
  variant: Variant,
  zone: number,
  generation: number,
): Generator<TcFilter> {
  const main = chainId(generation, variant.index, 0);
  const { protocol, match } = variant;
  // Replies to and packets related to allowed connections pass; invalid ones drop.
  const conntrack: [number, number, string, TcAction][] = [
    [POLICY_PRIO.replies, 1, "+trk+est+rpl", { kind: "pass" }],
    [POLICY_PRIO.replies, 2, "+trk+rel", { kind: "pass" }],
    [POLICY_PRIO.invalid, 1, "+trk+inv", { kind: "drop" }],
  ];
  for (const [prio, handle, ctState, action] of conntrack) {
    yield filter(hook, main, prio, handle, protocol, { ...match, ctState }, [action]);
  }
  if (!rules.isolated) {
    yield filter(
      hook,
      main,
      POLICY_PRIO.allow,
      1,
      protocol,
      { ...match, ctState: "+trk" },
      commitPass(zone),
    );
    yield filter(hook, main, POLICY_PRIO.final, 1, "all", {}, [{ kind: "pass" }]);
    return;
  }
  // Ingress policy (egress hook) matches the peer as source; egress policy as destination.
  const addressKey: "srcIp" | "dstIp" = hook === "egress" ? "srcIp" : "dstIp";
  const portChains = new Map<string, number>();
  let handle = 1;
  for (const region of regionsFor(rules.allow, variant.family)) {
    let actions: TcAction[];
    if (region.ports.any) {
      actions = commitPass(zone);
    } else {
      let chain = portChains.get(region.portsKey);
      if (chain === undefined) {
        chain = chainId(generation, variant.index, portChains.size + 1);
        portChains.set(region.portsKey, chain);
        let portHandle = 1;
        for (const [proto, ranges] of Object.entries(region.ports.ranges)) {
          for (const range of ranges ?? []) {
            const portMatch: FlowerMatch = { ...match, ipProto: IP_PROTO[proto as Protocol] };
            if (!(range.first === 0 && range.last === 65535)) {
              portMatch.dstPort = { first: range.first, last: range.last };
            }
            yield filter(
              hook,
              chain,
              POLICY_PRIO.allow,
              portHandle++,
              protocol,
              portMatch,
              commitPass(zone),
            );
          }
        }
        yield filter(hook, chain, POLICY_PRIO.final, 1, "all", {}, [{ kind: "drop" }]);
      }
      actions = [{ kind: "goto", chain }];
    }
    for (const cidr of region.cidrs) {
      // A /0 key would never match (flower then requires an address key it does not
      // extract), so "every address" is written as no address key at all.
      const addressMatch = cidr.endsWith("/0") ? {} : { [addressKey]: cidr };
      yield filter(hook, main, POLICY_PRIO.allow, handle++, protocol, {
        ...match,
        ctState: "+trk",
        ...addressMatch,
      }, actions);
    }
  }
  yield filter(hook, main, POLICY_PRIO.final, 1, "all", {}, [{ kind: "drop" }]);
}

/** Every filter of an interface's program, in order, produced one at a time. */
function* programFilters(rules: InterfaceRules, zone: number, generation: number) {
  // The ingress hook carries the pod's egress policy; the egress hook its ingress policy.
  const hooks: [Hook, DirectionRules][] = [["ingress", rules.egress], ["egress", rules.ingress]];
  for (const [hook, direction] of hooks) {
    yield* dispatchChain(hook, direction.isolated, zone, generation);
    for (const variant of VARIANTS) {
      yield* policyChains(hook, direction, variant, zone, generation);
    }
  }
}

/** Whether an interface's rules need a program at all (some direction is isolated). */
function enabled(rules: InterfaceRules): boolean {
  return rules.ingress.isolated || rules.egress.isolated;
}

/** The program for one interface's representor. */
export function generateProgram(rules: InterfaceRules, options: GenerateOptions): TcProgram {
  const program: TcProgram = {
    device: options.device,
    enabled: enabled(rules),
    zone: options.zone,
    generation: options.generation,
    filters: [],
  };
  // Appended one by one: spreading a chain of hundreds of thousands of filters into one
  // push would exceed the engine's argument limit.
  if (program.enabled) {
    for (const f of programFilters(rules, options.zone, options.generation)) {
      program.filters.push(f);
    }
  }
  return program;
}

/**
 * How many filters the interface's program has, counting no further than
 * `limit + 1` (so a huge program is never built just to be refused).
 */
export function countFilters(rules: InterfaceRules, limit = Infinity): number {
  if (!enabled(rules)) return 0;
  let count = 0;
  for (const _ of programFilters(rules, 1, 1)) if (++count > limit) break;
  return count;
}
