/**
 * Which device of the node checks what (pure). A policed pod's egress
 * policy sits on its own representor; its ingress policy wherever traffic
 * to it enters the e-switch: the uplink representor of its PF, and every
 * other local representor of its network on the same e-switch. Traffic for
 * no policed interface passes untouched.
 */
import { cidrContains } from "../net/ip.ts";
import type { DirectionRules, InterfaceRules } from "../policy/model.ts";
import { type DeviceRole, isPoliced, type StageInterface } from "./generate.ts";

/** A local pod interface and where its VF sits on the node's e-switches. */
export interface PlacedInterface {
  rules: InterfaceRules;
  /** Its VF's representor. */
  representor: string;
  /** The uplink representor of its PF. */
  uplink: string;
  /** The e-switch (`phys_switch_id`). */
  switchId: string;
  /** Its conntrack zone; needed when it is policed. */
  zone: number;
}

/** Whether a direction's policy may let traffic through to or from any of `ips`. */
function mayExchange(rules: DirectionRules, ips: readonly string[]): boolean {
  return !rules.isolated ||
    rules.allow.some((entry) =>
      entry.cidrs.some((cidr) => ips.some((ip) => cidrContains(cidr, ip)))
    );
}

/**
 * Whether `receiver`'s checks belong on `sender`'s representor: some packet
 * from the sender to it can get past the sender's own source stage — a new
 * connection the sender's egress policy allows, or a reply to a connection
 * the receiver may open to the sender. When neither can, the sender's egress
 * policy drops everything it sends the receiver, and the receiver's checks
 * are left out there: most pods that do not talk to each other cost nothing.
 */
function exchanges(sender: InterfaceRules, receiver: InterfaceRules): boolean {
  if (!isPoliced(sender)) return true;
  if (mayExchange(sender.egress, receiver.ips)) return true;
  return mayExchange(receiver.egress, sender.ips) && mayExchange(sender.ingress, receiver.ips);
}

/** The role of every device that needs a program, sorted by device name. */
export function nodeRoles(interfaces: readonly PlacedInterface[]): DeviceRole[] {
  const stage = (placed: PlacedInterface): StageInterface => ({
    rules: placed.rules,
    zone: placed.zone,
  });
  const policed = interfaces.filter((placed) => isPoliced(placed.rules));
  const roles = new Map<string, DeviceRole>();
  for (const placed of interfaces) {
    const receivers = policed.filter((other) =>
      other !== placed && other.representor !== placed.representor &&
      other.rules.network === placed.rules.network && other.switchId === placed.switchId &&
      exchanges(placed.rules, other.rules)
    ).map(stage);
    if (!isPoliced(placed.rules) && receivers.length === 0) continue;
    roles.set(placed.representor, {
      device: placed.representor,
      kind: "representor",
      sender: stage(placed),
      receivers,
    });
  }
  for (const placed of policed) {
    const role = roles.get(placed.uplink) ??
      { device: placed.uplink, kind: "uplink" as const, receivers: [] };
    role.receivers.push(stage(placed));
    roles.set(placed.uplink, role);
  }
  return [...roles.values()].sort((a, b) => (a.device < b.device ? -1 : 1));
}

/** The uplink every VF is put behind when the real devices are not known (render, simulate). */
export const PLACEHOLDER_UPLINK = "UPLINK";

/** The placeholder representor of the i-th interface when the real devices are not known. */
export function placeholderRepresentor(index: number): string {
  return `REP${index}`;
}

/**
 * A placement for tools that read manifests, not a node: every VF on one PF
 * (uplink {@link PLACEHOLDER_UPLINK}), representors `REP0`, `REP1`, ... in
 * the order given, zones 1, 2, ... in the same order.
 */
export function placeholderPlacement(interfaces: readonly InterfaceRules[]): PlacedInterface[] {
  return interfaces.map((rules, i) => ({
    rules,
    representor: placeholderRepresentor(i),
    uplink: PLACEHOLDER_UPLINK,
    switchId: "placeholder",
    zone: i + 1,
  }));
}
