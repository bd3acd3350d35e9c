import assert from "node:assert/strict";
import * as k8s from "@kubernetes/client-node";
import type { Pod } from "../../src/cluster/types.ts";
import { slimCachedObject } from "../../src/watching/slim.ts";
import { ClusterStore } from "../../src/watching/store.ts";

function pod(name: string, resourceVersion: string, ip: string): k8s.KubernetesObject {
  return JSON.parse(JSON.stringify({
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name,
      namespace: "app",
      uid: `uid-${name}`,
      resourceVersion,
      labels: { app: name },
      annotations: {
        "k8s.v1.cni.cncf.io/network-status": JSON.stringify([
          { name: "app/net", interface: "net1", ips: [ip] },
        ]),
      },
      managedFields: [{ manager: "kubectl", operation: "Update", fieldsV1: { "f:spec": {} } }],
    },
    spec: { nodeName: "worker-1", containers: [{ name: "c", image: "x" }] },
    status: { phase: "Running" },
  }));
}

Deno.test("slimCachedObject keeps kind, identity and resourceVersion only", () => {
  const obj = pod("web", "7", "10.0.0.1");
  slimCachedObject(obj);
  assert.deepEqual(JSON.parse(JSON.stringify(obj)), {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "web", namespace: "app", resourceVersion: "7", uid: "uid-web" },
  });
  // Not an object, or no metadata: nothing to keep, no throw.
  slimCachedObject({ apiVersion: "v1", kind: "Pod" });
});

/** A client-node Watch that hands out the events a test gives it. */
class ScriptedWatch extends k8s.Watch {
  events: ((type: string, obj: k8s.KubernetesObject) => void) | null = null;
  done: ((err: unknown) => void) | null = null;
  constructor() {
    super(new k8s.KubeConfig());
  }
  override watch(
    _path: string,
    _query: Record<string, unknown>,
    callback: (type: string, obj: k8s.KubernetesObject) => void,
    done: (err: unknown) => void,
  ): Promise<AbortController> {
    this.events = callback;
    this.done = done;
    return Promise.resolve(new AbortController());
  }
}

Deno.test("an informer whose cache is slimmed still updates, skips same versions and deletes after a relist", async () => {
  const store = new ClusterStore();
  const watch = new ScriptedWatch();
  let listed: k8s.KubernetesObject[] = [pod("a", "1", "10.0.0.1"), pod("b", "2", "10.0.0.2")];
  const informer = new k8s.ListWatch<k8s.KubernetesObject>(
    "/api/v1/pods",
    watch,
    () => Promise.resolve({ metadata: { resourceVersion: "10" }, items: listed }),
    false,
  );
  const seen: string[] = [];
  const handle = (verb: string, fn: (obj: k8s.KubernetesObject) => unknown) =>
    informer.on(verb as "add", (obj) => {
      seen.push(`${verb} ${obj.metadata?.name}`);
      try {
        fn(obj);
      } finally {
        slimCachedObject(obj);
      }
    });
  handle("add", (obj) => store.upsert("Pod", obj));
  handle("update", (obj) => store.upsert("Pod", obj));
  handle("delete", (obj) => store.remove("Pod", obj));
  await informer.start();
  assert.deepEqual(seen, ["add a", "add b"]);
  assert.deepEqual(informer.list().map((o) => JSON.parse(JSON.stringify(o))), [
    {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "a", namespace: "app", resourceVersion: "1", uid: "uid-a" },
    },
    {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "b", namespace: "app", resourceVersion: "2", uid: "uid-b" },
    },
  ]);
  // A new version of a: an update; the same version again: nothing.
  watch.events!("MODIFIED", pod("a", "11", "10.0.0.9"));
  watch.events!("MODIFIED", pod("a", "11", "10.0.0.9"));
  assert.deepEqual(seen, ["add a", "add b", "update a"]);
  assert.deepEqual(
    store.get<Pod>("Pod", "app/a")
      ?.networkStatus[0].ips,
    ["10.0.0.9"],
  );
  // The watch position expires and b vanished meanwhile: the relist deletes b by its slim copy.
  listed = [pod("a", "11", "10.0.0.9")];
  await watch.done!({ statusCode: 410 });
  assert.deepEqual(seen, ["add a", "add b", "update a", "delete b"]);
  assert.equal(store.get("Pod", "app/b"), undefined);
  assert.equal(store.count("Pod"), 1);
  await informer.stop();
});
