/**
 * Builders for Kubernetes manifests used by tests, and a packet verdict
 * helper that answers "would this flow pass?" from a rule model.
 */
import { parseObjects } from "../../src/cluster/parse.ts";
import { stateFromObjects } from "../../src/cluster/manifests.ts";
import type { ClusterState, ObjectError, Protocol } from "../../src/cluster/types.ts";
import { parseCidr, parseIp } from "../../src/net/ip.ts";
import type { DirectionRules, InterfaceRules, NodeRules } from "../../src/policy/model.ts";
import { computeNodeRules } from "../../src/policy/engine.ts";

/** A raw manifest. */
export type Manifest = Record<string, unknown>;

/** A Namespace manifest. */
export function ns(name: string, labels: Record<string, string> = {}): Manifest {
  return { apiVersion: "v1", kind: "Namespace", metadata: { name, labels } };
}

/** A NetworkAttachmentDefinition manifest. */
export function nad(namespace: string, name: string, type = "accelerated-bridge"): Manifest {
  return {
    apiVersion: "k8s.cni.cncf.io/v1",
    kind: "NetworkAttachmentDefinition",
    metadata: { name, namespace },
    spec: { config: JSON.stringify({ cniVersion: "0.4.0", name, type }) },
  };
}

/** Options for {@link pod}. */
export interface PodSpec {
  labels?: Record<string, string>;
  node?: string;
  /** network (`ns/name`) → addresses on it. */
  nets?: Record<string, string | string[]>;
  ports?: { name: string; containerPort: number; protocol?: string }[];
  phase?: string;
  hostNetwork?: boolean;
}

/** A PCI address derived from the pod and network, stable across calls. */
function pciFor(key: string): string {
  let hash = 2166136261;
  for (const ch of key) hash = Math.imul(hash ^ ch.charCodeAt(0), 16777619) >>> 0;
  const hex = (n: number) => n.toString(16).padStart(2, "0");
  return `0000:${hex((hash >>> 8) & 0xff)}:${hex((hash >>> 3) & 0x1f)}.${hash & 7}`;
}

/** A Pod manifest with a Multus network-status annotation. */
export function pod(namespace: string, name: string, spec: PodSpec = {}): Manifest {
  const status = [{ name: "cbr0", interface: "eth0", ips: ["10.244.0.1"], default: true }];
  let i = 1;
  for (const [network, ips] of Object.entries(spec.nets ?? {})) {
    status.push(
      {
        name: network,
        interface: `net${i++}`,
        ips: Array.isArray(ips) ? ips : [ips],
        "device-info": {
          type: "pci",
          pci: { "pci-address": pciFor(`${namespace}/${name}/${network}`) },
        },
      } as unknown as typeof status[number],
    );
  }
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name,
      namespace,
      uid: `uid-${namespace}-${name}`,
      labels: spec.labels ?? {},
      annotations: { "k8s.v1.cni.cncf.io/network-status": JSON.stringify(status) },
    },
    spec: {
      nodeName: spec.node ?? "node-a",
      hostNetwork: spec.hostNetwork ?? false,
      containers: [{ name: "c", image: "x", ports: spec.ports ?? [] }],
    },
    status: { phase: spec.phase ?? "Running" },
  };
}

/** A MultiNetworkPolicy manifest; `policyFor` is the annotation's text. */
export function mnp(
  namespace: string,
  name: string,
  policyFor: string,
  spec: Record<string, unknown>,
): Manifest {
  return {
    apiVersion: "k8s.cni.cncf.io/v1beta2",
    kind: "MultiNetworkPolicy",
    metadata: { name, namespace, annotations: { "k8s.v1.cni.cncf.io/policy-for": policyFor } },
    spec: { podSelector: {}, ...spec },
  };
}

/** Parses manifests into a snapshot, returning the parse errors too. */
export function cluster(manifests: Manifest[]): { state: ClusterState; errors: ObjectError[] } {
  const objects = [];
  const errors: ObjectError[] = [];
  for (const manifest of manifests) {
    const parsed = parseObjects(manifest);
    objects.push(...parsed.objects);
    errors.push(...parsed.errors);
  }
  return { state: stateFromObjects(objects), errors };
}

/** Runs the engine for node-a with the default plugin list. */
export function render(
  manifests: Manifest[],
  node = "node-a",
): NodeRules & { parseErrors: ObjectError[] } {
  const { state, errors } = cluster(manifests);
  const result = computeNodeRules(state, { node, networkPlugins: ["accelerated-bridge"] });
  return { ...result, parseErrors: errors };
}

/** Finds one interface's rules by pod (`ns/name`) and network (`ns/name`). */
export function iface(result: NodeRules, podRef: string, network: string): InterfaceRules {
  const found = result.interfaces.find((i) =>
    `${i.pod.namespace}/${i.pod.name}` === podRef && i.network === network
  );
  if (!found) throw new Error(`no interface for ${podRef} on ${network}`);
  return found;
}

/** A flow as a probe describes it: the remote address, protocol and port. */
export interface Flow {
  peer: string;
  protocol: Protocol | "ICMP";
  port?: number;
}

/** Whether the direction's rules let a new connection of `flow` through. */
export function allows(rules: DirectionRules, flow: Flow): boolean {
  if (!rules.isolated) return true;
  const ip = parseIp(flow.peer);
  if (!ip) throw new Error(`bad probe address ${flow.peer}`);
  return rules.allow.some((entry) => {
    const inSet = entry.cidrs.some((text) => {
      const cidr = parseCidr(text)!;
      if (cidr.family !== ip.family) return false;
      const bits = BigInt((cidr.family === 4 ? 32 : 128) - cidr.prefix);
      return (ip.value >> bits) === (cidr.base >> bits);
    });
    if (!inSet) return false;
    if (entry.protocol === "any") return true;
    if (entry.protocol !== flow.protocol) return false;
    return entry.ports.some((r) =>
      flow.port !== undefined && flow.port >= r.first && flow.port <= r.last
    );
  });
}
