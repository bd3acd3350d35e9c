/**
 * Shared pieces of the agent's integration tests: whether the control plane
 * can run, a recording sink, the daemon's options and the Started Event
 * check. kubectl, apply, the CRDs and polling are in
 * ../support/controlplane.ts, the manifest builders in
 * ../support/manifests.ts. The tests themselves use the real control plane
 * of ./controlplane/.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { AgentOptions } from "../../src/agent/options.ts";
import { parseAgentFlags } from "../../src/cli/flags.ts";
import type { RulesChange, RulesResult, RulesSink } from "../../src/agent/sink.ts";
import type { InterfaceRules } from "../../src/policy/model.ts";
import { kubectl } from "../support/controlplane.ts";
import { apiPod } from "../support/manifests.ts";
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

/** The daemon's options from command-line flags, as main.ts would parse them. */
export function agentOptions(kubeconfig: string, node: string, ...extra: string[]): AgentOptions {
  return parseAgentFlags([
    "--kubeconfig",
    kubeconfig,
    "--hostname-override",
    node,
    "--health-address",
    "127.0.0.1:0",
    // Another loopback address: "127.0.0.1:0" twice would mean one shared listener.
    "--metrics-address",
    "127.0.0.2:0",
    "--pod-resources-socket=",
    "--min-sync-interval",
    "200ms",
    ...extra,
  ]);
}

/** The two local pods both agent tests start from: app/web and app/db on `app/net1`. */
export function webAndDb(node: string) {
  return [
    apiPod("app", "web", node, { app: "web" }, {
      network: "app/net1",
      ip: "10.1.0.10",
      pci: "0000:3b:02.1",
    }),
    apiPod("app", "db", node, { app: "db" }, {
      network: "app/net1",
      ip: "10.1.0.11",
      pci: "0000:3b:02.2",
    }),
  ];
}
