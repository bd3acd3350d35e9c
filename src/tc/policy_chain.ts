/**
 * One direction's policy as TC chains (pure): replies and related packets go
 * on, invalid ones drop; allowed peers and ports are committed to the
 * interface's conntrack zone and go on; the rest drops. Addresses and ports
 * sit in separate chains (see ./regions.ts), ports as masked blocks
 * (./ports.ts).
 */
import type { Protocol } from "../cluster/types.ts";
import { cidrContains, parseIp } from "../net/ip.ts";
import type { DirectionRules } from "../policy/model.ts";
import { type ChainIds, filter, IP_PROTO, POLICY_PRIO } from "./layout.ts";
import type { FlowerMatch, TcAction, TcFilter } from "./model.ts";
import { alignedBlocks } from "./ports.ts";
import { regionsFor } from "./regions.ts";
import type { PlacedVariant } from "./variants.ts";

/** Where a policy chain's allowed traffic goes next: on to another stage, or out. */
export type Next = TcAction;

function commitThen(zone: number, next: Next): TcAction[] {
  return [{ kind: "ct", zone, commit: true }, next];
}

/**
 * One direction's policy as a chain `main` (and its port chains): replies
 * and related packets go `next`, invalid ones drop; when isolated, allowed
 * peers (matched by `addressKey`) and ports are committed to `zone` and go
 * `next`, the rest drops; when open, everything is committed and goes `next`.
 */
export function* policyChain(
  rules: DirectionRules,
  variant: PlacedVariant,
  zone: number,
  addressKey: "srcIp" | "dstIp",
  main: number,
  ids: ChainIds,
  next: Next,
): Generator<TcFilter> {
  const { protocol } = variant;
  const match: FlowerMatch = { ...variant.match };
  const conntrack: [number, number, string, TcAction][] = [
    [POLICY_PRIO.replies, 1, "+trk+est+rpl", next],
    [POLICY_PRIO.replies, 2, "+trk+rel", next],
    [POLICY_PRIO.invalid, 1, "+trk+inv", { kind: "drop" }],
  ];
  for (const [prio, handle, ctState, action] of conntrack) {
    yield filter("ingress", main, prio, handle, protocol, { ...match, ctState }, [action]);
  }
  if (!rules.isolated) {
    yield filter("ingress", main, POLICY_PRIO.allow, 1, protocol, {
      ...match,
      ctState: "+trk",
    }, commitThen(zone, next));
    yield filter("ingress", main, POLICY_PRIO.final, 1, "all", {}, [next]);
    return;
  }
  const portChains = new Map<string, number>();
  let handle = 1;
  for (const region of regionsFor(rules.allow, variant.family)) {
    let actions: TcAction[];
    if (region.ports.any) {
      actions = commitThen(zone, next);
    } else {
      let chain = portChains.get(region.portsKey);
      if (chain === undefined) {
        chain = ids.take();
        portChains.set(region.portsKey, chain);
        let portHandle = 1;
        for (const [proto, ranges] of Object.entries(region.ports.ranges)) {
          for (const range of ranges ?? []) {
            const blocks = range.first === 0 && range.last === 65535
              ? [null]
              : alignedBlocks({ first: range.first, last: range.last });
            for (const block of blocks) {
              const portMatch: FlowerMatch = { ...match, ipProto: IP_PROTO[proto as Protocol] };
              if (block) portMatch.dstPort = block;
              yield filter(
                "ingress",
                chain,
                POLICY_PRIO.allow,
                portHandle++,
                protocol,
                portMatch,
                commitThen(zone, next),
              );
            }
          }
        }
        yield filter("ingress", chain, POLICY_PRIO.final, 1, "all", {}, [{ kind: "drop" }]);
      }
      actions = [{ kind: "goto", chain }];
    }
    for (const cidr of region.cidrs) {
      // A /0 key would never match (flower then requires an address key it does not
      // extract), so "every address" is written as no address key at all.
      const addressMatch = cidr.endsWith("/0") ? {} : { [addressKey]: cidr };
      yield filter("ingress", main, POLICY_PRIO.allow, handle++, protocol, {
        ...match,
        ctState: "+trk",
        ...addressMatch,
      }, actions);
    }
  }
  yield filter("ingress", main, POLICY_PRIO.final, 1, "all", {}, [{ kind: "drop" }]);
}

/** A receiver's ingress rules as checked for traffic from one known sender only. */
export function reducedTo(rules: DirectionRules, senderIps: readonly string[]): DirectionRules {
  if (!rules.isolated) return rules;
  const allow = rules.allow.flatMap((entry) => {
    const cidrs = senderIps
      .filter((ip) => entry.cidrs.some((cidr) => cidrContains(cidr, ip)))
      .map((ip) => `${ip}/${parseIp(ip)!.family === 4 ? 32 : 128}`);
    return cidrs.length > 0 ? [{ ...entry, cidrs }] : [];
  });
  return { ...rules, allow };
}
