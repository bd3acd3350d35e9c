/**
 * What the informers' caches keep of an object once the store has parsed it:
 * its identity and resourceVersion, nothing else. client-node's `ListWatch`
 * reads only `metadata.namespace`, `metadata.name` and
 * `metadata.resourceVersion` of the objects it caches (to key them, to skip
 * an unchanged version, and to hand a vanished object to the delete handler
 * after a relist), and the agent reads the parsed copy in its
 * ClusterStore (./store.ts), never the cache. Keeping whole objects there would
 * hold the cluster twice: at 10,000 pods, about 42 MiB of heap.
 */
import type { KubernetesObject } from "@kubernetes/client-node";

/** Reduces a cached object, in place, to its kind, identity and resourceVersion (other fields left undefined). */
export function slimCachedObject(obj: KubernetesObject): void {
  if (typeof obj !== "object" || obj === null) return;
  const record = obj as Record<string, unknown>;
  const metadata = obj.metadata;
  for (const key of Object.keys(record)) {
    // Set aside rather than deleted: a deleted property turns the object into a slower, larger hash map.
    if (key !== "apiVersion" && key !== "kind") record[key] = undefined;
  }
  if (typeof metadata !== "object" || metadata === null) return;
  obj.metadata = {
    name: metadata.name,
    namespace: metadata.namespace,
    resourceVersion: metadata.resourceVersion,
    uid: metadata.uid,
  };
}
