/**
 * The shipped manifests against a real kube-apiserver: `kubectl apply --dry-run=server -R -f
 * deploy/` passes once the CRDs are established; the CRD schema accepts examples/ and rejects
 * malformed MultiNetworkPolicies naming the field; and the agent (main.ts as a real process) runs
 * with the credentials of deploy.yaml's ServiceAccount, which can read what it watches and record
 * Events but cannot write pods, policies or secrets nor read secrets; SIGTERM exits 0 promptly.
 *
 * @module
 */
import assert from "node:assert/strict";
import { type ControlPlane, freePorts, startControlPlane } from "./controlplane/controlplane.ts";
import {
  apply,
  installCrds,
  kubectl,
  kubectlRaw,
  waitFor,
  warningEvents,
} from "../support/controlplane.ts";
import { nad, ns } from "../support/manifests.ts";
import { assertStartedEvent, missing, requireControlPlane, skip } from "./agent_harness.ts";

if (skip) console.log(`SKIP deploy/RBAC tests: ${missing}`);

const NODE = "node-r";
const SA = "system:serviceaccount:kube-system:multi-networkpolicy-tc";

async function ensureNamespace(kc: string, name: string): Promise<void> {
  const got = await kubectlRaw(kc, ["get", "namespace", name]);
  if (!got.ok) await apply(kc, ns(name));
}

/** A MultiNetworkPolicy manifest with the given spec, for schema checks. */
function rawPolicy(name: string, spec: unknown) {
  return {
    apiVersion: "k8s.cni.cncf.io/v1beta2",
    kind: "MultiNetworkPolicy",
    metadata: { name, namespace: "default" },
    spec,
  };
}

async function manifests(cp: ControlPlane): Promise<void> {
  const kc = cp.adminKubeconfig;
  await installCrds(kc);
  await ensureNamespace(kc, "kube-system");
  const deploy = await kubectlRaw(kc, ["apply", "--dry-run=server", "-R", "-f", "deploy/"]);
  assert.ok(deploy.ok, `dry-run of deploy/ failed: ${deploy.stderr}`);
  for (const object of ["serviceaccount", "clusterrole", "clusterrolebinding", "daemonset"]) {
    assert.match(deploy.stdout, new RegExp(`^${object}\\S* \\S+ .*\\(server dry run\\)$`, "m"));
  }

  // The examples' namespaces for real (a dry-run namespace does not exist for its objects).
  await kubectl(kc, "apply", "-f", "examples/00-namespaces.yaml");
  const examples = await kubectlRaw(kc, ["apply", "--dry-run=server", "-f", "examples/"]);
  assert.ok(examples.ok, `dry-run of examples/ failed: ${examples.stderr}`);
  assert.match(examples.stdout, /multinetworkpolicy\S* \S+ .*\(server dry run\)/);
  assert.match(examples.stdout, /networkattachmentdefinition\S* \S+ .*\(server dry run\)/);

  const bad: [string, unknown, RegExp][] = [
    ["selector-string", { podSelector: "x" }, /spec\.podSelector/],
    ["ingress-object", { podSelector: {}, ingress: {} }, /spec\.ingress/],
    [
      "port-bool",
      { podSelector: {}, ingress: [{ ports: [{ port: true }] }] },
      /spec\.ingress\[0\]\.ports\[0\]\.port/,
    ],
    [
      "endport-string",
      { podSelector: {}, egress: [{ ports: [{ port: 80, endPort: "90" }] }] },
      /spec\.egress\[0\]\.ports\[0\]\.endPort/,
    ],
  ];
  for (const [name, spec, field] of bad) {
    const out = await kubectlRaw(
      kc,
      ["apply", "--dry-run=server", "-f", "-"],
      JSON.stringify(rawPolicy(name, spec)),
    );
    assert.equal(out.ok, false, `${name} was accepted: ${out.stdout}`);
    assert.match(out.stderr, field, `${name}: ${out.stderr}`);
  }
}

/** `kubectl auth can-i` as the agent's ServiceAccount. */
async function canI(kc: string, verb: string, resource: string): Promise<boolean> {
  const out = await kubectlRaw(kc, ["auth", "can-i", verb, resource, "--all-namespaces"]);
  const answer = out.stdout.trim();
  assert.ok(answer === "yes" || answer === "no", `can-i ${verb} ${resource}: ${out.stderr}`);
  return answer === "yes";
}

/** Collects a child's output stream so that it never blocks on a full pipe. */
function drain(stream: ReadableStream<Uint8Array>): { text: () => string; done: Promise<void> } {
  let text = "";
  const decoder = new TextDecoder();
  const done = stream.pipeTo(
    new WritableStream({
      write(chunk) {
        text += decoder.decode(chunk, { stream: true });
      },
    }),
  ).catch(() => {});
  return { text: () => text, done };
}

async function rbacAndProcess(cp: ControlPlane): Promise<void> {
  const admin = cp.adminKubeconfig;
  await kubectl(admin, "apply", "-f", "deploy/deploy.yaml");
  const sa = await cp.makeServiceAccountKubeconfig("kube-system", "multi-networkpolicy-tc");
  assert.equal(
    await kubectl(sa, "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}"),
    SA,
  );
  await waitFor("RBAC in effect", () => canI(sa, "watch", "pods"));
  const policies = "multi-networkpolicies.k8s.cni.cncf.io";
  const nads = "network-attachment-definitions.k8s.cni.cncf.io";
  for (const resource of ["pods", "namespaces", policies, nads]) {
    for (const verb of ["get", "list", "watch"]) {
      assert.ok(await canI(sa, verb, resource), `can ${verb} ${resource}`);
    }
  }
  assert.ok(await canI(sa, "create", "events"), "can create events");
  for (const verb of ["patch", "update", "delete", "get", "list"]) {
    assert.equal(await canI(sa, verb, "events"), false, `cannot ${verb} events (never used)`);
  }
  for (const resource of ["pods", policies, "secrets"]) {
    for (const verb of ["create", "update", "patch", "delete"]) {
      assert.equal(await canI(sa, verb, resource), false, `cannot ${verb} ${resource}`);
    }
  }
  for (const verb of ["get", "list", "watch"]) {
    assert.equal(await canI(sa, verb, "secrets"), false, `cannot ${verb} secrets`);
  }
  assert.equal(await canI(sa, "update", nads), false, "cannot update NADs");

  await apply(admin, ns("app"), nad("app", "net1", "accelerated-bridge"));
  const [port, metricsPort] = freePorts(2);
  const started = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "main.ts",
      "--kubeconfig",
      sa,
      "--hostname-override",
      NODE,
      "--health-address",
      `127.0.0.1:${port}`,
      "--metrics-address",
      `127.0.0.1:${metricsPort}`,
      "--pod-resources-socket=",
      "--min-sync-interval",
      "200ms",
      "-v=2",
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stdout = drain(child.stdout);
  const stderr = drain(child.stderr);
  let exited = false;
  const status = child.status.finally(() => exited = true);
  try {
    await waitFor("/readyz 200", async () => {
      if (exited) throw new Error(`agent exited: ${stderr.text()}`);
      return (await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200;
    }, 60_000);
    console.log(`agent process ready ${Math.round(performance.now() - started)} ms after spawn`);

    // A local pod on a policed network without a PCI address: the agent sees it and, with its
    // ServiceAccount's rights, records a Warning on it.
    await apply(admin, {
      apiVersion: "v1",
      kind: "Pod",
      metadata: {
        name: "nopci",
        namespace: "app",
        annotations: {
          "k8s.v1.cni.cncf.io/network-status": JSON.stringify([
            { name: "app/net1", interface: "net1", ips: ["10.1.0.40"] },
          ]),
        },
      },
      spec: { nodeName: NODE, containers: [{ name: "c", image: "busybox" }] },
    });
    const reasons = await waitFor(
      "Warning event from the agent",
      async () =>
        (await warningEvents(admin, "app", "involvedObject.name=nopci"))?.map((e) => e.reason)
          .join(" "),
      30_000,
    );
    assert.match(reasons, /InterfaceNotEnforced/);
    await assertStartedEvent(admin, NODE);
    const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    assert.match(metrics, /^mnp_apiserver_connected 1$/m);
    assert.doesNotMatch(metrics, /^mnp_errors_total\{kind="(watch|event)"\} [1-9]/m);
    assert.doesNotMatch(stderr.text(), /forbidden/i);
  } finally {
    const stopAt = performance.now();
    if (!exited) child.kill("SIGTERM");
    const timeout = setTimeout(() => {
      if (!exited) child.kill("SIGKILL");
    }, 10_000);
    const { code, signal } = await status;
    clearTimeout(timeout);
    await Promise.all([stdout.done, stderr.done]);
    const exitMs = Math.round(performance.now() - stopAt);
    console.log(`agent process: SIGTERM → exit ${code} in ${exitMs} ms`);
    assert.equal(signal, null, `agent killed by ${signal}:\n${stderr.text()}`);
    assert.equal(code, 0, `agent exit status:\n${stderr.text()}`);
    assert.ok(exitMs < 5_000, `SIGTERM took ${exitMs} ms`);
    assert.match(stderr.text(), /signal received: stopping/);
  }
}

Deno.test({
  name: "deploy: server dry-run of deploy/ and examples/, CRD schema rejects malformed " +
    "policies, agent process with the ServiceAccount's least privilege, SIGTERM exits 0",
  ignore: skip,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    requireControlPlane();
    const cp = await startControlPlane();
    try {
      await t.step("manifests validate against the server", () => manifests(cp));
      await t.step("agent runs as its ServiceAccount", () => rbacAndProcess(cp));
    } finally {
      await cp.stop();
    }
  },
});
