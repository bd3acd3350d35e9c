/**
 * `--offload` on veths (no hw-tc-offload, like the VM's every device), with
 * each driver and the agent's own enforcement: `require` leaves pod a's
 * interface with the deny-all fallback and one clear Event (a stream of new
 * connections shows nothing through); `auto` reports the devices as
 * software-only without a warning; `off` programs every filter `skip_hw`,
 * and both drivers read the flag back.
 */
import assert from "node:assert/strict";
import { createEnforcement } from "../../../src/agent/enforcement.ts";
import { AgentMetrics } from "../../../src/agent/metrics.ts";
import { NOT_OFFLOADED, type OffloadMode } from "../../../src/agent/offload_policy.ts";
import { CmdlineDriver } from "../../../src/drivers/cmdline/driver.ts";
import { NetlinkDriver } from "../../../src/drivers/netlink/driver.ts";
import { hwTcOffload } from "../../../src/interfaces/ethtool.ts";
import { interfaceKey } from "../../../src/policy/model.ts";
import { fallbackProgram } from "../../../src/tc/fallback.ts";
import { isOurs } from "../../../src/tc/plan.ts";
import { objectsOf } from "../../support/cluster.ts";
import { fakeSysfsFor } from "../e2e/agent_env.ts";
import { interfaceOf, withTopology } from "../scenario/topology.ts";
import { ADDRESS, PORT, rulesAllowing, streamManifests } from "./fixtures.ts";
import { settle, startPongServers, startStream, stopAll } from "./stream.ts";

async function enforced(
  name: "cmdline" | "netlink",
  mode: OffloadMode,
  body: (
    context: {
      device: string;
      uplink: string;
      metrics: AgentMetrics;
      notices: { pod: string; reason: string; message: string }[];
      netnsOf: (pod: string) => string;
    },
  ) => Promise<void>,
) {
  const rules = rulesAllowing(["c", "d"]);
  await withTopology(objectsOf(streamManifests()), "node-a", async (topology) => {
    const sysfs = await fakeSysfsFor(topology);
    const { sink } = createEnforcement({
      tcDriver: name,
      podRulesPath: "",
      sysfsRoot: sysfs.root,
      offload: mode,
    });
    const metrics = new AgentMetrics();
    const notices: { pod: string; reason: string; message: string }[] = [];
    sink.attach(metrics, {
      podNotice: (pod, reason, message) => notices.push({ pod: pod.name, reason, message }),
    });
    const device = topology.representors.get(rules.pciAddress)!;
    assert.equal(hwTcOffload(device), false, "a veth has no hw-tc-offload");
    const [result] = await sink.apply([{ key: interfaceKey(rules), rules }]);
    assert.equal(result.error, undefined);
    // A full resync changes nothing and warns no more.
    await sink.apply([{ key: interfaceKey(rules), rules }], { verify: "all" });
    await body({
      device,
      uplink: topology.uplinks.get(rules.network)!,
      metrics,
      notices,
      netnsOf: (pod) => interfaceOf(topology, pod).netns,
    });
    await sink.apply([{ key: interfaceKey(rules), rules: null, previous: rules }]);
    await sysfs.remove();
  });
}

for (const name of ["cmdline", "netlink"] as const) {
  const driver = () => name === "cmdline" ? new CmdlineDriver() : new NetlinkDriver();

  Deno.test(`${name}: --offload=require on a veth enforces the deny-all fallback, with one Event`, async () => {
    await enforced(name, "require", async ({ device, notices, netnsOf }) => {
      const state = await driver().read(device);
      const fallback = fallbackProgram(device, 1, 1).filters;
      assert.equal(state.filters.filter(isOurs).length, fallback.length);
      assert.deepEqual(notices.map((n) => [n.pod, n.reason]), [["a", NOT_OFFLOADED]]);
      console.log(`  require (${name}): ${notices[0].message}`);
      const servers = startPongServers(["b", "c", "d"].map(netnsOf), PORT);
      try {
        await settle(500);
        const stream = await startStream(netnsOf("a"), [ADDRESS.b, ADDRESS.d], PORT, 400);
        await settle(2500);
        const attempts = await stream.stop();
        assert.ok(attempts.length >= 4, `only ${attempts.length} attempts`);
        assert.deepEqual(attempts.filter((a) => a.ok), [], "nothing passes the fallback");
        console.log(`  require (${name}): ${attempts.length} attempts, none through`);
      } finally {
        await stopAll(servers);
      }
    });
  });

  Deno.test(`${name}: --offload=auto on veths reports software-only devices, no warning`, async () => {
    await enforced(name, "auto", async ({ device, uplink, metrics, notices }) => {
      const filters = (await driver().read(device)).filters.filter(isOurs).length;
      assert.ok(filters > 5);
      assert.equal(metrics.filtersInHardware.get({ device }), 0);
      assert.equal(metrics.filtersSoftwareOnly.get({ device }), filters);
      assert.ok(metrics.filtersSoftwareOnly.get({ device: uplink }) > 0);
      assert.deepEqual(notices, []);
      const state = await driver().read(device);
      assert.ok(state.filters.every((f) => !f.skipHw));
      assert.ok([...state.offload!.values()].every((o) => !o.inHw && o.inHwCount === 0));
    });
  });

  Deno.test(`${name}: --offload=off writes every filter skip_hw, read back by both drivers`, async () => {
    await enforced(name, "off", async ({ device, notices }) => {
      for (const reader of [new CmdlineDriver(), new NetlinkDriver()]) {
        const ours = (await reader.read(device)).filters.filter(isOurs);
        assert.ok(ours.length > 5);
        assert.ok(ours.every((f) => f.skipHw === true), `${reader.name}: skip_hw on every filter`);
      }
      assert.deepEqual(notices, []);
    });
  });
}
