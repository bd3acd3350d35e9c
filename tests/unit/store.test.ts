import assert from "node:assert/strict";
import { ClusterStore } from "../../src/watching/store.ts";
import { log } from "../../src/log/klog.ts";

const rawPod = (rv: string, labels: Record<string, string>, annotations = {}) => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name: "p", namespace: "a", uid: "u1", resourceVersion: rv, labels, annotations },
  spec: { nodeName: "n1", containers: [] },
  status: { phase: "Running" },
});

Deno.test("store: changes only when the parsed object changes; snapshot follows", () => {
  const store = new ClusterStore();
  const first = store.upsert("Pod", rawPod("1", { a: "1" }));
  assert.equal(first?.kind, "Pod");
  assert.equal(first?.old, null);
  assert.equal(store.upsert("Pod", rawPod("2", { a: "1" })), null, "same content, new version");
  const changed = store.upsert("Pod", rawPod("3", { a: "2" }));
  assert.deepEqual(changed?.kind === "Pod" ? changed.new?.labels : null, { a: "2" });
  assert.equal(store.snapshot().pods.length, 1);
  assert.equal(store.podsOnNode("n1").length, 1);
  const removed = store.remove("Pod", rawPod("4", {}));
  assert.equal(removed?.new, null);
  assert.equal(store.snapshot().pods.length, 0);
  assert.equal(store.podsOnNode("n1").length, 0);
});

Deno.test("store: bad objects never throw and are reported once per version", () => {
  const lines: string[] = [];
  log.setStderrSink({ write: (line) => lines.push(line) });
  try {
    const reports: string[] = [];
    const store = new ClusterStore((ref) => reports.push(`${ref.kind} ${ref.key}`));
    const bad = rawPod("7", {}, { "k8s.v1.cni.cncf.io/network-status": "[{oops" });
    store.upsert("Pod", bad);
    store.upsert("Pod", bad);
    store.upsert("Pod", { ...bad, metadata: { ...bad.metadata, resourceVersion: "8" } });
    assert.deepEqual(reports, ["Pod a/p", "Pod a/p"]);
    assert.equal(store.upsert("Pod", null), null);
    assert.equal(store.upsert("Pod", { metadata: { name: 5 } }), null);
    // A malformed policy is kept, failing closed: it still isolates.
    const policy = store.upsert("MultiNetworkPolicy", { metadata: { name: "x" }, spec: 3 });
    assert.deepEqual(
      policy?.kind === "MultiNetworkPolicy" ? policy.new?.policyTypes : null,
      ["ingress"],
    );
    assert.ok(lines.some((l) => l.includes("network-status")));
  } finally {
    log.setStderrSink({ write: (line) => Deno.stderr.writeSync(new TextEncoder().encode(line)) });
  }
});
