/**
 * In the VM: the netlink driver against the real kernel. What one driver
 * programs, the other reads back identically (and adopts without a
 * change); a program
 * of a thousand filters goes out in a few datagrams; kernel errors (no
 * device, invalid key, no qdisc, missing module) come back as errors
 * naming the device and the filter. Generation swaps and clean-up, with
 * each driver, are in roundtrip_guest.ts.
 */
import assert from "node:assert/strict";
import { thousandFilterRules } from "../../../bench/tc_fixture.ts";
import { CmdlineDriver } from "../../../src/drivers/cmdline/driver.ts";
import { DeviceMissing, type TcDriver, TcError } from "../../../src/tc/driver.ts";
import { NetlinkDriver } from "../../../src/drivers/netlink/driver.ts";
import { Actuator } from "../../../src/tc/actuator.ts";
import { deviceProgram, generateProgram } from "../../../src/tc/generate.ts";
import { nodeRoles } from "../../../src/tc/placement.ts";
import { placeInTopology } from "../scenario/runner.ts";
import type { TcFilter } from "../../../src/tc/model.ts";
import { UnsafeTcInput } from "../../../src/tc/serialize.ts";
import { sameFilters } from "../../../src/tc/compare.ts";
import { run, tryRun } from "../scenario/shell.ts";
import { rulesFor } from "../../support/cluster.ts";
import { withTopology } from "../scenario/topology.ts";
import { assertSameRead, exampleCluster, readBoth } from "./common.ts";

const ZONE = 42;

for (
  const [writerName, makeWriter] of [
    ["netlink", () => new NetlinkDriver()],
    ["cmdline", () => new CmdlineDriver()],
  ] as const
) {
  Deno.test(`state programmed by ${writerName} reads back identically through both drivers`, async () => {
    const { objects, state } = await exampleCluster();
    const rules = rulesFor(state, "worker-1");
    await withTopology(objects, "worker-1", async (topology) => {
      const writer: TcDriver = makeWriter();
      const actuator = new Actuator(writer);
      let compared = 0;
      for (const role of nodeRoles(placeInTopology(topology, rules.interfaces))) {
        const device = role.device;
        const desired = (generation: number) => deviceProgram(role, generation);
        await actuator.sync(device, desired);
        const { viaTc, viaNetlink } = await readBoth(device);
        assertSameRead(viaNetlink, viaTc, device);
        const expected = desired(1);
        assert.ok(sameFilters(viaNetlink.filters, expected.filters), `${device}: not as generated`);
        compared += viaNetlink.filters.length;
        // Either driver's actuator adopts the other's state without a command.
        for (const reader of [new NetlinkDriver(), new CmdlineDriver()]) {
          assert.equal((await new Actuator(reader).sync(device, desired)).commands, 0);
        }
      }
      assert.ok(compared > 100, `only ${compared} filters compared`);
    });
  });
}

Deno.test("netlink: a thousand filters go out in a few datagrams and read back", async () => {
  await run(["ip", "link", "add", "nlbig0", "type", "veth", "peer", "name", "nlbig1"]);
  try {
    const rules = thousandFilterRules();
    const driver = new NetlinkDriver();
    const program = generateProgram(rules, { device: "nlbig0", zone: ZONE, generation: 1 });
    assert.ok(program.filters.length >= 900);
    const result = await new Actuator(driver).sync(
      "nlbig0",
      (generation) => generateProgram(rules, { device: "nlbig0", zone: ZONE, generation }),
    );
    assert.equal(result.filters, program.filters.length);
    // One sendmsg per step datagram, not one per filter.
    assert.ok(driver.stats.calls < 20, `${driver.stats.calls} sendmsg calls`);
    const { viaTc, viaNetlink } = await readBoth("nlbig0");
    assertSameRead(viaNetlink, viaTc);
    assert.ok(sameFilters(viaNetlink.filters, program.filters));
  } finally {
    await tryRun(["ip", "link", "del", "nlbig0"]);
  }
});

const dispatchFilter = (change: Partial<TcFilter>): TcFilter => ({
  hook: "ingress",
  chain: 0,
  prio: 9,
  handle: 9,
  protocol: "ip",
  match: {},
  actions: [{ kind: "drop" }],
  ...change,
});

Deno.test("netlink: kernel errors name the device and the filter", async () => {
  const driver = new NetlinkDriver();
  // No such device: found before anything is sent.
  await assert.rejects(() => driver.read("nosuchrep0"), (error) => {
    assert.ok(error instanceof DeviceMissing);
    assert.equal(error.message, "nosuchrep0: device not found");
    return true;
  });
  await assert.rejects(
    () => driver.apply("nosuchrep0", [{ op: "qdisc-add" }]),
    /nosuchrep0: device not found/,
  );
  await run(["ip", "link", "add", "nlerr0", "type", "veth", "peer", "name", "nlerr1"]);
  try {
    // No clsact qdisc yet.
    await assert.rejects(
      () => driver.apply("nlerr0", [{ op: "filter-add", filter: dispatchFilter({}) }]),
      (error) => {
        assert.ok(error instanceof TcError && !(error instanceof DeviceMissing));
        assert.equal(
          error.message,
          "nlerr0: filter add dev nlerr0 ingress protocol ip prio 9 handle 9 chain 0 flower " +
            "action drop: Invalid argument (EINVAL): Parent Qdisc doesn't exists",
        );
        return true;
      },
    );
    await driver.apply("nlerr0", [{ op: "qdisc-add" }]);
    // A key combination the kernel refuses; the step's other request still runs, and the
    // error reports how many failed.
    const invalid = dispatchFilter({ match: { ctState: "+trk+new+est" } });
    await assert.rejects(
      () =>
        driver.apply("nlerr0", [
          { op: "filter-add", filter: invalid },
          { op: "filter-add", filter: { ...invalid, handle: 10 } },
          { op: "filter-add", filter: dispatchFilter({ handle: 11 }) },
        ]),
      /: nlerr0: filter add dev nlerr0 ingress protocol ip prio 9 handle 9 chain 0 flower ct_state \+trk\+new\+est action drop: Invalid argument \(EINVAL\): new and est are mutually exclusive \(and 1 more failed requests in this step\)$/,
    );
    const state = await driver.read("nlerr0");
    assert.deepEqual(state.filters.map((f) => f.handle), [11]);
    // A later step does not run once a step failed.
    await assert.rejects(() =>
      driver.apply("nlerr0", [
        { op: "filter-add", filter: dispatchFilter({ handle: 11 }) },
        { op: "qdisc-del" },
      ]), /File exists \(EEXIST\): Filter already exists/);
    assert.equal((await driver.read("nlerr0")).clsact, true);
    // Nothing goes out when a command fails validation, even one in a later step.
    await assert.rejects(
      () =>
        driver.apply("nlerr0", [
          { op: "filter-add", filter: dispatchFilter({ chain: 1_100_000, handle: 20 }) },
          {
            op: "filter-add",
            filter: dispatchFilter({ handle: 21, match: { ctState: "+bogus" } }),
          },
        ]),
      UnsafeTcInput,
    );
    assert.ok(!(await driver.read("nlerr0")).filters.some((f) => f.handle === 20));
    await missingModule(driver);
  } finally {
    await tryRun(["ip", "link", "del", "nlerr0"]);
  }
});

/** With module loading disabled and act_ct unloaded, a ct action is an error naming the filter. */
async function missingModule(driver: NetlinkDriver): Promise<void> {
  const modprobe = (await Deno.readTextFile("/proc/sys/kernel/modprobe")).trim();
  await Deno.writeTextFile("/proc/sys/kernel/modprobe", "/bin/false");
  try {
    await run(["rmmod", "act_ct"]);
    const ct = dispatchFilter({
      handle: 12,
      actions: [{ kind: "ct", zone: ZONE, commit: false }, { kind: "pass" }],
    });
    await assert.rejects(
      () => driver.apply("nlerr0", [{ op: "filter-add", filter: ct }]),
      (error) => {
        assert.ok(error instanceof TcError, String(error));
        assert.match(
          error.message,
          /^nlerr0: filter add dev nlerr0 ingress protocol ip prio 9 handle 12 chain 0 flower action ct zone 42 pipe action pass: /,
        );
        assert.match(error.message, /module|not supported|No such file/i);
        console.log(`missing module: ${error.message}`);
        return true;
      },
    );
  } finally {
    await Deno.writeTextFile("/proc/sys/kernel/modprobe", modprobe);
    await tryRun(["modprobe", "act_ct"]);
  }
}
