/**
 * Whether a NIC takes one filter into its tables, by its offload profile
 * alone: the hook, the protocol, each flower key, each action, the chain and
 * priority. What a program does with the filters the NIC refuses is the
 * checker's business (`checker.ts`).
 */
import type { TcFilter } from "../model.ts";
import { blockMask } from "../ports.ts";
import { parseCtState } from "../simulator/flower.ts";
import type { KeySupport, OffloadProfile } from "./profile.ts";

/** The simple keys: offloaded or not, nothing more to check. */
const PLAIN_KEYS = [
  "vlanId",
  "vlanEthType",
  "cvlanEthType",
  "srcIp",
  "dstIp",
  "ipProto",
  "icmpType",
] as const satisfies readonly (keyof KeySupport)[];

/** Why the NIC refuses `filter`, one reason each; empty when it offloads it. */
export function offloadRefusals(filter: TcFilter, profile: OffloadProfile): string[] {
  const refusals: string[] = [];
  const { match } = filter;
  if (!profile.hooks.value.includes(filter.hook)) refusals.push(`${filter.hook} hook`);
  if (!profile.protocols.value.includes(filter.protocol)) {
    refusals.push(`protocol ${filter.protocol}`);
  }
  const { maxChain, maxPrio } = profile.chains.value;
  if (filter.chain > maxChain) refusals.push(`chain ${filter.chain} (max ${maxChain})`);
  if (filter.prio > maxPrio) refusals.push(`prio ${filter.prio} (max ${maxPrio})`);
  for (const key of PLAIN_KEYS) {
    if (match[key] !== undefined && !profile.keys[key].value) refusals.push(`${key} match`);
  }
  if (match.dstPort) {
    const ports = profile.keys.dstPort.value;
    const { first, last } = match.dstPort;
    const text = first === last ? `${first}` : `${first}-${last}`;
    if (!match.ipProto || !ports.protocols.includes(match.ipProto)) {
      refusals.push(`port ${text} on ${match.ipProto ?? "no IP protocol"}`);
    } else if (!ports.ranges && blockMask(match.dstPort) === null) {
      refusals.push(`port range ${text}`);
    }
  }
  if (match.ctState) {
    const support = profile.keys.ctState.value;
    const { set, unset } = parseCtState(match.ctState);
    const bad = [
      ...set.filter((f) => !support.set.includes(f)).map((f) => `+${f}`),
      ...unset.filter((f) => !support.unset.includes(f)).map((f) => `-${f}`),
    ];
    if (bad.length > 0) refusals.push(`ct_state ${bad.join("")}`);
  }
  const cts = filter.actions.filter((a) => a.kind === "ct");
  const ct = profile.actions.ct.value;
  if (cts.length > ct.perFilter) refusals.push(`${cts.length} ct actions (max ${ct.perFilter})`);
  if (!ct.commit && cts.some((a) => a.commit)) refusals.push("ct commit");
  for (const action of filter.actions) {
    if (action.kind === "pass" && !profile.actions.pass.value) refusals.push("pass");
    if (action.kind === "drop" && !profile.actions.drop.value) refusals.push("drop");
    if (action.kind !== "goto") continue;
    if (action.chain <= filter.chain && !profile.actions.goto.value.backward) {
      refusals.push(`goto chain ${action.chain} backwards`);
    }
    if (action.chain > maxChain) refusals.push(`goto chain ${action.chain} (max ${maxChain})`);
  }
  return refusals;
}

/** Whether the NIC takes `filter` into its tables. */
export function isOffloaded(filter: TcFilter, profile: OffloadProfile): boolean {
  return offloadRefusals(filter, profile).length === 0;
}
