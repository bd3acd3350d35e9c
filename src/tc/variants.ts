/**
 * Variants: the encapsulation × family combinations a program classifies
 * (untagged, 802.1Q and QinQ, each for IPv4 and IPv6), and which of them a
 * network's frames use where they enter the e-switch.
 */
import type { Family } from "../net/ip.ts";
import type { InterfaceRules } from "../policy/model.ts";
import type { EthProtocol, FlowerMatch, InnerEthType } from "./model.ts";

/** An encapsulation × family combination the program classifies. */
export interface Variant {
  index: number;
  family: Family;
  protocol: EthProtocol;
  match: FlowerMatch;
}

/** The protocol and match of an encapsulation around `inner`. */
export function tagged(outer: "none" | "802.1q" | "qinq", inner: InnerEthType) {
  if (outer === "none") return { protocol: inner as EthProtocol, match: {} };
  if (outer === "802.1q") {
    return { protocol: "802.1q" as EthProtocol, match: { vlanEthType: inner } };
  }
  return {
    protocol: "802.1ad" as EthProtocol,
    match: { vlanEthType: "802.1q" as InnerEthType, cvlanEthType: inner },
  };
}

/** Untagged, 802.1Q and QinQ. */
export const ENCAPSULATIONS = ["none", "802.1q", "qinq"] as const;

/** The six variants: untagged, 802.1Q and QinQ, each for IPv4 and IPv6. */
export const VARIANTS: readonly Variant[] = ENCAPSULATIONS.flatMap((outer, o) =>
  ([4, 6] as Family[]).map((family, f) => ({
    index: o * 2 + f,
    family,
    ...tagged(outer, family === 4 ? "ip" : "ipv6"),
  }))
);

/** Where frames enter the e-switch: a pod's VF representor, or a PF's uplink representor. */
export type DeviceKind = "representor" | "uplink";

/** One of {@link ENCAPSULATIONS}. */
export type Encapsulation = (typeof ENCAPSULATIONS)[number];

/** A variant as written on one device: with the VLAN id it carries there, if any. */
export interface PlacedVariant extends Variant {
  vlanId?: number;
}

/** The encapsulations in which a network's frames appear where they enter the e-switch. */
export function encapsulations(rules: InterfaceRules, kind: DeviceKind): Encapsulation[] {
  if (rules.trunk) return [...ENCAPSULATIONS];
  // On its own representor a pod's frames are untagged; on the uplink they carry the
  // network's VLAN, when it has one.
  return kind === "uplink" && rules.vlan !== undefined ? ["802.1q"] : ["none"];
}

/** A variant's encapsulation. */
export function outerOf(variant: Variant): Encapsulation {
  return ENCAPSULATIONS[Math.floor(variant.index / 2)];
}

/** Whether the interface has an address of `family`. */
export function hasFamily(rules: InterfaceRules, family: Family): boolean {
  return rules.ips.some((ip) => (ip.includes(":") ? 6 : 4) === family);
}

/** The VLAN id a network's frames carry in `outer` on this kind of device, if one is matched. */
export function vlanOn(
  rules: InterfaceRules,
  kind: DeviceKind,
  outer: Encapsulation,
): number | undefined {
  return kind === "uplink" && outer === "802.1q" && !rules.trunk ? rules.vlan : undefined;
}
