/**
 * The cluster as one list of each kind the agent reads, without a watch:
 * for one-shot commands (`simulate` against a live node). Objects that fail
 * validation are left out and returned as errors, as the agent leaves them
 * out.
 */
import type * as k8s from "@kubernetes/client-node";
import type { ClusterState, ObjectError } from "../cluster/types.ts";
import { discoverPolicyVersion, resourceSpecs } from "./informers.ts";
import { listInPages } from "./paged_list.ts";
import { ClusterStore } from "./store.ts";

/** Lists every watched kind once and parses it into a cluster state. */
export async function listCluster(
  kc: k8s.KubeConfig,
): Promise<{ state: ClusterState; errors: ObjectError[] }> {
  const errors: ObjectError[] = [];
  const store = new ClusterStore((_ref, found) => errors.push(...found));
  for (const spec of resourceSpecs(kc, await discoverPolicyVersion(kc))) {
    await listInPages(spec.listPage, (items) => {
      for (const item of items) store.upsert(spec.kind, item);
    });
  }
  return { state: store.snapshot(), errors };
}
