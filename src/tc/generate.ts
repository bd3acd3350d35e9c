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
import { parseIp } from "../net/ip.ts";
import type { DirectionRules, InterfaceRules } from "../policy/model.ts";
import { ChainIds, DISPATCH_PRIO, filter, ND_TYPES, POLICY_PRIO, STAGE_INDEX } from "./layout.ts";
import {
  chainId,
  type FlowerMatch,
  type TcAction,
  type TcFilter,
  type TcProgram,
} from "./model.ts";
import { policyChain, reducedTo } from "./policy_chain.ts";
import { passThrough, trackingSource, transitional, transitionalEntries } from "./transitional.ts";
import {
  type DeviceKind,
  type Encapsulation,
  ENCAPSULATIONS,
  encapsulations,
  hasFamily,
  outerOf,
  type PlacedVariant,
  tagged,
  VARIANTS,
  vlanOn,
} from "./variants.ts";

export { DISPATCH_PRIO, POLICY_PRIO, STAGE_INDEX } from "./layout.ts";
export { type Variant, VARIANTS } from "./variants.ts";

/** Parameters that are not in the rule model. */
export interface GenerateOptions {
  device: string;
  zone: number;
  generation: number;
}

/** An interface as one stage of a device's program sees it: its rules and its conntrack zone. */
export interface StageInterface {
  rules: InterfaceRules;
  /** Its conntrack zone (1-255 on its e-switch). */
  zone: number;
  /**
   * Set while its checks are first put in place (src/tc/transition.ts): the
   * stage only tracks connections in its zone (`track`), or also commits
   * them (`open`, receivers only), and enforces nothing. Absent: enforced.
   */
  phase?: StagePhase;
}

/** How far a stage is on its way to being enforced (see {@link StageInterface}). */
export type StagePhase = "track" | "open";

/** What one device checks: the policed pod that sends through it, and the pods it receives for. */
export interface DeviceRole {
  device: string;
  /** `representor` of a pod interface's VF, or the `uplink` of a PF. */
  kind: DeviceKind;
  /** The interface whose VF this representor is (absent on an uplink). */
  sender?: StageInterface;
  /** Policed local interfaces whose traffic enters the e-switch here. */
  receivers: StageInterface[];
  /**
   * The Go agent's filters the device still carries: a sender stage that
   * only tracks keeps their verdicts (see src/tc/transitional.ts).
   */
  predecessor?: TcFilter[];
}

/** Whether an interface needs conntrack and a program (some direction is isolated). */
export function isPoliced(rules: InterfaceRules): boolean {
  return rules.ingress.isolated || rules.egress.isolated;
}

const PASS: TcAction = { kind: "pass" };

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
  const sender = policedSender(role);
  if (sender) add(sender.rules);
  for (const receiver of role.receivers) add(receiver.rules);
  // Without a policed sender, a variant only matters where some receiver has an address.
  return [...wanted.values()]
    .filter((v) => sender || receiversOf(role, v).length > 0)
    .sort((a, b) => a.index - b.index || (a.vlanId ?? 0) - (b.vlanId ?? 0));
}

/** The device's sender when it is policed (its source stage and zone are needed). */
function policedSender(role: DeviceRole): StageInterface | undefined {
  return role.sender && isPoliced(role.sender.rules) ? role.sender : undefined;
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
  /** Addresses of the receivers that take nothing from here, with their variant's match. */
  const denied: FlowerMatch[] = [];
  // Chain ids are taken for every receiver before any port chain, so gotos only go forward;
  // the receivers' chains are produced after the dispatch, one at a time.
  const later: [DirectionRules, PlacedVariant, number, number][] = [];
  if (variants[0].family === 6 && !policedSender(role)) {
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
  /** The chain transitional receivers' traffic passes through (taken when one needs it). */
  let passChain = 0;
  for (const variant of variants) {
    const match: FlowerMatch = { ...variant.match };
    if (variant.vlanId !== undefined) match.vlanId = variant.vlanId;
    for (const receiver of receiversOf(role, variant)) {
      if (receiver.phase) {
        passChain ||= ids.take();
        handle = yield* transitionalEntries(
          receiver,
          variant.family,
          match,
          protocol,
          main,
          passChain,
          handle,
        );
        continue;
      }
      const rules = role.sender
        ? reducedTo(receiver.rules.ingress, role.sender.rules.ips)
        : receiver.rules.ingress;
      const nothing = rules.isolated && rules.allow.length === 0;
      let target: number;
      if (nothing) {
        // Nothing allowed from here: only replies and related packets, in one chain shared
        // by all such receivers, which drops each one's packets by its address (so each
        // receiver's drop counter has a filter of its own).
        target = repliesOnly;
      } else {
        target = ids.take();
        later.push([rules, variant, receiver.zone, target]);
      }
      for (const ip of receiver.rules.ips) {
        const parsed = parseIp(ip);
        if (!parsed || parsed.family !== variant.family) continue;
        const dstIp = `${ip}/${parsed.family === 4 ? 32 : 128}`;
        if (nothing) denied.push({ ...match, dstIp });
        yield filter("ingress", main, POLICY_PRIO.allow, handle++, protocol, {
          ...match,
          dstIp,
        }, [{ kind: "ct", zone: receiver.zone, commit: false }, { kind: "goto", chain: target }]);
      }
    }
  }
  yield filter("ingress", main, POLICY_PRIO.final, 1, "all", {}, [{ kind: "pass" }]);
  if (passChain) yield passThrough(passChain);
  if (denied.length > 0) {
    const none: DirectionRules = { isolated: true, policies: [], allow: [] };
    for (const f of policyChain(none, variants[0], 0, "srcIp", repliesOnly, ids, PASS)) {
      if (f.prio === POLICY_PRIO.final) {
        for (const [i, match] of denied.entries()) {
          yield filter("ingress", repliesOnly, POLICY_PRIO.allow, i + 1, protocol, match, [{
            kind: "drop",
          }]);
        }
      }
      yield f;
    }
  }
  for (const [rules, variant, zone, target] of later) {
    yield* policyChain(rules, variant, zone, "srcIp", target, ids, PASS);
  }
}

/**
 * The chain-0 passes of ARP and IPv6 neighbour discovery in one
 * encapsulation (`o`: its index in {@link ENCAPSULATIONS}), which every
 * program puts before anything else.
 */
export function neighbourPasses(outer: Encapsulation, o: number): TcFilter[] {
  const arp = tagged(outer, "arp");
  const v6 = tagged(outer, "ipv6");
  return [
    filter("ingress", 0, DISPATCH_PRIO.arp + o, 1, arp.protocol, arp.match, [{ kind: "pass" }]),
    ...ND_TYPES.map((type, i) =>
      filter(
        "ingress",
        0,
        DISPATCH_PRIO.neighbourDiscovery + o,
        i + 1,
        v6.protocol,
        { ...v6.match, ipProto: "icmpv6", icmpType: type },
        [{ kind: "pass" }],
      )
    ),
  ];
}

function dispatchChain(role: DeviceRole, variants: PlacedVariant[], generation: number) {
  const out: TcFilter[] = [];
  const outers = new Set(variants.map(outerOf));
  ENCAPSULATIONS.forEach((outer, o) => {
    if (outers.has(outer)) out.push(...neighbourPasses(outer, o));
  });
  const sender = policedSender(role);
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
    const dispatch = filter("ingress", 0, prio, handle, variant.protocol, match, actions);
    out.push(sender?.phase ? transitional(dispatch) : dispatch);
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
  const sender = policedSender(role);
  for (const index of new Set(variants.map((v) => v.index))) {
    const same = variants.filter((v) => v.index === index);
    const destination = chainId(generation, index, STAGE_INDEX.destination);
    if (sender?.phase) {
      const main = chainId(generation, index, STAGE_INDEX.source);
      yield* trackingSource(role.predecessor ?? [], main, destination);
    } else if (sender) {
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
  return policedSender(role) !== undefined || role.receivers.length > 0;
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
