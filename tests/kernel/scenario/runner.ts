/**
 * Runs scenario files inside the kernel VM (as root, with cls_flower,
 * act_gact and act_ct): builds each topology, programs it with the real
 * engine, generator, actuator and driver, sends the probes, and prints one
 * line per probe and a closing `N passed, M failed, R retried` line. Each probe also
 * runs through the TC simulator on the filters read back from the kernel; a
 * probe passes when the kernel's verdict is the expected one and the
 * simulator's is the kernel's.
 *
 *   deno run -A tests/kernel/scenario/runner.ts [--tc-driver cmdline|netlink] FILE...
 */
import { parseArgs } from "node:util";
import { stateFromObjects } from "../../../src/cluster/manifests.ts";
import { podKey } from "../../../src/cluster/types.ts";
import type { TcDriver } from "../../../src/tc/driver.ts";
import { createDriver } from "../../../src/drivers/factory.ts";
import { rulesFor } from "../../support/cluster.ts";
import { Actuator, type SyncResult } from "../../../src/tc/actuator.ts";
import { describeProbe, parseScenario, type Scenario } from "./format.ts";
import { type ScenarioCounts, summaryLine } from "./summary.ts";

export type { ScenarioCounts } from "./summary.ts";
import { Listeners, resolvePath, sendProbe, tagPath } from "./probe.ts";
import { describeFlow, simulateProbe } from "./simulate.ts";
import { type Topology, withTopology } from "./topology.ts";
import type { TcFilter } from "../../../src/tc/model.ts";
import { Conntrack } from "../../../src/tc/simulator/conntrack.ts";
import { programKey, wireKey } from "../../../src/tc/simulator/endpoints.ts";
import { deviceProgram } from "../../../src/tc/generate.ts";
import { nodeRoles, type PlacedInterface } from "../../../src/tc/placement.ts";
import type { InterfaceRules } from "../../../src/policy/model.ts";
import { checkProgram } from "../../../src/tc/offload/checker.ts";

/** Where the topology puts each local interface: its veth representor and its network's uplink. */
export function placeInTopology(
  topology: Topology,
  interfaces: readonly InterfaceRules[],
): PlacedInterface[] {
  return interfaces.map((rules, i) => {
    const representor = topology.representors.get(rules.pciAddress);
    const uplink = topology.uplinks.get(rules.network);
    if (!representor || !uplink) throw new Error(`no representor for PCI ${rules.pciAddress}`);
    return { rules, representor, uplink, switchId: "vm", zone: i + 1 };
  });
}

/**
 * Programs every device the node's interfaces need (as the agent does);
 * devices that need nothing are cleaned. Returns the number of filters;
 * each device's sync result is added to `results`.
 */
export async function programInterfaces(
  topology: Topology,
  actuator: Actuator,
  interfaces: readonly InterfaceRules[],
  results: SyncResult[] = [],
): Promise<number> {
  const roles = nodeRoles(placeInTopology(topology, interfaces));
  const wanted = new Set(roles.map((role) => role.device));
  let filters = 0;
  for (const role of roles) {
    const result = await actuator.sync(role.device, (g) => deviceProgram(role, g));
    results.push(result);
    filters += result.filters;
  }
  const all = [
    ...topology.interfaces.filter((i) => i.local).map((i) => i.representor),
    ...topology.uplinks.values(),
  ];
  for (const device of all) if (!wanted.has(device)) await actuator.sync(device, null);
  return filters;
}

/** Programs every local interface of the scenario's node; returns the number of filters. */
export async function programScenario(
  scenario: Scenario,
  topology: Topology,
  actuator: Actuator,
): Promise<number> {
  const rules = rulesFor(stateFromObjects(scenario.objects), scenario.node);
  return await programInterfaces(topology, actuator, rules.interfaces);
}

/**
 * What each device of the topology carries, read back from the kernel
 * through the driver (for the simulator): each local representor by
 * `namespace/pod|namespace/network`, each network's uplink as its wire side.
 */
export async function readPrograms(
  topology: Topology,
  driver: TcDriver,
): Promise<Map<string, TcFilter[]>> {
  const programs = new Map<string, TcFilter[]>();
  for (const iface of topology.interfaces) {
    if (!iface.local) continue;
    const state = await driver.read(iface.representor);
    programs.set(programKey(podKey(iface.pod), iface.network), state.filters);
  }
  for (const [network, uplink] of topology.uplinks) {
    programs.set(wireKey(network), (await driver.read(uplink)).filters);
  }
  return programs;
}

/**
 * What the kernel holds, checked as a NIC would take it: one line per filter
 * on an egress hook or that the offload checker says would break.
 */
export function heldProblems(programs: ReadonlyMap<string, readonly TcFilter[]>): string[] {
  const out: string[] = [];
  for (const [key, filters] of programs) {
    for (const check of checkProgram(filters).filters) {
      const f = check.filter;
      if (f.hook !== "ingress") out.push(`${key}: a filter on the ${f.hook} hook`);
      else if (check.classification === "breaks") {
        out.push(`${key}: chain ${f.chain} prio ${f.prio} breaks: ${check.reason}`);
      }
    }
  }
  return out;
}

/**
 * Sends the scenario's probes over a built, programmed topology; prints one
 * line each. With `programs` (what the kernel holds), each probe also goes
 * through the TC simulator, and a simulator verdict that differs from the
 * kernel's fails the probe.
 */
export async function probeScenario(
  scenario: Scenario,
  topology: Topology,
  programs?: ReadonlyMap<string, readonly TcFilter[]>,
): Promise<ScenarioCounts> {
  const counts = { passed: 0, failed: 0, retried: 0 };
  const listeners = new Listeners();
  const conntrack = new Conntrack();
  const hardwareConntrack = new Conntrack();
  const pods = topology.interfaces.map((i) => i.pod);
  let agreed = 0;
  let hardwareAgreed = 0;
  try {
    for (const [index, probe] of scenario.probes.entries()) {
      let verdict: "allow" | "deny";
      try {
        const path = await resolvePath(topology, probe);
        await listeners.ensure(path, probe);
        const untag = await tagPath(path, probe);
        try {
          verdict = await sendProbe(path, probe) ? "allow" : "deny";
          if (verdict === "deny" && probe.expect === "allow") {
            // No answer where one was expected: once more before it counts as denied.
            counts.retried++;
            verdict = await sendProbe(path, probe) ? "allow" : "deny";
          }
        } finally {
          await untag();
        }
      } catch (error) {
        console.log(`  FAIL ${describeProbe(probe)}: ${(error as Error).message}`);
        counts.failed++;
        continue;
      }
      let ok = verdict === probe.expect;
      let why = ok ? "" : `: got ${verdict}`;
      if (programs) {
        const simulated = simulateProbe(pods, programs, probe, index, conntrack);
        if (simulated.verdict === verdict) agreed++;
        else {
          ok = false;
          why += `: the kernel says ${verdict}, the simulator ${describeFlow(simulated)}`;
        }
        // The same programs on an e-switch (modelled): the verdict must not change there.
        const hardware = simulateProbe(pods, programs, probe, index, hardwareConntrack, "hardware");
        if (hardware.verdict === probe.expect) hardwareAgreed++;
        else {
          ok = false;
          why += `: in hardware (modelled) ${describeFlow(hardware)}`;
        }
      }
      console.log(`  ${ok ? "ok  " : "FAIL"} ${describeProbe(probe)}${why}`);
      if (ok) counts.passed++;
      else counts.failed++;
    }
  } finally {
    await listeners.stop();
  }
  if (counts.retried > 0) {
    console.log(`scenario ${scenario.name}: ${counts.retried} probes retried after no answer`);
  }
  if (programs) {
    console.log(
      `scenario ${scenario.name}: the simulator agrees with the kernel on ${agreed} of ` +
        `${scenario.probes.length} probes; in hardware mode ${hardwareAgreed} of them get the ` +
        `expected verdict`,
    );
  }
  return counts;
}

/** Runs one scenario with the actuator called directly; prints its probes' results. */
export async function runScenario(scenario: Scenario, driver: TcDriver): Promise<ScenarioCounts> {
  return await withTopology(scenario.objects, scenario.node, async (topology) => {
    const filters = await programScenario(scenario, topology, new Actuator(driver));
    const programs = await readPrograms(topology, driver);
    const problems = heldProblems(programs);
    console.log(
      `scenario ${scenario.name}: programmed ${filters} filters; ${problems.length} on an ` +
        `egress hook or breaking on the NIC`,
    );
    for (const problem of problems) console.log(`  FAIL ${problem}`);
    const counts = await probeScenario(scenario, topology, programs);
    return { ...counts, failed: counts.failed + problems.length };
  });
}

if (import.meta.main) {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    options: { "tc-driver": { type: "string", default: "cmdline" } },
    allowPositionals: true,
  });
  const driver = createDriver(values["tc-driver"]);
  const total = { passed: 0, failed: 0, retried: 0 };
  for (const file of positionals) {
    try {
      const scenario = parseScenario(await Deno.readTextFile(file), file);
      const counts = await runScenario(scenario, driver);
      total.passed += counts.passed;
      total.failed += counts.failed;
      total.retried += counts.retried;
    } catch (error) {
      console.log(`scenario ${file}: FAIL ${(error as Error).message}`);
      total.failed++;
    }
  }
  console.log(summaryLine(total));
  Deno.exit(total.failed > 0 ? 1 : 0);
}
