/**
 * Where the agent's heap goes, estimated in a fresh process: lists every
 * object the agent watches from the API server and measures the heap they
 * take as plain objects (what the informers' caches hold), then the heap of
 * the agent's `ClusterStore` filled with them (parsed objects and their JSON
 * text), with and without the plain objects. Prints one JSON line of byte
 * counts ({@link Breakdown}). The harness (./main.ts) runs it after the churn.
 *
 * Usage: `deno run -A --v8-flags=--expose-gc bench/scale/breakdown.ts --kubeconfig PATH`
 */
import { parseArgs } from "node:util";
import { ClusterStore, type WatchedKind } from "../../src/watching/store.ts";
import { ApiClient } from "./api.ts";

/** Heap bytes of the agent's two copies of the cluster. */
export interface Breakdown {
  /** The API objects as parsed JSON. */
  raw: number;
  /** The ClusterStore alone. */
  store: number;
  /** Both (the store shares strings with the objects it parsed). */
  both: number;
  objects: number;
}

const KINDS: [WatchedKind, string][] = [
  ["Pod", "/api/v1/pods"],
  ["Namespace", "/api/v1/namespaces"],
  ["NetworkAttachmentDefinition", "/apis/k8s.cni.cncf.io/v1/network-attachment-definitions"],
  ["MultiNetworkPolicy", "/apis/k8s.cni.cncf.io/v1beta2/multi-networkpolicies"],
];

function heapUsed(): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error("run with --v8-flags=--expose-gc");
  gc();
  gc();
  return Deno.memoryUsage().heapUsed;
}

/** Every object of the watched kinds, as parsed JSON (the response texts are garbage after). */
async function listAll(api: ApiClient): Promise<[WatchedKind, unknown[]][]> {
  const out: [WatchedKind, unknown[]][] = [];
  for (const [kind, path] of KINDS) {
    out.push([kind, JSON.parse((await api.request({ method: "GET", path })).body).items]);
  }
  return out;
}

/** Measures the {@link Breakdown} of the cluster `api` serves. */
export async function measureBreakdown(api: ApiClient): Promise<Breakdown> {
  // Held in an object's properties: a local variable never read again may count as dead.
  const held: { raw?: [WatchedKind, unknown[]][]; store?: ClusterStore } = {};
  const base = heapUsed();
  held.raw = await listAll(api);
  const raw = heapUsed() - base;
  held.store = new ClusterStore();
  for (const [kind, items] of held.raw) for (const item of items) held.store.upsert(kind, item);
  held.store.snapshot();
  const both = heapUsed() - base;
  const objects = held.raw.reduce((n, [, items]) => n + items.length, 0);
  delete held.raw;
  const store = heapUsed() - base;
  if (held.store.count("Pod") === 0) throw new Error("no pods listed");
  return { raw, store, both, objects };
}

if (import.meta.main) {
  const { values } = parseArgs({ args: Deno.args, options: { kubeconfig: { type: "string" } } });
  if (!values.kubeconfig) throw new Error("--kubeconfig is required");
  const api = await ApiClient.fromKubeconfig(values.kubeconfig);
  try {
    console.log(JSON.stringify(await measureBreakdown(api)));
  } finally {
    api.close();
  }
}
