/**
 * Hostile inputs (huge `except` lists, tens of thousands of ports): for each,
 * the time to render and to check the filter budget and build the program the
 * agent applies, the filters needed and applied, and the peak RSS, each in a
 * process of its own bounded to 120 s. Targets: under
 * 5 s and 512 MiB each. Prints the table; the Deno.bench measures the
 * smallest input in-process.
 */
import { HOSTILE_INPUTS } from "./hostile_input.ts";

const CHILD = new URL("./hostile_input.ts", import.meta.url).pathname;

for (const name of Object.keys(HOSTILE_INPUTS)) {
  const out = await new Deno.Command("timeout", {
    args: ["120", Deno.execPath(), "run", "-A", "--cached-only", CHILD, name],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const line = new TextDecoder().decode(out.stdout).trim().split("\n").at(-1) ?? "";
  if (out.code !== 0 || !line.startsWith("{")) {
    console.log(
      `${name}: failed (exit ${out.code}): ${new TextDecoder().decode(out.stderr).slice(-300)}`,
    );
    continue;
  }
  const f = JSON.parse(line);
  console.log(
    `${name}: render ${f.renderMs} ms, budget check and program ${f.generateMs} ms, ` +
      `${f.needed} filters needed, ${f.filters} applied, peak RSS ${f.peakRssMiB} MiB`,
  );
}

Deno.bench("hostile input: 32,768 non-mergeable ports, render only", async () => {
  const { computeNodeRules } = await import("../src/policy/engine.ts");
  const { cluster, mnp, nad, ns, pod } = await import("../tests/support/cluster.ts");
  const { state } = cluster([
    ns("app"),
    nad("app", "data"),
    pod("app", "web", { nets: { "app/data": "10.0.0.1" } }),
    mnp("app", "p", "data", HOSTILE_INPUTS["32,768 non-mergeable ports"]()),
  ]);
  computeNodeRules(state, { node: "node-a", networkPlugins: ["accelerated-bridge"] });
});
