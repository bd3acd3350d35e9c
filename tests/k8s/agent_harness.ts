/**
 * Shared pieces of the agent's integration tests: a recording sink, kubectl
 * helpers, object builders and polling. The tests themselves use the real
 * control plane of ./controlplane/.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { AgentOptions } from "../../src/agent/options.ts";
import { parseAgentFlags } from "../../src/cli/flags.ts";
import type { RulesChange, RulesResult, RulesSink } from "../../src/agent/sink.ts";
import type { InterfaceRules } from "../../src/policy/model.ts";
import { runProcess } from "../../src/drivers/cmdline/process.ts";
import { controlPlanePrerequisites } from "./controlplane/controlplane.ts";

/** Null when the control plane can run, else why not. */
export const missing: string | null = await controlPlanePrerequisites();
/** Whether CI is set (a missing control plane is then a failure). */
export const inCI: boolean = (Deno.env.get("CI") ?? "") !== "";
/** Whether to skip the apiserver tests here. */
export const skip: boolean = missing !== null && !inCI;

/** Fails in CI when the control plane cannot run. */
export function requireControlPlane(): void {
  if (missing) assert.fail(`control plane prerequisites missing (CI is set): ${missing}`);
}

/** One `apply` call seen by the sink. */
export interface SinkCall {
  at: number;
  changes: RulesChange[];
}

/** A sink that records every call, keeps what is "programmed", and can be told to fail keys. */
export class RecordingSink implements RulesSink {
  readonly calls: SinkCall[] = [];
  readonly programmed = new Map<string, InterfaceRules>();
  /** Keys to fail, with the error to report. */
  readonly failing = new Map<string, string>();

  apply(changes: RulesChange[]): Promise<RulesResult[]> {
    this.calls.push({ at: performance.now(), changes });
    return Promise.resolve(changes.map((change) => {
      const error = this.failing.get(change.key);
      if (error) return { key: change.key, error };
      if (change.rules) this.programmed.set(change.key, change.rules);
      else this.programmed.delete(change.key);
      return { key: change.key, filters: 3 };
    }));
  }

  /** The changes received since call index `from`. */
  since(from: number): RulesChange[] {
    return this.calls.slice(from).flatMap((call) => call.changes);
  }

  /** The keys received since call index `from`, sorted, de-duplicated. */
  keysSince(from: number): string[] {
    return [...new Set(this.since(from).map((c) => c.key))].sort();
  }
}

/** Polls `check` every 50 ms until it returns a truthy value or `timeoutMs` passes. */
export async function waitFor<T>(
  what: string,
  check: () => T | Promise<T>,
  timeoutMs = 15_000,
): Promise<NonNullable<T>> {
  const deadline = performance.now() + timeoutMs;
  let last: unknown;
  while (performance.now() < deadline) {
    try {
      const value = await check();
      if (value) return value as NonNullable<T>;
    } catch (error) {
      last = error;
    }
    await sleep(50);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${last}` : ""}`);
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Runs kubectl; returns {ok, stdout, stderr}. `input` goes to stdin. */
export async function kubectlRaw(
  kubeconfig: string,
  args: string[],
  input?: string,
): Promise<{ ok: boolean; stdout: string; stderr: string }> {
  const out = await runProcess("kubectl", ["--kubeconfig", kubeconfig, ...args], input);
  return { ok: out.code === 0, stdout: out.stdout, stderr: out.stderr };
}

/** Runs kubectl and fails the test when it fails. */
export async function kubectl(kubeconfig: string, ...args: string[]): Promise<string> {
  const out = await kubectlRaw(kubeconfig, args);
  assert.ok(out.ok, `kubectl ${args.join(" ")} failed: ${out.stderr}`);
  return out.stdout;
}

/** Asserts the agent recorded its Normal `Started` Event on the Node. */
export async function assertStartedEvent(kubeconfig: string, node: string): Promise<void> {
  const started = await kubectl(
    kubeconfig,
    "-n",
    "default",
    "get",
    "events",
    "--field-selector",
    `involvedObject.name=${node},reason=Started`,
    "-o",
    "name",
  );
  assert.notEqual(started.trim(), "", "Normal Started event on the Node");
}

/** `kubectl apply -f -` of JSON objects. */
export async function apply(kubeconfig: string, ...objects: unknown[]): Promise<void> {
  const out = await kubectlRaw(
    kubeconfig,
    ["apply", "-f", "-"],
    JSON.stringify({ apiVersion: "v1", kind: "List", items: objects }),
  );
  assert.ok(out.ok, `kubectl apply failed: ${out.stderr}`);
}

/** Installs the repo's CRDs and waits until they are established. */
export async function installCrds(kubeconfig: string): Promise<void> {
  await kubectl(kubeconfig, "apply", "-f", "deploy/crds/");
  await kubectl(
    kubeconfig,
    "wait",
    "--for=condition=Established",
    "--timeout=60s",
    "crd/multi-networkpolicies.k8s.cni.cncf.io",
    "crd/network-attachment-definitions.k8s.cni.cncf.io",
  );
}

/** The daemon's options from command-line flags, as main.ts would parse them. */
export function agentOptions(kubeconfig: string, node: string, ...extra: string[]): AgentOptions {
  return parseAgentFlags([
    "--kubeconfig",
    kubeconfig,
    "--hostname-override",
    node,
    "--health-address",
    "127.0.0.1:0",
    "--min-sync-interval",
    "200ms",
    ...extra,
  ]);
}

/** A Namespace. */
export function namespace(name: string, labels: Record<string, string> = {}) {
  return { apiVersion: "v1", kind: "Namespace", metadata: { name, labels } };
}

/** A NetworkAttachmentDefinition with the given CNI type. */
export function nad(ns: string, name: string, type: string) {
  return {
    apiVersion: "k8s.cni.cncf.io/v1",
    kind: "NetworkAttachmentDefinition",
    metadata: { name, namespace: ns },
    spec: { config: JSON.stringify({ cniVersion: "0.4.0", name, type }) },
  };
}

/** A network-status annotation value for one secondary interface. */
export function networkStatus(network: string, ip: string, pci: string): string {
  return JSON.stringify([
    { name: "default/pod-net", interface: "eth0", ips: ["192.168.0.9"], default: true },
    {
      name: network,
      interface: "net1",
      ips: [ip],
      mac: "02:00:00:00:00:01",
      "device-info": { type: "pci", version: "1.1.0", pci: { "pci-address": pci } },
    },
  ]);
}

/** A Pod bound to `node`, optionally with a network-status annotation. */
export function pod(
  ns: string,
  name: string,
  node: string,
  labels: Record<string, string>,
  status?: { network: string; ip: string; pci: string },
) {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name,
      namespace: ns,
      labels,
      annotations: status
        ? {
          "k8s.v1.cni.cncf.io/network-status": networkStatus(status.network, status.ip, status.pci),
        }
        : {},
    },
    spec: {
      nodeName: node,
      containers: [{ name: "c", image: "busybox", ports: [{ name: "http", containerPort: 8080 }] }],
    },
  };
}

/** A MultiNetworkPolicy (v1beta2). */
export function policy(ns: string, name: string, networks: string, spec: Record<string, unknown>) {
  return {
    apiVersion: "k8s.cni.cncf.io/v1beta2",
    kind: "MultiNetworkPolicy",
    metadata: { name, namespace: ns, annotations: { "k8s.v1.cni.cncf.io/policy-for": networks } },
    spec,
  };
}
