/**
 * Which pod interfaces on this node are enforced, and on which VF. The pod's
 * `network-status` annotation names interfaces and addresses, but pods can
 * edit their own annotations: which VF (PCI address) a pod owns is the
 * kubelet's word (its PodResources API, read by src/sriov/pod_resources.ts),
 * when the agent has it. A claim the kubelet contradicts is ignored; a VF the
 * kubelet allocated on a policed network is enforced whatever the annotation
 * says; a PCI address claimed twice never reduces enforcement: its VF is
 * enforced as deny-all both ways. Pure.
 */
import {
  type ClusterState,
  type NetworkAttachmentDefinition,
  type NetworkStatus,
  type ObjectError,
  type Pod,
  podKey,
} from "../cluster/types.ts";
import { sameNode } from "../cluster/node_name.ts";

/**
 * VFs the kubelet allocated on this node: per pod (`namespace/name`), per
 * device-plugin resource, PCI addresses (lower case).
 */
export type DeviceAllocations = ReadonlyMap<string, ReadonlyMap<string, readonly string[]>>;

/** A text equal for equal allocations, to tell whether they changed. */
export function allocationsText(devices: DeviceAllocations): string {
  return JSON.stringify([...devices].map(([pod, byResource]) => [pod, [...byResource]]));
}

/** A pod interface the agent enforces, on one VF. */
export interface LocalInterface {
  pod: Pod;
  /** `namespace/name` of its NetworkAttachmentDefinition. */
  network: string;
  nad: NetworkAttachmentDefinition;
  /** The interface name in the pod; "" when no annotation entry names it. */
  interfaceName: string;
  /** The VF's PCI address. */
  pciAddress: string;
  /** The pod's addresses on the network, from its annotation. */
  ips: string[];
  /** Set when the agent cannot tell which rules apply: enforced as deny-all both ways. */
  denyAll?: string;
}

/** What decides which interfaces are enforced. */
export interface LocalOptions {
  /** This node's name; a pod is local when its `spec.nodeName` is the same node ({@link sameNode}). */
  node: string;
  /** CNI plugin types whose networks are policed. */
  networkPlugins: string[];
  /** The kubelet's allocations; null or absent: the annotation alone is believed. */
  devices?: DeviceAllocations | null;
}

/** Whether a pod takes part in the network: not hostNetwork, not finished. */
export function isActivePod(pod: Pod): boolean {
  return !pod.hostNetwork && pod.phase !== "Succeeded" && pod.phase !== "Failed";
}

function podError(pod: Pod, field: string, message: string, reason?: string): ObjectError {
  return {
    object: `Pod ${podKey(pod)}`,
    ref: { kind: "Pod", namespace: pod.namespace, name: pod.name, uid: pod.uid },
    field,
    message,
    ...(reason ? { reason } : {}),
  };
}

/** Every local interface to enforce, and the problems found deciding them. */
export function localInterfaces(
  state: ClusterState,
  options: LocalOptions,
): { interfaces: LocalInterface[]; errors: ObjectError[] } {
  const plugins = new Set(options.networkPlugins);
  const policed = new Map<string, NetworkAttachmentDefinition>();
  for (const nad of state.networks) {
    if (plugins.has(nad.pluginType)) policed.set(`${nad.namespace}/${nad.name}`, nad);
  }
  const devices = options.devices ?? null;
  /** PCI address → owning pod and resource, as the kubelet says. */
  const owners = new Map<string, { pod: string; resource: string }>();
  for (const [pod, byResource] of devices ?? []) {
    for (const [resource, pcis] of byResource) {
      for (const pci of pcis) owners.set(pci, { pod, resource });
    }
  }
  const errors: ObjectError[] = [];
  const claims: LocalInterface[] = [];
  const localPods = state.pods.filter((pod) =>
    sameNode(pod.nodeName, options.node) && isActivePod(pod)
  );
  for (const pod of localPods) {
    const accepted = new Set<string>();
    for (const status of pod.networkStatus) {
      const nad = policed.get(status.network);
      if (!nad) continue;
      const field = `network-status[${status.network}].device-info.pci.pci-address`;
      if (!status.pciAddress) {
        if (devices === null) {
          errors.push(podError(pod, field, "missing on a policed network; interface not enforced"));
        }
        continue;
      }
      const owner = owners.get(status.pciAddress);
      if (
        owner &&
        (owner.pod !== podKey(pod) || (nad.resourceName && owner.resource !== nad.resourceName))
      ) {
        errors.push(podError(
          pod,
          field,
          `${status.pciAddress} is not this pod's VF for ${status.network} according to the kubelet ` +
            `(allocated to ${owner.pod} as ${owner.resource}); claim ignored`,
          "VFClaimIgnored",
        ));
        continue;
      }
      accepted.add(status.pciAddress);
      claims.push(fromStatus(pod, nad, status, status.pciAddress));
    }
    for (const [resource, pcis] of devices?.get(podKey(pod)) ?? []) {
      for (const pci of pcis) {
        if (!accepted.has(pci)) claims.push(...unclaimedVf(pod, resource, pci, policed, errors));
      }
    }
  }
  return { interfaces: oneInterfacePerVf(claims, errors), errors };
}

function fromStatus(
  pod: Pod,
  nad: NetworkAttachmentDefinition,
  status: NetworkStatus | undefined,
  pciAddress: string,
): LocalInterface {
  return {
    pod,
    network: `${nad.namespace}/${nad.name}`,
    nad,
    interfaceName: status?.interfaceName ?? "",
    pciAddress,
    ips: status?.ips ?? [],
  };
}

/**
 * A VF the kubelet allocated to the pod that no annotation entry claims: it
 * belongs to the policed network of its resource in the pod's namespace (or
 * one the pod's annotation names); when that is not one network, deny-all.
 */
function unclaimedVf(
  pod: Pod,
  resource: string,
  pci: string,
  policed: Map<string, NetworkAttachmentDefinition>,
  errors: ObjectError[],
): LocalInterface[] {
  const named = new Set(pod.networkStatus.map((status) => status.network));
  const candidates = [...policed.values()].filter((nad) =>
    nad.resourceName === resource &&
    (nad.namespace === pod.namespace || named.has(`${nad.namespace}/${nad.name}`))
  ).sort((a, b) => (`${a.namespace}/${a.name}` < `${b.namespace}/${b.name}` ? -1 : 1));
  if (candidates.length === 0) return [];
  const status = pod.networkStatus.find((s) =>
    s.network === `${candidates[0].namespace}/${candidates[0].name}`
  );
  const local = fromStatus(pod, candidates[0], status, pci);
  const field = `network-status[${local.network}]`;
  if (candidates.length === 1) {
    errors.push(podError(
      pod,
      field,
      `no entry claims the pod's VF ${pci} (${resource}); enforced as the kubelet allocated it`,
      "VFClaimMissing",
    ));
    return [local];
  }
  const names = candidates.map((nad) => `${nad.namespace}/${nad.name}`).join(", ");
  errors.push(podError(
    pod,
    field,
    `no entry claims the pod's VF ${pci} (${resource}) and it could be on ${names}; ` +
      "enforced as deny-all both ways",
    "VFClaimMissing",
  ));
  return [{ ...local, denyAll: `VF ${pci} could be on ${names}` }];
}

/**
 * One interface per VF: an entry repeated by one pod counts once; a VF
 * claimed for different pods or networks is enforced as deny-all both ways,
 * for the first claimant in order, so that no claim can take it out of
 * enforcement.
 */
function oneInterfacePerVf(claims: LocalInterface[], errors: ObjectError[]): LocalInterface[] {
  const byPci = new Map<string, LocalInterface[]>();
  for (const claim of claims) {
    const list = byPci.get(claim.pciAddress) ?? [];
    list.push(claim);
    byPci.set(claim.pciAddress, list);
  }
  const out: LocalInterface[] = [];
  for (const [pci, list] of byPci) {
    const owners = [...new Set(list.map((c) => `${podKey(c.pod)} on ${c.network}`))].sort();
    const first = list.slice().sort((a, b) =>
      podKey(a.pod) < podKey(b.pod) ? -1 : podKey(a.pod) > podKey(b.pod) ? 1 : 0
    )[0];
    if (owners.length === 1) {
      if (list.length > 1) {
        errors.push(podError(
          first.pod,
          `network-status[${first.network}]`,
          `${list.length} entries claim VF ${pci}; enforced once`,
        ));
      }
      out.push(first);
      continue;
    }
    for (const claim of list) {
      errors.push(podError(
        claim.pod,
        `network-status[${claim.network}].device-info.pci.pci-address`,
        `VF ${pci} is claimed by ${owners.join(" and ")}; it is enforced as deny-all both ways`,
        "VFClaimConflict",
      ));
    }
    out.push({ ...first, denyAll: `VF ${pci} is claimed by ${owners.join(" and ")}` });
  }
  return out;
}
