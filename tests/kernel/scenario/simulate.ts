/**
 * A scenario probe through the TC simulator (src/tc/simulator), its ends
 * resolved as the kernel harness resolves them (./probe.ts). Used by the
 * simulator's scenario test on the host and by the scenario runner in the VM,
 * which compares it with the kernel's verdict probe by probe.
 */
import type { Pod } from "../../../src/cluster/types.ts";
import type { Conntrack } from "../../../src/tc/simulator/conntrack.ts";
import { type ProgramsByInterface, resolveEnds } from "../../../src/tc/simulator/endpoints.ts";
import {
  type FlowResult,
  simulateFlow,
  type SimulationMode,
} from "../../../src/tc/simulator/flow.ts";
import type { Probe } from "./format.ts";

/**
 * Simulates probe number `index` of a scenario (its index picks its own
 * source port), in software (the kernel) or hardware (an e-switch) mode.
 */
export function simulateProbe(
  pods: readonly Pod[],
  programs: ProgramsByInterface,
  probe: Probe,
  index: number,
  conntrack: Conntrack,
  mode: SimulationMode = "software",
): FlowResult {
  const { from, to } = resolveEnds(pods, programs, probe);
  return simulateFlow(
    from,
    to,
    {
      protocol: probe.protocol,
      port: probe.port,
      family: probe.family,
      tags: probe.vlan ? ["802.1q"] : [],
      vlanId: probe.vlan,
      sport: 40000 + index,
    },
    conntrack,
    { mode },
  );
}

/** One line saying where a flow ended: its last packet and the filters it met. */
export function describeFlow(result: FlowResult): string {
  const last = result.packets.at(-1)!;
  const steps = last.steps.map((s) => `${s.end} ${s.hook} chain ${s.chain} prio ${s.prio}`)
    .join(", ");
  return `${result.verdict} (${last.name} ${last.verdict}${steps ? ` after ${steps}` : ""})`;
}
