/** The production sink: representor lookup + actuator, with a recording driver. */
import assert from "node:assert/strict";
import { TcSink } from "../../src/agent/tc_sink.ts";
import type { InterfaceRules } from "../../src/policy/model.ts";
import { Actuator } from "../../src/tc/actuator.ts";
import { interfaceKey } from "../../src/policy/model.ts";
import { iface, render } from "../support/cluster.ts";
import { RecordingDriver } from "../support/fake_driver.ts";
import { mnp, nad, ns, pod } from "../support/manifests.ts";

function setup() {
  const kernel = new RecordingDriver();
  const map = new Map<string, string>();
  const lookup = {
    resolve: (pci: string) => {
      const device = map.get(pci);
      return device ? Promise.resolve(device) : Promise.reject(new Error(`${pci}: no representor`));
    },
  };
  const sink = new TcSink(new Actuator(kernel, { zoneFor: () => Promise.resolve(3) }), lookup);
  return { kernel, map, sink };
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

Deno.test("sink: programs the representor of the VF, then cleans it when the interface goes", async () => {
  const { kernel, map, sink } = setup();
  const rules = webRules();
  map.set(rules.pciAddress, "rep7");
  kernel.present.add("rep7");
  const key = interfaceKey(rules);
  const [applied] = await sink.apply([{ key, rules }]);
  assert.equal(applied.error, undefined);
  assert.ok(applied.filters! > 50);
  assert.equal(kernel.programmed.get("rep7")!.length, applied.filters);
  assert.deepEqual([...sink.devices()], ["rep7"]);
  const [removed] = await sink.apply([{ key, rules: null, previous: rules }]);
  assert.equal(removed.error, undefined);
  assert.equal(kernel.programmed.has("rep7"), false);
  assert.deepEqual([...sink.devices()], []);
});

Deno.test("sink: a missing representor is an error for that interface only", async () => {
  const { kernel, map, sink } = setup();
  const rules = webRules();
  const other = { ...rules, pciAddress: "0000:5e:00.3", interfaceName: "net2" };
  map.set(other.pciAddress, "rep9");
  kernel.present.add("rep9");
  const results = await sink.apply([
    { key: "a", rules },
    { key: "b", rules: other },
  ]);
  assert.match(results[0].error!, /no representor/);
  assert.equal(results[1].error, undefined);
});

Deno.test("sink: a representor that disappeared needs no cleaning and is no error", async () => {
  const { kernel, map, sink } = setup();
  const rules = webRules();
  map.set(rules.pciAddress, "rep7");
  kernel.present.add("rep7");
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
  }]);
  const lookup = { resolve: () => Promise.resolve("rep1") };
  const sink = new TcSink(
    new Actuator(kernel, { zoneFor: () => Promise.resolve(3) }),
    lookup,
    () => Promise.resolve(["rep1", "rep2", "rep3"]),
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
  const { kernel, map, sink } = setup();
  const rules = webRules();
  map.set(rules.pciAddress, "rep7");
  kernel.present.add("rep7");
  const before = { ...rules, pod: { ...rules.pod, name: "attacker", uid: "u-attacker" } };
  await sink.apply([{ key: interfaceKey(before), rules: before }]);
  const results = await sink.apply([
    { key: interfaceKey(rules), rules },
    { key: interfaceKey(before), rules: null, previous: before },
  ]);
  assert.deepEqual(results.map((r) => r.error), [undefined, undefined]);
  assert.ok(kernel.programmed.get("rep7")!.length > 50, "the new holder's program stays");
  assert.deepEqual([...sink.devices()], ["rep7"]);
});
