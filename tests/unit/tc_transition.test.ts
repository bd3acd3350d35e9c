/**
 * Checks new on their devices are put in place in steps (src/tc/transition.ts):
 * the sink programs a node through a recording kernel, and every TCP
 * handshake is run through the devices' filters at every moment, and
 * across every device change: no allowed packet may drop, no denied
 * connection may start where it was denied before. A handshake takes far
 * less time than a device change (microseconds against milliseconds), so
 * each one meets at most one change; connections that began before the
 * first change are picked up mid-stream by whichever side speaks first, as
 * conntrack does (docs/tc-rule-pipeline.md), and are not judged here.
 */
import assert from "node:assert/strict";
import { TcSink } from "../../src/agent/tc_sink.ts";
import { interfaceKey, type InterfaceRules } from "../../src/policy/model.ts";
import { Actuator } from "../../src/tc/actuator.ts";
import { deviceProgram } from "../../src/tc/generate.ts";
import type { TcCommand, TcFilter, TcState } from "../../src/tc/model.ts";
import { nodeRoles } from "../../src/tc/placement.ts";
import { Conntrack } from "../../src/tc/simulator/conntrack.ts";
import { runHook } from "../../src/tc/simulator/hook.ts";
import { type Packet, reversed } from "../../src/tc/simulator/packet.ts";
import { enforcedBy, planTransition } from "../../src/tc/transition.ts";
import { iface, render } from "../support/cluster.ts";
import { goAgentFilter } from "../support/tc_filters.ts";
import { RecordingDriver } from "../support/fake_driver.ts";
import { mnp, nad, ns, pod } from "../support/manifests.ts";

const ADDRESS = { a: "10.9.0.1", b: "10.9.0.2", w: "10.9.0.3", x: "10.9.0.4" };
const PCI = { a: "0000:03:00.2", b: "0000:03:00.3" };
const REP = { a: "repA", b: "repB" };
const UPLINK = "p0";
const PORT_80 = { first: 80, last: 80 };

/** Pods a and b here, w and x elsewhere; a and b take and open TCP 80 with a, b and w only. */
function nodeRules(local: ("a" | "b")[]): InterfaceRules[] {
  const peers = {
    podSelector: { matchExpressions: [{ key: "role", operator: "In", values: ["a", "b", "w"] }] },
  };
  const rendered = render([
    ns("app"),
    nad("app", "data"),
    ...(["a", "b", "w", "x"] as const).map((name) =>
      pod("app", name, {
        labels: { role: name },
        node: (local as string[]).includes(name) ? "node-a" : "node-b",
        nets: { "app/data": ADDRESS[name] },
        pci: name in PCI ? { "app/data": PCI[name as "a" | "b"] } : undefined,
      })
    ),
    mnp("app", "both-ways", "data", {
      podSelector: { matchExpressions: [{ key: "role", operator: "In", values: ["a", "b"] }] },
      policyTypes: ["Ingress", "Egress"],
      ingress: [{ from: [peers], ports: [{ protocol: "TCP", port: 80 }] }],
      egress: [{ to: [peers], ports: [{ protocol: "TCP", port: 80 }] }],
    }),
  ]);
  return local.map((name) => iface(rendered, `app/${name}`, "app/data"));
}

/** A kernel that remembers every state the node went through, one device change at a time. */
class TimelineDriver extends RecordingDriver {
  readonly timeline: Map<string, TcFilter[]>[] = [];
  /** Devices that carry an `ingress` qdisc (the Go agent's) instead of clsact. */
  readonly ingressQdisc = new Set<string>();

  snapshot(): void {
    this.timeline.push(new Map([...this.programmed].map(([d, f]) => [d, [...f]])));
  }
  override async read(device: string): Promise<TcState> {
    const state = await super.read(device);
    if (!this.ingressQdisc.has(device)) return state;
    return { ...state, clsact: false, ingressQdisc: true };
  }
  override async apply(device: string, commands: TcCommand[]): Promise<void> {
    if (this.ingressQdisc.has(device) && commands.some((c) => c.op === "qdisc-del")) {
      this.ingressQdisc.delete(device);
    }
    await super.apply(device, commands);
    this.snapshot();
  }
}

/** Where each address's packets enter the node's e-switch. */
function entryOf(address: string): string {
  if (address === ADDRESS.a) return REP.a;
  if (address === ADDRESS.b) return REP.b;
  return UPLINK;
}

/** A TCP handshake and one answer, from `from` to `to` port 80. */
function handshake(from: string, to: string): Packet[] {
  const syn: Packet = {
    tags: [],
    ethType: "ip",
    src: from,
    dst: to,
    l4: "tcp",
    sport: 40000,
    dport: 80,
    tcp: { syn: true },
  };
  return [
    syn,
    reversed(syn, { tcp: { syn: true, ack: true } }),
    { ...syn, tcp: { ack: true } },
    reversed(syn, { tcp: { ack: true } }),
    { ...syn, tcp: { ack: true } },
  ];
}

/**
 * Every way `n` packets can meet `states` one after another with at most
 * one change between the first and the last: the state of each packet.
 */
function* moments(n: number, states: number): Generator<number[]> {
  for (let t = 0; t < states; t++) {
    if (t + 1 === states) {
      yield Array(n).fill(t);
      break;
    }
    // The first `k` packets before the change, the rest after it (k = n: no change met).
    for (let k = 1; k <= n; k++) yield [...Array(k).fill(t), ...Array(n - k).fill(t + 1)];
  }
}

/** The first packet of the handshake that drops when each packet meets the given state; -1: none. */
function firstDrop(timeline: Map<string, TcFilter[]>[], packets: Packet[], at: number[]): number {
  const conntrack = new Conntrack();
  for (const [i, packet] of packets.entries()) {
    const filters = timeline[at[i]].get(entryOf(packet.src!)) ?? [];
    if (runHook(filters, "ingress", packet, conntrack).verdict === "drop") return i;
  }
  return -1;
}

/**
 * Runs the handshake at every moment; returns those (as the state each
 * packet met) in which some packet dropped, with the first dropped packet.
 * With `changes` only, a moment across a change counts only when the
 * handshake passes wholly before and wholly after it: what a change breaks.
 */
function drops(timeline: Map<string, TcFilter[]>[], packets: Packet[], changes = false) {
  const whole = timeline.map((_, t) => firstDrop(timeline, packets, packets.map(() => t)) < 0);
  const found: { at: number[]; packet: number }[] = [];
  for (const at of moments(packets.length, timeline.length)) {
    if (changes && !(whole[at[0]] && whole[at.at(-1)!])) continue;
    const packet = firstDrop(timeline, packets, at);
    if (packet >= 0) found.push({ at, packet });
  }
  return found;
}

function sinkWith(kernel: TimelineDriver) {
  const vfs = new Map([[PCI.a, REP.a], [PCI.b, REP.b]]);
  for (const device of [UPLINK, REP.a, REP.b]) kernel.present.add(device);
  return new TcSink(new Actuator(kernel), {
    lookup: (pci) =>
      Promise.resolve({ representor: vfs.get(pci)!, uplink: UPLINK, switchId: "sw" }),
  });
}

const FLOWS: [string, string][] = [
  [ADDRESS.a, ADDRESS.w],
  [ADDRESS.w, ADDRESS.a],
  [ADDRESS.a, ADDRESS.b],
  [ADDRESS.b, ADDRESS.a],
  [ADDRESS.w, ADDRESS.b],
];

Deno.test("transition: two new pods, every handshake with every interleaving of the node's changes", async () => {
  const kernel = new TimelineDriver();
  const sink = sinkWith(kernel);
  kernel.snapshot();
  const results = await sink.apply(
    nodeRules(["a", "b"]).map((rules) => ({ key: interfaceKey(rules), rules })),
  );
  assert.deepEqual(results.map((r) => r.error), [undefined, undefined]);
  assert.ok(kernel.timeline.length >= 6, `${kernel.timeline.length} states`);
  for (const [from, to] of FLOWS) {
    assert.deepEqual(drops(kernel.timeline, handshake(from, to)), [], `${from} -> ${to}`);
  }
  // At the end the program is enforced: x is denied both ways, nothing transitional is left.
  const last = kernel.timeline.at(-1)!;
  for (const [from, to] of [[ADDRESS.a, ADDRESS.x], [ADDRESS.x, ADDRESS.a]]) {
    assert.equal(drops([last], handshake(from, to)).length, 1, `${from} -> ${to} denied`);
  }
  for (const filters of last.values()) {
    assert.ok(filters.every((f) => f.cookie === "6d6e702d746301"), "only enforcing filters left");
  }
  // A second apply of the same rules finds everything enforced: no step, no command.
  const before = kernel.log.length;
  await sink.apply(nodeRules(["a", "b"]).map((rules) => ({ key: interfaceKey(rules), rules })));
  assert.equal(kernel.log.length, before);
});

Deno.test("transition: without the steps, the same check finds the window (the test can fail)", async () => {
  const kernel = new TimelineDriver();
  for (const device of [UPLINK, REP.a, REP.b]) kernel.present.add(device);
  kernel.snapshot();
  const [a, b] = nodeRules(["a", "b"]);
  const roles = nodeRoles([
    { rules: a, representor: REP.a, uplink: UPLINK, switchId: "sw", zone: 1 },
    { rules: b, representor: REP.b, uplink: UPLINK, switchId: "sw", zone: 2 },
  ]);
  const actuator = new Actuator(kernel);
  for (const role of roles) await actuator.sync(role.device, (g) => deviceProgram(role, g));
  const broken = FLOWS.filter(([from, to]) =>
    drops(kernel.timeline, handshake(from, to)).length > 0
  );
  assert.ok(broken.length >= 3, `only ${broken.length} flows broke`);
});

Deno.test("transition: a third pod joins; the pods already enforced stay enforced throughout", async () => {
  const kernel = new TimelineDriver();
  const sink = sinkWith(kernel);
  const [a] = nodeRules(["a"]);
  await sink.apply([{ key: interfaceKey(a), rules: a }]);
  kernel.timeline.length = 0;
  kernel.snapshot();
  const both = nodeRules(["a", "b"]);
  await sink.apply(both.map((rules) => ({ key: interfaceKey(rules), rules })));
  // a's connections with w are not disturbed at any moment.
  for (const [from, to] of FLOWS.filter((flow) => !flow.includes(ADDRESS.b))) {
    assert.deepEqual(drops(kernel.timeline, handshake(from, to)), [], `${from} -> ${to}`);
  }
  // Those with b (whose representor carried nothing before) are broken by no change, and
  // work at the end.
  for (const [from, to] of FLOWS.filter((flow) => flow.includes(ADDRESS.b))) {
    assert.deepEqual(drops(kernel.timeline, handshake(from, to), true), [], `${from} -> ${to}`);
    assert.deepEqual(drops(kernel.timeline.slice(-1), handshake(from, to)), []);
  }
  // a's own checks never stopped: x is denied to and from a in every state.
  for (const state of kernel.timeline) {
    assert.equal(drops([state], handshake(ADDRESS.a, ADDRESS.x)).length, 1);
    assert.equal(drops([state], handshake(ADDRESS.x, ADDRESS.a)).length, 1);
  }
});

Deno.test("transition: from the Go agent's program, its verdicts hold until ours do", async () => {
  const kernel = new TimelineDriver();
  const sink = sinkWith(kernel);
  // The Go agent's layout on a's representor: pass to w and b on TCP 80, default drops.
  const go = goAgentFilter;
  kernel.programmed.set(REP.a, [
    go(200, "ip", { dstIp: `${ADDRESS.w}/32`, ipProto: "tcp", dstPort: PORT_80 }, "pass", 1),
    go(200, "ip", { dstIp: `${ADDRESS.b}/32`, ipProto: "tcp", dstPort: PORT_80 }, "pass", 2),
    go(300, "ip", {}, "drop"),
  ]);
  kernel.ingressQdisc.add(REP.a);
  kernel.snapshot();
  const [a] = nodeRules(["a"]);
  await sink.apply([{ key: interfaceKey(a), rules: a }]);
  assert.deepEqual(drops(kernel.timeline, handshake(ADDRESS.a, ADDRESS.w)), []);
  // What the Go agent denied stays denied in every state: a's SYN to x drops.
  for (const state of kernel.timeline) {
    assert.equal(drops([state], handshake(ADDRESS.a, ADDRESS.x))[0]?.packet, 0);
  }
  const last = kernel.timeline.at(-1)!.get(REP.a)!;
  assert.ok(last.every((f) => f.cookie === "6d6e702d746301"), "the Go agent's filters are gone");
});

Deno.test("transition: steps are planned from what each device enforces, not from zones", () => {
  const [a, b] = nodeRules(["a", "b"]);
  const roles = (za: number, zb: number) =>
    nodeRoles([
      { rules: a, representor: REP.a, uplink: UPLINK, switchId: "sw", zone: za },
      { rules: b, representor: REP.b, uplink: UPLINK, switchId: "sw", zone: zb },
    ]);
  const enforced = new Map(
    roles(1, 2).map((r) => [r.device, enforcedBy(deviceProgram(r, 1).filters)]),
  );
  const carried = (device: string) => ({ ...enforced.get(device)!, predecessor: [] });
  // After a restart that handed the zones out the other way round, nothing is new.
  assert.deepEqual(planTransition(roles(2, 1), carried).steps, []);
  // On an empty node: everything tracks; the uplink and both representors (receivers of
  // each other) commit; the representors then enforce their senders.
  const empty = () => ({ sender: false, receivers: new Set<string>(), predecessor: [] });
  const { steps, final } = planTransition(roles(1, 2), empty);
  assert.deepEqual(steps.map((s) => s.map((r) => r.device)), [
    [UPLINK, REP.a, REP.b],
    [UPLINK, REP.a, REP.b],
    [REP.a, REP.b],
  ]);
  const phases = steps.map((s) =>
    s.map((r) => [r.sender?.phase ?? "-", ...r.receivers.map((x) => x.phase ?? "-")].join(" "))
  );
  assert.deepEqual(phases, [
    ["- track track", "track track", "track track"],
    ["- open open", "track open", "track open"],
    ["- open", "- open"],
  ]);
  // Both representors took step 3; the final programs go in the node's order.
  assert.deepEqual(final.map((r) => r.device), [UPLINK, REP.a, REP.b]);
  // A lone new pod's representor enforces it before the uplink enforces its ingress.
  const alone = nodeRoles([{
    rules: a,
    representor: REP.a,
    uplink: UPLINK,
    switchId: "sw",
    zone: 1,
  }]);
  assert.deepEqual(planTransition(alone, empty).final.map((r) => r.device), [REP.a, UPLINK]);
});
