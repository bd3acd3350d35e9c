/**
 * MultiNetworkPolicy semantics as a pure function: cluster state in, the
 * rules for every policed interface on one node out. Follows Kubernetes
 * NetworkPolicy to the letter, per secondary network. Which policies apply
 * and isolate (here), what a rule grants (./grants.ts) and how peers resolve
 * (./cluster_index.ts) are shared with `explain` (./explain.ts).
 */
import {
  type ClusterState,
  type Direction,
  type MultiNetworkPolicy,
  type ObjectError,
  type Pod,
  podKey,
} from "../cluster/types.ts";
import type { DirectionRules, InterfaceRules, NodeRules } from "./model.ts";
import { type Grant, normaliseGrants } from "./normalise.ts";
import { selectorMatches } from "./selectors.ts";
import { localInterfaces, type LocalOptions } from "../interfaces/local.ts";
import { ClusterIndex, type MembershipCache, policyId } from "./cluster_index.ts";
import { ruleGrants } from "./grants.ts";

/**
 * What the engine needs besides cluster state: the node, the policed plugin
 * types and, when the agent has them, the kubelet's VF allocations; and for
 * the agent's incremental syncs, which local pods to render and the groups
 * kept from its last sync.
 */
export interface EngineOptions extends LocalOptions {
  /** Local pods (`namespace/name`) whose interfaces are wanted; absent: every one. */
  only?: ReadonlySet<string>;
  /** Namespaces' members kept between calls (absent: grouped afresh). */
  membership?: MembershipCache;
}

/**
 * The policies that apply to a pod's interface on a network: those of the
 * pod's namespace that name the network in `policy-for` and whose
 * `podSelector` selects the pod.
 */
export function applicablePolicies(
  index: ClusterIndex,
  pod: Pod,
  network: string,
): MultiNetworkPolicy[] {
  const policies = index.policiesByNamespace.get(pod.namespace) ?? [];
  return policies.filter((policy) =>
    policy.policyFor.includes(network) && selectorMatches(policy.podSelector, pod.labels)
  );
}

/** The applicable policies that isolate `direction` (their `policyTypes` name it). */
export function isolatingPolicies(
  applicable: MultiNetworkPolicy[],
  direction: Direction,
): MultiNetworkPolicy[] {
  return applicable.filter((policy) => policy.policyTypes.includes(direction));
}

function usesNamedPorts(policies: MultiNetworkPolicy[], direction: Direction): boolean {
  return policies.some((policy) =>
    policy[direction].some((rule) => rule.ports.some((port) => port.port?.kind === "name"))
  );
}

function directionRules(
  index: ClusterIndex,
  applicable: MultiNetworkPolicy[],
  direction: Direction,
  network: string,
  target: Pod,
): DirectionRules {
  const isolating = isolatingPolicies(applicable, direction);
  if (isolating.length === 0) return { isolated: false, policies: [], allow: [] };
  const ids = isolating.map(policyId).sort();
  const targetKey = direction === "ingress" && usesNamedPorts(isolating, direction)
    ? JSON.stringify(target.containerPorts)
    : "";
  const key = `${direction}|${network}|${ids.join(",")}|${targetKey}`;
  const cached = index.directionCache.get(key);
  if (cached) return cached;
  const grants: Grant[] = [];
  for (const policy of isolating) {
    policy[direction].forEach((rule, i) => {
      for (const grant of ruleGrants(index, policy, direction, i, rule, network, target)) {
        grants.push(grant);
      }
    });
  }
  const result: DirectionRules = {
    isolated: true,
    policies: ids,
    allow: normaliseGrants(grants, index.unions),
  };
  index.directionCache.set(key, result);
  return result;
}

/** Computes the rules for every policed interface of pods on `options.node`. */
export function computeNodeRules(state: ClusterState, options: EngineOptions): NodeRules {
  const index = new ClusterIndex(state, options.membership);
  const interfaces: InterfaceRules[] = [];
  const local = localInterfaces(state, options);
  const errors: ObjectError[] = [...local.errors];
  const only = options.only;
  for (const iface of local.interfaces) {
    if (only && !only.has(podKey(iface.pod))) continue;
    const { pod, network } = iface;
    const base = {
      pod: { namespace: pod.namespace, name: pod.name, uid: pod.uid },
      network,
      pluginType: iface.nad.pluginType,
      ...(iface.nad.vlan !== undefined ? { vlan: iface.nad.vlan } : {}),
      ...(iface.nad.trunk ? { trunk: true } : {}),
      interfaceName: iface.interfaceName,
      pciAddress: iface.pciAddress,
      ips: iface.ips,
    };
    if (iface.denyAll !== undefined) {
      const denied: DirectionRules = { isolated: true, policies: [], allow: [] };
      interfaces.push({ ...base, ingress: denied, egress: denied, denyAll: iface.denyAll });
      continue;
    }
    const applicable = applicablePolicies(index, pod, network);
    interfaces.push({
      ...base,
      ingress: directionRules(index, applicable, "ingress", network, pod),
      egress: directionRules(index, applicable, "egress", network, pod),
    });
  }
  const cmp = (x: string, y: string) => (x < y ? -1 : x > y ? 1 : 0);
  interfaces.sort((a, b) =>
    cmp(a.pod.namespace, b.pod.namespace) || cmp(a.pod.name, b.pod.name) ||
    cmp(a.network, b.network) || cmp(a.interfaceName, b.interfaceName)
  );
  return { node: options.node, interfaces, errors };
}
