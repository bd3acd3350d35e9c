/**
 * Which VF each local interface is enforced on: the kubelet's word over the
 * pod's annotation, and no claim in an annotation ever takes a VF out of
 * enforcement (the attacks of the trust-boundary review, one case each).
 */
import assert from "node:assert/strict";
import type { DeviceAllocations } from "../../src/interfaces/local.ts";
import { computeNodeRules } from "../../src/policy/engine.ts";
import type { InterfaceRules } from "../../src/policy/model.ts";
import { allows, cluster } from "../support/cluster.ts";
import { type Manifest, mnp, nad, ns, pod } from "../support/manifests.ts";

const VICTIM_VF = "0000:3b:02.1";
const ATTACKER_VF = "0000:3b:02.7";
const RESOURCE = "example.com/vf";

/** A NAD whose VFs come from {@link RESOURCE}. */
function resourceNad(namespace: string, name: string): Manifest {
  const manifest = nad(namespace, name);
  (manifest.metadata as Record<string, unknown>).annotations = {
    "k8s.v1.cni.cncf.io/resourceName": RESOURCE,
  };
  return manifest;
}

/** Rewrites one pod's network-status entries. */
function editStatus(manifest: Manifest, edit: (entries: Record<string, unknown>[]) => void) {
  const annotations = (manifest.metadata as { annotations: Record<string, string> }).annotations;
  const entries = JSON.parse(annotations["k8s.v1.cni.cncf.io/network-status"]);
  edit(entries);
  annotations["k8s.v1.cni.cncf.io/network-status"] = JSON.stringify(entries);
  return manifest;
}

/** The victim, isolated both ways by a deny-all in its namespace; the attacker with no policy. */
function scene(attacker: Manifest): Manifest[] {
  return [
    ns("bank"),
    ns("evil"),
    resourceNad("bank", "data"),
    pod("bank", "victim", { nets: { "bank/data": "10.0.0.1" }, pci: { "bank/data": VICTIM_VF } }),
    mnp("bank", "deny-all", "data", { policyTypes: ["Ingress", "Egress"] }),
    attacker,
  ];
}

/** The attacker claims the victim's VF on the victim's network. */
const thief = () =>
  pod("evil", "thief", { nets: { "bank/data": "10.0.0.9" }, pci: { "bank/data": VICTIM_VF } });

const KUBELET: DeviceAllocations = new Map([
  ["bank/victim", new Map([[RESOURCE, [VICTIM_VF]]])],
  ["evil/thief", new Map([[RESOURCE, [ATTACKER_VF]]])],
]);

function rules(manifests: Manifest[], devices: DeviceAllocations | null = null) {
  const { state } = cluster(manifests);
  return computeNodeRules(state, {
    node: "node-a",
    networkPlugins: ["accelerated-bridge"],
    devices,
  });
}

function onVf(result: { interfaces: InterfaceRules[] }, pci: string): InterfaceRules[] {
  return result.interfaces.filter((i) => i.pciAddress === pci);
}

const anything = { peer: "10.9.9.9", protocol: "TCP" as const, port: 80 };

Deno.test("interfaces: without the kubelet, a VF claimed by two pods is deny-all, never open", () => {
  const result = rules(scene(thief()));
  const [vf, ...more] = onVf(result, VICTIM_VF);
  assert.equal(more.length, 0, "one program per VF");
  assert.equal(allows(vf.ingress, anything), false);
  assert.equal(allows(vf.egress, anything), false);
  assert.match(vf.denyAll!, /claimed by bank\/victim on bank\/data and evil\/thief on bank\/data/);
  assert.deepEqual(
    result.errors.map((e) => `${e.object} ${e.reason}`).sort(),
    ["Pod bank/victim VFClaimConflict", "Pod evil/thief VFClaimConflict"],
  );
});

Deno.test("interfaces: with the kubelet, a claim on another pod's VF is ignored", () => {
  const result = rules(scene(thief()), KUBELET);
  const [vf, ...more] = onVf(result, VICTIM_VF);
  assert.equal(more.length, 0);
  assert.equal(vf.pod.name, "victim");
  assert.equal(vf.denyAll, undefined, "the victim keeps its own rules");
  assert.deepEqual(vf.ingress.policies, ["bank/deny-all"]);
  assert.ok(
    result.errors.some((e) =>
      e.object === "Pod evil/thief" && e.reason === "VFClaimIgnored" &&
      /allocated to bank\/victim/.test(e.message)
    ),
    JSON.stringify(result.errors),
  );
});

Deno.test("interfaces: default: true or no device-info do not take a pod's own VF out", () => {
  for (
    const edit of [
      (entries: Record<string, unknown>[]) => (entries[1].default = true),
      (entries: Record<string, unknown>[]) => delete entries[1]["device-info"],
      (entries: Record<string, unknown>[]) => entries.splice(1, 1),
    ]
  ) {
    const victim = editStatus(
      pod("bank", "victim", { nets: { "bank/data": "10.0.0.1" }, pci: { "bank/data": VICTIM_VF } }),
      edit,
    );
    const manifests = scene(ns("other"));
    manifests[3] = victim;
    const withKubelet = onVf(rules(manifests, KUBELET), VICTIM_VF);
    assert.equal(withKubelet.length, 1, String(edit));
    assert.deepEqual(withKubelet[0].ingress.policies, ["bank/deny-all"], String(edit));
    assert.equal(allows(withKubelet[0].egress, anything), false, String(edit));
  }
  const flagged = editStatus(
    pod("bank", "victim", { nets: { "bank/data": "10.0.0.1" }, pci: { "bank/data": VICTIM_VF } }),
    (entries) => (entries[1].default = true),
  );
  const manifests = scene(ns("other"));
  manifests[3] = flagged;
  assert.equal(onVf(rules(manifests), VICTIM_VF).length, 1, "annotation mode too");
});

Deno.test("interfaces: an entry repeated 1,000 times is one interface and one error", () => {
  const victim = editStatus(
    pod("bank", "victim", { nets: { "bank/data": "10.0.0.1" }, pci: { "bank/data": VICTIM_VF } }),
    (entries) => entries.push(...Array.from({ length: 999 }, () => structuredClone(entries[1]))),
  );
  const manifests = scene(ns("other"));
  manifests[3] = victim;
  for (const devices of [null, KUBELET]) {
    const result = rules(manifests, devices);
    assert.equal(result.interfaces.length, 1);
    assert.equal(result.interfaces[0].denyAll, undefined);
    assert.deepEqual(result.errors.map((e) => e.message), [
      "1000 entries claim VF 0000:3b:02.1; enforced once",
    ]);
  }
});

Deno.test("interfaces: a kubelet VF that could be on two policed networks is deny-all", () => {
  const victim = editStatus(
    pod("bank", "victim", { nets: { "bank/data": "10.0.0.1" }, pci: { "bank/data": VICTIM_VF } }),
    (entries) => entries.splice(1, 1),
  );
  const manifests = scene(ns("other"));
  manifests[3] = victim;
  manifests.push(resourceNad("bank", "data2"));
  const [vf] = onVf(rules(manifests, KUBELET), VICTIM_VF);
  assert.match(vf.denyAll!, /could be on bank\/data, bank\/data2/);
  assert.equal(allows(vf.ingress, anything), false);
});

Deno.test("interfaces: a VF the kubelet does not know is taken from the annotation", () => {
  const newcomer = pod("bank", "new", {
    nets: { "bank/data": "10.0.0.5" },
    pci: { "bank/data": "0000:3b:02.5" },
  });
  const result = rules([...scene(ns("other")), newcomer], KUBELET);
  assert.equal(onVf(result, "0000:3b:02.5")[0]?.pod.name, "new");
});
