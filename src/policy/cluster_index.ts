/**
 * Lookups over one cluster snapshot for the policy engine: namespaces by
 * label, each network's members (pods and their addresses there) by
 * namespace, and the peers of a rule resolved to pods and addresses, with
 * caches for the questions a render asks many times.
 */
import {
  type ClusterState,
  type LabelSelector,
  type MultiNetworkPolicy,
  NAMESPACE_NAME_LABEL,
  type NetworkAttachmentDefinition,
  type Pod,
  type PolicyPeer,
  type PolicyRule,
} from "../cluster/types.ts";
import {
  type AddressSet,
  type Cidr,
  difference,
  everything,
  parseCidr,
  parseIp,
  setFromCidrs,
  setFromSortedHosts,
  unionAll,
} from "../net/ip.ts";
import type { DirectionRules } from "./model.ts";
import { type Grant, UnionMemo } from "./normalise.ts";
import { selectorMatches } from "./selectors.ts";
import { isActivePod } from "../interfaces/local.ts";

/** A pod's presence on one network: its addresses there. */
export interface Member {
  pod: Pod;
  addresses: AddressSet;
}

/** The members of one namespace on one network, with their addresses in order. */
export interface NamespaceMembers {
  members: Member[];
  v4: { value: number; member: Member }[];
  v6: { value: bigint; member: Member }[];
  all?: AddressSet;
}

/** `namespace/name` of a policy, as the rule model names it. */
export function policyId(policy: MultiNetworkPolicy): string {
  return `${policy.namespace}/${policy.name}`;
}

/** Resolved peers of one rule on one network. */
export interface ResolvedPeers {
  addresses: AddressSet;
  /** Pods among the peers, for named-port resolution on egress. */
  pods: Member[];
}

const byValue = <T extends number | bigint>(a: { value: T }, b: { value: T }) =>
  a.value < b.value ? -1 : a.value > b.value ? 1 : 0;

/** The addresses of the selected members, built from the namespace's sorted lists. */
function addressesOf(group: NamespaceMembers, selected: Set<Member>): AddressSet {
  return setFromSortedHosts(
    group.v4.filter((e) => selected.has(e.member)).map((e) => e.value),
    group.v6.filter((e) => selected.has(e.member)).map((e) => e.value),
  );
}

/** A pod's addresses on one network, parsed and sorted. */
interface ParsedNetwork {
  network: string;
  v4: readonly number[];
  v6: readonly bigint[];
  addresses: AddressSet;
}

/**
 * Parsed addresses by a pod's network-status list: parsed objects are never
 * changed (a changed pod is a new object), and a snapshot that only moves a
 * pod off the node copies the pod but shares this list, so each sync parses
 * the addresses of changed pods only.
 */
const parsedByStatus = new WeakMap<Pod["networkStatus"], ParsedNetwork[]>();

function parsedNetworks(pod: Pod): ParsedNetwork[] {
  let parsed = parsedByStatus.get(pod.networkStatus);
  if (parsed) return parsed;
  parsed = [];
  for (const status of pod.networkStatus) {
    const v4: number[] = [];
    const v6: bigint[] = [];
    for (const ip of status.ips) {
      const address = parseIp(ip);
      if (address?.family === 4) v4.push(Number(address.value));
      else if (address) v6.push(address.value);
    }
    if (v4.length + v6.length === 0) continue;
    v4.sort((a, b) => a - b);
    v6.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    parsed.push({ network: status.network, v4, v6, addresses: setFromSortedHosts(v4, v6) });
  }
  parsedByStatus.set(pod.networkStatus, parsed);
  return parsed;
}

/** Lookups over one cluster snapshot, with caches for repeated questions. */
export class ClusterIndex {
  readonly namespaceLabels = new Map<string, Readonly<Record<string, string>>>();
  readonly networks = new Map<string, NetworkAttachmentDefinition>();
  readonly policiesByNamespace = new Map<string, MultiNetworkPolicy[]>();
  readonly membersByNetwork = new Map<string, Map<string, NamespaceMembers>>();
  readonly peerCache = new Map<string, ResolvedPeers>();
  readonly grantCache = new Map<string, Grant[]>();
  readonly directionCache = new Map<string, DirectionRules>();
  readonly namespaceCache = new Map<string, string[]>();
  readonly unions = new UnionMemo();

  constructor(state: ClusterState) {
    for (const ns of state.namespaces) this.namespaceLabels.set(ns.name, ns.labels);
    for (const nad of state.networks) this.networks.set(`${nad.namespace}/${nad.name}`, nad);
    for (const policy of state.policies) {
      const list = this.policiesByNamespace.get(policy.namespace) ?? [];
      list.push(policy);
      this.policiesByNamespace.set(policy.namespace, list);
    }
    for (const pod of state.pods) {
      if (!this.namespaceLabels.has(pod.namespace)) {
        this.namespaceLabels.set(pod.namespace, { [NAMESPACE_NAME_LABEL]: pod.namespace });
      }
      if (!isActivePod(pod)) continue;
      for (const { network, v4, v6, addresses } of parsedNetworks(pod)) {
        let byNamespace = this.membersByNetwork.get(network);
        if (!byNamespace) {
          byNamespace = new Map();
          this.membersByNetwork.set(network, byNamespace);
        }
        let group = byNamespace.get(pod.namespace);
        if (!group) {
          group = { members: [], v4: [], v6: [] };
          byNamespace.set(pod.namespace, group);
        }
        const member: Member = { pod, addresses };
        group.members.push(member);
        for (const value of v4) group.v4.push({ value, member });
        for (const value of v6) group.v6.push({ value, member });
      }
    }
    for (const byNamespace of this.membersByNetwork.values()) {
      for (const group of byNamespace.values()) {
        group.v4.sort(byValue);
        group.v6.sort(byValue);
      }
    }
  }

  /** Namespaces whose labels match the selector. */
  selectNamespaces(selector: LabelSelector): string[] {
    const key = JSON.stringify(selector);
    let names = this.namespaceCache.get(key);
    if (!names) {
      names = [...this.namespaceLabels].filter(([, labels]) => selectorMatches(selector, labels))
        .map(([name]) => name);
      this.namespaceCache.set(key, names);
    }
    return names;
  }

  /** All addresses of a namespace's members on a network. */
  namespaceAddresses(group: NamespaceMembers): AddressSet {
    group.all ??= addressesOf(group, new Set(group.members));
    return group.all;
  }

  /** One selector peer's pods and addresses on a network; shared by identical peers. */
  selectorPeer(
    peer: Extract<PolicyPeer, { kind: "selector" }>,
    policyNamespace: string,
    network: string,
  ): ResolvedPeers {
    const namespaces = peer.namespaceSelector
      ? this.selectNamespaces(peer.namespaceSelector)
      : [policyNamespace];
    const key = `${network}|${namespaces.join(",")}|${JSON.stringify(peer.podSelector ?? null)}`;
    const cached = this.peerCache.get(key);
    if (cached) return cached;
    const groups = this.membersByNetwork.get(network);
    const sets: AddressSet[] = [];
    const pods: Member[] = [];
    for (const namespace of namespaces) {
      const group = groups?.get(namespace);
      if (!group) continue;
      if (!peer.podSelector) {
        for (const member of group.members) pods.push(member);
        sets.push(this.namespaceAddresses(group));
        continue;
      }
      const selector = peer.podSelector;
      const selected = new Set(
        group.members.filter((m) => selectorMatches(selector, m.pod.labels)),
      );
      for (const member of selected) pods.push(member);
      sets.push(addressesOf(group, selected));
    }
    const resolved = { addresses: unionAll(sets), pods };
    this.peerCache.set(key, resolved);
    return resolved;
  }

  /** The peers of a rule, on the given network, from the policy's point of view. */
  peers(policy: MultiNetworkPolicy, rule: PolicyRule, network: string): ResolvedPeers {
    if (rule.peers.length === 0) {
      const groups = this.membersByNetwork.get(network)?.values() ?? [];
      return { addresses: everything(), pods: [...groups].flatMap((group) => group.members) };
    }
    const sets: AddressSet[] = [];
    const pods: Member[] = [];
    for (const peer of rule.peers) {
      if (peer.kind === "ipBlock") {
        const cidr = parseCidr(peer.ipBlock.cidr);
        if (!cidr) continue;
        const except = peer.ipBlock.except.map(parseCidr).filter((c): c is Cidr => c !== null);
        sets.push(difference(setFromCidrs([cidr]), setFromCidrs(except)));
        continue;
      }
      const resolved = this.selectorPeer(peer, policy.namespace, network);
      sets.push(resolved.addresses);
      for (const member of resolved.pods) pods.push(member);
    }
    return { addresses: unionAll(sets), pods };
  }
}
