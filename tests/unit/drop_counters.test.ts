/**
 * Drop counters: which filters count drops for which interface and
 * direction (checked by running denied packets through the programs with
 * the simulator), totals that survive a program swap, the metrics text,
 * and rate-limited drop warnings.
 */
import assert from "node:assert/strict";
import { DropCounters } from "../../src/agent/drop_counters.ts";
import { DROP_REASON, DropWarnings } from "../../src/agent/drop_warnings.ts";
import { AgentMetrics } from "../../src/agent/metrics.ts";
import { TcSink } from "../../src/agent/tc_sink.ts";
import { interfaceKey, type InterfaceRules } from "../../src/policy/model.ts";
import { dropSites } from "../../src/tc/accounting.ts";
import { Actuator } from "../../src/tc/actuator.ts";
import { deviceProgram, POLICY_PRIO } from "../../src/tc/generate.ts";
import { counterKey, type TcFilter } from "../../src/tc/model.ts";
import { nodeRoles } from "../../src/tc/placement.ts";
import { Conntrack } from "../../src/tc/simulator/conntrack.ts";
import { runHook } from "../../src/tc/simulator/hook.ts";
import type { Packet } from "../../src/tc/simulator/packet.ts";
import { iface, render } from "../support/cluster.ts";
import { FakeClock } from "../support/fake_clock.ts";
import { RecordingDriver } from "../support/fake_driver.ts";
import { mnp, nad, ns, pod } from "../support/manifests.ts";

const syn = (src: string, dst: string, dport: number) =>
  ({
    tags: [],
    ethType: "ip",
    src,
    dst,
    l4: "tcp",
    sport: 40000,
    dport,
    tcp: { syn: true },
  }) as Packet;

/**
 * Four local pods on one network: `a` may send to `b`, `c` and `d` only;
 * `b` takes TCP 80 from `a` only; `c` and `d` take nothing.
 */
function fourPods(): Record<"a" | "b" | "c" | "d", InterfaceRules> {
  const result = render([
    ns("app"),
    nad("app", "data"),
    pod("app", "a", { labels: { role: "a" }, nets: { "app/data": "10.0.0.1" } }),
    pod("app", "b", { labels: { role: "b" }, nets: { "app/data": "10.0.0.2" } }),
    pod("app", "c", { labels: { role: "c" }, nets: { "app/data": "10.0.0.3" } }),
    pod("app", "d", { labels: { role: "d" }, nets: { "app/data": "10.0.0.4" } }),
    mnp("app", "a-out", "data", {
      podSelector: { matchLabels: { role: "a" } },
      policyTypes: ["Egress"],
      egress: [{
        to: [{
          podSelector: {
            matchExpressions: [{ key: "role", operator: "In", values: ["b", "c", "d"] }],
          },
        }],
      }],
    }),
    mnp("app", "b-in", "data", {
      podSelector: { matchLabels: { role: "b" } },
      policyTypes: ["Ingress"],
      ingress: [{ from: [{ podSelector: { matchLabels: { role: "a" } } }], ports: [{ port: 80 }] }],
    }),
    mnp("app", "c-in", "data", {
      podSelector: { matchExpressions: [{ key: "role", operator: "In", values: ["c", "d"] }] },
      policyTypes: ["Ingress"],
    }),
  ]);
  return {
    a: iface(result, "app/a", "app/data"),
    b: iface(result, "app/b", "app/data"),
    c: iface(result, "app/c", "app/data"),
    d: iface(result, "app/d", "app/data"),
  };
}

Deno.test("drop sites: the filter that drops a denied packet counts for the interface and direction that denied it", () => {
  const pods = fourPods();
  const placed = (["a", "b", "c", "d"] as const).map((name, i) => ({
    rules: pods[name],
    representor: `rep-${name}`,
    uplink: "p0",
    switchId: "sw",
    zone: i + 1,
  }));
  const roles = new Map(nodeRoles(placed).map((role) => [role.device, role]));
  const cases: [string, Packet, string][] = [
    ["rep-a", syn("10.0.0.1", "10.0.0.2", 81), "b ingress"], // b takes port 80 only
    ["rep-a", syn("10.0.0.1", "10.0.0.3", 80), "c ingress"], // c and d take nothing: their
    ["rep-a", syn("10.0.0.1", "10.0.0.4", 80), "d ingress"], // shared chain drops each apart
    ["rep-a", syn("10.0.0.1", "10.9.9.9", 80), "a egress"], // a sends to b and c only
    ["rep-b", syn("10.0.0.2", "10.0.0.3", 80), "c ingress"],
    ["p0", syn("10.7.0.1", "10.0.0.2", 80), "b ingress"], // from the wire
    ["p0", syn("10.7.0.1", "10.0.0.3", 22), "c ingress"],
  ];
  for (const [device, packet, expected] of cases) {
    const role = roles.get(device)!;
    const program = deviceProgram(role, 3);
    const result = runHook(program.filters, "ingress", packet, new Conntrack());
    const what = `${device}: ${packet.src} -> ${packet.dst}:${packet.dport}`;
    assert.equal(result.verdict, "drop", what);
    const last = result.trace.at(-1)!;
    const sites = new Map(dropSites(role, program).map((site) => [site.key, site]));
    const site = sites.get(counterKey(last));
    assert.ok(site, `${what}: dropped by chain ${last.chain} prio ${last.prio}, not a drop site`);
    assert.equal(`${site.rules.pod.name} ${site.direction}`, expected, what);
  }
  // Drops that are not policy verdicts (tagged frames on a network without a trunk) count nowhere.
  const rep = roles.get("rep-a")!;
  const chainZeroDrops = deviceProgram(rep, 3).filters.filter((f) =>
    f.chain === 0 && f.actions.some((a) => a.kind === "drop")
  );
  assert.ok(chainZeroDrops.length > 0);
  const keys = new Set(dropSites(rep, deviceProgram(rep, 3)).map((s) => s.key));
  for (const filter of chainZeroDrops) assert.ok(!keys.has(counterKey(filter)));
});

function sinkWithDrops() {
  const kernel = new RecordingDriver(["p0", "rep-a", "rep-b", "rep-c", "rep-d"]);
  const drops = new DropCounters(kernel, 0);
  const actuator = new Actuator(kernel, { beforeChange: (device) => drops.settle(device) });
  const devices: Record<string, string> = {};
  const sink = new TcSink(
    actuator,
    {
      lookup: (pci) => Promise.resolve({ representor: devices[pci], uplink: "p0", switchId: "sw" }),
    },
    undefined,
    drops,
  );
  return { kernel, drops, sink, devices };
}

/**
 * The uplink's drop filter of `rules`' ingress policy for traffic from the wire: the final drop
 * of its chain, or its address's drop in the shared chain of receivers that take nothing.
 */
function uplinkDrop(kernel: RecordingDriver, rules: InterfaceRules): TcFilter {
  const filters = kernel.programmed.get("p0")!;
  const address = `${rules.ips[0]}/32`;
  const target = filters.find((f) => f.match.dstIp === address)!.actions
    .find((a) => a.kind === "goto");
  assert.ok(target?.kind === "goto");
  const chain = filters.filter((f) => f.chain === target.chain);
  return chain.find((f) => f.match.dstIp === address && f.actions[0].kind === "drop") ??
    chain.find((f) => f.prio === POLICY_PRIO.final)!;
}

const packetsOf = (drops: DropCounters, name: string, direction: string) =>
  drops.totals().find((t) => t.rules.pod.name === name && t.direction === direction)?.packets;

Deno.test("drop counters: totals follow the kernel's counters and survive a program swap", async () => {
  const { kernel, drops, sink, devices } = sinkWithDrops();
  const pods = fourPods();
  for (const name of ["a", "b", "c", "d"] as const) devices[pods[name].pciAddress] = `rep-${name}`;
  const apply = (rules: InterfaceRules[]) =>
    sink.apply(rules.map((r) => ({ key: interfaceKey(r), rules: r })));
  const results = await apply(Object.values(pods));
  assert.deepEqual(results.map((r) => r.error), [undefined, undefined, undefined, undefined]);
  kernel.hit("p0", uplinkDrop(kernel, pods.c), 5, 100);
  await drops.refresh();
  assert.equal(packetsOf(drops, "c", "ingress"), 5);
  assert.equal(
    drops.totals().find((t) => t.rules.pod.name === "c" && t.direction === "ingress")?.bytes,
    500,
  );
  assert.equal(packetsOf(drops, "b", "ingress"), 0);
  // A policy change swaps every program to a new generation: the old filters (and their
  // kernel counters) are deleted, the totals are not.
  const before = uplinkDrop(kernel, pods.c);
  kernel.hit("p0", before, 2, 100); // dropped after the last read, before the swap
  const opened = {
    ...pods.c,
    ingress: {
      ...pods.c.ingress,
      allow: [{
        cidrs: ["10.0.0.2/32"],
        protocol: "TCP" as const,
        ports: [{ first: 22, last: 22 }],
      }],
    },
  };
  await apply([opened]);
  const after = uplinkDrop(kernel, opened);
  assert.notEqual(after.chain, before.chain, "a new generation");
  await drops.refresh();
  assert.equal(packetsOf(drops, "c", "ingress"), 7);
  kernel.hit("p0", after, 3, 100);
  await drops.refresh();
  assert.equal(packetsOf(drops, "c", "ingress"), 10);
  // An interface that goes takes its totals with it.
  await sink.apply([{ key: interfaceKey(pods.c), rules: null, previous: opened }]);
  assert.equal(packetsOf(drops, "c", "ingress"), undefined);
});

Deno.test("drop counters: reads are cached for maxAge, and a failed read changes nothing", async () => {
  const kernel = new RecordingDriver(["rep0"]);
  const clock = new FakeClock();
  const drops = new DropCounters(kernel, 2000, () => clock.now());
  const rules = fourPods().c;
  const filter: TcFilter = {
    hook: "ingress",
    chain: 1_050_001,
    prio: 9,
    handle: 1,
    protocol: "all",
    match: {},
    actions: [{ kind: "drop" }],
  };
  kernel.programmed.set("rep0", [filter]);
  drops.track("rep0", [{ key: counterKey(filter), rules, direction: "ingress" }]);
  kernel.hit("rep0", filter, 1, 60);
  await drops.refresh();
  kernel.hit("rep0", filter, 1, 60);
  await drops.refresh(); // within maxAge: not read again
  assert.equal(drops.totals()[0].packets, 1);
  await clock.advance(2000);
  await drops.refresh();
  assert.equal(drops.totals()[0].packets, 2);
  kernel.present.delete("rep0");
  await clock.advance(2000);
  await drops.refresh();
  assert.equal(drops.totals()[0].packets, 2);
});

Deno.test("drop metrics: one counter per interface and direction in the exposition text", () => {
  const metrics = new AgentMetrics();
  const rules = fourPods().b;
  metrics.publishDrops([{ rules, direction: "ingress", packets: 4, bytes: 240 }]);
  const text = metrics.render();
  const labels = `{namespace="app",pod="b",interface="net1",direction="ingress"}`;
  assert.match(text, /# TYPE mnp_policy_dropped_packets_total counter/);
  assert.ok(text.includes(`mnp_policy_dropped_packets_total${labels} 4\n`), text);
  assert.ok(text.includes(`mnp_policy_dropped_bytes_total${labels} 240\n`), text);
});

Deno.test("drop warnings: one per interface per minute, naming direction, count and policies", async () => {
  const clock = new FakeClock();
  const sent: { pod: string; reason: string; message: string }[] = [];
  const warnings = new DropWarnings(
    {
      podNotice: (pod, reason, message) => sent.push({ pod: pod.name, reason, message }),
    },
    60_000,
    () => clock.now(),
  );
  const rules = fourPods().b;
  const total = { rules, direction: "ingress" as const, packets: 0, bytes: 0 };
  warnings.check([total]);
  assert.equal(sent.length, 0, "nothing dropped, nothing said");
  total.packets = 3;
  warnings.check([total]);
  assert.deepEqual(sent, [{
    pod: "b",
    reason: DROP_REASON,
    message: "policy dropped 3 ingress packets to net1 (network app/data); ingress is isolated " +
      'by app/b-in; see "multi-networkpolicy-tc explain"',
  }]);
  total.packets = 9;
  await clock.advance(30_000);
  warnings.check([total]);
  assert.equal(sent.length, 1, "within the minute: quiet");
  await clock.advance(30_000);
  warnings.check([total]);
  assert.equal(sent.length, 2);
  assert.match(sent[1].message, /^policy dropped 6 ingress packets/);
  await clock.advance(60_000);
  warnings.check([total]);
  assert.equal(sent.length, 2, "no new drops: quiet");
});
