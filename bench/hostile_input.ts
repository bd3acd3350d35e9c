/**
 * One hostile policy input rendered and turned into the TC program the agent
 * would apply (after the default filter budget), in a process of its own so
 * that its peak memory can be read: prints one JSON line with the times, the
 * filters the policy needs, the filters applied and the peak RSS. Used by
 * hostile_input.bench.ts.
 */
import { computeNodeRules } from "../src/policy/engine.ts";
import { generateProgram } from "../src/tc/generate.ts";
import { DEFAULT_MAX_FILTERS, withinFilterLimit } from "../src/tc/limits.ts";
import { cluster, mnp, nad, ns, pod } from "../tests/support/cluster.ts";

/** The inputs of the trust-boundary campaign, by name. */
export const HOSTILE_INPUTS: Record<string, () => Record<string, unknown>> = {
  "::/0 except 1,000 scattered /128s": () => ({
    ingress: [{
      from: [{
        ipBlock: {
          cidr: "::/0",
          except: Array.from({ length: 1000 }, (_, i) => `2001:db8:${(i + 1).toString(16)}::1/128`),
        },
      }],
    }],
  }),
  "0.0.0.0/0 except 8,000 /32s": () => ({
    ingress: [{
      from: [{
        ipBlock: {
          cidr: "0.0.0.0/0",
          except: Array.from({ length: 8000 }, (_, i) => `10.${(i >> 8) & 255}.${i & 255}.1/32`),
        },
      }],
    }],
  }),
  "32,768 non-mergeable ports": () => ({
    ingress: [{ ports: Array.from({ length: 32768 }, (_, i) => ({ port: 2 * i + 1 })) }],
  }),
};

function peakRssMiB(): number {
  const status = Deno.readTextFileSync("/proc/self/status");
  const kb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return Math.round(kb / 1024);
}

if (import.meta.main) {
  const name = Deno.args[0];
  const t0 = performance.now();
  const { state } = cluster([
    ns("app"),
    nad("app", "data"),
    pod("app", "web", { nets: { "app/data": "10.0.0.1" } }),
    mnp("app", "p", "data", HOSTILE_INPUTS[name]()),
  ]);
  const rules = computeNodeRules(state, { node: "node-a", networkPlugins: ["accelerated-bridge"] });
  const t1 = performance.now();
  // What the agent does with it: the filter budget, then the program it would apply.
  const enforced = withinFilterLimit(rules.interfaces[0], DEFAULT_MAX_FILTERS);
  const program = generateProgram(enforced, { device: "rep0", zone: 1, generation: 1 });
  const t2 = performance.now();
  console.log(JSON.stringify({
    renderMs: Math.round(t1 - t0),
    generateMs: Math.round(t2 - t1),
    needed: enforced.overLimit?.filters ?? program.filters.length,
    filters: program.filters.length,
    peakRssMiB: peakRssMiB(),
  }));
}
