/**
 * VF ownership from the kubelet, end to end: the agent (its daemon code, a
 * recording sink) against the real kube-apiserver and a real gRPC
 * PodResources server (the kubelet's Go API, tests/k8s/podresources). A pod
 * that claims another pod's VF in its annotation gets a Warning and changes
 * nothing; a pod that drops its VF's entry stays enforced; while the kubelet
 * is away its last answer holds, and when it comes back the agent follows it.
 */
import assert from "node:assert/strict";
import { startDaemon } from "../../src/agent/daemon.ts";
import { log } from "../../src/log/klog.ts";
import { startControlPlane } from "./controlplane/controlplane.ts";
import { apply, installCrds, kubectl, waitFor, warningEvents } from "../support/controlplane.ts";
import { apiPod, mnp, nad, ns } from "../support/manifests.ts";
import { agentOptions, inCI, RecordingSink, requireControlPlane, skip } from "./agent_harness.ts";
import { podResourcesServerBinary, startPodResourcesServer } from "./podresources/server.ts";

const NODE = "node-a";
const RESOURCE = "example.com/sriov_vf";
const VICTIM_VF = "0000:3b:02.1";
const THIEF_VF = "0000:3b:02.7";
const LATE_VF = "0000:3b:02.3";
const VICTIM = "bank/victim/bank/data/net1";

const binary = skip ? { missing: "control plane missing" } : await podResourcesServerBinary();
const missing = "missing" in binary ? binary.missing : null;

/** The NAD of `bank/data`, its VFs from {@link RESOURCE}. */
function dataNetwork() {
  const manifest = nad("bank", "data", "accelerated-bridge");
  (manifest.metadata as Record<string, unknown>).annotations = {
    "k8s.v1.cni.cncf.io/resourceName": RESOURCE,
  };
  return manifest;
}

Deno.test({
  name: "pod resources: the kubelet decides which VF a pod owns (real apiserver, real gRPC)",
  ignore: skip || (missing !== null && !inCI),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    requireControlPlane();
    if (missing) assert.fail(`PodResources test server missing (CI is set): ${missing}`);
    const cp = await startControlPlane({ http2: false });
    const dir = await Deno.makeTempDir();
    const kubelet = await startPodResourcesServer((binary as { path: string }).path, dir, [
      { namespace: "bank", name: "victim", devices: { [RESOURCE]: [VICTIM_VF] } },
      { namespace: "evil", name: "thief", devices: { [RESOURCE]: [THIEF_VF] } },
    ]);
    const sink = new RecordingSink();
    let daemon: ReturnType<typeof startDaemon> | null = null;
    try {
      const kc = cp.adminKubeconfig;
      await installCrds(kc);
      await apply(
        kc,
        ns("bank"),
        ns("evil"),
        dataNetwork(),
        apiPod("bank", "victim", NODE, { app: "victim" }, {
          network: "bank/data",
          ip: "10.1.0.10",
          pci: VICTIM_VF,
        }),
        mnp("bank", "deny-all", "data", { podSelector: {}, policyTypes: ["Ingress", "Egress"] }),
        // In a namespace without policies, claiming the victim's VF on the victim's network.
        apiPod("evil", "thief", NODE, { app: "thief" }, {
          network: "bank/data",
          ip: "10.1.0.66",
          pci: VICTIM_VF,
        }),
      );
      const options = agentOptions(kc, NODE, `--pod-resources-socket=${kubelet.socket}`);
      log.configure(options.klog);
      daemon = startDaemon(options, sink, { coalesce: { debounceMs: 50 }, kubeletPollMs: 300 });

      /** Whether the victim's VF carries the victim's program, under whatever interface name. */
      const victimEnforced = () => {
        const onVf = [...sink.programmed.values()].filter((r) => r.pciAddress === VICTIM_VF);
        return onVf.length === 1 && onVf[0].pod.name === "victim" && onVf[0].ingress.isolated &&
          onVf[0].egress.isolated && onVf[0].denyAll === undefined;
      };
      await waitFor("the victim's VF enforced with its own policy", victimEnforced);
      assert.equal(sink.programmed.get(VICTIM)?.interfaceName, "net1");
      const onVictimVf = [...sink.programmed.values()].filter((r) => r.pciAddress === VICTIM_VF);
      assert.equal(onVictimVf.length, 1, "one program on the victim's VF: the victim's");
      assert.deepEqual(onVictimVf[0].ingress.policies, ["bank/deny-all"]);
      const thief = [...sink.programmed.values()].find((r) => r.pod.name === "thief");
      assert.equal(thief?.pciAddress, THIEF_VF, "the thief is enforced on its own VF");
      const events = await waitFor("Warning on the thief", async () => {
        const found = await warningEvents(kc, "evil", "involvedObject.name=thief");
        return found?.some((e) => e.reason === "VFClaimIgnored") ? found : null;
      });
      assert.match(
        events.find((e) => e.reason === "VFClaimIgnored")!.message,
        /allocated to bank\/victim/,
      );

      // The kubelet goes away; the victim drops its VF's entry from its annotation.
      await kubelet.stop();
      await kubectl(
        kc,
        "-n",
        "bank",
        "annotate",
        "pod",
        "victim",
        "--overwrite",
        'k8s.v1.cni.cncf.io/network-status=[{"name":"cbr0","interface":"eth0","ips":["10.244.0.1"],"default":true}]',
      );
      const from = sink.calls.length;
      await waitFor("a sync after the annotation change", () => sink.calls.length > from);
      assert.ok(victimEnforced(), "the last answer of the kubelet still holds its VF");
      await waitFor("ready while the kubelet is away", () => daemon!.notReady() === null);

      // A pod created meanwhile, then the kubelet comes back knowing it.
      await apply(
        kc,
        apiPod("bank", "late", NODE, { app: "late" }, {
          network: "bank/data",
          ip: "10.1.0.12",
          pci: LATE_VF,
        }),
      );
      await waitFor(
        "a VF unknown to the last answer is taken from the annotation",
        () => [...sink.programmed.values()].some((r) => r.pciAddress === LATE_VF),
      );
      await kubelet.setPods([
        { namespace: "bank", name: "victim", devices: { [RESOURCE]: [VICTIM_VF] } },
        { namespace: "bank", name: "late", devices: { [RESOURCE]: [LATE_VF] } },
      ]);
      // No API event now: the agent hears the kubelet's new answer by itself.
      await kubelet.start();
      await waitFor(
        "the kubelet's answer followed again",
        () =>
          [...sink.programmed.values()].some((r) =>
            r.pod.name === "late" && r.pciAddress === LATE_VF
          ) && victimEnforced() &&
          ![...sink.programmed.values()].some((r) => r.pod.name === "thief"),
      );
    } finally {
      await daemon?.stop();
      await kubelet.stop();
      await cp.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
