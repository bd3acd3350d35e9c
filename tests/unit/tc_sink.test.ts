/** The production sink: representor lookup + actuator, with a recording driver. */
import assert from "node:assert/strict";
import { TcSink } from "../../src/agent/tc_sink.ts";
import type { InterfaceRules } from "../../src/policy/model.ts";
import {
  OWNER_COOKIE,
  type TcCommand,
  type TcFilter,
  TRANSITION_COOKIE,
} from "../../src/tc/model.ts";
import { Actuator } from "../../src/tc/actuator.ts";
import { interfaceKey } from "../../src/policy/model.ts";
import { iface, render } from "../support/cluster.ts";
import { RecordingDriver } from "../support/fake_driver.ts";
import { mnp, nad, ns, pod } from "../support/manifests.ts";

function setup() {
  const kernel = new RecordingDriver();
  const map = new Map<string, string>();
  kernel.present.add("p0");
  const lookup = {
    lookup: (pci: string) => {
      const device = map.get(pci);
      return device
        ? Promise.resolve({ representor: device, uplink: "p0", switchId: "sw0" })
        : Promise.reject(new Error(`${pci}: no representor`));
    },
  };
  const sink = new TcSink(new Actuator(kernel), lookup);
  /** A VF at `pci` whose representor `device` exists. */
  const vf = (pci: string, device: string) => {
    map.set(pci, device);
    kernel.present.add(device);
  };
  return { kernel, map, sink, vf };
}

function webRules(): InterfaceRules {
  return iface(
    render([
      ns("app"),
      nad("app", "data"),
      pod("app", "web", { nets: { "app/data": "10.0.0.1" } }),
      mnp("app", "deny", "data", { policyTypes: ["Ingress"] }),
    ]),
    "app/web",
    "app/data",
  );
}

Deno.test("sink: programs the VF's representor and its uplink, then cleans both when it goes", async () => {
  const { kernel, sink, vf } = setup();
  const rules = webRules();
  vf(rules.pciAddress, "rep7");
  const key = interfaceKey(rules);
  const [applied] = await sink.apply([{ key, rules }]);
  assert.equal(applied.error, undefined);
  assert.ok(applied.filters! > 10);
  assert.equal(kernel.programmed.get("rep7")!.length, applied.filters);
  // The pod's ingress policy sits on the uplink, where traffic to it enters.
  const uplink = kernel.programmed.get("p0")!;
  assert.ok(uplink.some((f) => f.match.dstIp === "10.0.0.1/32"));
  for (const filters of kernel.programmed.values()) {
    assert.ok(filters.every((f) => f.hook === "ingress"), "every filter on an ingress hook");
  }
  assert.deepEqual([...sink.devices()].sort(), ["p0", "rep7"]);
  // Every device's filters count, the uplink's included.
  assert.equal(sink.filtersInPlace(), applied.filters! + uplink.length);
  const [removed] = await sink.apply([{ key, rules: null, previous: rules }]);
  assert.equal(removed.error, undefined);
  assert.equal(kernel.programmed.has("rep7"), false);
  assert.equal(kernel.programmed.has("p0"), false);
  assert.deepEqual([...sink.devices()], []);
  assert.equal(sink.filtersInPlace(), 0);
});

Deno.test("sink: a pod's ingress policy also sits on the other representors of its network", async () => {
  const { kernel, sink, vf } = setup();
  const rules = webRules();
  const peer = {
    ...rules,
    pod: { namespace: "app", name: "peer", uid: "u-peer" },
    pciAddress: "0000:5e:00.4",
    ips: ["10.0.0.9"],
    ingress: { isolated: false, policies: [], allow: [] },
    egress: { isolated: false, policies: [], allow: [] },
  };
  vf(rules.pciAddress, "rep7");
  vf(peer.pciAddress, "rep8");
  const results = await sink.apply([
    { key: interfaceKey(rules), rules },
    { key: interfaceKey(peer), rules: peer },
  ]);
  assert.deepEqual(results.map((r) => r.error), [undefined, undefined]);
  // The unpoliced peer's representor checks what it sends to web, and nothing else.
  const onPeer = kernel.programmed.get("rep8")!;
  assert.ok(onPeer.some((f) => f.match.dstIp === "10.0.0.1/32"));
  assert.ok(!onPeer.some((f) => f.chain === 0 && f.actions.some((a) => a.kind === "ct")));
});

Deno.test("sink: an interface beyond the e-switch's zones is reported, never given a used zone", async () => {
  const { kernel, sink, vf } = setup();
  const base = webRules();
  const changes = Array.from({ length: 256 }, (_, i) => {
    const rules = {
      ...base,
      pod: { namespace: "app", name: `web${i}`, uid: `u${i}` },
      pciAddress: `0000:5e:${(i >> 3).toString(16).padStart(2, "0")}.${i & 7}`,
      ips: [`10.1.${i >> 8}.${i & 0xff}`],
    };
    vf(rules.pciAddress, `rep${i}`);
    return { key: interfaceKey(rules), rules };
  });
  const results = await sink.apply(changes);
  const failed = results.filter((r) => r.error !== undefined);
  assert.equal(failed.length, 1);
  assert.match(failed[0].error!, /no conntrack zone left on e-switch sw0 \(all 255 in use\)/);
  const zones = new Set<number>();
  for (const [device, filters] of kernel.programmed) {
    if (device === "p0") continue;
    const own = filters.find((f) => f.chain === 0 && f.actions[0]?.kind === "ct")!.actions[0];
    assert.ok(own.kind === "ct" && !zones.has(own.zone), `${device}: zone reused`);
    if (own.kind === "ct") zones.add(own.zone);
  }
  assert.equal(zones.size, 255);
});

Deno.test("sink: a missing representor is an error for that interface only", async () => {
  const { sink, vf } = setup();
  const rules = webRules();
  const other = { ...rules, pciAddress: "0000:5e:00.3", interfaceName: "net2" };
  vf(other.pciAddress, "rep9");
  const results = await sink.apply([
    { key: "a", rules },
    { key: "b", rules: other },
  ]);
  assert.match(results[0].error!, /no representor/);
  assert.equal(results[1].error, undefined);
});

Deno.test("sink: a representor that disappeared needs no cleaning and is no error", async () => {
  const { kernel, map, sink, vf } = setup();
  const rules = webRules();
  vf(rules.pciAddress, "rep7");
  await sink.apply([{ key: "k", rules }]);
  kernel.present.delete("rep7");
  map.delete(rules.pciAddress);
  const [removed] = await sink.apply([{ key: "k", rules: null, previous: rules }]);
  assert.equal(removed.error, undefined);
});

Deno.test("sink: after the first full sync, representors left by vanished pods are cleaned", async () => {
  const kernel = new RecordingDriver();
  const rules = webRules();
  for (const device of ["rep1", "rep2", "rep3"]) kernel.present.add(device);
  // rep2 still carries rules of a pod deleted while the agent was down.
  kernel.programmed.set("rep2", [{
    hook: "ingress",
    chain: 0,
    prio: 31,
    handle: 1,
    protocol: "all",
    match: {},
    actions: [{ kind: "pass" }],
    cookie: OWNER_COOKIE,
  }]);
  kernel.present.add("p0");
  const lookup = {
    lookup: () => Promise.resolve({ representor: "rep1", uplink: "p0", switchId: "sw0" }),
  };
  const sink = new TcSink(
    new Actuator(kernel),
    lookup,
    () => Promise.resolve(["p0", "rep1", "rep2", "rep3"]),
  );
  await sink.apply([{ key: "k", rules }]);
  assert.ok(kernel.programmed.has("rep1"));
  assert.equal(kernel.programmed.has("rep2"), false);
  // Only once: rules programmed later on rep2 by others are not swept again.
  kernel.programmed.set("rep2", []);
  await sink.apply([{ key: "k", rules }]);
  assert.ok(kernel.programmed.has("rep2"));
});

Deno.test("sink: a VF taken over by another interface keeps its program when the old one goes", async () => {
  const { kernel, sink, vf } = setup();
  const rules = webRules();
  vf(rules.pciAddress, "rep7");
  const before = { ...rules, pod: { ...rules.pod, name: "attacker", uid: "u-attacker" } };
  await sink.apply([{ key: interfaceKey(before), rules: before }]);
  const results = await sink.apply([
    { key: interfaceKey(rules), rules },
    { key: interfaceKey(before), rules: null, previous: before },
  ]);
  assert.deepEqual(results.map((r) => r.error), [undefined, undefined]);
  assert.ok(kernel.programmed.get("rep7")!.length > 10, "the new holder's program stays");
  assert.deepEqual([...sink.devices()].sort(), ["p0", "rep7"]);
});

Deno.test("sink: an earlier program's egress-hook checks go only after every device has its new one", async () => {
  const { kernel, sink, vf } = setup();
  const rules = webRules();
  vf(rules.pciAddress, "rep7");
  // What an earlier version programmed: the pod's ingress policy on its egress hook.
  const old = (chain: number, prio: number, actions: TcFilter["actions"]): TcFilter => ({
    hook: "egress",
    chain,
    prio,
    handle: 1,
    protocol: chain === 0 ? "ip" : "all",
    match: {},
    actions,
    cookie: OWNER_COOKIE,
  });
  kernel.programmed.set("rep7", [
    old(0, 11, [{ kind: "ct", zone: 9, commit: false }, { kind: "goto", chain: 1_000_000 }]),
    old(1_000_000, 9, [{ kind: "drop" }]),
  ]);
  const [result] = await sink.apply([{ key: interfaceKey(rules), rules }]);
  assert.equal(result.error, undefined);
  const removesEgress = (c: TcCommand) =>
    (c.op === "filter-del" || c.op === "chain-del") &&
    (c.op === "chain-del" ? c.hook : c.filter.hook) === "egress";
  const firstRemoval = kernel.log.findIndex((l) => l.commands.some(removesEgress));
  const lastIngressWrite = kernel.log.findLastIndex((l) =>
    l.commands.some((c) => c.op === "filter-add" && c.filter.hook === "ingress")
  );
  assert.ok(firstRemoval > lastIngressWrite, "egress checks removed after every new program");
  // The pod's checks are new on both devices: both first only track, then the uplink commits,
  // then the representor enforces its sender, then the uplink its receiver; the representor's
  // egress hook goes last.
  assert.deepEqual(kernel.log.map((l) => l.device), ["p0", "rep7", "p0", "rep7", "p0", "rep7"]);
  for (const filters of kernel.programmed.values()) {
    assert.ok(filters.every((f) => f.hook === "ingress"), "nothing left on an egress hook");
  }
});

Deno.test("sink: a VF that cannot be found for a while keeps its checks where they were", async () => {
  const { kernel, map, sink, vf } = setup();
  const rules = webRules();
  vf(rules.pciAddress, "rep7");
  const key = interfaceKey(rules);
  await sink.apply([{ key, rules }]);
  const before = structuredClone([...kernel.programmed]);
  map.delete(rules.pciAddress); // sysfs cannot tell for now
  const [failed] = await sink.apply([{ key, rules }]);
  assert.match(failed.error!, /no representor/);
  // Nothing was taken away: not the uplink's check of traffic to it, not its representor.
  assert.deepEqual([...kernel.programmed], before);
  map.set(rules.pciAddress, "rep7");
  const [again] = await sink.apply([{ key, rules }]);
  assert.equal(again.error, undefined);
});

Deno.test("sink: a bond forming or going moves the uplink checks without transition steps", async () => {
  const kernel = new RecordingDriver(["rep7", "p0", "p1", "block:7"]);
  let bonded = false;
  const sink = new TcSink(new Actuator(kernel), {
    lookup: () =>
      Promise.resolve(
        bonded
          ? { representor: "rep7", uplink: "block:7", switchId: "sw0", uplinkMembers: ["p0", "p1"] }
          : { representor: "rep7", uplink: "p0", switchId: "sw0" },
      ),
  });
  const rules = webRules();
  const key = interfaceKey(rules);
  const transitional = (device: string) =>
    kernel.log.filter((l) =>
      l.device === device &&
      l.commands.some((c) => "filter" in c && c.filter.cookie === TRANSITION_COOKIE)
    ).length;
  // New on the uplink: its checks are put in place in steps.
  await sink.apply([{ key, rules }]);
  assert.ok(transitional("p0") > 0, "the first program took steps");
  const onUplink = kernel.programmed.get("p0")!;
  // The bond forms: the block enforces what its uplink did, at once; the uplink is cleaned.
  bonded = true;
  kernel.log.length = 0;
  await sink.apply([{ key, rules }]);
  assert.equal(transitional("block:7"), 0);
  // The same program (chain numbers aside: the steps left the uplink a later generation).
  const onBlock = kernel.programmed.get("block:7")!;
  assert.equal(onBlock.length, onUplink.length);
  assert.ok(onBlock.every((f) => f.cookie === OWNER_COOKIE));
  assert.equal(kernel.programmed.get("p0"), undefined);
  // It goes: the uplink gets its program back, again without steps.
  bonded = false;
  kernel.log.length = 0;
  await sink.apply([{ key, rules }]);
  assert.equal(transitional("p0"), 0);
  assert.equal(kernel.programmed.get("p0")!.length, onUplink.length);
  assert.equal(kernel.programmed.get("block:7"), undefined);
});
