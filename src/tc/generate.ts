/**
 * The TC program of one device of the node (pure). Every filter sits on a
 * clsact **ingress** hook, where a switchdev NIC offloads it: a pod's egress
 * policy on its own representor (the source stage), and each local pod's
 * ingress policy wherever traffic to it enters the e-switch — the uplink
 * representor and the other representors of its network (the destination
 * stage). Layout, documented in docs/tc-rule-pipeline.md:
 *
 * chain 0 (dispatch): ARP and IPv6 neighbour discovery pass, before any
 *   conntrack; IP traffic of each encapsulation × family ("variant") goes
 *   to the source stage through `ct zone Zsender`, or, on a device with no
 *   policed sender, straight to the destination stage; tagged frames on a
 *   network without a trunk are dropped; anything else passes.
 * source stage (index 0 and its port chains): the sender's egress policy;
 *   what it allows goes on to the destination stage.
 * destination stage (index 50000): one filter per local receiver address,
 *   `ct zone Zreceiver` and on to that receiver's chain (its ingress policy,
 *   reduced to the sender's own addresses on a representor); traffic for no
 *   policed receiver passes.
 * In every policy chain replies (`+trk+est+rpl`) and related packets go on,
 * invalid ones drop, and new and originating-direction packets are checked,
 * so a revoked peer is cut at once.
 */
import type { Protocol } from "../cluster/types.ts";
import { cidrContains, type Family, parseIp } from "../net/ip.ts";
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
import { alignedBlocks } from "./ports.ts";
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

/** Where a policy chain's allowed traffic goes next: on to another stage, or out. */
type Next = TcAction;

/** Chain indexes within a variant: the source stage first, then the destination stage. */
export const STAGE_INDEX = { source: 0, destination: 50_000, repliesOnly: 50_001 } as const;

/** The highest chain index a variant may use (chain ids are generation × variant × index). */
const MAX_INDEX = 99_999;

/** An interface as one stage of a device's program sees it: its rules and its conntrack zone. */
export interface StageInterface {
  rules: InterfaceRules;
  /** Its conntrack zone (1-255 on its e-switch). */
  zone: number;
}

/** What one device checks: the policed pod that sends through it, and the pods it receives for. */
export interface DeviceRole {
  device: string;
  /** `representor` of a pod interface's VF, or the `uplink` of a PF. */
  kind: "representor" | "uplink";
  /** The interface whose VF this representor is (absent on an uplink). */
  sender?: StageInterface;
  /** Policed local interfaces whose traffic enters the e-switch here. */
  receivers: StageInterface[];
}

/** Whether an interface needs conntrack and a program (some direction is isolated). */
export function isPoliced(rules: InterfaceRules): boolean {
  return rules.ingress.isolated || rules.egress.isolated;
}

type Encapsulation = (typeof ENCAPSULATIONS)[number];

/** A variant as written on one device: with the VLAN id it carries there, if any. */
interface PlacedVariant extends Variant {
  vlanId?: number;
}

/** The encapsulations in which a network's frames appear where they enter the e-switch. */
function encapsulations(rules: InterfaceRules, kind: DeviceRole["kind"]): Encapsulation[] {
  if (rules.trunk) return [...ENCAPSULATIONS];
  // On its own representor a pod's frames are untagged; on the uplink they carry the
  // network's VLAN, when it has one.
  return kind === "uplink" && rules.vlan !== undefined ? ["802.1q"] : ["none"];
}

function outerOf(variant: Variant): Encapsulation {
  return ENCAPSULATIONS[Math.floor(variant.index / 2)];
}

function hasFamily(rules: InterfaceRules, family: Family): boolean {
  return rules.ips.some((ip) => (ip.includes(":") ? 6 : 4) === family);
}

/** Hands out chain ids of one variant, in increasing order (gotos only go forward). */
class ChainIds {
  #next: number;
  constructor(readonly generation: number, readonly variant: number, first: number) {
    this.#next = first;
  }
  take(): number {
    if (this.#next > MAX_INDEX) {
      throw new Error(`more than ${MAX_INDEX} chains in one variant of a device's program`);
    }
    return chainId(this.generation, this.variant, this.#next++);
  }
}

function commitThen(zone: number, next: Next): TcAction[] {
  return [{ kind: "ct", zone, commit: true }, next];
}

/**
 * One direction's policy as a chain `main` (and its port chains): replies
 * and related packets go `next`, invalid ones drop; when isolated, allowed
 * peers (matched by `addressKey`) and ports are committed to `zone` and go
 * `next`, the rest drops; when open, everything is committed and goes `next`.
 */
function* policyChain(
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
function reducedTo(rules: DirectionRules, senderIps: readonly string[]): DirectionRules {
  if (!rules.isolated) return rules;
  const hosts = senderIps.flatMap((ip) => {
    const parsed = parseIp(ip);
    return parsed ? [`${ip}/${parsed.family === 4 ? 32 : 128}`] : [];
  });
  const allow = rules.allow.flatMap((entry) => {
    const cidrs = hosts.filter((host) =>
      entry.cidrs.some((cidr) => cidrContains(cidr, host.slice(0, host.indexOf("/"))))
    );
    return cidrs.length > 0 ? [{ ...entry, cidrs }] : [];
  });
  return { ...rules, allow };
}

/** The VLAN id a network's frames carry in `outer` on this kind of device, if one is matched. */
function vlanOn(
  rules: InterfaceRules,
  kind: DeviceRole["kind"],
  outer: Encapsulation,
): number | undefined {
  return kind === "uplink" && outer === "802.1q" && !rules.trunk ? rules.vlan : undefined;
}

/** The variants a device's program classifies, with their VLAN ids there. */
function deviceVariants(role: DeviceRole): PlacedVariant[] {
  const wanted = new Map<string, PlacedVariant>();
  const add = (rules: InterfaceRules) => {
    for (const outer of encapsulations(rules, role.kind)) {
      for (const variant of VARIANTS) {
        if (outerOf(variant) !== outer) continue;
        const vlanId = vlanOn(rules, role.kind, outer);
        const placed = vlanId === undefined ? { ...variant } : { ...variant, vlanId };
        wanted.set(`${variant.index}/${vlanId ?? ""}`, placed);
      }
    }
  };
  const policedSender = role.sender !== undefined && isPoliced(role.sender.rules);
  if (policedSender) add(role.sender!.rules);
  for (const receiver of role.receivers) add(receiver.rules);
  // Without a policed sender, a variant only matters where some receiver has an address.
  return [...wanted.values()].filter((v) => policedSender || receiversOf(role, v).length > 0).sort((
    a,
    b,
  ) => a.index - b.index || (a.vlanId ?? 0) - (b.vlanId ?? 0));
}

/** Receivers whose traffic the destination stage of `variant` checks. */
function receiversOf(role: DeviceRole, variant: PlacedVariant): StageInterface[] {
  const outer = outerOf(variant);
  return role.receivers.filter(({ rules }) =>
    hasFamily(rules, variant.family) && encapsulations(rules, role.kind).includes(outer) &&
    vlanOn(rules, role.kind, outer) === variant.vlanId
  );
}

/**
 * The destination stage of one variant (all its VLANs on this device): each
 * receiver address to that receiver's own chain.
 */
function* destinationStage(
  role: DeviceRole,
  variants: PlacedVariant[],
  generation: number,
): Generator<TcFilter> {
  const { index, protocol } = variants[0];
  const main = chainId(generation, index, STAGE_INDEX.destination);
  const ids = new ChainIds(generation, index, STAGE_INDEX.repliesOnly + 1);
  const repliesOnly = chainId(generation, index, STAGE_INDEX.repliesOnly);
  let needRepliesOnly = false;
  // Chain ids are taken for every receiver before any port chain, so gotos only go forward;
  // the receivers' chains are produced after the dispatch, one at a time.
  const later: [DirectionRules, PlacedVariant, number, number][] = [];
  if (variants[0].family === 6 && !(role.sender && isPoliced(role.sender.rules))) {
    // Reached without a ct action: in hardware, where the ICMPv6 type cannot be matched,
    // neighbour discovery gets here, and a receiver's ct action hands it to software, which
    // re-runs this chain: it must pass here before it meets that ct action.
    for (const [i, type] of ND_TYPES.entries()) {
      yield filter("ingress", main, POLICY_PRIO.replies, i + 1, protocol, {
        ...variants[0].match,
        ipProto: "icmpv6",
        icmpType: type,
      }, [{ kind: "pass" }]);
    }
  }
  let handle = 1;
  for (const variant of variants) {
    const match: FlowerMatch = { ...variant.match };
    if (variant.vlanId !== undefined) match.vlanId = variant.vlanId;
    for (const receiver of receiversOf(role, variant)) {
      const rules = role.sender
        ? reducedTo(receiver.rules.ingress, role.sender.rules.ips)
        : receiver.rules.ingress;
      let target: number;
      if (rules.isolated && rules.allow.length === 0) {
        // Nothing allowed from here: only replies and related packets; one chain for all.
        target = repliesOnly;
        needRepliesOnly = true;
      } else {
        target = ids.take();
        later.push([rules, variant, receiver.zone, target]);
      }
      for (const ip of receiver.rules.ips) {
        const parsed = parseIp(ip);
        if (!parsed || parsed.family !== variant.family) continue;
        yield filter("ingress", main, POLICY_PRIO.allow, handle++, protocol, {
          ...match,
          dstIp: `${ip}/${parsed.family === 4 ? 32 : 128}`,
        }, [{ kind: "ct", zone: receiver.zone, commit: false }, { kind: "goto", chain: target }]);
      }
    }
  }
  yield filter("ingress", main, POLICY_PRIO.final, 1, "all", {}, [{ kind: "pass" }]);
  if (needRepliesOnly) {
    const none: DirectionRules = { isolated: true, policies: [], allow: [] };
    yield* policyChain(none, variants[0], 0, "srcIp", repliesOnly, ids, { kind: "pass" });
  }
  for (const [rules, variant, zone, target] of later) {
    yield* policyChain(rules, variant, zone, "srcIp", target, ids, { kind: "pass" });
  }
}

function dispatchChain(role: DeviceRole, variants: PlacedVariant[], generation: number) {
  const out: TcFilter[] = [];
  const outers = new Set(variants.map(outerOf));
  ENCAPSULATIONS.forEach((outer, o) => {
    if (!outers.has(outer)) return;
    const arp = tagged(outer, "arp");
    out.push(
      filter("ingress", 0, DISPATCH_PRIO.arp + o, 1, arp.protocol, arp.match, [{ kind: "pass" }]),
    );
    const v6 = tagged(outer, "ipv6");
    ND_TYPES.forEach((type, i) => {
      out.push(filter(
        "ingress",
        0,
        DISPATCH_PRIO.neighbourDiscovery + o,
        i + 1,
        v6.protocol,
        { ...v6.match, ipProto: "icmpv6", icmpType: type },
        [{ kind: "pass" }],
      ));
    });
  });
  const sender = role.sender && isPoliced(role.sender.rules) ? role.sender : undefined;
  const handles = new Map<number, number>();
  for (const variant of variants) {
    const prio = DISPATCH_PRIO.ip + variant.index;
    const handle = (handles.get(prio) ?? 0) + 1;
    handles.set(prio, handle);
    const match: FlowerMatch = { ...variant.match };
    if (variant.vlanId !== undefined) match.vlanId = variant.vlanId;
    const actions: TcAction[] = sender
      ? [
        { kind: "ct", zone: sender.zone, commit: false },
        { kind: "goto", chain: chainId(generation, variant.index, STAGE_INDEX.source) },
      ]
      : [{ kind: "goto", chain: chainId(generation, variant.index, STAGE_INDEX.destination) }];
    out.push(filter("ingress", 0, prio, handle, variant.protocol, match, actions));
  }
  if (role.kind === "representor" && role.sender && !role.sender.rules.trunk) {
    // The network carries no tagged traffic of its pods: a tagged frame is not let
    // past the checks untagged frames get.
    out.push(filter("ingress", 0, DISPATCH_PRIO.taggedDrop, 1, "802.1q", {}, [{ kind: "drop" }]));
    out.push(
      filter("ingress", 0, DISPATCH_PRIO.taggedDrop + 1, 1, "802.1ad", {}, [{ kind: "drop" }]),
    );
  }
  out.push(filter("ingress", 0, DISPATCH_PRIO.otherPass, 1, "all", {}, [{ kind: "pass" }]));
  return out;
}

/** Every filter of a device's program, in order, produced one at a time. */
function* deviceFilters(role: DeviceRole, generation: number): Generator<TcFilter> {
  const variants = deviceVariants(role);
  yield* dispatchChain(role, variants, generation);
  const sender = role.sender && isPoliced(role.sender.rules) ? role.sender : undefined;
  for (const index of new Set(variants.map((v) => v.index))) {
    const same = variants.filter((v) => v.index === index);
    const destination = chainId(generation, index, STAGE_INDEX.destination);
    if (sender) {
      const ids = new ChainIds(generation, index, STAGE_INDEX.source + 1);
      const main = chainId(generation, index, STAGE_INDEX.source);
      yield* policyChain(sender.rules.egress, same[0], sender.zone, "dstIp", main, ids, {
        kind: "goto",
        chain: destination,
      });
    }
    yield* destinationStage(role, same, generation);
  }
}

/** Whether a device needs a program: a policed pod sends through it, or one receives there. */
function deviceEnabled(role: DeviceRole): boolean {
  return (role.sender !== undefined && isPoliced(role.sender.rules)) || role.receivers.length > 0;
}

/** The program one device of the node carries. */
export function deviceProgram(role: DeviceRole, generation: number): TcProgram {
  const program: TcProgram = {
    device: role.device,
    enabled: deviceEnabled(role),
    zone: role.sender?.zone ?? 0,
    generation,
    filters: [],
  };
  // Appended one by one: spreading a chain of hundreds of thousands of filters into one
  // push would exceed the engine's argument limit.
  if (program.enabled) {
    for (const f of deviceFilters(role, generation)) program.filters.push(f);
  }
  return program;
}

/**
 * The program of an interface's own representor on a node where no other
 * local pod shares its network: its egress policy and nothing else.
 */
export function generateProgram(rules: InterfaceRules, options: GenerateOptions): TcProgram {
  return deviceProgram({
    device: options.device,
    kind: "representor",
    sender: { rules, zone: options.zone },
    receivers: [],
  }, options.generation);
}

/**
 * How many filters an interface's own checks need (its representor's
 * program, and its ingress policy as the uplink carries it), counting no
 * further than `limit + 1` (so a huge program is never built just to be
 * refused).
 */
export function countFilters(rules: InterfaceRules, limit = Infinity): number {
  if (!isPoliced(rules)) return 0;
  const self: StageInterface = { rules, zone: 1 };
  const roles: DeviceRole[] = [
    { device: "rep", kind: "representor", sender: self, receivers: [] },
    { device: "uplink", kind: "uplink", receivers: [self] },
  ];
  let count = 0;
  for (const role of roles) {
    for (const _ of deviceFilters(role, 1)) if (++count > limit) return count;
  }
  return count;
}
