/**
 * Node identity as the original Go agent decides it: the host name (or
 * --hostname-override) trimmed and lower-cased, and pods local when the first
 * DNS label of their spec.nodeName equals the host name's, in any case.
 */
import assert from "node:assert/strict";
import { parseAgentFlags } from "../../src/cli/flags.ts";
import { hostIdentity, nodeKey, nodeMatchRule, sameNode } from "../../src/cluster/node_name.ts";
import { startDaemon } from "../../src/agent/daemon.ts";
import type { RulesSink } from "../../src/agent/sink.ts";
import { localInterfaces } from "../../src/interfaces/local.ts";
import { log } from "../../src/log/klog.ts";
import { affectedLocalPods } from "../../src/watching/affected.ts";
import { KubeConfigError } from "../../src/watching/kubeconfig.ts";
import { ClusterStore } from "../../src/watching/store.ts";
import { cluster } from "../support/cluster.ts";
import { nad, ns, pod } from "../support/manifests.ts";

Deno.test("node name: the override, else the host name, trimmed and lower-cased", () => {
  assert.deepEqual(hostIdentity("", () => " Worker-1.Example.COM\n"), {
    name: "worker-1.example.com",
    source: "hostname",
  });
  assert.deepEqual(hostIdentity("  NODE-A ", () => "ignored"), {
    name: "node-a",
    source: "hostname-override",
  });
  assert.throws(() => hostIdentity("", () => " \t"), /empty hostname is invalid/);
  assert.throws(() => hostIdentity("   ", () => "host"), /empty hostname-override is invalid/);
  assert.throws(() => hostIdentity(".example.com", () => "host"), /first DNS label is empty/);
});

Deno.test("node name: same node when the first DNS labels are equal, in any case", () => {
  assert.ok(sameNode("worker-1", "worker-1"));
  assert.ok(sameNode("worker-1.example.com", "worker-1"), "FQDN node, short host name");
  assert.ok(sameNode("worker-1", "worker-1.example.com"), "short node, FQDN host name");
  assert.ok(sameNode("Worker-1.Example.com", "worker-1"), "compared lower-cased");
  assert.ok(sameNode("worker-1.a.example", "worker-1.b.example"), "as the Go agent: label only");
  assert.ok(!sameNode("worker-10", "worker-1"));
  assert.ok(!sameNode("worker-1-a.example.com", "worker-1"));
  assert.ok(!sameNode("", "worker-1"), "an unscheduled pod is on no node");
  assert.ok(!sameNode("", ""), "an empty name matches nothing");
  assert.ok(!sameNode(".x", ".y"));
  assert.equal(nodeKey("Worker-1.Example.com"), "worker-1");
  assert.equal(
    nodeMatchRule("worker-1.example.com"),
    "spec.nodeName worker-1 or worker-1.*, any case",
  );
});

Deno.test("node name: pods on the FQDN-named node are local to the short host name", () => {
  const { state } = cluster([
    ns("a"),
    nad("a", "net"),
    pod("a", "fqdn", { node: "Worker-1.Example.com", nets: { "a/net": "10.0.0.1" } }),
    pod("a", "short", { node: "worker-1", nets: { "a/net": "10.0.0.2" } }),
    pod("a", "other", { node: "worker-10.example.com", nets: { "a/net": "10.0.0.3" } }),
  ]);
  const pods = (node: string) =>
    localInterfaces(state, { node, networkPlugins: ["accelerated-bridge"] }).interfaces
      .map((i) => i.pod.name).sort();
  assert.deepEqual(pods("worker-1"), ["fqdn", "short"]);
  assert.deepEqual(pods("worker-1.example.com"), ["fqdn", "short"]);
  assert.deepEqual(pods("worker-10"), ["other"]);
});

Deno.test("node name: the store and the affected set match nodes by first label", () => {
  const store = new ClusterStore();
  const raw = pod("a", "p", { node: "Worker-1.Example.com", nets: { "a/net": "10.0.0.1" } });
  const change = store.upsert("Pod", raw);
  assert.deepEqual(store.podsOnNode("worker-1").map((p) => p.name), ["p"]);
  assert.deepEqual(store.podsOnNode("WORKER-1.example.com").map((p) => p.name), ["p"]);
  assert.deepEqual(store.podsOnNode("worker-10"), []);
  assert.deepEqual(store.podsOnNode(""), []);
  assert.ok(change);
  const context = {
    node: "worker-1",
    localPods: store.podsOnNode("worker-1"),
    policies: [],
    namespaceLabels: () => null,
  };
  assert.deepEqual([...affectedLocalPods(change, context)], ["a/p"]);
  const moved = store.upsert("Pod", {
    ...raw,
    spec: { ...(raw.spec as Record<string, unknown>), nodeName: "worker-2" },
  });
  assert.deepEqual(store.podsOnNode("worker-1"), []);
  assert.deepEqual(store.podsOnNode("worker-2").map((p) => p.name), ["p"]);
  assert.ok(moved);
});

Deno.test("node name: the daemon logs at level 0 the node it acts as and how it matches", () => {
  const lines: string[] = [];
  log.setStderrSink({ write: (line) => lines.push(line) });
  const sink: RulesSink = { apply: () => Promise.resolve([]) };
  try {
    const options = parseAgentFlags([
      "--hostname-override= Worker-1.Example.COM ",
      "--kubeconfig=/nonexistent/kubeconfig",
    ]);
    // The kubeconfig is loaded after the node name is decided and logged.
    assert.throws(() => startDaemon(options, sink), KubeConfigError);
    assert.throws(
      () => startDaemon(parseAgentFlags([]), sink, { hostname: () => "  " }),
      /empty hostname is invalid/,
    );
  } finally {
    log.setStderrSink({ write: (line) => Deno.stderr.writeSync(new TextEncoder().encode(line)) });
  }
  const started = lines.filter((line) => line.includes("acting as node"));
  assert.equal(started.length, 1, lines.join(""));
  assert.match(started[0], /^I/);
  assert.match(
    started[0],
    /\] acting as node node="worker-1\.example\.com" from="hostname-override" matches="spec\.nodeName worker-1 or worker-1\.\*, any case"\n$/,
  );
});
