/**
 * Which filters of a device's program drop traffic by policy, and whose
 * policy (pure): the final `drop` of each policy chain and port chain,
 * attributed to the interface and direction the chain checks, and the
 * per-address drops of the chain shared by receivers that take nothing from
 * a representor's sender. Drop counters are read from these filters.
 */
import type { Direction } from "../cluster/types.ts";
import type { InterfaceRules } from "../policy/model.ts";
import type { DeviceRole } from "./generate.ts";
import { POLICY_PRIO, STAGE_INDEX } from "./layout.ts";
import { counterKey, type TcProgram } from "./model.ts";

/** A filter whose counter is traffic dropped by one interface's policy in one direction. */
export interface DropSite {
  /** The filter's {@link counterKey} on its device. */
  key: string;
  /** The interface whose policy drops there. */
  rules: InterfaceRules;
  direction: Direction;
}

/** The index of a chain within its variant (see `chainId`). */
function indexOf(chain: number): number {
  return chain % 100_000;
}

/**
 * The drop sites of `program`, the program `role` calls for. A chain's owner
 * follows from how it is reached: from chain 0 through the sender's `ct zone`
 * (its egress policy), from the destination stage through a receiver's
 * `ct zone` (that receiver's ingress policy), or by a plain goto from a chain
 * already owned (a port chain).
 */
export function dropSites(role: DeviceRole, program: TcProgram): DropSite[] {
  const byZone = new Map<number, InterfaceRules>();
  const byAddress = new Map<string, InterfaceRules>();
  for (const receiver of role.receivers) {
    byZone.set(receiver.zone, receiver.rules);
    for (const ip of receiver.rules.ips) byAddress.set(ip, receiver.rules);
  }
  const owners = new Map<number, { rules: InterfaceRules; direction: Direction }>();
  const sites: DropSite[] = [];
  // Gotos only go forward, so a chain's owner is known before its filters are read.
  const filters = program.filters.slice().sort((a, b) => a.chain - b.chain);
  for (const filter of filters) {
    const owner = owners.get(filter.chain);
    const drops = filter.actions.some((a) => a.kind === "drop");
    if (owner && filter.prio === POLICY_PRIO.final && drops) {
      sites.push({ key: counterKey(filter), ...owner });
    }
    if (indexOf(filter.chain) === STAGE_INDEX.repliesOnly && drops && filter.match.dstIp) {
      // The chain receivers that take nothing from this sender share: one drop per address.
      const rules = byAddress.get(filter.match.dstIp.split("/")[0]);
      if (rules) sites.push({ key: counterKey(filter), rules, direction: "ingress" });
    }
    const goto = filter.actions.find((a) => a.kind === "goto");
    if (!goto || goto.kind !== "goto" || owners.has(goto.chain)) continue;
    const target = indexOf(goto.chain);
    if (target === STAGE_INDEX.destination || target === STAGE_INDEX.repliesOnly) continue;
    const ct = filter.actions.find((a) => a.kind === "ct");
    if (ct?.kind === "ct" && !ct.commit) {
      if (target === STAGE_INDEX.source && role.sender) {
        owners.set(goto.chain, { rules: role.sender.rules, direction: "egress" });
      } else if (target > STAGE_INDEX.destination && byZone.has(ct.zone)) {
        owners.set(goto.chain, { rules: byZone.get(ct.zone)!, direction: "ingress" });
      }
    } else if (owner) {
      owners.set(goto.chain, owner);
    }
  }
  return sites;
}
