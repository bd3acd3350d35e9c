/** Kernel events to repairs: which events concern which programmed device, and why. */
import assert from "node:assert/strict";
import { DriftWatch, type Repairer } from "../../src/agent/drift_watch.ts";

function setup() {
  const calls: { devices: string[] | "all"; cause: string }[] = [];
  const programmed = new Set(["rep1", "rep2"]);
  const indexes = new Map([["rep1", 11], ["rep2", 12]]);
  const sink: Repairer = {
    devices: () => new Set(programmed),
    repair(devices, cause) {
      calls.push({ devices: devices === "all" ? "all" : [...devices].sort(), cause });
      return Promise.resolve();
    },
  };
  const watch = new DriftWatch(sink, {
    indexOf: (name) => indexes.get(name) ?? 0,
    isOwnPort: (port) => port === 4242,
    settleMs: 5,
  });
  const settle = () => new Promise((resolve) => setTimeout(resolve, 30));
  return { calls, indexes, watch, settle };
}

Deno.test("drift watch: a TC change by another process repairs that device; our own is ignored", async () => {
  const { calls, watch, settle } = setup();
  watch.handle({ kind: "tc", ifindex: 11, portid: 4242 });
  await settle();
  assert.deepEqual(calls, []);
  watch.handle({ kind: "tc", ifindex: 11, portid: 999 });
  watch.handle({ kind: "tc", ifindex: 11, portid: 998 });
  watch.handle({ kind: "tc", ifindex: 77, portid: 999 });
  await settle();
  // Events gather: one repair of rep1; a device that is not ours is no concern.
  assert.deepEqual(calls, [{ devices: ["rep1"], cause: "TC changed by another process" }]);
  await watch.stop();
});

Deno.test("drift watch: a representor deleted and re-created under its name is re-programmed", async () => {
  const { calls, indexes, watch, settle } = setup();
  watch.handle({ kind: "tc", ifindex: 99, portid: 1 }); // learns the indexes
  watch.handle({ kind: "link-del", ifindex: 12, name: "rep2" });
  indexes.set("rep2", 40);
  watch.handle({ kind: "link-new", ifindex: 40, name: "rep2" });
  await settle();
  assert.deepEqual(calls, [{ devices: ["rep2"], cause: "device re-created" }]);
  // A state change of a device we know (same index) is nothing.
  watch.handle({ kind: "link-new", ifindex: 40, name: "rep2" });
  watch.handle({ kind: "link-new", ifindex: 11, name: "rep1" });
  await settle();
  assert.equal(calls.length, 1);
  await watch.stop();
});

Deno.test("drift watch: a new device may be a missing representor; lost events repair all", async () => {
  const { calls, watch, settle } = setup();
  watch.handle({ kind: "link-new", ifindex: 50, name: "rep9" });
  await settle();
  watch.handle({ kind: "link-new", ifindex: 50, name: "rep9" });
  watch.handle({ kind: "overflow" });
  await settle();
  assert.deepEqual(calls, [
    { devices: ["rep9"], cause: "device appeared" },
    { devices: "all", cause: "the kernel dropped notifications" },
  ]);
  await watch.stop();
  watch.handle({ kind: "overflow" });
  await settle();
  assert.equal(calls.length, 2, "no repair after stop");
});
