/**
 * End to end: the real kube-apiserver runs on the host; the whole agent runs
 * inside the kernel VM (reaching the apiserver through qemu's user-mode
 * network and nothing else), programs veth "representors" found through a
 * fake sysfs tree, and real packets check it while the cluster changes,
 * including a SIGKILL during a sync (tests/kernel/e2e/agent_guest.ts).
 */
import assert from "node:assert/strict";
import { controlPlanePrerequisites, startControlPlane } from "../k8s/controlplane/controlplane.ts";
import { writeGuestKubeconfig } from "./e2e/guest_kubeconfig.ts";
import { runInVm, vmPrerequisites } from "./vm/vm.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const missing = (await vmPrerequisites()) ?? (await controlPlanePrerequisites());
if (missing && Deno.env.get("CI")) throw new Error(`e2e test cannot run in CI: ${missing}`);
if (missing) console.log(`skipping e2e test: ${missing}`);

/**
 * Runs a guest script in the VM against a fresh real apiserver on the host (reached through
 * qemu's user-mode network) and checks that it ends with `done`.
 */
function guestTest(name: string, script: string, timeoutSeconds: number, done: RegExp) {
  Deno.test({
    name,
    ignore: missing !== null,
    sanitizeResources: false,
    sanitizeOps: false,
    async fn() {
      const cp = await startControlPlane();
      const dir = await Deno.makeTempDir({ prefix: "mnp-e2e-" });
      try {
        const port = Number(new URL(cp.server).port);
        const kubeconfig = await writeGuestKubeconfig(cp.adminKubeconfig, port, dir);
        const result = await runInVm({
          command: ["deno", "run", "-A", "--no-check", `tests/kernel/e2e/${script}`, kubeconfig],
          cwd: ROOT,
          shares: [dir],
          hostPorts: [port],
          timeoutSeconds,
        });
        console.log(result.output.trimEnd());
        assert.equal(result.code, 0, `exit ${result.code}`);
        assert.match(result.output, done);
      } finally {
        await cp.stop();
        await Deno.remove(dir, { recursive: true });
      }
    },
  });
}

guestTest(
  "e2e: agent in the VM against the real apiserver, with real packets",
  "agent_guest.ts",
  900,
  /^e2e: all checks passed$/m,
);

guestTest(
  "e2e: drop counters on /metrics count exactly the denied packets, with each driver",
  "drops_guest.ts",
  600,
  /^drops: all checks passed$/m,
);

Deno.test({
  name: "e2e: a scenario file passes through the whole agent too (--via-apiserver, netlink)",
  ignore: missing !== null,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "tests/kernel/scenario.ts",
        "--via-apiserver",
        "--tc-driver",
        "netlink",
        "tests/kernel/scenarios/egress-pod-selector.yaml",
      ],
      cwd: ROOT,
      stdout: "piped",
      stderr: "inherit",
    }).output();
    const text = new TextDecoder().decode(out.stdout);
    console.log(text.trimEnd());
    assert.equal(out.code, 0);
    assert.match(text, /^7 passed, 0 failed, \d+ retried$/m);
  },
});
