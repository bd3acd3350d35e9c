import assert from "node:assert/strict";
import type { MultiNetworkPolicy, Pod } from "../../src/cluster/types.ts";
import { type AffectedContext, affectedLocalPods } from "../../src/watching/affected.ts";

const NODE = "n1";
const sel = (matchLabels: Record<string, string> = {}) => ({ matchLabels, matchExpressions: [] });

function pod(ns: string, name: string, node: string, labels: Record<string, string>, ip = ""): Pod {
  return {
    uid: `${ns}-${name}`,
    namespace: ns,
    name,
    labels,
    nodeName: node,
    hostNetwork: false,
    phase: "Running",
    containerPorts: [],
    networks: [],
    networkStatus: ip
      ? [{
        network: "a/net",
        interfaceName: "net1",
        ips: [ip],
        pciAddress: "0000:01:00.1",
        isDefault: false,
      }]
      : [],
  };
}

const web = pod("a", "web", NODE, { app: "web" }, "10.0.0.1");
const db = pod("a", "db", NODE, { app: "db" }, "10.0.0.2");
const other = pod("b", "other", NODE, { app: "web" }, "10.0.0.3");

const webPolicy: MultiNetworkPolicy = {
  namespace: "a",
  name: "web",
  policyFor: ["a/net"],
  podSelector: sel({ app: "web" }),
  policyTypes: ["ingress"],
  ingress: [{ peers: [{ kind: "selector", podSelector: sel({ app: "client" }) }], ports: [] }],
  egress: [],
};
const dbPolicy: MultiNetworkPolicy = {
  namespace: "a",
  name: "db",
  policyFor: ["a/net"],
  podSelector: sel({ app: "db" }),
  policyTypes: ["ingress"],
  ingress: [{ peers: [{ kind: "selector", namespaceSelector: sel({ team: "x" }) }], ports: [] }],
  egress: [],
};
const openPolicy: MultiNetworkPolicy = {
  ...webPolicy,
  name: "open",
  ingress: [{ peers: [], ports: [{ protocol: "UDP", port: { kind: "number", port: 53 } }] }],
};

function ctx(policies: MultiNetworkPolicy[]): AffectedContext {
  return {
    node: NODE,
    localPods: [web, db, other],
    policies,
    namespaceLabels: (name) => ({ "kubernetes.io/metadata.name": name }),
  };
}

const sorted = (s: Set<string>) => [...s].sort();

Deno.test("affected: a peer pod's label change re-renders the targets of policies selecting it", () => {
  const before = pod("a", "c", "n2", { app: "client" }, "10.0.0.9");
  const after = { ...before, labels: { app: "other" } };
  const change = { kind: "Pod" as const, old: before, new: after };
  assert.deepEqual(sorted(affectedLocalPods(change, ctx([webPolicy, dbPolicy]))), ["a/web"]);
});

Deno.test("affected: a remote pod no policy can select causes no work", () => {
  const p = pod("a", "z", "n2", { app: "zzz" }, "10.0.0.9");
  assert.equal(affectedLocalPods({ kind: "Pod", old: null, new: p }, ctx([webPolicy])).size, 0);
  assert.equal(affectedLocalPods({ kind: "Pod", old: null, new: p }, ctx([openPolicy])).size, 0);
});

Deno.test("affected: a remote pod without addresses is no peer", () => {
  const p = pod("a", "c", "n2", { app: "client" });
  assert.equal(affectedLocalPods({ kind: "Pod", old: null, new: p }, ctx([webPolicy])).size, 0);
});

Deno.test("affected: a local pod is always re-rendered itself", () => {
  const after = { ...db, labels: { app: "db", x: "1" } };
  assert.deepEqual(sorted(affectedLocalPods({ kind: "Pod", old: db, new: after }, ctx([]))), [
    "a/db",
  ]);
});

Deno.test("affected: a namespace label change re-renders namespaceSelector targets only", () => {
  const change = {
    kind: "Namespace" as const,
    old: { name: "p", labels: { team: "x" } },
    new: { name: "p", labels: { team: "y" } },
  };
  assert.deepEqual(sorted(affectedLocalPods(change, ctx([webPolicy, dbPolicy]))), ["a/db"]);
  const same = { ...change, new: { name: "p", labels: { team: "x", more: "1" } } };
  assert.equal(affectedLocalPods(same, ctx([webPolicy, dbPolicy])).size, 0);
});

Deno.test("affected: a policy change re-renders its old and new targets", () => {
  const moved = { ...webPolicy, podSelector: sel({ app: "db" }) };
  const change = { kind: "MultiNetworkPolicy" as const, old: webPolicy, new: moved };
  assert.deepEqual(sorted(affectedLocalPods(change, ctx([]))), ["a/db", "a/web"]);
});

Deno.test("affected: a NAD type or device resource change re-renders every local pod", () => {
  const change = {
    kind: "NetworkAttachmentDefinition" as const,
    old: { namespace: "a", name: "net", pluginType: "accelerated-bridge", resourceName: "" },
    new: { namespace: "a", name: "net", pluginType: "macvlan", resourceName: "" },
  };
  assert.deepEqual(sorted(affectedLocalPods(change, ctx([]))), ["a/db", "a/web", "b/other"]);
  const unrelated = { ...change, new: { ...change.new, pluginType: "accelerated-bridge" } };
  assert.equal(affectedLocalPods(unrelated, ctx([])).size, 0);
  const resource = { ...unrelated, new: { ...unrelated.new, resourceName: "example.com/vf" } };
  assert.equal(affectedLocalPods(resource, ctx([])).size, 3);
});
