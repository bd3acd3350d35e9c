/**
 * `explain --kubeconfig` against a real kube-apiserver: one scenario file's
 * objects are created through the API server (named ports, endPort ranges
 * and SCTP, so container ports come back as the API server stores them), and
 * each of its probes, asked of `main.ts explain` listing the live cluster,
 * gets the verdict the scenario expects (the kernel's; see
 * tests/kernel/scenarios/).
 *
 * @module
 */
import assert from "node:assert/strict";
import { describeProbe, parseScenario } from "../kernel/scenario/format.ts";
import { apply, installCrds } from "../support/controlplane.ts";
import { forApi } from "../support/manifests.ts";
import { missing, requireControlPlane, skip } from "./agent_harness.ts";
import { startControlPlane } from "./controlplane/controlplane.ts";

if (skip) console.log(`SKIP explain live test: ${missing}`);

const SCENARIO = new URL("../kernel/scenarios/ports-named-range-sctp.yaml", import.meta.url);
const MAIN = new URL("../../main.ts", import.meta.url).pathname;

/** `main.ts explain ARGS... -o json` as a user runs it: its exit code, verdict and stderr. */
async function explainLive(args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--cached-only", MAIN, "explain", ...args, "-o", "json"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  return {
    code: out.code,
    stderr: new TextDecoder().decode(out.stderr),
    verdict: out.code === 0 ? (JSON.parse(stdout).verdict as string) : "",
  };
}

Deno.test({
  name:
    "explain --kubeconfig: every probe of a scenario gets the expected verdict (real apiserver)",
  ignore: skip,
  // client-node keeps HTTP keep-alive sockets and timers of its own.
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    requireControlPlane();
    const scenario = parseScenario(await Deno.readTextFile(SCENARIO), SCENARIO.pathname);
    const cp = await startControlPlane({ http2: false });
    try {
      await installCrds(cp.adminKubeconfig);
      await apply(cp.adminKubeconfig, ...scenario.manifests.map(forApi));
      const wrong: string[] = [];
      for (const probe of scenario.probes) {
        const args = ["--kubeconfig", cp.adminKubeconfig, "--from", probe.from, "--to", probe.to];
        args.push("--protocol", probe.protocol, "--family", String(probe.family));
        if (probe.protocol !== "ICMP") args.push("--port", String(probe.port));
        if (probe.network) args.push("--network", probe.network);
        const got = await explainLive(args);
        assert.equal(got.code, 0, `${describeProbe(probe)}: ${got.stderr}`);
        if (got.verdict !== probe.expect) {
          wrong.push(`${describeProbe(probe)}: explain --kubeconfig says ${got.verdict}`);
        }
      }
      console.log(
        `${scenario.name} (live): ${scenario.probes.length - wrong.length}/` +
          `${scenario.probes.length} agree`,
      );
      assert.deepEqual(wrong, []);
    } finally {
      await cp.stop();
    }
  },
});
