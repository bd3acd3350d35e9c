/**
 * What one policy rule grants a target pod on a network: its peers' addresses
 * × its ports, with named ports resolved per peer pod (egress) or on the
 * target pod (ingress). A rule that failed validation grants nothing.
 */
import type { Direction, MultiNetworkPolicy, Pod, PolicyRule, Protocol } from "../cluster/types.ts";
import { type AddressSet, unionAll } from "../net/ip.ts";
import { type ClusterIndex, policyId } from "./cluster_index.ts";
import { ALL_PORTS } from "./model.ts";
import type { Grant } from "./normalise.ts";

function findNamedPort(pod: Pod, name: string, protocol: Protocol): number | null {
  const found = pod.containerPorts.find((p) => p.name === name && p.protocol === protocol);
  return found ? found.port : null;
}

/**
 * The grants `rule` (of `policy`, in `direction`) makes for `target` on
 * `network`, uncached: for a rule as written, or one reduced to a single peer
 * or port entry to tell which of them allows a packet (`explain`).
 */
export function grantsOf(
  index: ClusterIndex,
  policy: MultiNetworkPolicy,
  direction: Direction,
  rule: PolicyRule,
  network: string,
  target: Pod,
): Grant[] {
  if (rule.invalid) return [];
  const peers = index.peers(policy, rule, network);
  if (rule.ports.length === 0) return [{ addresses: peers.addresses, protocol: "any", ports: [] }];
  const grants: Grant[] = [];
  for (const port of rule.ports) {
    if (!port.port) {
      grants.push({ addresses: peers.addresses, protocol: port.protocol, ports: [ALL_PORTS] });
    } else if (port.port.kind === "number") {
      const last = port.endPort ?? port.port.port;
      grants.push({
        addresses: peers.addresses,
        protocol: port.protocol,
        ports: [{ first: port.port.port, last }],
      });
    } else if (direction === "ingress") {
      const resolved = findNamedPort(target, port.port.name, port.protocol);
      if (resolved !== null) {
        grants.push({
          addresses: peers.addresses,
          protocol: port.protocol,
          ports: [{ first: resolved, last: resolved }],
        });
      }
    } else {
      const byPort = new Map<number, AddressSet[]>();
      for (const member of peers.pods) {
        const resolved = findNamedPort(member.pod, port.port.name, port.protocol);
        if (resolved === null) continue;
        const list = byPort.get(resolved) ?? [];
        list.push(member.addresses);
        byPort.set(resolved, list);
      }
      for (const [resolved, sets] of byPort) {
        grants.push({
          addresses: unionAll(sets),
          protocol: port.protocol,
          ports: [{ first: resolved, last: resolved }],
        });
      }
    }
  }
  return grants;
}

/**
 * The grants of rule number `ruleIndex` of the policy's `direction` for a
 * target pod on a network, cached per rule and network unless they depend on
 * the target pod (named ports on ingress).
 */
export function ruleGrants(
  index: ClusterIndex,
  policy: MultiNetworkPolicy,
  direction: Direction,
  ruleIndex: number,
  rule: PolicyRule,
  network: string,
  target: Pod,
): Grant[] {
  if (rule.invalid) return [];
  const targetDependent = direction === "ingress" &&
    rule.ports.some((p) => p.port?.kind === "name");
  const key = `${policyId(policy)}|${direction}|${ruleIndex}|${network}`;
  const cached = targetDependent ? undefined : index.grantCache.get(key);
  if (cached) return cached;
  const grants = grantsOf(index, policy, direction, rule, network, target);
  // A rule without ports grants one entry, cheap to make again: not cached.
  if (!targetDependent && rule.ports.length > 0) index.grantCache.set(key, grants);
  return grants;
}
