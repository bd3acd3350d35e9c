/**
 * Full render of a large cluster: 10,000 pods, 1,000 policies, 100 local
 * interfaces. Target: under 200 ms per render. Also prints heap growth per
 * pod at several sizes, to show memory grows linearly with pods.
 */
import { computeNodeRules } from "../src/policy/engine.ts";
import { syntheticCluster } from "./synthetic.ts";

const OPTIONS = { node: "local", networkPlugins: ["accelerated-bridge"] };
const big = syntheticCluster({ pods: 10_000, policies: 1_000, localInterfaces: 100 });

const sample = computeNodeRules(big, OPTIONS);
const entries = sample.interfaces.reduce(
  (n, i) => n + i.ingress.allow.length + i.egress.allow.length,
  0,
);
console.log(
  `cluster: 10000 pods, 1000 policies -> ${sample.interfaces.length} local interfaces, ${entries} allow entries`,
);

function heapAfter(pods: number): number {
  const g = globalThis as { gc?: () => void };
  g.gc?.();
  const before = Deno.memoryUsage().heapUsed;
  const state = syntheticCluster({ pods, policies: pods / 10, localInterfaces: 100 });
  const result = computeNodeRules(state, OPTIONS);
  g.gc?.();
  const after = Deno.memoryUsage().heapUsed;
  if (result.interfaces.length === 0) throw new Error("nothing rendered");
  return after - before;
}
for (const pods of [2_500, 5_000, 10_000, 20_000]) {
  const bytes = heapAfter(pods);
  console.log(
    `memory: ${pods} pods -> ${(bytes / 1048576).toFixed(1)} MiB retained (${
      Math.round(bytes / pods)
    } B/pod)`,
  );
}

Deno.bench("full render: 10,000 pods, 1,000 policies, 100 local interfaces", () => {
  computeNodeRules(big, OPTIONS);
});
