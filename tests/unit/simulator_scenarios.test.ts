/**
 * Every probe of every scenario file through the TC simulator (software
 * mode): the programs the agent would write for the scenario's node, each
 * probe's packets through the sender's and the receiver's representor hooks,
 * and the verdict compared with the one the scenario expects, which is the
 * one the kernel VM gives (tests/kernel/kernel.test.ts runs the same files
 * with real packets).
 */
import assert from "node:assert/strict";
import { stateFromObjects } from "../../src/cluster/manifests.ts";
import type { Pod } from "../../src/cluster/types.ts";
import { parseIp } from "../../src/net/ip.ts";
import { computeNodeRules } from "../../src/policy/engine.ts";
import { generateProgram } from "../../src/tc/generate.ts";
import type { TcFilter } from "../../src/tc/model.ts";
import { Conntrack } from "../../src/tc/simulator/conntrack.ts";
import { type FlowEnd, simulateFlow } from "../../src/tc/simulator/flow.ts";
import { describeProbe, parseScenario, type Probe } from "../kernel/scenario/format.ts";

const DIR = new URL("../kernel/scenarios/", import.meta.url);

/** A pod's interfaces by network, with their addresses. */
function interfacesOf(pods: Pod[], ref: string) {
  const pod = pods.find((p) => `${p.namespace}/${p.name}` === ref);
  return pod ? pod.networkStatus.filter((s) => !s.isDefault) : [];
}

const pick = (ips: string[], family: 4 | 6) => ips.find((ip) => parseIp(ip)?.family === family);

/** The two ends of a probe, as the kernel harness resolves them (tests/kernel/scenario/probe.ts). */
function ends(pods: Pod[], programs: Map<string, TcFilter[]>, probe: Probe): [FlowEnd, FlowEnd] {
  const sources = interfacesOf(pods, probe.from);
  const toPod = probe.to.includes("/") && parseIp(probe.to) === null;
  const dests = toPod ? interfacesOf(pods, probe.to) : [];
  const network = probe.network ??
    (toPod
      ? sources.find((s) => dests.some((d) => d.network === s.network))?.network
      : sources[0]?.network);
  const source = sources.find((s) => s.network === network);
  assert.ok(source, `${describeProbe(probe)}: no source interface`);
  const from = {
    address: pick(source.ips, probe.family)!,
    filters: programs.get(`${probe.from}|${network}`),
  };
  if (!toPod) return [from, { address: probe.to }];
  const dest = dests.find((d) => d.network === network);
  assert.ok(dest, `${describeProbe(probe)}: no destination interface`);
  return [from, {
    address: pick(dest.ips, probe.family)!,
    filters: programs.get(`${probe.to}|${network}`),
  }];
}

const files = [...Deno.readDirSync(DIR)].map((e) => e.name).filter((n) => n.endsWith(".yaml"))
  .sort();

for (const file of files) {
  Deno.test(`simulator: every probe of ${file} gets the verdict the scenario expects`, async () => {
    const scenario = parseScenario(await Deno.readTextFile(new URL(file, DIR)), file);
    const state = stateFromObjects(scenario.objects);
    const rules = computeNodeRules(state, {
      node: scenario.node,
      networkPlugins: ["accelerated-bridge"],
    });
    const programs = new Map<string, TcFilter[]>();
    rules.interfaces.forEach((iface, i) => {
      const program = generateProgram(iface, { device: `rep${i}`, zone: i + 1, generation: 1 });
      programs.set(`${iface.pod.namespace}/${iface.pod.name}|${iface.network}`, program.filters);
    });
    const conntrack = new Conntrack();
    const wrong: string[] = [];
    for (const [i, probe] of scenario.probes.entries()) {
      const [from, to] = ends(state.pods, programs, probe);
      const result = simulateFlow(from, to, {
        protocol: probe.protocol,
        port: probe.port,
        family: probe.family,
        tags: probe.vlan ? ["802.1q"] : [],
        sport: 40000 + i,
      }, conntrack);
      if (result.verdict !== probe.expect) {
        const last = result.packets.at(-1)!;
        wrong.push(
          `${
            describeProbe(probe)
          }: simulator says ${result.verdict} (${last.name} ${last.verdict}` +
            ` after ${
              last.steps.map((s) => `${s.hook} chain ${s.chain} prio ${s.prio}`).join(", ")
            })`,
        );
      }
    }
    console.log(
      `${file}: ${scenario.probes.length - wrong.length}/${scenario.probes.length} agree`,
    );
    assert.deepEqual(wrong, []);
  });
}
