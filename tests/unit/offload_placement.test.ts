/**
 * Offloadable by construction: for every scenario file and for `examples/`,
 * every device's program has no filter on an egress hook, and the offload
 * checker finds no filter that would break on the NIC.
 */
import assert from "node:assert/strict";
import { loadManifests, stateFromObjects } from "../../src/cluster/manifests.ts";
import type { ClusterState } from "../../src/cluster/types.ts";
import { computeNodeRules } from "../../src/policy/engine.ts";
import { deviceProgram } from "../../src/tc/generate.ts";
import { checkProgram } from "../../src/tc/offload/checker.ts";
import { nodeRoles, placeholderPlacement } from "../../src/tc/placement.ts";
import { parseScenario } from "../kernel/scenario/format.ts";

const DIR = new URL("../kernel/scenarios/", import.meta.url);

/** Problems of a node's programs: egress-hook filters and filters that break. */
function problems(state: ClusterState, node: string): string[] {
  const rules = computeNodeRules(state, { node, networkPlugins: ["accelerated-bridge"] });
  const out: string[] = [];
  const roles = nodeRoles(placeholderPlacement(rules.interfaces));
  assert.ok(roles.length > 0, "some device carries a program");
  for (const role of roles) {
    const filters = deviceProgram(role, 1).filters;
    for (const f of filters.filter((f) => f.hook !== "ingress")) {
      out.push(`${role.device}: ${f.hook} hook chain ${f.chain} prio ${f.prio}`);
    }
    for (const check of checkProgram(filters).filters) {
      if (check.classification !== "breaks") continue;
      const f = check.filter;
      out.push(`${role.device}: chain ${f.chain} prio ${f.prio} breaks: ${check.reason}`);
    }
  }
  return out;
}

for (
  const file of [...Deno.readDirSync(DIR)].map((e) => e.name).filter((n) => n.endsWith(".yaml"))
) {
  Deno.test(`offload: ${file}'s programs are all on ingress hooks, none breaks`, async () => {
    const scenario = parseScenario(await Deno.readTextFile(new URL(file, DIR)), file);
    assert.deepEqual(problems(stateFromObjects(scenario.objects), scenario.node), []);
  });
}

Deno.test("offload: examples/'s programs are all on ingress hooks, none breaks", async () => {
  const loaded = await loadManifests([new URL("../../examples/", import.meta.url).pathname]);
  assert.deepEqual(problems(loaded.state, "worker-1"), []);
});
