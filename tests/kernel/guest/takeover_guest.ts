/**
 * Taking over from the Go agent: pod a's representor carries the Go
 * agent's `ingress` qdisc and filters for the same egress policy (written
 * here in its documented layout: chain 0, drops at prio 1xx, passes at
 * 2xx, default drops at 300-302). Our agent's TC sink, with each driver,
 * programs the node (the representor and the uplink, in the steps of
 * src/tc/transition.ts) while a stream of new connections runs: no denied
 * connection passes and no packet of an allowed one is dropped at any
 * moment (./ledger.ts counts them at both ends), and afterwards the device
 * holds our program alone.
 */
import assert from "node:assert/strict";
import { TcSink } from "../../../src/agent/tc_sink.ts";
import { createDriver } from "../../../src/drivers/factory.ts";
import { interfaceKey } from "../../../src/policy/model.ts";
import { Actuator } from "../../../src/tc/actuator.ts";
import type { TcDriver } from "../../../src/tc/driver.ts";
import { deviceProgram } from "../../../src/tc/generate.ts";
import { nodeRoles } from "../../../src/tc/placement.ts";
import { isOurs } from "../../../src/tc/plan.ts";
import { sameFilters } from "../../../src/tc/compare.ts";
import { objectsOf } from "../../support/cluster.ts";
import { run } from "../scenario/shell.ts";
import { interfaceOf, withTopology } from "../scenario/topology.ts";
import { assertNothingLost, countPackets, describeCount, lost } from "./ledger.ts";
import { ADDRESS, PORT, rulesAllowing, streamManifests } from "./fixtures.ts";
import { PATIENT_MS, settle, startPongServers, startStream, stopAll } from "./stream.ts";

/** The Go agent's program for "a may reach `peers` on TCP `port`", as its tc commands. */
async function programLikeTheGoAgent(device: string, peers: string[], port: number) {
  const tc = (...args: string[]) => run(["tc", ...args]);
  await tc("qdisc", "add", "dev", device, "ingress");
  const flower = (protocol: string, prio: number, match: string[], action: string) =>
    tc(
      "filter",
      "add",
      "dev",
      device,
      "parent",
      "ffff:",
      "protocol",
      protocol,
      "prio",
      String(prio),
      "flower",
      ...match,
      "action",
      "gact",
      action,
    );
  // Default drops at 300 (IPv4), 301 (IPv6), 302 (802.1Q with IPv4 or IPv6 inside).
  await flower("ip", 300, [], "drop");
  await flower("ipv6", 301, [], "drop");
  await flower("802.1q", 302, ["vlan_ethtype", "ip"], "drop");
  await flower("802.1q", 302, ["vlan_ethtype", "ipv6"], "drop");
  // Passes at 200 (IPv4) and 202 (the same, tagged), per peer address and port.
  for (const peer of peers) {
    const keys = ["dst_ip", `${peer}/32`, "ip_proto", "tcp", "dst_port", String(port)];
    await flower("ip", 200, keys, "pass");
    await flower("802.1q", 202, ["vlan_ethtype", "ip", ...keys], "pass");
  }
}

for (const name of ["cmdline", "netlink"] as const) {
  Deno.test(`${name}: the Go agent's rules are taken over with no window`, async () => {
    const rules = rulesAllowing(["c", "d"]);
    await withTopology(objectsOf(streamManifests()), "node-a", async (topology) => {
      const netnsOf = (pod: string) => interfaceOf(topology, pod).netns;
      const device = topology.representors.get(rules.pciAddress)!;
      const uplink = topology.uplinks.get(rules.network)!;
      await programLikeTheGoAgent(device, [ADDRESS.c, ADDRESS.d], PORT);
      const servers = startPongServers(["b", "c", "d"].map(netnsOf), PORT);
      const ledger = await countPackets(interfaceOf(topology, "a"), interfaceOf(topology, "d"));
      try {
        await settle(1000);
        const stream = await startStream(netnsOf("a"), [ADDRESS.b, ADDRESS.d], PORT, 400, {
          [ADDRESS.d]: PATIENT_MS,
        });
        await settle(2000);
        const driver = createDriver(name);
        let commands = 0;
        const counting: TcDriver = {
          name: driver.name,
          stats: driver.stats,
          read: (dev) => driver.read(dev),
          counters: (dev) => driver.counters(dev),
          apply: (dev, list) => {
            commands += list.length;
            return driver.apply(dev, list);
          },
        };
        const sink = new TcSink(new Actuator(counting), {
          lookup: () => Promise.resolve({ representor: device, uplink, switchId: "vm" }),
        });
        const started = Date.now();
        const [result] = await sink.apply([{ key: interfaceKey(rules), rules }]);
        const tookMs = Date.now() - started;
        assert.equal(result.error, undefined);
        await settle(2000);
        const attempts = await stream.stop();
        await settle(300);
        const count = await ledger.read();
        const leaked = attempts.filter((a) => a.target === ADDRESS.b && a.ok).length;
        const toD = attempts.filter((a) => a.target === ADDRESS.d);
        const failed = toD.filter((a) => !a.ok).length;
        console.log(
          `takeover (${name}): ${commands} commands in ${tookMs} ms; ${attempts.length} attempts, ` +
            `${leaked} denied passed, ${failed} allowed failed`,
        );
        // Where each failed allowed attempt lies relative to the takeover (started at 0 ms).
        for (const a of attempts.filter((a) => a.target === ADDRESS.d && !a.ok)) {
          console.log(
            `  failed: ${a.t0 - started}..${a.t1 - started} ms (takeover 0..${tookMs} ms), ` +
              `handshake ${a.connectMs === null ? "not completed" : `${a.connectMs} ms`}`,
          );
        }
        assert.ok(attempts.length >= 10, `only ${attempts.length} attempts`);
        assert.equal(leaked, 0, "a denied connection passed");
        assertNothingLost(count, toD.length, failed);
        // The device holds our program alone, on the ingress qdisc it had.
        const state = await driver.read(device);
        assert.equal(state.clsact, false);
        assert.equal(state.ingressQdisc, true);
        assert.deepEqual(state.foreignFilters ?? [], []);
        assert.ok(state.filters.every(isOurs), "no filter of the Go agent is left");
        // The sink's zone for the only interface is 1.
        const roles = nodeRoles([{ rules, representor: device, uplink, switchId: "vm", zone: 1 }]);
        const role = roles.find((r) => r.device === device)!;
        const program = deviceProgram(role, 1);
        assert.equal(state.filters.length, program.filters.length);
        // A second agent run adopts it without a command.
        assert.equal(
          (await new Actuator(driver).sync(device, (g) => deviceProgram(role, g))).commands,
          0,
        );
        // Removing the policy removes the ingress qdisc with our filters.
        await new Actuator(driver).sync(device, null);
        const cleaned = await driver.read(device);
        assert.equal(cleaned.ingressQdisc ?? false, false);
        assert.equal(cleaned.clsact, false);
        assert.ok(sameFilters(cleaned.filters, []));
      } finally {
        await stopAll(servers);
      }
    });
  });
}

Deno.test("the packet count sees what a rule drops (the check above can fail)", async () => {
  await withTopology(objectsOf(streamManifests()), "node-a", async (topology) => {
    const a = interfaceOf(topology, "a");
    const servers = startPongServers([interfaceOf(topology, "d").netns], PORT);
    const ledger = await countPackets(a, interfaceOf(topology, "d"));
    try {
      await settle(500);
      // The SYN-ACKs of every second connection are dropped on their way back to a.
      const tc = [
        "tc",
        "filter",
        "add",
        "dev",
        a.representor,
        "egress",
        "protocol",
        "ip",
        "flower",
      ];
      await run(["tc", "qdisc", "add", "dev", a.representor, "clsact"]);
      await run([
        ...tc,
        "ip_proto",
        "tcp",
        "src_ip",
        ADDRESS.d,
        "action",
        "drop",
        "random",
        "determ",
        "ok",
        "2",
      ]);
      const stream = await startStream(a.netns, [ADDRESS.d], PORT, PATIENT_MS);
      await settle(2500);
      const attempts = await stream.stop();
      await settle(300);
      const count = await ledger.read();
      const failed = attempts.filter((x) => !x.ok).length;
      assert.ok(lost(count) > 0, describeCount(count));
      assert.ok(count.back.sent - count.back.arrived > 0, "lost on the way back");
      assert.throws(() => assertNothingLost(count, attempts.length, failed), /was dropped/);
    } finally {
      await stopAll(servers);
    }
  });
});
