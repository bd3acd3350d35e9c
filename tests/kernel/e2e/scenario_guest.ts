/**
 * Inside the kernel VM: runs one scenario file through the whole agent —
 * its objects are created in the API server, the agent (daemon mode) is
 * started for the scenario's node, and once the representors carry what a
 * fresh agent would program, the probes are sent, each also through the TC
 * simulator on what the kernel holds. Ends with `N passed, M failed, R retried`.
 *
 *   scenario_guest.ts KUBECONFIG FILE
 */
import { parseScenario } from "../scenario/format.ts";
import { heldProblems, probeScenario, readPrograms } from "../scenario/runner.ts";
import { type ScenarioCounts, summaryLine } from "../scenario/summary.ts";
import { createDriver } from "../../../src/drivers/factory.ts";
import { buildTopology, destroyTopology } from "../scenario/topology.ts";
import { apply, installCrds } from "../../support/controlplane.ts";
import { forApi } from "../../support/manifests.ts";
import { fakeSysfsFor, hostApi, logTail, startAgent, waitConverged } from "./agent_env.ts";

const [kubeconfig, file, tcDriver = "cmdline"] = Deno.args;
const scenario = parseScenario(await Deno.readTextFile(file), file);
const log = "/tmp/agent.log";
let counts: ScenarioCounts = { passed: 0, failed: 1, retried: 0 };
await installCrds(hostApi(kubeconfig));
const topology = await buildTopology(scenario.objects, scenario.node);
const sysfs = await fakeSysfsFor(topology);
const agent = startAgent(kubeconfig, scenario.node, sysfs.root, log, tcDriver);
try {
  await apply(hostApi(kubeconfig), ...scenario.manifests.map(forApi));
  await waitConverged(() => scenario.objects, scenario.node, topology, scenario.name);
  console.log(`scenario ${scenario.name} (through the API server and the agent):`);
  const programs = await readPrograms(topology, createDriver(tcDriver));
  const problems = heldProblems(programs);
  for (const problem of problems) console.log(`  FAIL ${problem}`);
  counts = await probeScenario(scenario, topology, programs);
  counts.failed += problems.length;
} catch (error) {
  console.log(`scenario ${scenario.name}: FAIL ${(error as Error).message}`);
  console.log(`agent log (last lines):\n${await logTail(log)}`);
} finally {
  agent.kill("SIGTERM");
  await agent.status;
  await destroyTopology(topology);
  await sysfs.remove();
}
console.log(summaryLine(counts));
Deno.exit(counts.failed > 0 ? 1 : 0);
