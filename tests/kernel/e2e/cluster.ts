/**
 * The end-to-end test's cluster: namespace `e2e`, one policed network, two
 * pods on this node (`server`, `client`) and peers elsewhere.
 */
import { type Manifest, mnp, nad, ns, pod } from "../../support/manifests.ts";

/** The node the agent enforces. */
export const NODE = "node-a";
/** Pod addresses on the network. */
export const IP = {
  server: "10.80.0.1",
  client: "10.80.0.2",
  peer: "10.80.0.3",
  other: "10.80.0.4",
  extra: "10.80.0.5",
};

/** Namespace, NAD and pods (with their network-status annotations). */
export function baseObjects(): Manifest[] {
  const p = (name: keyof typeof IP, node: string, role: string) =>
    pod("e2e", name, { labels: { role }, node, nets: { "e2e/data": IP[name] } });
  return [
    ns("e2e", { env: "test" }),
    nad("e2e", "data"),
    p("server", NODE, "server"),
    p("client", NODE, "client"),
    p("peer", "node-b", "peer"),
    p("other", "node-b", "other"),
    p("extra", "node-b", "extra"),
  ];
}

/** Server ingress from role=peer on TCP 80; client egress to role=peer on TCP 80. */
export function policies(): Manifest[] {
  return [
    mnp("e2e", "server-ingress", "data", {
      podSelector: { matchLabels: { role: "server" } },
      policyTypes: ["Ingress"],
      ingress: [{
        from: [{ podSelector: { matchLabels: { role: "peer" } } }],
        ports: [{ port: 80 }],
      }],
    }),
    mnp("e2e", "client-egress", "data", {
      podSelector: { matchLabels: { role: "client" } },
      policyTypes: ["Egress"],
      egress: [{ to: [{ podSelector: { matchLabels: { role: "peer" } } }], ports: [{ port: 80 }] }],
    }),
  ];
}

/** `objects` with the pod `name` of namespace `e2e` labelled `role` instead. */
export function withRole(objects: Manifest[], name: string, role: string): Manifest[] {
  return objects.map((m) => {
    const meta = m.metadata as { name: string; labels: Record<string, string> };
    return m.kind === "Pod" && meta.name === name
      ? { ...m, metadata: { ...meta, labels: { role } } }
      : m;
  });
}
