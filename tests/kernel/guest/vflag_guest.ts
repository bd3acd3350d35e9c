/**
 * VF-LAG: the node's PF uplink and a second uplink of the same e-switch
 * are ports of one bond (in the fake sysfs). Pod a's ingress policy then
 * sits in one shared block bound to both uplinks, never on the bond and
 * never on either uplink's own clsact: traffic from the wire through
 * either uplink is checked. Behind the first uplink, c is allowed and b is
 * not; behind the second (its own bridge, like the other port of the
 * bond), h2 is allowed and h3 is not. An uplink whose clsact someone
 * deletes is bound again; when the bond goes, the PF's uplink gets its own
 * program back and the other one is unbound; when it comes back, both are
 * bound again; without a policy, nothing is left. Once per TC driver.
 */
import assert from "node:assert/strict";
import { createEnforcement } from "../../../src/agent/enforcement.ts";
import { interfaceKey } from "../../../src/policy/model.ts";
import { BLOCK_INDEX_BASE, blockDevice } from "../../../src/tc/blocks.ts";
import { isOurs } from "../../../src/tc/plan.ts";
import { objectsOf, rulesFor } from "../../support/cluster.ts";
import { type Manifest, mnp } from "../../support/manifests.ts";
import { stateFromObjects } from "../../../src/cluster/manifests.ts";
import { fakeSysfsFor } from "../e2e/agent_env.ts";
import { inNetns, run, tryRun } from "../scenario/shell.ts";
import { interfaceOf, type Topology, withTopology } from "../scenario/topology.ts";
import { ADDRESS, PORT, streamManifests } from "./fixtures.ts";
import { startPongServers, stopAll } from "./stream.ts";
import { assertSameRead, readBoth } from "./common.ts";

const BOND_IFINDEX = 4242;
const BLOCK = BLOCK_INDEX_BASE + BOND_IFINDEX;
/** Hosts behind the second uplink: h2 allowed to reach a, h3 not. */
const H2 = "10.70.0.20";
const H3 = "10.70.0.21";
const SECOND_UPLINK = "mnpu9";

function policy(): Manifest {
  return mnp("app", "a-ingress", "data", {
    podSelector: { matchLabels: { role: "a" } },
    policyTypes: ["Ingress"],
    ingress: [{
      from: [{ podSelector: { matchLabels: { role: "c" } } }, { ipBlock: { cidr: `${H2}/32` } }],
      ports: [{ protocol: "TCP", port: PORT }],
    }],
  });
}

/** The second uplink: a port of a's bridge whose far side is a bridge with h2 and h3 on it. */
async function secondUplink(topology: Topology): Promise<Map<string, string>> {
  const bridge = topology.bridges.get("app/data")!;
  const far = "mnp-lag";
  await run(["ip", "netns", "add", far]);
  topology.netns.push(far);
  await run([
    "ip",
    "link",
    "add",
    SECOND_UPLINK,
    "type",
    "veth",
    "peer",
    "name",
    "lag0",
    "netns",
    far,
  ]);
  await run(["ip", "link", "set", SECOND_UPLINK, "master", bridge, "up"]);
  await inNetns(far, ["ip", "link", "add", "br0", "type", "bridge"]);
  await inNetns(far, ["ip", "link", "set", "br0", "up"]);
  await inNetns(far, ["ip", "link", "set", "lag0", "master", "br0", "up"]);
  const hosts = new Map<string, string>();
  for (const [i, address] of [H2, H3].entries()) {
    const netns = `mnp-lag-h${i}`;
    await run(["ip", "netns", "add", netns]);
    topology.netns.push(netns);
    await inNetns(far, [
      "ip",
      "link",
      "add",
      `h${i}`,
      "type",
      "veth",
      "peer",
      "name",
      "eth0",
      "netns",
      netns,
    ]);
    await inNetns(far, ["ip", "link", "set", `h${i}`, "master", "br0", "up"]);
    await inNetns(netns, ["ip", "link", "set", "lo", "up"]);
    await inNetns(netns, ["ip", "addr", "add", `${address}/24`, "dev", "eth0"]);
    await inNetns(netns, ["ip", "link", "set", "eth0", "up"]);
    hosts.set(address, netns);
  }
  return hosts;
}

/** Whether a TCP connection from `netns` to a's port gets its "pong". */
async function reaches(netns: string): Promise<boolean> {
  const result = await tryRun([
    "ip",
    "netns",
    "exec",
    netns,
    "socat",
    "-T",
    "2",
    "-",
    `TCP4:${ADDRESS.a}:${PORT},connect-timeout=2`,
  ], "");
  return result.stdout.includes("pong");
}

interface Qdisc {
  kind: string;
  ingress_block?: number;
}

/** The shared block each uplink's clsact is bound to ("own" without one, "none" without clsact). */
async function bindings(uplinks: string[]): Promise<string[]> {
  return await Promise.all(uplinks.map(async (uplink) => {
    const qdiscs = JSON.parse(await run(["tc", "-j", "qdisc", "show", "dev", uplink])) as Qdisc[];
    const clsact = qdiscs.find((q) => q.kind === "clsact");
    if (!clsact) return "none";
    return clsact.ingress_block === undefined ? "own" : String(clsact.ingress_block);
  }));
}

for (const name of ["cmdline", "netlink"] as const) {
  Deno.test(`${name}: a VF-LAG bond's uplinks share one block, enforced through each`, async () => {
    const manifests = [...streamManifests(), policy()];
    const objects = objectsOf(manifests);
    const [rules] = rulesFor(stateFromObjects(objects), "node-a").interfaces;
    await withTopology(objects, "node-a", async (topology) => {
      const hosts = await secondUplink(topology);
      const uplink = topology.uplinks.get("app/data")!;
      const sysfs = await fakeSysfsFor(topology);
      await sysfs.addPciDevice("0000:3a:01.0");
      await sysfs.addNetdevs({
        name: SECOND_UPLINK,
        pci: "0000:3a:01.0",
        portName: "p1",
        switchId: "e2e0",
      });
      await sysfs.addBond("mnpbond", BOND_IFINDEX, [uplink, SECOND_UPLINK]);
      const { sink, driver } = createEnforcement({
        tcDriver: name,
        podRulesPath: "",
        sysfsRoot: sysfs.root,
        offload: "auto",
      });
      const servers = startPongServers([interfaceOf(topology, "a").netns], PORT);
      const netnsOf = (pod: string) => interfaceOf(topology, pod).netns;
      const verdicts = async () => ({
        c: await reaches(netnsOf("c")),
        b: await reaches(netnsOf("b")),
        h2: await reaches(hosts.get(H2)!),
        h3: await reaches(hosts.get(H3)!),
      });
      const apply = async (present: boolean) => {
        const [result] = await sink.apply([{
          key: interfaceKey(rules),
          rules: present ? rules : null,
        }]);
        assert.equal(result.error, undefined, `apply: ${result.error}`);
      };
      try {
        await apply(true);
        const both = [uplink, SECOND_UPLINK];
        assert.deepEqual(await bindings(both), [String(BLOCK), String(BLOCK)]);
        const block = await driver.read(blockDevice(BLOCK));
        assert.ok(block.filters.length > 0 && block.filters.every(isOurs));
        assert.equal(block.filters.filter((f) => f.hook !== "ingress").length, 0);
        assert.deepEqual(block.unbound, []);
        // Both drivers read the block and each uplink's binding alike.
        for (const device of [blockDevice(BLOCK), ...both]) {
          const { viaTc, viaNetlink } = await readBoth(device);
          assertSameRead(viaNetlink, viaTc);
        }
        assert.equal((await readBoth(uplink)).viaTc.ingressBlock, BLOCK);
        assert.deepEqual(await verdicts(), { c: true, b: false, h2: true, h3: false });
        console.log(`block ${BLOCK}: ${block.filters.length} filters, bound to ${both.join(", ")}`);

        // Someone deletes the second uplink's clsact: the repair binds it again.
        await run(["tc", "qdisc", "del", "dev", SECOND_UPLINK, "clsact"]);
        assert.deepEqual(await bindings(both), [String(BLOCK), "none"]);
        // Its traffic misses a's zone there: a's replies are not of any connection a's zone saw.
        assert.equal((await verdicts()).h2, false, "unbound, the second port breaks a's flows");
        await sink.repair(new Set([blockDevice(BLOCK)]), "test");
        assert.deepEqual(await bindings(both), [String(BLOCK), String(BLOCK)]);
        assert.deepEqual(await verdicts(), { c: true, b: false, h2: true, h3: false });

        // The bond goes: the PF's uplink has a program of its own, the other port none.
        await sysfs.release("mnpbond", SECOND_UPLINK);
        await apply(true);
        assert.deepEqual(await bindings(both), ["own", "none"]);
        assert.deepEqual(await verdicts(), { c: true, b: false, h2: false, h3: false });

        // It comes back: the uplink's own clsact is replaced by the block's.
        await sysfs.enslave("mnpbond", SECOND_UPLINK);
        await apply(true);
        assert.deepEqual(await bindings(both), [String(BLOCK), String(BLOCK)]);
        assert.deepEqual(await verdicts(), { c: true, b: false, h2: true, h3: false });

        // No policy: no clsact on either uplink, and the block is gone.
        await apply(false);
        assert.deepEqual(await bindings(both), ["none", "none"]);
        const shown = await tryRun(["tc", "filter", "show", "block", String(BLOCK)]);
        assert.notEqual(shown.code, 0, "the block went with its last binding");
      } finally {
        await stopAll(servers);
        await sysfs.remove();
        await tryRun(["ip", "link", "del", SECOND_UPLINK]);
      }
    });
  });
}
