/**
 * Smoke test of the test control plane: a real etcd + kube-apiserver, reached through
 * @kubernetes/client-node and kubectl, surviving an apiserver restart.
 *
 * Skips (with a one-line reason) when the apiserver is not built and CI is unset; fails when CI
 * is set.
 *
 * @module
 */

import assert from "node:assert/strict";
import * as k8s from "@kubernetes/client-node";
import { kubectl, kubectlRaw, sleep } from "../support/controlplane.ts";
import { controlPlanePrerequisites, startControlPlane } from "./controlplane/controlplane.ts";

const missing = await controlPlanePrerequisites();
const inCI = (Deno.env.get("CI") ?? "") !== "";
if (missing && !inCI) {
  console.log(`SKIP controlplane smoke test: ${missing}`);
}

async function namespaceNames(api: k8s.CoreV1Api): Promise<string[]> {
  const list = await api.listNamespace();
  return list.items.map((ns) => ns.metadata?.name ?? "");
}

Deno.test({
  name: "control plane: real kube-apiserver + etcd, client-node, kubectl, apiserver restart",
  ignore: missing !== null && !inCI,
  // client-node keeps HTTP keep-alive sockets and timers of its own.
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    if (missing) assert.fail(`control plane prerequisites missing (CI is set): ${missing}`);
    const started = performance.now();
    // HTTP/1.1 only: with HTTP/2, the GOAWAY that kube-apiserver sends on graceful shutdown can
    // crash Deno 2.9 inside node:http2 when client-node's idle connection receives it
    // (denoland/deno#36788). This test is about the control plane, not that bug.
    const cp = await startControlPlane({ http2: false });
    try {
      console.log(
        `control plane ready at ${cp.server} in ${Math.round(performance.now() - started)} ms`,
      );
      assert.match(cp.server, /^https:\/\/127\.0\.0\.1:\d+$/);

      const kc = new k8s.KubeConfig();
      kc.loadFromFile(cp.adminKubeconfig);
      const core = kc.makeApiClient(k8s.CoreV1Api);

      assert.ok((await namespaceNames(core)).includes("default"), "default namespace exists");
      await core.createNamespace({ body: { metadata: { name: "smoke", labels: { a: "b" } } } });
      const names = await namespaceNames(core);
      assert.ok(names.includes("smoke"), `namespaces: ${names.join(",")}`);

      const table = await kubectl(cp.adminKubeconfig, "get", "ns");
      assert.match(table, /^smoke\s+Active/m);
      assert.match(table, /^default\s+Active/m);

      // RBAC is enforced: a fresh ServiceAccount may not list pods until it is granted.
      const saKubeconfig = await cp.makeServiceAccountKubeconfig("smoke", "agent");
      const canI = async () =>
        (await kubectlRaw(saKubeconfig, ["auth", "can-i", "list", "pods", "-n", "smoke"])).stdout
          .trim();
      assert.equal(await canI(), "no");
      // Aggregated ClusterRoles (view/edit/admin) stay empty without a controller-manager, so
      // grant with an explicit Role.
      await kubectl(
        cp.adminKubeconfig,
        ...["-n", "smoke", "create", "role", "pod-reader", "--verb=get,list,watch"],
        "--resource=pods",
      );
      await kubectl(
        cp.adminKubeconfig,
        ...["-n", "smoke", "create", "rolebinding", "agent-pods", "--role=pod-reader"],
        "--serviceaccount=smoke:agent",
      );
      // The RBAC authorizer reads through an informer cache: allow it a moment.
      let answer = "";
      for (let i = 0; i < 50 && answer !== "yes"; i++) {
        if (i > 0) await sleep(100);
        answer = await canI();
      }
      assert.equal(answer, "yes");

      // Restart only the apiserver, gracefully and then as a crash: same URL, same data.
      for (const signal of ["SIGTERM", "SIGKILL"] as const) {
        await cp.stopApiServer({ signal });
        await assert.rejects(kubectl(cp.adminKubeconfig, "get", "ns", "--request-timeout=3s"));
        const restarted = performance.now();
        await cp.startApiServer();
        console.log(
          `apiserver restarted after ${signal} in ${Math.round(performance.now() - restarted)} ms`,
        );
        assert.equal((await core.readNamespace({ name: "smoke" })).metadata?.labels?.a, "b");
      }

      const after = kc.makeApiClient(k8s.CoreV1Api);
      const ns = await after.readNamespace({ name: "smoke" });
      assert.equal(ns.metadata?.labels?.a, "b");
      assert.match(await kubectl(cp.adminKubeconfig, "get", "ns", "smoke"), /^smoke\s+Active/m);
      assert.match(
        await kubectl(saKubeconfig, "-n", "smoke", "get", "pods"),
        /^$|No resources/m,
      );
    } finally {
      await cp.stop();
    }
    const gone = await Deno.stat(cp.dir).then(() => false, () => true);
    assert.ok(gone, `temp dir ${cp.dir} removed`);
  },
});
