/** `--offload=auto|require|off` through the production sink on a fake kernel. */
import assert from "node:assert/strict";
import { NOT_OFFLOADED, type OffloadMode, OffloadPolicy } from "../../src/agent/offload_policy.ts";
import { TcSink } from "../../src/agent/tc_sink.ts";
import { EnforcementReports } from "../../src/agent/enforcement_reports.ts";
import { AgentMetrics } from "../../src/agent/metrics.ts";
import { interfaceKey, type InterfaceRules } from "../../src/policy/model.ts";
import { Actuator } from "../../src/tc/actuator.ts";
import { fallbackProgram } from "../../src/tc/fallback.ts";
import { counterKey, type FilterOffload, type TcState } from "../../src/tc/model.ts";
import { checkProgram } from "../../src/tc/offload/checker.ts";
import { webDenied } from "../support/cluster.ts";
import { RecordingDriver } from "../support/fake_driver.ts";

function setup(
  mode: OffloadMode,
  hw: boolean,
  inHw: (device: string, key: string) => boolean = () => true,
  reported?: EnforcementReports,
  copies?: (device: string) => number,
) {
  const kernel = new RecordingDriver(["p0", "rep7"]);
  const warnings: { pods: string[]; reason: string; message: string }[] = [];
  const status = new Map<string, [number, number]>();
  const resyncs: string[] = [];
  const read = async (device: string): Promise<TcState> => {
    const state = await kernel.read(device);
    const offload = new Map<string, FilterOffload>();
    for (const f of state.filters) {
      const there = !f.skipHw && inHw(device, counterKey(f));
      offload.set(counterKey(f), { inHw: there, inHwCount: there ? 1 : 0 });
    }
    return { ...state, offload };
  };
  const holder: { sink?: TcSink } = {};
  const policy = new OffloadPolicy(mode, {
    hwTcOffload: () => hw,
    copies,
    read,
    resync: (cause) => {
      resyncs.push(cause);
      void holder.sink!.repair("all", cause);
    },
    reports: reported ?? {
      status: (device, a, b) => status.set(device, [a, b]),
      warn: (pods, reason, message) =>
        warnings.push({ pods: pods.map((p) => p.name), reason, message }),
    },
  });
  const sink = new TcSink(
    new Actuator(kernel),
    { lookup: () => Promise.resolve({ representor: "rep7", uplink: "p0", switchId: "sw0" }) },
    undefined,
    undefined,
    {
      program: (role) => policy.program(role),
      retain: (keys) => policy.retain(keys),
      synced: (role, result) => policy.check(role, result),
      released: (device) => reported?.released(device),
    },
  );
  const rules: InterfaceRules = webDenied(["Ingress", "Egress"]);
  holder.sink = sink;
  return { kernel, sink, warnings, status, resyncs, change: { key: interfaceKey(rules), rules } };
}

Deno.test("offload off: every filter is written skip_hw and counted software-only", async () => {
  const { kernel, sink, warnings, status, change } = setup("off", true);
  await sink.apply([change]);
  const filters = kernel.programmed.get("rep7")!;
  assert.ok(filters.length > 5 && filters.every((f) => f.skipHw === true));
  assert.deepEqual(status.get("rep7"), [0, filters.length]);
  assert.deepEqual(warnings, []);
});

Deno.test("offload auto: a device without hw-tc-offload is software-only, without a warning", async () => {
  const { kernel, sink, warnings, status, change } = setup("auto", false);
  await sink.apply([change]);
  const filters = kernel.programmed.get("rep7")!;
  assert.ok(filters.every((f) => !f.skipHw));
  assert.deepEqual(status.get("rep7"), [0, filters.length]);
  assert.deepEqual(warnings, []);
});

Deno.test("offload auto: a filter the NIC should hold but does not gives one Warning", async () => {
  const { kernel, sink, warnings, status, change } = setup(
    "auto",
    true,
    (device, key) => device !== "rep7" || key !== "ingress 0 1 1",
  );
  await sink.apply([change]);
  const filters = kernel.programmed.get("rep7")!;
  assert.deepEqual(status.get("rep7"), [filters.length - 1, 1]);
  assert.equal(warnings.length, 1);
  assert.equal(warnings[0].reason, NOT_OFFLOADED);
  assert.deepEqual(warnings[0].pods, ["web"]);
  assert.match(warnings[0].message, /1 of \d+ filters on rep7 .* first chain 0 prio 1 handle 1/);
  await sink.repair("all", "resync");
  assert.equal(warnings.length, 1, "the same finding is not repeated");
});

Deno.test("offload require: no hw-tc-offload means the deny-all fallback, one Event per interface", async () => {
  const { kernel, sink, warnings, change } = setup("require", false);
  await sink.apply([change]);
  await sink.apply([change], { verify: "all" });
  const filters = kernel.programmed.get("rep7")!;
  const fallback = fallbackProgram("rep7", 1, 1).filters;
  assert.equal(filters.length, fallback.length);
  assert.ok(
    filters.some((f) => f.chain === 0 && f.protocol === "ip" && f.actions[0].kind === "drop"),
  );
  assert.equal(warnings.length, 1);
  assert.equal(warnings[0].reason, NOT_OFFLOADED);
  assert.match(warnings[0].message, /rep7 has no hw-tc-offload.*enforced as deny-all/);
});

Deno.test("offload require: a refused filter on a NIC replaces the program by the fallback", async () => {
  const { kernel, sink, warnings, resyncs, change } = setup(
    "require",
    true,
    (device, key) => device !== "rep7" || key !== "ingress 0 1 1",
  );
  await sink.apply([change]);
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.deepEqual(resyncs, ["offload refused"]);
  const filters = kernel.programmed.get("rep7")!;
  assert.equal(filters.length, fallbackProgram("rep7", 1, 1).filters.length);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0].message, /--offload=require: 1 of \d+ filters on rep7/);
});

Deno.test("fallback: nothing in it breaks on the modelled NIC", () => {
  const check = checkProgram(fallbackProgram("rep7", 3, 1).filters);
  assert.equal(
    check.summary.breaks,
    0,
    JSON.stringify(check.filters.filter((f) => f.classification === "breaks").map((f) => f.reason)),
  );
  assert.ok(check.summary.hardware >= 10);
});

Deno.test("offload gauges: a device that no longer carries a program loses its series", async () => {
  const reports = new EnforcementReports();
  const metrics = new AgentMetrics();
  reports.attach(metrics, null);
  const { sink, change } = setup("auto", false, () => true, reports);
  await sink.apply([change]);
  const series = () =>
    metrics.render().split("\n").filter((line) => line.startsWith("mnp_tc_filters_software_only{"));
  assert.deepEqual(series().map((l) => l.split(" ")[0]).sort(), [
    'mnp_tc_filters_software_only{device="p0"}',
    'mnp_tc_filters_software_only{device="rep7"}',
  ]);
  await sink.apply([{ key: change.key, rules: null, previous: change.rules }]);
  assert.deepEqual(series(), []);
  assert.ok(!metrics.render().includes('device="rep7"'), "no series of rep7 is left");
});

Deno.test("offload auto: a shared block's filter held by one of its two uplinks is not in hardware", async () => {
  // The uplink stands for a VF-LAG bond's block: each filter should be in both uplinks' NICs.
  const copies = (device: string) => device === "p0" ? 2 : 1;
  const { kernel, sink, warnings, status, change } = setup(
    "auto",
    true,
    undefined,
    undefined,
    copies,
  );
  await sink.apply([change]);
  const onUplink = kernel.programmed.get("p0")!;
  assert.deepEqual(status.get("p0"), [0, onUplink.length]);
  assert.deepEqual(status.get("rep7"), [kernel.programmed.get("rep7")!.length, 0]);
  assert.equal(warnings.length, 1);
  assert.equal(warnings[0].reason, NOT_OFFLOADED);
  assert.match(warnings[0].message, /on p0 that the NIC should hold/);
});
