/**
 * Loads the scale cluster (./cluster.ts) into an API server with parallel
 * creates, and prints on stdout, as one JSON line, how long each step took
 * and what the churn needs of the cluster ({@link LoadResult}). The harness
 * (./main.ts) runs it as a child process, so that building and sending
 * 10,000 pods leaves nothing in the memory it measures.
 *
 * Usage: `deno run -A bench/scale/load.ts --kubeconfig PATH --pods N --seed S --concurrency C`
 */
import { parseArgs } from "node:util";
import { ApiClient, createAll } from "./api.ts";
import { type ChurnBasis, generateCluster, type ScaleSize, scaleSize } from "./cluster.ts";

/** What the loader reports. */
export interface LoadResult {
  size: ScaleSize;
  basis: ChurnBasis;
  objects: number;
  /** Seconds for all creates. */
  seconds: number;
  /** Seconds per step. */
  steps: Record<string, number>;
}

/** Creates the cluster for `size` and `seed` through `api`; `progress` hears each step. */
export async function loadCluster(
  api: ApiClient,
  size: ScaleSize,
  seed: number,
  concurrency: number,
  progress: (line: string) => void = () => {},
): Promise<LoadResult> {
  const cluster = generateCluster(size, seed);
  const steps: Record<string, number> = {};
  const started = performance.now();
  for (
    const [step, items] of [
      ["Namespace", cluster.namespaces],
      ["NetworkAttachmentDefinition", cluster.networks],
      ["Pod+MultiNetworkPolicy", [...cluster.policies, ...cluster.pods]],
    ] as const
  ) {
    const t = performance.now();
    await createAll(api, items, concurrency);
    steps[step] = (performance.now() - t) / 1000;
    progress(`created ${items.length} ${step} in ${steps[step].toFixed(1)} s`);
  }
  return {
    size,
    basis: cluster.churn,
    objects: cluster.namespaces.length + cluster.networks.length + cluster.policies.length +
      cluster.pods.length,
    seconds: (performance.now() - started) / 1000,
    steps,
  };
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      kubeconfig: { type: "string" },
      pods: { type: "string", default: "10000" },
      seed: { type: "string", default: "1" },
      concurrency: { type: "string", default: "32" },
    },
  });
  if (!values.kubeconfig) throw new Error("--kubeconfig is required");
  const api = await ApiClient.fromKubeconfig(values.kubeconfig);
  try {
    const result = await loadCluster(
      api,
      scaleSize(Number(values.pods)),
      Number(values.seed),
      Number(values.concurrency),
      (line) => console.error(`  load: ${line}`),
    );
    console.log(JSON.stringify(result));
  } finally {
    api.close();
  }
}
