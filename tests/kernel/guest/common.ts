/** Shared setup for tests that run inside the kernel VM (see ../kernel.test.ts). */
import { loadManifests } from "../../../src/cluster/manifests.ts";
import { type ParsedObject, parseObjects } from "../../../src/cluster/parse.ts";
import type { ClusterState } from "../../../src/cluster/types.ts";
import { computeNodeRules } from "../../../src/policy/engine.ts";
import type { NodeRules } from "../../../src/policy/model.ts";
import type { Manifest } from "../../support/cluster.ts";
import { buildTopology, destroyTopology, type Topology } from "../scenario/topology.ts";

/** Parses test manifests; throws on any parse error. */
export function objectsOf(manifests: Manifest[]): ParsedObject[] {
  return manifests.flatMap((manifest) => {
    const parsed = parseObjects(manifest);
    if (parsed.errors.length > 0) throw new Error(JSON.stringify(parsed.errors));
    return parsed.objects;
  });
}

/** The bundled example cluster as objects and state. */
export async function exampleCluster(): Promise<{ objects: ParsedObject[]; state: ClusterState }> {
  const loaded = await loadManifests([new URL("../../../examples/", import.meta.url).pathname]);
  if (loaded.errors.length > 0) throw new Error(JSON.stringify(loaded.errors));
  const objects: ParsedObject[] = [
    ...loaded.state.pods.map((value) => ({ kind: "Pod" as const, value })),
  ];
  return { objects, state: loaded.state };
}

/** Rules for a node, with the default plugin list. */
export function rulesFor(state: ClusterState, node: string): NodeRules {
  return computeNodeRules(state, { node, networkPlugins: ["accelerated-bridge"] });
}

/** Builds a topology for the test and always tears it down. */
export async function withTopology<T>(
  objects: ParsedObject[],
  body: (topology: Topology) => Promise<T>,
): Promise<T> {
  const topology = await buildTopology(objects);
  try {
    return await body(topology);
  } finally {
    await destroyTopology(topology);
  }
}
