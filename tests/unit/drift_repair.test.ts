/**
 * Drift repair and ownership through the production sink and actuator, on
 * a fake kernel: what someone else deletes or changes is put back when the
 * device is read back, foreign filters are reported and never touched.
 */
import assert from "node:assert/strict";
import { TcSink } from "../../src/agent/tc_sink.ts";
import type { Drift } from "../../src/tc/drift.ts";
import { interfaceKey, type InterfaceRules } from "../../src/policy/model.ts";
import { Actuator } from "../../src/tc/actuator.ts";
import { isMarked, OWNER_COOKIE, type TcFilter } from "../../src/tc/model.ts";
import { webDenied } from "../support/cluster.ts";
import { RecordingDriver } from "../support/fake_driver.ts";

function setup() {
  const kernel = new RecordingDriver(["p0", "rep7"]);
  const repaired: { device: string; drift: Drift; cause: string }[] = [];
  const ahead: { device: string; pods: string[]; ahead: string[] }[] = [];
  const rules: InterfaceRules = webDenied(["Ingress", "Egress"]);
  const sink = new TcSink(
    new Actuator(kernel),
    {
      lookup: () => Promise.resolve({ representor: "rep7", uplink: "p0", switchId: "sw0" }),
    },
    undefined,
    undefined,
    {
      repaired: (device, drift, cause) => repaired.push({ device, drift, cause }),
      foreignAhead: (device, pods, list) =>
        ahead.push({ device, pods: pods.map((p) => p.name), ahead: list }),
    },
  );
  const change = { key: interfaceKey(rules), rules };
  return { kernel, sink, change, repaired, ahead };
}

function foreign(chain: number, prio: number): TcFilter {
  return {
    hook: "ingress",
    chain,
    prio,
    handle: 7,
    protocol: "ip",
    match: {},
    actions: [{ kind: "pass" }],
  };
}

Deno.test("drift: a deleted filter and a deleted qdisc are put back on a read-back, and named", async () => {
  const { kernel, sink, change, repaired } = setup();
  await sink.apply([change]);
  const program = [...kernel.programmed.get("rep7")!];
  assert.ok(program.length > 5 && program.every(isMarked), "every filter of ours is marked");
  // Someone deletes one of our filters: an apply without read-back does not notice.
  kernel.programmed.set("rep7", program.slice(1));
  await sink.apply([change]);
  assert.equal(kernel.programmed.get("rep7")!.length, program.length - 1);
  await sink.repair(new Set(["rep7"]), "TC changed by another process");
  assert.equal(kernel.programmed.get("rep7")!.length, program.length);
  assert.deepEqual(repaired.map((r) => [r.device, r.drift.reason, r.cause]), [
    ["rep7", "filters_missing", "TC changed by another process"],
  ]);
  assert.match(repaired[0].drift.detail, new RegExp(`1 of our ${program.length} filters missing`));
  // The qdisc goes (or the device is re-created): a full resync reads back and repairs.
  kernel.programmed.delete("rep7");
  await sink.apply([change], { verify: "all" });
  assert.equal(kernel.programmed.get("rep7")!.length, program.length);
  assert.equal(repaired.at(-1)!.drift.reason, "qdisc_missing");
  // Nothing wrong: a read-back repairs nothing.
  const commands = () => kernel.applied.reduce((n, list) => n + list.length, 0);
  const before = commands();
  await sink.repair("all", "resync");
  assert.equal(commands(), before);
  assert.equal(repaired.length, 2);
});

Deno.test("drift: a changed filter of ours is replaced; a foreign one ahead is reported, kept", async () => {
  const { kernel, sink, change, repaired, ahead } = setup();
  await sink.apply([change]);
  const program = kernel.programmed.get("rep7")!;
  const policyChain = program.find((f) => f.chain !== 0)!;
  kernel.programmed.set("rep7", [
    ...program.filter((f) => f !== policyChain),
    { ...policyChain, actions: [{ kind: "pass" }] },
    foreign(0, 2),
    foreign(policyChain.chain, 1),
  ]);
  await sink.repair(new Set(["rep7"]), "TC changed by another process");
  assert.equal(repaired.at(-1)!.drift.reason, "filters_changed");
  const after = kernel.programmed.get("rep7")!;
  // The program is whole again (written into a fresh generation of chains).
  assert.equal(after.filter(isMarked).length, program.length);
  assert.ok(
    !after.some((f) =>
      isMarked(f) && f.chain !== 0 && f.actions.length === 1 && f.actions[0].kind === "pass" &&
      f.prio === policyChain.prio && f.handle === policyChain.handle
    ),
    "the changed filter is gone",
  );
  // Both foreign filters stay, though one sits in a chain of ours that a swap deletes.
  assert.equal(after.filter((f) => !isMarked(f)).length, 2);
  assert.deepEqual(ahead.map((a) => [a.device, a.pods, a.ahead.length]), [["rep7", ["web"], 2]]);
  // Reported once while they stay; again (empty) when they are gone.
  await sink.repair(new Set(["rep7"]), "resync");
  assert.equal(ahead.length, 1);
  kernel.programmed.set("rep7", after.filter(isMarked));
  await sink.repair(new Set(["rep7"]), "resync");
  assert.deepEqual(ahead.at(-1)!.ahead, []);
});

Deno.test("ownership: removing the policy keeps foreign filters, their chain and the qdisc", async () => {
  const { kernel, sink, change } = setup();
  await sink.apply([change]);
  const program = kernel.programmed.get("rep7")!;
  const chain = program.find((f) => f.chain !== 0)!.chain;
  // Foreign filters after our dispatch and inside one of our chains.
  kernel.programmed.set("rep7", [...program, foreign(0, 100), foreign(chain, 1)]);
  await sink.apply([{ key: change.key, rules: null, previous: change.rules }]);
  const left = kernel.programmed.get("rep7");
  assert.ok(left, "the qdisc stays while foreign filters are on it");
  assert.deepEqual(left.map((f) => [f.chain, f.prio, isMarked(f)]), [
    [0, 100, false],
    [chain, 1, false],
  ]);
  const commands = kernel.log.filter((entry) => entry.device === "rep7").at(-1)!.commands;
  assert.ok(
    !commands.some((c) => c.op === "chain-del" && c.chain === chain),
    "a chain holding a foreign filter is emptied filter by filter, never flushed",
  );
});

Deno.test("drift: a repair before the first sync touches nothing (no sweep of left-over programs)", async () => {
  const kernel = new RecordingDriver(["p0", "rep1", "rep2"]);
  const left = { ...foreign(0, 31), cookie: OWNER_COOKIE };
  kernel.programmed.set("rep2", [left]);
  const sink = new TcSink(
    new Actuator(kernel),
    { lookup: () => Promise.resolve({ representor: "rep1", uplink: "p0", switchId: "sw0" }) },
    () => Promise.resolve(["p0", "rep1", "rep2"]),
  );
  await sink.repair("all", "device appeared");
  assert.deepEqual(kernel.log, []);
  assert.deepEqual(kernel.programmed.get("rep2"), [left]);
});
