/**
 * In the VM: generate → serialize → apply with `tc -batch` → read back with
 * `tc -json` → parse equals what was generated; identical state makes no
 * change; a new actuator adopts what is programmed. With each driver: a
 * change swaps generations make-before-break; clean-up leaves foreign
 * filters alone.
 */
import assert from "node:assert/strict";
import { peerFilterRules } from "../../../bench/tc_fixture.ts";
import { CmdlineDriver } from "../../../src/drivers/cmdline/driver.ts";
import { createDriver } from "../../../src/drivers/factory.ts";
import { Actuator, interfaceRulesFile } from "../../../src/tc/actuator.ts";
import { deviceProgram, generateProgram } from "../../../src/tc/generate.ts";
import { chainGeneration } from "../../../src/tc/model.ts";
import { nodeRoles } from "../../../src/tc/placement.ts";
import type { InterfaceRules } from "../../../src/policy/model.ts";
import { placeInTopology } from "../scenario/runner.ts";
import { isOurs } from "../../../src/tc/plan.ts";
import { sameFilters } from "../../../src/tc/compare.ts";
import { run } from "../scenario/shell.ts";
import { interfaceRules, rulesFor } from "../../support/cluster.ts";
import { withTopology } from "../scenario/topology.ts";
import { assertSameRead, exampleCluster, readBoth } from "./common.ts";

Deno.test("round trip on the example cluster's devices", async () => {
  const { objects, state } = await exampleCluster();
  const rules = rulesFor(state, "worker-1");
  assert.equal(rules.interfaces.length, 5);
  await withTopology(objects, "worker-1", async (topology) => {
    const driver = new CmdlineDriver();
    const rulesDir = await Deno.makeTempDir();
    const actuator = new Actuator(driver, { podRulesPath: rulesDir });
    const roles = nodeRoles(placeInTopology(topology, rules.interfaces));
    // Each of the five interfaces' representors and each policed network's uplink carry
    // something on this node.
    const networks = new Set(rules.interfaces.map((iface) => iface.network));
    assert.equal(roles.length, rules.interfaces.length + networks.size);
    assert.equal(roles.length, 7);
    for (const role of roles) {
      const device = role.device;
      const desired = (generation: number) => deviceProgram(role, generation);
      const rulesFile = role.sender ? interfaceRulesFile(role.sender.rules, device) : undefined;
      const result = await actuator.sync(device, desired, { rulesFile });
      const expected = desired(1);
      const read = await driver.read(device);
      assert.equal(read.clsact, expected.enabled, device);
      assert.ok(sameFilters(read.filters, expected.filters), `${device}: read back differs`);
      assert.ok(read.filters.every((f) => f.hook === "ingress"), `${device}: egress-hook filter`);
      assert.equal(result.filters, expected.filters.length);
      if (role.sender) {
        const iface = role.sender.rules;
        const file = `${rulesDir}/${iface.pod.uid}/${
          iface.network.replace("/", "-")
        }-${device}.rules`;
        const text = await Deno.readTextFile(file);
        assert.equal(
          text.split("\n").filter((l) => l.startsWith("filter add")).length,
          expected.filters.length,
        );
      }
      // Same state again: no command at all; a fresh actuator adopts without changes.
      assert.equal((await actuator.sync(device, desired)).commands, 0);
      const callsBefore = driver.stats.calls;
      assert.equal((await new Actuator(driver).sync(device, desired)).commands, 0);
      // Reads only: qdisc show, then one filter show per hook, every chain at once.
      assert.equal(driver.stats.calls - callsBefore, 3, device);
    }
    // A pod that goes away: its representor is cleaned and its rules file removed.
    const gone = rules.interfaces.find((i) => i.pod.name === "db-1")!;
    const goneDevice = topology.representors.get(gone.pciAddress)!;
    await actuator.clean(goneDevice, gone.pod.uid);
    assert.equal((await driver.read(goneDevice)).clsact, false);
    await assert.rejects(() => Deno.stat(`${rulesDir}/${gone.pod.uid}`), Deno.errors.NotFound);
    await Deno.remove(rulesDir, { recursive: true });
  });
});

/**
 * Once per driver, on the same interface: a change swaps to a new generation and removes the old
 * one (both drivers read the result back identically), and going back reuses generation 1;
 * clean-up removes only our filters and reports foreign ones, and once nothing foreign is left,
 * a clean-up by an actuator that has not seen the device removes the qdisc too.
 */
for (const name of ["cmdline", "netlink"]) {
  Deno.test(`${name}: a change swaps generations and clean-up spares foreign filters`, async () => {
    const { objects, state } = await exampleCluster();
    const iface = rulesFor(state, "worker-1").interfaces.find((i) => i.pod.name === "smf-1")!;
    await withTopology(objects, "worker-1", async (topology) => {
      const driver = createDriver(name);
      const device = topology.representors.get(iface.pciAddress)!;
      const actuator = new Actuator(driver);
      const program = (rules: InterfaceRules) => (generation: number) =>
        generateProgram(rules, { device, zone: ZONE, generation });
      await actuator.sync(device, program(iface));
      const changed = { ...iface, egress: { ...iface.egress, allow: iface.egress.allow.slice(1) } };
      assert.equal((await actuator.sync(device, program(changed))).generation, 2);
      const { viaTc, viaNetlink } = await readBoth(device);
      assertSameRead(viaNetlink, viaTc);
      assert.ok(
        sameFilters(
          viaNetlink.filters,
          generateProgram(changed, { device, zone: ZONE, generation: 2 }).filters,
        ),
      );
      assert.ok(viaNetlink.filters.every((f) => chainGeneration(f.chain) !== 1));
      // And back: generation 1 is free again.
      assert.equal((await actuator.sync(device, program(iface))).generation, 1);

      await run(
        `tc filter add dev ${device} ingress protocol ip prio 100 handle 7 flower dst_ip 192.0.2.1 action pass`
          .split(" "),
      );
      const result = await actuator.clean(device);
      assert.equal(result.foreign.length, 1);
      assert.match(result.foreign[0], /ingress chain 0 prio 100 handle 7/);
      const after = await driver.read(device);
      assert.equal(after.clsact, true);
      assert.deepEqual(after.filters.filter(isOurs), []);
      assert.equal(after.filters.length, 1);
      await run(["tc", "filter", "del", "dev", device, "ingress", "prio", "100"]);
      await new Actuator(driver).clean(device);
      assert.equal((await driver.read(device)).clsact, false);
    });
  });
}

const ZONE = 42;

/**
 * Once per driver: on a representor carrying 1,606 filters, one /32 of the
 * policy is swapped for another. The change is edited in place (a few
 * commands, the generation kept), and both drivers read back exactly the
 * program the actuator says the device carries. Then an address moved to
 * other ports is one `filter replace` of its filter's action.
 */
for (const name of ["cmdline", "netlink"]) {
  Deno.test(`${name}: one CIDR moved on 1,606 filters costs a few commands`, async () => {
    const device = `mv${name.slice(0, 3)}0`;
    await run(["ip", "link", "add", device, "type", "veth", "peer", "name", `${device}p`]);
    try {
      const rules = peerFilterRules(515);
      const egress = rules.egress;
      const cidrs = [...egress.allow[0].cidrs];
      cidrs[7] = "10.99.0.1/32";
      const moved = { ...rules, egress: { ...egress, allow: [{ ...egress.allow[0], cidrs }] } };
      const program = (r: InterfaceRules) => (generation: number) =>
        generateProgram(r, { device, zone: ZONE, generation });
      const actuator = new Actuator(createDriver(name));
      const first = await actuator.sync(device, program(rules));
      assert.equal(first.filters, 1606);
      const started = performance.now();
      const result = await actuator.sync(device, program(moved));
      const ms = performance.now() - started;
      console.log(
        `${name}: one CIDR moved on ${result.filters} filters: ` +
          `${result.commands} commands in ${ms.toFixed(0)} ms`,
      );
      assert.ok(result.commands > 0 && result.commands < 20, `${result.commands} commands`);
      assert.equal(result.generation, first.generation);
      const { viaTc, viaNetlink } = await readBoth(device);
      assertSameRead(viaNetlink, viaTc);
      assert.ok(sameFilters(viaNetlink.filters, result.program.filters));
      assert.ok(viaNetlink.filters.some((f) => f.match.dstIp === "10.99.0.1/32"));
      // An address moved to the other ports keeps its filter: one `filter replace` of its action.
      const toOtherPorts = interfaceRules(rules.ingress, {
        isolated: true,
        policies: ["bench/p"],
        allow: [
          { cidrs: cidrs.slice(1), protocol: "TCP", ports: [{ first: 443, last: 443 }] },
          { cidrs: cidrs.slice(0, 1), protocol: "TCP", ports: [{ first: 80, last: 80 }] },
        ],
      });
      const twoPorts = interfaceRules(rules.ingress, {
        ...toOtherPorts.egress,
        allow: [
          { cidrs: cidrs.slice(2), protocol: "TCP", ports: [{ first: 443, last: 443 }] },
          { cidrs: cidrs.slice(0, 2), protocol: "TCP", ports: [{ first: 80, last: 80 }] },
        ],
      });
      await actuator.sync(device, program(toOtherPorts));
      const replaced = await actuator.sync(device, program(twoPorts));
      assert.equal(replaced.commands, 1, "one filter replace");
      const again = await readBoth(device);
      assertSameRead(again.viaNetlink, again.viaTc);
      assert.ok(sameFilters(again.viaNetlink.filters, replaced.program.filters));
    } finally {
      await run(["ip", "link", "del", device]);
    }
  });
}

Deno.test("a missing device is an error naming it, not a crash", async () => {
  const driver = new CmdlineDriver();
  await assert.rejects(() => driver.read("nosuchrep0"), /nosuchrep0: device not found/);
});
