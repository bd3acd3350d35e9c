/**
 * Builders for the Kubernetes manifests tests use: the same builders serve
 * the pure tests (parsed directly), the API server tests (tests/k8s) and the
 * kernel end-to-end tests (through {@link forApi}).
 *
 * @module
 */

/** A raw manifest. */
export type Manifest = Record<string, unknown>;

/** A Namespace manifest. */
export function ns(name: string, labels: Record<string, string> = {}): Manifest {
  return { apiVersion: "v1", kind: "Namespace", metadata: { name, labels } };
}

/** A NetworkAttachmentDefinition manifest with the given CNI type. */
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
  /** network (`ns/name`) → the VF's PCI address (default: derived from pod and network). */
  pci?: Record<string, string>;
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
          pci: { "pci-address": spec.pci?.[network] ?? pciFor(`${namespace}/${name}/${network}`) },
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

/** One secondary interface of an {@link apiPod}: its network, address and VF. */
export interface Attachment {
  network: string;
  ip: string;
  pci: string;
}

/**
 * A Pod as the API server takes it ({@link forApi}), bound to `node`, with a container port
 * `http` (8080) and, when `attachment` is given, one secondary interface `net1`; without it, the
 * pod has no network-status annotation at all.
 */
export function apiPod(
  namespace: string,
  name: string,
  node: string,
  labels: Record<string, string>,
  attachment?: Attachment,
): Manifest {
  const manifest = forApi(
    pod(namespace, name, {
      node,
      labels,
      nets: attachment ? { [attachment.network]: attachment.ip } : {},
      pci: attachment ? { [attachment.network]: attachment.pci } : {},
      ports: [{ name: "http", containerPort: 8080 }],
    }),
  );
  if (!attachment) (manifest.metadata as { annotations: unknown }).annotations = {};
  return manifest;
}

/** A MultiNetworkPolicy (v1beta2) manifest; `policyFor` is the annotation's text. */
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

/**
 * A manifest as the API server takes it: no uid, no status, and a container
 * for pods that have none (no kubelet runs them here).
 */
export function forApi(manifest: unknown): Manifest {
  const copy = structuredClone(manifest) as Manifest & {
    metadata?: Record<string, unknown>;
    spec?: Record<string, unknown>;
  };
  delete copy.metadata?.uid;
  delete copy.status;
  if (copy.kind === "Pod" && !copy.spec?.containers) {
    copy.spec = { ...copy.spec, containers: [{ name: "c", image: "registry.invalid/none" }] };
  }
  return copy;
}
