/**
 * Runs scenario files inside the kernel VM (as root, with cls_flower,
 * act_gact and act_ct): builds each topology, programs it with the real
 * engine, generator, actuator and driver, sends the probes, and prints one
 * line per probe and a closing `N passed, M failed` line.
 *
 *   deno run -A tests/kernel/scenario/runner.ts [--tc-driver cmdline|netlink] FILE...
 */
import { parseArgs } from "node:util";
import { stateFromObjects } from "../../../src/cluster/manifests.ts";
import type { TcDriver } from "../../../src/tc/driver.ts";
import { createDriver } from "../../../src/drivers/factory.ts";
import { rulesFor } from "../../support/cluster.ts";
import { Actuator } from "../../../src/tc/actuator.ts";
import { describeProbe, parseScenario, type Scenario } from "./format.ts";
import { Listeners, resolvePath, sendProbe, tagPath } from "./probe.ts";
import { type Topology, withTopology } from "./topology.ts";

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

/** Sends the scenario's probes over a built, programmed topology; prints one line each. */
export async function probeScenario(
  scenario: Scenario,
  topology: Topology,
): Promise<ScenarioCounts> {
  const counts = { passed: 0, failed: 0 };
  const listeners = new Listeners();
  try {
    for (const probe of scenario.probes) {
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
      const ok = verdict === probe.expect;
      console.log(
        `  ${ok ? "ok  " : "FAIL"} ${describeProbe(probe)}${ok ? "" : `: got ${verdict}`}`,
      );
      if (ok) counts.passed++;
      else counts.failed++;
    }
  } finally {
    await listeners.stop();
  }
  return counts;
}

/** Runs one scenario with the actuator called directly; prints its probes' results. */
export async function runScenario(scenario: Scenario, driver: TcDriver): Promise<ScenarioCounts> {
  return await withTopology(scenario.objects, async (topology) => {
    const filters = await programScenario(scenario, topology, new Actuator(driver));
    console.log(`scenario ${scenario.name}: programmed ${filters} filters`);
    return await probeScenario(scenario, topology);
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
