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
import { exact } from "../cluster/compact.ts";
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
  /** Members a pod selector selects, and their addresses, by selector (JSON). */
  selected?: Map<string, { members: Member[]; addresses: AddressSet }>;
}

/** Most selectors' results a group keeps; beyond it, it starts again (policies were rewritten). */
const SELECTED_PER_GROUP = 64;

/** The members `selector` selects in `group`, with their addresses; kept with the group. */
function selectedMembers(
  group: NamespaceMembers,
  selector: LabelSelector,
): { members: Member[]; addresses: AddressSet } {
  const key = JSON.stringify(selector);
  group.selected ??= new Map();
  let entry = group.selected.get(key);
  if (!entry) {
    const members = group.members.filter((m) => selectorMatches(selector, m.pod.labels));
    entry = { members, addresses: addressesOf(group, new Set(members)) };
    if (group.selected.size >= SELECTED_PER_GROUP) group.selected.clear();
    group.selected.set(key, entry);
  }
  return entry;
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
    const addresses = setFromSortedHosts(v4, v6);
    parsed.push({
      network: status.network,
      v4: exact(v4),
      v6: exact(v6),
      addresses: { v4: exact(addresses.v4), v6: exact(addresses.v6) },
    });
  }
  parsed = exact(parsed);
  parsedByStatus.set(pod.networkStatus, parsed);
  return parsed;
}

/** One namespace's active pods, grouped by network, with their addresses sorted. */
function groupByNetwork(pods: readonly Pod[]): Map<string, NamespaceMembers> {
  const groups = new Map<string, NamespaceMembers>();
  for (const pod of pods) {
    for (const { network, v4, v6, addresses } of parsedNetworks(pod)) {
      let group = groups.get(network);
      if (!group) {
        group = { members: [], v4: [], v6: [] };
        groups.set(network, group);
      }
      const member: Member = { pod, addresses };
      group.members.push(member);
      for (const value of v4) group.v4.push({ value, member });
      for (const value of v6) group.v6.push({ value, member });
    }
  }
  for (const group of groups.values()) {
    group.v4.sort(byValue);
    group.v6.sort(byValue);
  }
  return groups;
}

/**
 * Each namespace's members by network, kept from one snapshot to the next:
 * a namespace whose active pods are the very objects they were (parsed pods
 * are never changed; a changed pod is a new object) keeps its groups and the
 * address sets computed from them, so a sync regroups only the namespaces a
 * change touched instead of the whole cluster.
 */
export class MembershipCache {
  #byNamespace = new Map<string, { pods: Pod[]; groups: Map<string, NamespaceMembers> }>();

  /** The groups of every namespace in `activeByNamespace`; forgets namespaces not in it. */
  update(activeByNamespace: Map<string, Pod[]>): Map<string, Map<string, NamespaceMembers>> {
    const next = new Map<string, { pods: Pod[]; groups: Map<string, NamespaceMembers> }>();
    const out = new Map<string, Map<string, NamespaceMembers>>();
    for (const [namespace, pods] of activeByNamespace) {
      const last = this.#byNamespace.get(namespace);
      const entry = last && sameItems(last.pods, pods)
        ? last
        : { pods, groups: groupByNetwork(pods) };
      next.set(namespace, entry);
      out.set(namespace, entry.groups);
    }
    this.#byNamespace = next;
    return out;
  }
}

function sameItems<T>(a: readonly T[], b: readonly T[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
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

  /** `membership`: groups kept from earlier snapshots (the agent's; one-shot callers pass none). */
  constructor(state: ClusterState, membership: MembershipCache = new MembershipCache()) {
    for (const ns of state.namespaces) this.namespaceLabels.set(ns.name, ns.labels);
    for (const nad of state.networks) this.networks.set(`${nad.namespace}/${nad.name}`, nad);
    for (const policy of state.policies) {
      const list = this.policiesByNamespace.get(policy.namespace) ?? [];
      list.push(policy);
      this.policiesByNamespace.set(policy.namespace, list);
    }
    const activeByNamespace = new Map<string, Pod[]>();
    for (const pod of state.pods) {
      if (!this.namespaceLabels.has(pod.namespace)) {
        this.namespaceLabels.set(pod.namespace, { [NAMESPACE_NAME_LABEL]: pod.namespace });
      }
      if (!isActivePod(pod)) continue;
      const pods = activeByNamespace.get(pod.namespace);
      if (pods) pods.push(pod);
      else activeByNamespace.set(pod.namespace, [pod]);
    }
    const groups = membership.update(activeByNamespace);
    // Networks list their namespaces in the order of each one's first pod there.
    for (const pod of state.pods) {
      if (!isActivePod(pod)) continue;
      for (const { network } of parsedNetworks(pod)) {
        let byNamespace = this.membersByNetwork.get(network);
        if (!byNamespace) {
          byNamespace = new Map();
          this.membersByNetwork.set(network, byNamespace);
        }
        if (!byNamespace.has(pod.namespace)) {
          byNamespace.set(pod.namespace, groups.get(pod.namespace)!.get(network)!);
        }
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
      const selected = selectedMembers(group, peer.podSelector);
      for (const member of selected.members) pods.push(member);
      sets.push(selected.addresses);
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
