/**
 * Kubernetes Events the agent records: `Normal Started` on its Node, a
 * `Warning` on a pod whose rules could not be applied, saying why (once per
 * distinct reason, until the pod's rules apply again), and a `Warning` on a
 * MultiNetworkPolicy with malformed parts, naming the fields (once per
 * version of the policy). Recording is best-effort and never blocks or fails
 * a sync.
 */
import * as k8s from "@kubernetes/client-node";
import { log } from "../log/klog.ts";
import { escapeControls } from "../log/quote.ts";
import type { AgentMetrics } from "./metrics.ts";

/** The component name events are reported under. */
export const COMPONENT = "multi-networkpolicy-tc";

/** The object an event is about. */
export interface EventTarget {
  kind: "Node" | "Pod" | "MultiNetworkPolicy";
  /** The object's API version; `v1` when not given. */
  apiVersion?: string;
  namespace: string;
  name: string;
  uid: string;
}

/** Records events; {@link flush} waits for those in flight. */
export class EventRecorder {
  readonly #api: k8s.CoreV1Api;
  readonly #pending = new Set<Promise<void>>();
  /** Per pod (`namespace/name`), the warning message last recorded. */
  readonly #warned = new Map<string, string>();
  #failures = 0;

  constructor(
    kc: k8s.KubeConfig,
    private readonly node: string,
    private readonly metrics: AgentMetrics,
  ) {
    this.#api = kc.makeApiClient(k8s.CoreV1Api);
  }

  /** `Normal Started` on the Node. Node events live in `default`, as the kubelet's do. */
  started(message: string): void {
    this.#record(
      { kind: "Node", namespace: "default", name: this.node, uid: this.node },
      "Normal",
      "Started",
      message,
    );
  }

  /** A Warning on a pod, unless the same message was already recorded for it. */
  podWarning(
    pod: { namespace: string; name: string; uid: string },
    reason: string,
    message: string,
  ) {
    const key = `${pod.namespace}/${pod.name}`;
    if (this.#warned.get(key) === message) return;
    this.#warned.set(key, message);
    this.#record({ kind: "Pod", ...pod }, "Warning", reason, message);
  }

  /** A Warning on a MultiNetworkPolicy (`namespace/name`) whose parts could not be used. */
  policyWarning(
    policy: { key: string; apiVersion: string; uid: string },
    reason: string,
    message: string,
  ): void {
    const [namespace, name] = policy.key.split("/");
    this.#record(
      {
        kind: "MultiNetworkPolicy",
        apiVersion: policy.apiVersion,
        namespace,
        name,
        uid: policy.uid,
      },
      "Warning",
      reason,
      message,
    );
  }

  /** A Warning on a pod, recorded every time (the caller limits the rate). */
  podNotice(
    pod: { namespace: string; name: string; uid: string },
    reason: string,
    message: string,
  ) {
    this.#record({ kind: "Pod", ...pod }, "Warning", reason, message);
  }

  /** Forgets a pod's last warning (its rules applied, or it is gone). */
  podRecovered(namespace: string, name: string): void {
    this.#warned.delete(`${namespace}/${name}`);
  }

  /** Waits (at most `timeoutMs`) for events in flight. */
  async flush(timeoutMs = 2000): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      Promise.allSettled([...this.#pending]),
      new Promise((resolve) => timer = setTimeout(resolve, timeoutMs)),
    ]);
    clearTimeout(timer);
  }

  #record(target: EventTarget, type: "Normal" | "Warning", reason: string, message: string) {
    const now = new Date();
    const body: k8s.CoreV1Event = {
      metadata: {
        name: `${target.name}.${now.getTime().toString(16)}${
          Math.floor(Math.random() * 0x10000).toString(16)
        }`,
        namespace: target.namespace,
      },
      involvedObject: {
        kind: target.kind,
        apiVersion: target.apiVersion || "v1",
        name: target.name,
        namespace: target.kind === "Node" ? undefined : target.namespace,
        uid: target.uid || undefined,
      },
      type,
      reason,
      message: escapeControls(message).slice(0, 1024),
      source: { component: COMPONENT, host: this.node },
      reportingComponent: COMPONENT,
      reportingInstance: this.node,
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
    };
    const promise = this.#api.createNamespacedEvent({ namespace: target.namespace, body }).then(
      () => {
        this.#failures = 0;
        log.v(3, "event recorded", { object: `${target.kind} ${target.name}`, reason });
      },
      (error) => {
        this.metrics.errors.add(1, { kind: "event" });
        if (this.#failures++ === 0) {
          log.warning("cannot record event (logged once until one succeeds)", {
            object: `${target.kind} ${target.namespace}/${target.name}`,
            reason,
            err: error instanceof Error ? error.message : String(error),
          });
        }
      },
    ).finally(() => this.#pending.delete(promise));
    this.#pending.add(promise);
  }
}
