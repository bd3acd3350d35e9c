/**
 * Every probe of every scenario file through the TC simulator, in software
 * mode (the kernel) and in hardware mode (an mlx5 e-switch as its offload
 * profile models it): the programs the agent would write for the scenario's
 * node, each probe's packets through the devices they enter, and the
 * verdict compared with the one the scenario expects, which is the one the
 * kernel VM gives (tests/kernel/kernel.test.ts runs the same files with real
 * packets).
 */
import assert from "node:assert/strict";
import { stateFromObjects } from "../../src/cluster/manifests.ts";
import { computeNodeRules } from "../../src/policy/engine.ts";
import { Conntrack } from "../../src/tc/simulator/conntrack.ts";
import { SIMULATION_MODES } from "../../src/tc/simulator/flow.ts";
import { describeProbe, parseScenario } from "../kernel/scenario/format.ts";
import { describeFlow, simulateProbe } from "../kernel/scenario/simulate.ts";
import { nodePrograms } from "../../src/tc/simulator/endpoints.ts";

const DIR = new URL("../kernel/scenarios/", import.meta.url);

const files = [...Deno.readDirSync(DIR)].map((e) => e.name).filter((n) => n.endsWith(".yaml"))
  .sort();

for (const file of files) {
  for (const mode of SIMULATION_MODES) {
    Deno.test(`simulator (${mode}): every probe of ${file} gets the expected verdict`, async () => {
      const scenario = parseScenario(await Deno.readTextFile(new URL(file, DIR)), file);
      const state = stateFromObjects(scenario.objects);
      const rules = computeNodeRules(state, {
        node: scenario.node,
        networkPlugins: ["accelerated-bridge"],
      });
      const programs = nodePrograms(rules.interfaces);
      const conntrack = new Conntrack();
      const wrong: string[] = [];
      for (const [i, probe] of scenario.probes.entries()) {
        const result = simulateProbe(state.pods, programs, probe, i, conntrack, mode);
        if (result.verdict !== probe.expect) {
          wrong.push(`${describeProbe(probe)}: simulator says ${describeFlow(result)}`);
        }
      }
      console.log(
        `${file} (${mode}): ${scenario.probes.length - wrong.length}/${scenario.probes.length} ` +
          `agree`,
      );
      assert.deepEqual(wrong, []);
    });
  }
}
