/**
 * Where the agent's heap goes, estimated in a fresh process: lists every
 * object the agent watches, a page at a time as the agent does, parses each
 * into a `ClusterStore` and reduces it to what the informers' caches keep
 * (src/watching/slim.ts), and measures the heap each kind adds. Prints one
 * JSON line ({@link Breakdown}). The harness (./main.ts) runs it after the
 * churn.
 *
 * Usage: `deno run -A --v8-flags=--expose-gc bench/scale/breakdown.ts --kubeconfig PATH`
 */
import { parseArgs } from "node:util";
import type * as k8s from "@kubernetes/client-node";
import { listInPages, type ListPage } from "../../src/watching/paged_list.ts";
import { slimCachedObject } from "../../src/watching/slim.ts";
import { ClusterStore, type WatchedKind } from "../../src/watching/store.ts";
import { ApiClient } from "./api.ts";

/** Heap bytes the agent's view of the cluster takes, per kind. */
export interface Breakdown {
  /** Per kind: objects, and heap bytes of their parsed values plus their slim cache entries. */
  kinds: Record<WatchedKind, { objects: number; bytes: number }>;
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

/** Lists `path` in pages as the agent does (listInPages), handing each object to `take`. */
async function eachObject(
  api: ApiClient,
  path: string,
  take: (obj: k8s.KubernetesObject) => void,
): Promise<void> {
  const page: ListPage = async ({ limit, continueToken }) => {
    const query = `?limit=${limit}${
      continueToken ? `&continue=${encodeURIComponent(continueToken)}` : ""
    }`;
    const response = await api.request({ method: "GET", path: path + query });
    if (response.status !== 200) throw new Error(`GET ${path}: HTTP ${response.status}`);
    return JSON.parse(response.body) as k8s.KubernetesListObject<k8s.KubernetesObject>;
  };
  await listInPages(page, (items) => items.forEach(take));
}

/** Measures the {@link Breakdown} of the cluster `api` serves. */
export async function measureBreakdown(api: ApiClient): Promise<Breakdown> {
  // Held in an object's properties: a local variable never read again may count as dead.
  const held: { store: ClusterStore; cache: k8s.KubernetesObject[] } = {
    store: new ClusterStore(),
    cache: [],
  };
  const kinds = {} as Breakdown["kinds"];
  for (const [kind, path] of KINDS) {
    const before = heapUsed();
    let objects = 0;
    await eachObject(api, path, (obj) => {
      held.store.upsert(kind, obj);
      slimCachedObject(obj);
      held.cache.push(obj);
      objects++;
    });
    kinds[kind] = { objects, bytes: heapUsed() - before };
  }
  if (held.store.count("Pod") === 0) throw new Error("no pods listed");
  return { kinds };
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
