/**
 * `deno task scenario [--tc-driver cmdline|netlink] [--via-apiserver] FILE...`: runs
 * scenario files in the kernel VM and ends with `N passed, M failed, R retried`.
 *
 * By default one VM runs every file with the engine, generator and actuator
 * called directly, through the TC driver `--tc-driver` names.
 * `--via-apiserver` runs each file through the whole agent instead: a real
 * kube-apiserver on the host gets the scenario's objects and the agent, in
 * the VM, watches it (with that TC driver) and programs the representors.
 */
import { parseArgs } from "node:util";
import { controlPlanePrerequisites, startControlPlane } from "../k8s/controlplane/controlplane.ts";
import { writeGuestKubeconfig } from "./e2e/guest_kubeconfig.ts";
import { runInVm, vmPrerequisites } from "./vm/vm.ts";
import { type ScenarioCounts, SUMMARY, summaryLine } from "./scenario/summary.ts";

const { values, positionals } = parseArgs({
  args: Deno.args,
  options: {
    "tc-driver": { type: "string", default: "cmdline" },
    "via-apiserver": { type: "boolean", default: false },
    timeout: { type: "string", default: "900" },
  },
  allowPositionals: true,
});
if (positionals.length === 0) {
  console.error(
    "usage: deno task scenario [--tc-driver cmdline|netlink] [--via-apiserver] FILE...",
  );
  Deno.exit(2);
}
const missing = (await vmPrerequisites()) ??
  (values["via-apiserver"] ? await controlPlanePrerequisites() : null);
if (missing) {
  console.error(`scenario: cannot run: ${missing}`);
  Deno.exit(1);
}
const root = new URL("../../", import.meta.url).pathname;
const files = positionals.map((file) => (file.startsWith("/") ? file : `${Deno.cwd()}/${file}`));
const echo = (text: string) => Deno.stdout.writeSync(new TextEncoder().encode(text));
const timeoutSeconds = Number(values.timeout);

function summary(output: string): ScenarioCounts {
  const match = SUMMARY.exec(output);
  return match
    ? { passed: Number(match[1]), failed: Number(match[2]), retried: Number(match[3]) }
    : { passed: 0, failed: 1, retried: 0 };
}

let total: ScenarioCounts = { passed: 0, failed: 0, retried: 0 };
if (!values["via-apiserver"]) {
  const result = await runInVm({
    command: [
      "deno",
      "run",
      "-A",
      "tests/kernel/scenario/runner.ts",
      "--tc-driver",
      values["tc-driver"],
      ...files,
    ],
    cwd: root,
    timeoutSeconds,
    onOutput: echo,
  });
  total = summary(result.output);
} else {
  for (const file of files) {
    const cp = await startControlPlane();
    const dir = await Deno.makeTempDir({ prefix: "mnp-scenario-" });
    try {
      const kubeconfig = await writeGuestKubeconfig(
        cp.adminKubeconfig,
        Number(new URL(cp.server).port),
        dir,
      );
      const result = await runInVm({
        command: [
          "deno",
          "run",
          "-A",
          "tests/kernel/e2e/scenario_guest.ts",
          kubeconfig,
          file,
          values["tc-driver"],
        ],
        cwd: root,
        shares: [dir, ...(file.startsWith("/tmp/") ? [file.slice(0, file.lastIndexOf("/"))] : [])],
        hostPorts: [Number(new URL(cp.server).port)],
        timeoutSeconds,
        onOutput: (text) => echo(text.replace(new RegExp(`${SUMMARY.source}\n`, "m"), "")),
      });
      const counts = summary(result.output);
      total.passed += counts.passed;
      total.failed += counts.failed;
      total.retried += counts.retried;
    } finally {
      await cp.stop();
      await Deno.remove(dir, { recursive: true });
    }
  }
}
console.log(summaryLine(total));
Deno.exit(total.failed > 0 ? 1 : 0);
