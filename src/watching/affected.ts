/**
 * Which local pods a change can affect: the pure rule that lets the agent
 * re-render only those pods' interfaces. It errs on the side of too many
 * (the sync loop still sends only interfaces whose rules really changed), and
 * a periodic full resync backs it up.
 */
import {
  type Labels,
  type MultiNetworkPolicy,
  NAMESPACE_NAME_LABEL,
  type Pod,
  podKey,
  type PolicyRule,
} from "../cluster/types.ts";
import { sameNode } from "../cluster/node_name.ts";
import { selectorMatches } from "../policy/selectors.ts";
import type { Change } from "./store.ts";

/** What the affected-set computation reads of the current state. */
export interface AffectedContext {
  /** This node's name; pods are on it as {@link sameNode} says. */
  node: string;
  /** The pods on this node, as currently known. */
  localPods: readonly Pod[];
  /** Every policy, as currently known. */
  policies: readonly MultiNetworkPolicy[];
  /** A namespace's labels (with the name label), or null when unknown. */
  namespaceLabels(name: string): Labels | null;
}

function defaultLabels(namespace: string): Labels {
  return { [NAMESPACE_NAME_LABEL]: namespace };
}

/** The local pods a policy selects as targets. */
export function policyTargets(policy: MultiNetworkPolicy, ctx: AffectedContext): string[] {
  return ctx.localPods
    .filter((pod) =>
      pod.namespace === policy.namespace && selectorMatches(policy.podSelector, pod.labels)
    )
    .map(podKey);
}

function rules(policy: MultiNetworkPolicy): PolicyRule[] {
  return [...policy.ingress, ...policy.egress].filter((rule) => !rule.invalid);
}

/** Whether `pod`, on one of the policy's networks, could be a peer of one of its rules. */
function policyMayPeer(policy: MultiNetworkPolicy, pod: Pod, namespaceLabels: Labels): boolean {
  const onNetwork = pod.networkStatus.some((s) =>
    s.ips.length > 0 && policy.policyFor.includes(s.network)
  );
  if (!onNetwork) return false;
  return policy.ingress.some((rule) =>
    !rule.invalid && ruleMayPeer(policy, rule, false, pod, namespaceLabels)
  ) ||
    policy.egress.some((rule) =>
      !rule.invalid && ruleMayPeer(policy, rule, true, pod, namespaceLabels)
    );
}

/** What of a pod its peers' rules can see; null when it contributes nothing as a peer. */
function peerView(pod: Pod | null): string | null {
  if (!pod || pod.hostNetwork || pod.phase === "Succeeded" || pod.phase === "Failed") return null;
  const statuses = pod.networkStatus.filter((s) => s.ips.length > 0)
    .map((s) => [s.network, s.ips]);
  if (statuses.length === 0) return null;
  return JSON.stringify([pod.labels, statuses, pod.containerPorts]);
}

/**
 * Whether some peer of the rule, as seen from `policy`, could select `pod`. A rule without
 * peers allows every address; it depends on pods only through named ports on egress (resolved
 * from each peer pod).
 */
function ruleMayPeer(
  policy: MultiNetworkPolicy,
  rule: PolicyRule,
  egress: boolean,
  pod: Pod,
  namespaceLabels: Labels,
): boolean {
  if (rule.peers.length === 0) {
    return egress && rule.ports.some((port) => port.port?.kind === "name");
  }
  return rule.peers.some((peer) => {
    if (peer.kind === "ipBlock") return false;
    const namespaceOk = peer.namespaceSelector
      ? selectorMatches(peer.namespaceSelector, namespaceLabels)
      : pod.namespace === policy.namespace;
    return namespaceOk && (!peer.podSelector || selectorMatches(peer.podSelector, pod.labels));
  });
}

function podChange(old: Pod | null, now: Pod | null, ctx: AffectedContext, out: Set<string>) {
  for (const pod of [old, now]) if (pod && sameNode(pod.nodeName, ctx.node)) out.add(podKey(pod));
  if (peerView(old) === peerView(now)) return;
  const contributors = [old, now].filter((pod): pod is Pod => peerView(pod) !== null);
  for (const policy of ctx.policies) {
    const hit = contributors.some((pod) =>
      policyMayPeer(
        policy,
        pod,
        ctx.namespaceLabels(pod.namespace) ?? defaultLabels(pod.namespace),
      )
    );
    if (hit) { for (const key of policyTargets(policy, ctx)) out.add(key); }
  }
}

function namespaceChange(
  name: string,
  old: Labels | null,
  now: Labels | null,
  ctx: AffectedContext,
  out: Set<string>,
) {
  const before = old ?? defaultLabels(name);
  const after = now ?? defaultLabels(name);
  for (const policy of ctx.policies) {
    const hit = rules(policy).some((rule) =>
      rule.peers.some((peer) =>
        peer.kind === "selector" && peer.namespaceSelector !== undefined &&
        selectorMatches(peer.namespaceSelector, before) !==
          selectorMatches(peer.namespaceSelector, after)
      )
    );
    if (hit) { for (const key of policyTargets(policy, ctx)) out.add(key); }
  }
}

/** The keys (`namespace/name`) of the local pods whose interfaces `change` may affect. */
export function affectedLocalPods(change: Change, ctx: AffectedContext): Set<string> {
  const out = new Set<string>();
  switch (change.kind) {
    case "Pod":
      podChange(change.old, change.new, ctx, out);
      break;
    case "Namespace": {
      const name = (change.new ?? change.old)?.name ?? "";
      namespaceChange(name, change.old?.labels ?? null, change.new?.labels ?? null, ctx, out);
      break;
    }
    case "MultiNetworkPolicy":
      for (const policy of [change.old, change.new]) {
        if (policy) { for (const key of policyTargets(policy, ctx)) out.add(key); }
      }
      break;
    case "NetworkAttachmentDefinition": {
      // Whether a network is policed, and which VFs (by device resource) belong to it, can
      // concern any local pod: a VF the kubelet allocated is enforced even when the pod's
      // annotation does not mention its network.
      const same = change.old?.pluginType === change.new?.pluginType &&
        change.old?.resourceName === change.new?.resourceName;
      if (!same) { for (const pod of ctx.localPods) out.add(podKey(pod)); }
      break;
    }
  }
  return out;
}
