/**
 * The program a representor falls back to when `--offload=require` finds a
 * filter that must be in the NIC and is not: deny everything its pod sends,
 * in chain 0, with filters the NIC takes. ARP and IPv6 neighbour discovery
 * still pass, so the pod stays reachable at layer 2 and recovers at once
 * when its full program can be enforced again.
 *
 * Neighbour discovery needs care: the NIC cannot match an ICMPv6 type
 * (modelled: src/tc/offload/profile.ts `icmpType`), so the ND passes are
 * software-only. In hardware an ND packet skips them and meets a `ct`
 * action, which never holds ICMPv6 in the NIC: the packet goes to software,
 * which runs chain 0 again from its start and passes it there. Every other
 * IPv6 packet is dropped after that same `ct` action (in software: a `ct`
 * with nothing committed in its zone never hits in the NIC); IPv4 is dropped
 * in the NIC.
 */
import { neighbourPasses } from "./generate.ts";
import { DISPATCH_PRIO, filter } from "./layout.ts";
import type { TcFilter, TcProgram } from "./model.ts";
import { ENCAPSULATIONS, VARIANTS } from "./variants.ts";

/** A representor's deny-all that the NIC enforces (ARP and ND passing). */
export function fallbackProgram(device: string, zone: number, generation: number): TcProgram {
  const filters: TcFilter[] = [];
  ENCAPSULATIONS.forEach((outer, o) => filters.push(...neighbourPasses(outer, o)));
  // At the prios and protocols the full program dispatches each variant with, so a swap
  // between the two never meets a prio holding another protocol.
  for (const variant of VARIANTS) {
    filters.push(filter(
      "ingress",
      0,
      DISPATCH_PRIO.ip + variant.index,
      1,
      variant.protocol,
      variant.match,
      variant.family === 6
        // Every IPv6 packet meets ct (software re-runs chain 0 for it: ND passes there).
        ? [{ kind: "ct", zone, commit: false }, { kind: "drop" }]
        : [{ kind: "drop" }],
    ));
  }
  // Not IP: passed, as the full program passes it.
  filters.push(filter("ingress", 0, DISPATCH_PRIO.otherPass, 1, "all", {}, [{ kind: "pass" }]));
  return { device, enabled: true, zone, generation, filters };
}
