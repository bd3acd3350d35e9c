/**
 * The DaemonSet runs with least privilege: the default seccomp profile, a
 * read-only root, only NET_ADMIN; the ClusterRole grants only the verbs the
 * agent uses (the RBAC test against the API server checks them in effect).
 */
import assert from "node:assert/strict";
import { parseAllDocuments } from "yaml";

const text = await Deno.readTextFile(new URL("../../deploy/deploy.yaml", import.meta.url));
const docs = parseAllDocuments(text).map((doc) => doc.toJS()) as Record<string, unknown>[];
const byKind = (kind: string) => docs.find((doc) => doc.kind === kind) as Record<string, never>;

Deno.test("deploy: the agent container is hardened", () => {
  const pod = byKind("DaemonSet").spec["template"]["spec"];
  const [container] = pod["containers"] as Record<string, Record<string, unknown>>[];
  assert.deepEqual(container.securityContext, {
    privileged: false,
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    seccompProfile: { type: "RuntimeDefault" },
    capabilities: { drop: ["ALL"], add: ["NET_ADMIN"] },
  });
});

Deno.test("deploy: health on every address for the kubelet, /metrics on loopback only", () => {
  const pod = byKind("DaemonSet").spec["template"]["spec"];
  const [container] = pod["containers"] as { args: string[] }[];
  assert.ok(container.args.includes("--health-address=0.0.0.0:9810"), container.args.join(" "));
  assert.ok(container.args.includes("--metrics-address=127.0.0.1:9811"), container.args.join(" "));
});

Deno.test("deploy: the ClusterRole grants reads of watched kinds and only create on events", () => {
  const rules = byKind("ClusterRole").rules as { resources: string[]; verbs: string[] }[];
  assert.deepEqual(rules.map((r) => `${r.resources.join(",")}: ${r.verbs.join(",")}`), [
    "pods,namespaces: get,list,watch",
    "multi-networkpolicies,network-attachment-definitions: get,list,watch",
    "events: create",
  ]);
});
