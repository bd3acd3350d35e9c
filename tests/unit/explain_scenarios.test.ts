/**
 * Every probe of every scenario file through `explain` (no VM, no TC): the
 * packet's verdict must be the one the scenario expects, which is the one
 * the kernel gives (tests/kernel/kernel.test.ts sends the same probes as
 * real packets). Each direction explain reports must also agree with the
 * rule model the engine renders for that pod's node, and name a rule exactly
 * when it allows.
 */
import assert from "node:assert/strict";
import { stateFromObjects } from "../../src/cluster/manifests.ts";
import { explainPacket } from "../../src/policy/explain.ts";
import { describeProbe, parseScenario } from "../kernel/scenario/format.ts";
import { allows, iface, rulesFor } from "../support/cluster.ts";

const DIR = new URL("../kernel/scenarios/", import.meta.url);

const files = [...Deno.readDirSync(DIR)].map((e) => e.name).filter((n) => n.endsWith(".yaml"))
  .sort();

for (const file of files) {
  Deno.test(`explain: every probe of ${file} gets the expected verdict`, async () => {
    const scenario = parseScenario(await Deno.readTextFile(new URL(file, DIR)), file);
    const state = stateFromObjects(scenario.objects);
    const wrong: string[] = [];
    for (const probe of scenario.probes) {
      const answer = explainPacket(state, {
        from: probe.from,
        to: probe.to,
        network: probe.network,
        family: probe.family,
        protocol: probe.protocol,
        port: probe.protocol === "ICMP" ? undefined : probe.port,
      }, { networkPlugins: ["accelerated-bridge"] });
      if (answer.verdict !== probe.expect) {
        wrong.push(`${describeProbe(probe)}: explain says ${JSON.stringify(answer.directions)}`);
      }
      for (const d of answer.directions) {
        const rules = iface(rulesFor(state, d.node), d.pod, answer.network)[d.direction];
        const peer = d.direction === "egress" ? answer.to.ip : answer.from.ip;
        const model = allows(rules, { peer, protocol: probe.protocol, port: answer.port });
        assert.equal(d.verdict, model ? "allow" : "deny", `${describeProbe(probe)} ${d.direction}`);
        assert.equal(d.isolated, rules.isolated);
        assert.deepEqual(d.isolatedBy, rules.policies);
        assert.equal(d.allowedBy.length > 0, d.isolated && d.verdict === "allow");
      }
    }
    console.log(
      `${file}: ${scenario.probes.length - wrong.length}/${scenario.probes.length} agree`,
    );
    assert.deepEqual(wrong, []);
  });
}
