/**
 * Runs scenario files inside the kernel VM (as root, with cls_flower,
 * act_gact and act_ct): builds each topology, programs it with the real
 * engine, generator, actuator and driver, sends the probes, and prints one
 * line per probe and a closing `N passed, M failed` line. Each probe also
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
import { Actuator } from "../../../src/tc/actuator.ts";
import { describeProbe, parseScenario, type Scenario } from "./format.ts";
import { Listeners, resolvePath, sendProbe, tagPath } from "./probe.ts";
import { describeFlow, simulateProbe } from "./simulate.ts";
import { type Topology, withTopology } from "./topology.ts";
import type { TcFilter } from "../../../src/tc/model.ts";
import { Conntrack } from "../../../src/tc/simulator/conntrack.ts";
import { programKey } from "../../../src/tc/simulator/endpoints.ts";

/** Counts of one run. */
export interface ScenarioCounts {
  passed: number;
  failed: number;
}

/** Programs every local interface of the scenario's node; returns the number of filters. */
export async function programScenario(
  scenario: Scenario,
  topology: Topology,
  actuator: Actuator,
): Promise<number> {
  const rules = rulesFor(stateFromObjects(scenario.objects), scenario.node);
  let filters = 0;
  for (const iface of rules.interfaces) {
    const device = topology.representors.get(iface.pciAddress);
    if (!device) throw new Error(`no representor for PCI ${iface.pciAddress}`);
    filters += (await actuator.sync(device, iface)).filters;
  }
  return filters;
}

/**
 * What each representor of the topology carries, read back from the kernel
 * through the driver, by `namespace/pod|namespace/network` (for the simulator).
 */
export async function readPrograms(
  topology: Topology,
  driver: TcDriver,
): Promise<Map<string, TcFilter[]>> {
  const programs = new Map<string, TcFilter[]>();
  for (const iface of topology.interfaces) {
    const state = await driver.read(iface.representor);
    if (state.filters.length === 0) continue;
    programs.set(programKey(podKey(iface.pod), iface.network), state.filters);
  }
  return programs;
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
  const counts = { passed: 0, failed: 0 };
  const listeners = new Listeners();
  const conntrack = new Conntrack();
  const pods = topology.interfaces.map((i) => i.pod);
  let agreed = 0;
  try {
    for (const [index, probe] of scenario.probes.entries()) {
      let verdict: "allow" | "deny";
      try {
        const path = await resolvePath(topology, probe);
        await listeners.ensure(path, probe);
        const untag = await tagPath(path, probe);
        try {
          verdict = await sendProbe(path, probe) ? "allow" : "deny";
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
      }
      console.log(`  ${ok ? "ok  " : "FAIL"} ${describeProbe(probe)}${why}`);
      if (ok) counts.passed++;
      else counts.failed++;
    }
  } finally {
    await listeners.stop();
  }
  if (programs) {
    console.log(
      `scenario ${scenario.name}: the simulator agrees with the kernel on ${agreed} of ` +
        `${scenario.probes.length} probes`,
    );
  }
  return counts;
}

/** Runs one scenario with the actuator called directly; prints its probes' results. */
export async function runScenario(scenario: Scenario, driver: TcDriver): Promise<ScenarioCounts> {
  return await withTopology(scenario.objects, async (topology) => {
    const filters = await programScenario(scenario, topology, new Actuator(driver));
    console.log(`scenario ${scenario.name}: programmed ${filters} filters`);
    return await probeScenario(scenario, topology, await readPrograms(topology, driver));
  });
}

if (import.meta.main) {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    options: { "tc-driver": { type: "string", default: "cmdline" } },
    allowPositionals: true,
  });
  const driver = createDriver(values["tc-driver"]);
  const total = { passed: 0, failed: 0 };
  for (const file of positionals) {
    try {
      const scenario = parseScenario(await Deno.readTextFile(file), file);
      const counts = await runScenario(scenario, driver);
      total.passed += counts.passed;
      total.failed += counts.failed;
    } catch (error) {
      console.log(`scenario ${file}: FAIL ${(error as Error).message}`);
      total.failed++;
    }
  }
  console.log(`${total.passed} passed, ${total.failed} failed`);
  Deno.exit(total.failed > 0 ? 1 : 0);
}
