/**
 * A node with 64 policed VFs, in the kernel VM, with each driver: filters
 * per node, the first programming of all devices, a restarted agent's
 * convergence, and one policy change that touches all 64 (issue figures;
 * bench/guest/node_scale.ts does the work). Prints one table.
 */
import { runInVm, vmPrerequisites } from "../tests/kernel/vm/vm.ts";

interface Step {
  ms: number;
  commands: number;
  filters: number;
}

const missing = await vmPrerequisites();
if (missing) {
  console.log(`node scale (VM): skipped: ${missing}`);
} else {
  const root = new URL("../", import.meta.url).pathname;
  const result = await runInVm({
    command: ["deno", "run", "-A", "--no-check", "bench/guest/node_scale.ts", "64"],
    cwd: root,
    timeoutSeconds: 1500,
  });
  const line = result.output.split("\n").find((l) => l.startsWith("{"));
  if (result.code !== 0 || !line) {
    console.log(`node scale (VM): failed (${result.code}): ${result.output.slice(-800)}`);
  } else {
    const f = JSON.parse(line);
    const row = (label: string, s: Step) =>
      `  ${label.padEnd(34)} ${String(s.ms).padStart(7)} ms ${
        String(s.commands).padStart(7)
      } commands`;
    const lines = [`node scale (VM, emulated CPU): ${f.pods} policed VFs, ${f.devices} devices`];
    for (const name of ["cmdline", "netlink"]) {
      const d = f[name] as Record<string, Step>;
      lines.push(`${name}: ${d.first.filters} filters on the node`);
      lines.push(row("first programming", d.first));
      lines.push(row("restarted agent converges", d.restart));
      lines.push(row("client address moved, all 64 ingress", d.ingressMove));
      lines.push(row("db address moved, all 64 egress", d.egressMove));
      lines.push(row("ingress port added for all 64", d.ingress));
      lines.push(row("egress port added for all 64", d.egress));
    }
    console.log(lines.join("\n"));
  }
}
