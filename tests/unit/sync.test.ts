/** What one sync hands the sink and reports, with a recording sink and events recorder. */
import assert from "node:assert/strict";
import { AgentMetrics } from "../../src/agent/metrics.ts";
import type { RulesChange, RulesResult } from "../../src/agent/sink.ts";
import { NodeSync, type PodWarnings, type SyncReport } from "../../src/agent/sync.ts";
import { SyncLoop } from "../../src/agent/syncloop.ts";
import type { ClusterState } from "../../src/cluster/types.ts";
import { cluster, type Manifest, mnp, nad, ns, pod } from "../support/cluster.ts";
import { FakeClock } from "../support/fake_clock.ts";

const WEB = "app/web/app/data/net1";
const DB = "app/db/app/data/net1";

/** Records what it is handed; fails the keys in `failing`. */
class RecordingSink {
  readonly batches: RulesChange[][] = [];
  readonly failing = new Map<string, string>();
  apply(changes: RulesChange[]): Promise<RulesResult[]> {
    this.batches.push(changes);
    return Promise.resolve(changes.map((c) => {
      const error = this.failing.get(c.key);
      return error === undefined ? { key: c.key, filters: 3 } : { key: c.key, error };
    }));
  }
  get last(): RulesChange[] {
    return this.batches.at(-1) ?? [];
  }
}

/** Records warnings and recoveries, like the EventRecorder would send them. */
class RecordingEvents implements PodWarnings {
  readonly warnings: { pod: string; uid: string; reason: string; message: string }[] = [];
  readonly recovered: string[] = [];
  podWarning(
    pod: { namespace: string; name: string; uid: string },
    reason: string,
    message: string,
  ) {
    this.warnings.push({ pod: `${pod.namespace}/${pod.name}`, uid: pod.uid, reason, message });
  }
  podRecovered(namespace: string, name: string) {
    this.recovered.push(`${namespace}/${name}`);
  }
}

const base = (): Manifest[] => [
  ns("app"),
  nad("app", "data"),
  pod("app", "web", { labels: { app: "web" }, nets: { "app/data": "10.0.0.1" } }),
  pod("app", "db", { labels: { app: "db" }, nets: { "app/data": "10.0.0.2" } }),
];

/** What every sync in these tests shares: node-a, the default plugin, a recording sink. */
function common(snapshot: () => ClusterState) {
  return {
    node: "node-a",
    networkPlugins: ["accelerated-bridge"],
    snapshot,
    sink: new RecordingSink(),
    metrics: new AgentMetrics(),
  };
}

function setup(manifests: Manifest[] = base(), maxFiltersPerInterface = 0) {
  let state: ClusterState = cluster(manifests).state;
  const events = new RecordingEvents();
  const reports: SyncReport[] = [];
  const options = common(() => state);
  const sync = new NodeSync({
    ...options,
    maxFiltersPerInterface,
    warnings: events,
    onSync: (report) => reports.push(report),
  });
  const setState = (next: Manifest[]) => state = cluster(next).state;
  return { sync, sink: options.sink, events, metrics: options.metrics, reports, setState };
}

const keys = (changes: RulesChange[]) => changes.map((c) => c.key).sort();

Deno.test("sync: a full sync hands every interface; an unchanged one is not handed again", async () => {
  const { sync, sink, metrics } = setup();
  sync.markAll();
  assert.equal(await sync.run(), true);
  assert.deepEqual(keys(sink.last), [DB, WEB]);
  assert.equal(metrics.interfaces.get(), 2);
  assert.equal(metrics.filters.get(), 6);
  sync.markDirty(["app/web", "app/db"]);
  assert.equal(await sync.run(), true);
  assert.equal(sink.batches.length, 1, "nothing changed: the sink is not called");
  assert.equal(metrics.syncs.get({ result: "success" }), 2);
});

Deno.test("sync: a changed interface is handed to the sink with its new rules", async () => {
  const { sync, sink, setState } = setup();
  sync.markAll();
  await sync.run();
  setState([
    ...base(),
    mnp("app", "web-deny", "data", { podSelector: { matchLabels: { app: "web" } } }),
  ]);
  sync.markDirty(["app/web", "app/db"]);
  await sync.run();
  assert.deepEqual(keys(sink.last), [WEB]);
  assert.equal(sink.last[0].rules?.ingress.isolated, true);
});

Deno.test("sync: a gone interface is handed as rules: null with the rules last applied", async () => {
  const { sync, sink, setState, metrics } = setup();
  sync.markAll();
  await sync.run();
  const applied = sink.last.find((c) => c.key === DB)!.rules;
  setState(base().filter((m) => (m.metadata as { name: string }).name !== "db"));
  sync.markDirty(["app/db"]);
  await sync.run();
  assert.deepEqual(sink.last, [{ key: DB, rules: null, previous: applied }]);
  assert.equal(metrics.interfaces.get(), 1);
});

Deno.test("sync: a partial sync re-renders only the dirty pods", async () => {
  const { sync, sink, setState } = setup();
  sync.markAll();
  await sync.run();
  // This policy changes both pods' rules; only web is marked.
  setState([...base(), mnp("app", "deny-all", "data", {})]);
  sync.markDirty(["app/web"]);
  await sync.run();
  assert.deepEqual(keys(sink.last), [WEB]);
  sync.markDirty(["app/db"]);
  await sync.run();
  assert.deepEqual(keys(sink.last), [DB]);
});

Deno.test("sync: a sink error gives a Warning and a failed result; the pod is retried", async () => {
  const { sync, sink, events, metrics, reports } = setup();
  sink.failing.set(WEB, "representor not found");
  sync.markAll();
  assert.equal(await sync.run(), false);
  assert.equal(sync.lastSyncOk, false);
  assert.deepEqual(events.warnings, [{
    pod: "app/web",
    uid: "uid-app-web",
    reason: "PolicyNotApplied",
    message: "network policy rules for interface net1 (network app/data) could not be applied: " +
      "representor not found",
  }]);
  assert.deepEqual(events.recovered, ["app/db"]);
  assert.equal(metrics.errors.get({ kind: "apply" }), 1);
  assert.equal(metrics.syncs.get({ result: "partial" }), 1);
  assert.equal(metrics.interfaces.get(), 1);
  assert.equal(reports.at(-1)?.results.find((r) => r.key === WEB)?.error, "representor not found");
  // Nothing marked: the failed pod is still dirty and is handed again.
  sink.failing.clear();
  assert.equal(await sync.run(), true);
  assert.deepEqual(keys(sink.last), [WEB]);
  assert.deepEqual(events.recovered, ["app/db", "app/web"]);
  assert.equal(sync.lastSyncOk, true);
});

Deno.test("sync: a pod whose interface cannot be enforced gets a Warning from the error's ref", async () => {
  const noPci = pod("app", "web", { nets: { "app/data": "10.0.0.1" } });
  const annotations = (noPci.metadata as { annotations: Record<string, string> }).annotations;
  const key = "k8s.v1.cni.cncf.io/network-status";
  annotations[key] = JSON.stringify(
    JSON.parse(annotations[key]).map((s: Record<string, unknown>) => ({
      ...s,
      "device-info": undefined,
    })),
  );
  const { sync, sink, events } = setup([ns("app"), nad("app", "data"), noPci]);
  sync.markAll();
  assert.equal(await sync.run(), true);
  assert.equal(sink.batches.length, 0);
  const expected = {
    pod: "app/web",
    uid: "uid-app-web",
    reason: "InterfaceNotEnforced",
    message: "network-status[app/data].device-info.pci.pci-address: " +
      "missing on a policed network; interface not enforced",
  };
  assert.deepEqual(events.warnings, [expected]);
  sync.markAll();
  await sync.run();
  assert.deepEqual(events.warnings, [expected], "reported once while it persists");
});

Deno.test("sync: a snapshot that throws fails the sync and keeps the work for the retry", async () => {
  let broken = true;
  const options = common(() => {
    if (broken) throw new Error("no view");
    return cluster(base()).state;
  });
  const { sink, metrics } = options;
  const sync = new NodeSync(options);
  sync.markAll();
  assert.equal(await sync.run(), false);
  assert.equal(sync.lastSyncOk, false);
  assert.equal(metrics.errors.get({ kind: "sync" }), 1);
  assert.equal(metrics.syncs.get({ result: "failure" }), 1);
  assert.equal(sink.batches.length, 0);
  broken = false;
  assert.equal(await sync.run(), true, "the retry needs no new marks");
  assert.deepEqual(keys(sink.last), [DB, WEB]);
});

Deno.test("loop: enable runs one full sync; the periodic resync hands every interface again", async () => {
  const clock = new FakeClock();
  const reports: SyncReport[] = [];
  const options = common(() => cluster(base()).state);
  const loop = new SyncLoop({
    ...options,
    onSync: (report) => reports.push(report),
    coalesce: { debounceMs: 100, minIntervalMs: 1000, maxDelayMs: 2000 },
    resyncMs: 60_000,
    retry: { initialMs: 500, maxMs: 30_000, jitter: 0 },
    clock,
  });
  loop.markDirty(["app/web"]);
  await clock.advance(10_000);
  assert.equal(loop.lastSyncOk, null, "nothing runs before enable");
  loop.enable();
  await clock.advance(1000);
  assert.deepEqual(reports.map((r) => [r.full, keys(r.changes)]), [[true, [DB, WEB]]]);
  loop.markDirty(["app/web"]);
  await clock.advance(61_000);
  assert.deepEqual(reports.map((r) => [r.full, r.changes.length]), [[true, 2], [false, 0], [
    true,
    2,
  ]]);
  assert.equal(loop.syncCount, 3);
  assert.equal(loop.lastSyncOk, true);
  await loop.stop();
  assert.equal(clock.pending, 0);
});

Deno.test("sync: an interface over the filter limit is handed deny-all, with one Warning", async () => {
  const ports = Array.from({ length: 200 }, (_, i) => ({ port: 2 * i + 1 }));
  const { sync, sink, events } = setup([
    ...base(),
    mnp("app", "many-ports", "data", {
      podSelector: { matchLabels: { app: "web" } },
      ingress: [{ ports }],
    }),
  ], 150);
  sync.markAll();
  assert.equal(await sync.run(), true);
  const web = sink.last.find((c) => c.key === WEB)!.rules!;
  assert.deepEqual(web.ingress, { isolated: true, policies: ["app/many-ports"], allow: [] });
  assert.deepEqual(web.egress, { isolated: true, policies: [], allow: [] });
  assert.equal(web.overLimit?.max, 150);
  assert.ok(web.overLimit!.filters > 150);
  const db = sink.last.find((c) => c.key === DB)!.rules!;
  assert.equal(db.overLimit, undefined, "other interfaces keep their own rules");
  assert.deepEqual(events.warnings.map((w) => `${w.pod} ${w.reason}`), [
    "app/web FilterLimitExceeded",
  ]);
  assert.match(events.warnings[0].message, /needs \d+ TC filters, more than .* 150/);
  sync.markAll();
  await sync.run();
  assert.equal(events.warnings.length, 1, "a resync does not repeat the warning");
});
