/**
 * One packet through a switchdev e-switch: the sender's representor ingress
 * filters the NIC holds (by the offload profile) run in hardware; a `ct`
 * action there hits only connections in the hardware flow table, and a miss
 * hands the packet to software, which runs the full program from where the
 * profile says (the missed filter's chain, or its `ct` action) and then
 * takes the software path on (the receiver's egress hook). A packet decided
 * in hardware meets no egress hook: a pass, or falling off the tables, is
 * forwarded by the offloaded bridge.
 */
import { isOffloaded } from "../offload/offloadable.ts";
import type { OffloadProfile } from "../offload/profile.ts";
import type { TcFilter } from "../model.ts";
import type { Conntrack } from "./conntrack.ts";
import type { FlowEnd, FlowStep } from "./flow.ts";
import { type CtFlag, flowerMatches } from "./flower.ts";
import { hardwareCt, offerToFlowTable } from "./flowtable.ts";
import {
  actionText,
  chainsOf,
  type CtProcessor,
  ending,
  type Resume,
  runHook,
  type TraceStep,
} from "./hook.ts";
import type { Packet } from "./packet.ts";

/** How an ingress hook ended in hardware: a verdict, or a handover to software. */
export type HardwareOutcome =
  | { kind: "verdict"; verdict: "pass" | "drop"; trace: TraceStep[]; fellOff: boolean }
  | { kind: "software"; resume: Resume; ct: Set<CtFlag>; trace: TraceStep[] };

/** A loop guard, as in software. */
const MAX_JUMPS = 32;

/** Runs `packet` through the ingress filters of `filters` that the NIC holds. */
export function runHardwareIngress(
  filters: readonly TcFilter[],
  packet: Packet,
  conntrack: Conntrack,
  profile: OffloadProfile,
): HardwareOutcome {
  const byChain = chainsOf(filters.filter((f) => isOffloaded(f, profile)), "ingress");
  const trace: TraceStep[] = [];
  let ct = new Set<CtFlag>();
  let chain = 0;
  for (let jumps = 0; jumps < MAX_JUMPS; jumps++) {
    const filter = (byChain.get(chain) ?? []).find((f) =>
      flowerMatches(f.protocol, f.match, packet, ct)
    );
    if (!filter) return { kind: "verdict", verdict: "pass", trace, fellOff: true };
    const did: string[] = [];
    const step = () => ({ hook: filter.hook, chain, prio: filter.prio, handle: filter.handle });
    let next: number | null = null;
    let verdict: "pass" | "drop" | null = null;
    for (const [i, action] of filter.actions.entries()) {
      if (action.kind === "ct") {
        const text = `ct zone ${action.zone}${action.commit ? " commit" : ""}`;
        const hit = hardwareCt(conntrack, action.zone, packet, profile);
        if (!hit) {
          did.push(`${text} (miss: to software)`);
          trace.push({ ...step(), did, ct: [...ct], where: "hardware" });
          const resume: Resume = profile.conntrack.missResumes.value === "chain"
            ? { chain }
            : { filter, action: i };
          return { kind: "software", resume, ct, trace };
        }
        ct = hit;
        did.push(`${text} (hit)`);
        continue;
      }
      ({ next, verdict } = ending(action));
      did.push(actionText(action));
      break;
    }
    trace.push({ ...step(), did, ct: [...ct], where: "hardware" });
    if (verdict) return { kind: "verdict", verdict, trace, fellOff: false };
    if (next === null) return { kind: "verdict", verdict: "pass", trace, fellOff: false };
    chain = next;
  }
  throw new Error(`more than ${MAX_JUMPS} chain jumps in hardware: a loop in the program`);
}

/** One packet's fate on the e-switch. */
export interface HardwarePacket {
  verdict: "pass" | "drop";
  steps: FlowStep[];
  /** True when the NIC decided it; false when it went to software. */
  inHardware: boolean;
}

/** Sends `packet` from `sender` to `receiver` through the e-switch. */
export function hardwarePacket(
  sender: FlowEnd,
  receiver: FlowEnd,
  packet: Packet,
  conntrack: Conntrack,
  profile: OffloadProfile,
): HardwarePacket {
  const steps: FlowStep[] = [];
  const record = (end: FlowEnd, trace: readonly TraceStep[]) => {
    for (const step of trace) steps.push({ ...step, end: end.label ?? end.address });
  };
  if (!sender.filters) return { verdict: "pass", steps, inHardware: true };
  const hw = runHardwareIngress(sender.filters, packet, conntrack, profile);
  record(sender, hw.trace);
  if (hw.kind === "verdict") return { verdict: hw.verdict, steps, inHardware: true };
  const software: CtProcessor = {
    process(zone, p, commit) {
      const flags = conntrack.process(zone, p, commit);
      offerToFlowTable(conntrack, zone, p, flags, profile);
      return flags;
    },
  };
  const ingress = runHook(sender.filters, "ingress", packet, software, hw.ct, hw.resume);
  record(sender, ingress.trace);
  if (ingress.verdict === "drop" || !receiver.filters) {
    return { verdict: ingress.verdict, steps, inHardware: false };
  }
  const ct = new Set(ingress.trace.at(-1)?.ct ?? hw.ct);
  const egress = runHook(receiver.filters, "egress", packet, software, ct);
  record(receiver, egress.trace);
  return { verdict: egress.verdict, steps, inHardware: false };
}
