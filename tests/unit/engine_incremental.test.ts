import assert from "node:assert/strict";
import type { Pod } from "../../src/cluster/types.ts";
import { MembershipCache } from "../../src/policy/cluster_index.ts";
import { computeNodeRules } from "../../src/policy/engine.ts";
import { ClusterStore } from "../../src/watching/store.ts";
import { mnp, nad, ns, pod } from "../support/manifests.ts";

const PLUGINS = ["accelerated-bridge"];

/** Stores a pod on app/data with one label `role`, on `node` (default the agent's node-a). */
function putPod(store: ClusterStore, ref: string, role: string, ip: string, node = "node-a"): void {
  const [namespace, name] = ref.split("/");
  store.upsert("Pod", pod(namespace, name, { labels: { role }, node, nets: { "app/data": ip } }));
}

/** Namespaces app (two local servers, a remote client) and other (remote pods), one policy each way. */
function seed(store: ClusterStore): void {
  for (const manifest of [ns("app", { team: "a" }), ns("other", { team: "b" })]) {
    store.upsert("Namespace", manifest);
  }
  store.upsert("NetworkAttachmentDefinition", nad("app", "data"));
  const net = "app/data";
  putPod(store, "app/web", "server", "10.0.0.1");
  putPod(store, "app/db", "db", "10.0.0.2");
  putPod(store, "app/cli", "client", "10.0.0.3", "node-b");
  putPod(store, "other/x", "client", "10.0.1.1", "node-b");
  putPod(store, "other/y", "batch", "10.0.1.2", "node-c");
  store.upsert(
    "MultiNetworkPolicy",
    mnp("app", "servers", net, {
      podSelector: { matchLabels: { role: "server" } },
      policyTypes: ["Ingress"],
      ingress: [{
        from: [{ namespaceSelector: {}, podSelector: { matchLabels: { role: "client" } } }],
      }],
    }),
  );
  store.upsert(
    "MultiNetworkPolicy",
    mnp("app", "db", net, {
      podSelector: { matchLabels: { role: "db" } },
      policyTypes: ["Egress"],
      egress: [{
        to: [{
          namespaceSelector: { matchLabels: { team: "b" } },
          podSelector: { matchLabels: { role: "batch" } },
        }],
      }],
    }),
  );
}

/** Changes a later sync must see: a label flip, an address move, a pod gone, a namespace emptied and refilled. */
const STEPS: [string, (store: ClusterStore) => void][] = [
  ["nothing changed", () => {}],
  [
    "a remote pod becomes a client",
    (store) => putPod(store, "other/y", "client", "10.0.1.2", "node-c"),
  ],
  [
    "a remote client moves address",
    (store) => putPod(store, "app/cli", "client", "10.0.0.9", "node-b"),
  ],
  ["a remote pod is deleted", (store) => store.remove("Pod", pod("other", "x"))],
  ["the last pod of a namespace is deleted", (store) => store.remove("Pod", pod("other", "y"))],
  ["a pod appears in a new namespace", (store) => {
    store.upsert("Namespace", ns("new", { team: "b" }));
    putPod(store, "new/z", "client", "10.0.2.1", "node-b");
  }],
];

Deno.test("engine: rules rendered with groups kept between syncs equal rules rendered afresh", () => {
  const store = new ClusterStore();
  seed(store);
  const membership = new MembershipCache();
  const cidrs = (pod: string, direction: "ingress" | "egress") =>
    computeNodeRules(store.snapshot(), { node: "node-a", networkPlugins: PLUGINS, membership })
      .interfaces.find((i) => i.pod.name === pod)![direction].allow.flatMap((entry) => entry.cidrs);
  // Two pod selectors over the same namespace's members: each gets its own members.
  assert.deepEqual(cidrs("web", "ingress"), ["10.0.0.3/32", "10.0.1.1/32"]);
  assert.deepEqual(cidrs("db", "egress"), ["10.0.1.2/32"]);
  for (const [step, change] of STEPS) {
    change(store);
    const state = store.snapshot();
    const kept = computeNodeRules(state, { node: "node-a", networkPlugins: PLUGINS, membership });
    const fresh = computeNodeRules(state, { node: "node-a", networkPlugins: PLUGINS });
    assert.deepEqual(kept, fresh, step);
    assert.equal(kept.interfaces.length, 2, step);
  }
  // The steps changed what the rules allow (else the comparison would prove little).
  const web = computeNodeRules(store.snapshot(), { node: "node-a", networkPlugins: PLUGINS })
    .interfaces.find((i) => i.pod.name === "web")!;
  assert.deepEqual(web.ingress.allow.flatMap((entry) => entry.cidrs), [
    "10.0.0.9/32",
    "10.0.2.1/32",
  ]);
});

Deno.test("engine: `only` renders the named local pods, exactly as a full render does", () => {
  const store = new ClusterStore();
  seed(store);
  const state = store.snapshot();
  const full = computeNodeRules(state, { node: "node-a", networkPlugins: PLUGINS });
  const only = computeNodeRules(state, {
    node: "node-a",
    networkPlugins: PLUGINS,
    only: new Set(["app/db"]),
  });
  assert.deepEqual(only.interfaces, full.interfaces.filter((i) => i.pod.name === "db"));
  assert.equal(only.interfaces.length, 1);
});

Deno.test("MembershipCache regroups only the namespaces whose pods changed", () => {
  const store = new ClusterStore();
  seed(store);
  const byNamespace = () => {
    const out = new Map<string, Pod[]>();
    for (const p of store.snapshot().pods) {
      out.set(p.namespace, [...(out.get(p.namespace) ?? []), p]);
    }
    return out;
  };
  const cache = new MembershipCache();
  const first = cache.update(byNamespace());
  const again = cache.update(byNamespace());
  assert.equal(again.get("app"), first.get("app"));
  assert.equal(again.get("other"), first.get("other"));
  STEPS[1][1](store); // a pod of "other" changed
  const third = cache.update(byNamespace());
  assert.equal(third.get("app"), first.get("app"));
  assert.notEqual(third.get("other"), first.get("other"));
  assert.deepEqual(
    third.get("other")!.get("app/data")!.members.map((m) => m.pod.labels.role),
    ["client", "client"],
  );
  // A namespace with no pods left is forgotten.
  store.remove("Pod", pod("other", "x"));
  store.remove("Pod", pod("other", "y"));
  assert.equal(cache.update(byNamespace()).has("other"), false);
});
