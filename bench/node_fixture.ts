/**
 * A node with N policed pods on one network (benchmarks and the placement
 * figures): namespace `app`, network `app/data`, pods `p0`..`pN-1` on
 * node-a, each isolated both ways by one namespace-wide policy that accepts
 * TCP 80 and 443 from four client pods on other nodes and lets the pods
 * reach two database pods on TCP 5432 and UDP 53.
 */
import type { InterfaceRules } from "../src/policy/model.ts";
import { objectsOf, rulesFor } from "../tests/support/cluster.ts";
import { stateFromObjects } from "../src/cluster/manifests.ts";
import { type Manifest, mnp, nad, ns, pod } from "../tests/support/manifests.ts";

/** The rules of the N local interfaces. */
export function nodeWithPods(count: number): InterfaceRules[] {
  const manifests: Manifest[] = [ns("app"), nad("app", "data")];
  for (let i = 0; i < count; i++) {
    manifests.push(pod("app", `p${i}`, {
      labels: { role: "worker" },
      node: "node-a",
      nets: { "app/data": `10.80.${i >> 8}.${(i & 0xff) + 1}` },
      pci: { "app/data": `0000:5e:${(i >> 3).toString(16).padStart(2, "0")}.${i & 7}` },
    }));
  }
  const remote = [["client", 4], ["db", 2]] as const;
  for (const [role, n] of remote) {
    for (let i = 0; i < n; i++) {
      manifests.push(pod("app", `${role}${i}`, {
        labels: { role },
        node: "node-b",
        nets: { "app/data": `10.81.${role === "db" ? 1 : 0}.${i + 1}` },
        pci: { "app/data": `0000:6e:0${role === "db" ? 1 : 0}.${i}` },
      }));
    }
  }
  manifests.push(mnp("app", "workers", "data", {
    podSelector: { matchLabels: { role: "worker" } },
    policyTypes: ["Ingress", "Egress"],
    ingress: [{
      from: [{ podSelector: { matchLabels: { role: "client" } } }],
      ports: [{ protocol: "TCP", port: 80 }, { protocol: "TCP", port: 443 }],
    }],
    egress: [{
      to: [{ podSelector: { matchLabels: { role: "db" } } }],
      ports: [{ protocol: "TCP", port: 5432 }, { protocol: "UDP", port: 53 }],
    }],
  }));
  const rules = rulesFor(stateFromObjects(objectsOf(manifests)), "node-a");
  if (rules.interfaces.length !== count) {
    throw new Error(`want ${count} interfaces, got ${rules.interfaces.length}`);
  }
  return rules.interfaces;
}
