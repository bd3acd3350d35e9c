/**
 * The scale harness's cluster: namespaces, NetworkAttachmentDefinitions, pods
 * and MultiNetworkPolicies as API manifests, built with the test suite's
 * builders (tests/support/manifests.ts). Pure and deterministic: the same
 * size and seed give the same objects.
 *
 * Shape (10,000 pods; `--pods N` scales every count by N/10,000, with small
 * minimums): 200 namespaces, 20 networks (16 `accelerated-bridge`, policed;
 * 4 `macvlan`, not), 1,000 policies, 200 pods on the agent's node of which 64
 * own a VF on a policed network (two per "local" namespace), the rest spread
 * over 100 other nodes. Every pod of a namespace sits on that namespace's
 * policed network (`index % policed networks`), except the local pods without
 * a VF, which are on a macvlan network.
 *
 * The churn needs changes whose effect on the node can be recognised in what
 * the sink receives (bench/scale/churn.ts), so one policy per local namespace,
 * its "anchor", is the only source of allowed ports at or above
 * {@link ANCHOR_PORT_MIN}; every other policy and container port stays below
 * it. The anchor selects the namespace's VF pods and allows:
 * - rule 0: pods of its namespace labelled `role: client`, on the named port
 *   `http` and one numeric port (which policy edits change);
 * - rule 1: pods with a `tier` of namespaces labelled `zone: blue` whose `env`
 *   is not `dev`, on a port range;
 * - egress: DNS to an ipBlock with an except.
 * Label `role` and namespace label `zone` are read by anchors only, so
 * flipping them changes anchor peers and nothing else. Local namespaces stay
 * `zone: green`.
 */
import { forApi, type Manifest, mnp, nad, ns, pod } from "../../tests/support/manifests.ts";

/** Allowed ports at or above this come from anchor policies only. */
export const ANCHOR_PORT_MIN = 20_000;
/** First port of the anchors' rule-0 ports as loaded; edits use ports from {@link EDIT_PORT_MIN}. */
const ANCHOR_PORT_BASE = 20_000;
/** Ports the churn's policy edits use (one fresh port per edit). */
export const EDIT_PORT_MIN = 21_000;
/** How many distinct ports policy edits cycle through. */
export const EDIT_PORT_COUNT = 18_000;
/** First port of the anchors' rule-1 ranges (10 ports each). */
const ANCHOR_RANGE_BASE = 40_000;
/** The CNI type the agent polices by default. */
const POLICED_TYPE = "accelerated-bridge";

/** How many of each object the harness loads. */
export interface ScaleSize {
  pods: number;
  namespaces: number;
  /** Networks of which {@link policedNetworks} are policed. */
  networks: number;
  policedNetworks: number;
  /** Nodes other than the agent's. */
  nodes: number;
  /** Pods on the agent's node. */
  localPods: number;
  /** Local pods with a VF on a policed network. */
  vfPods: number;
  policies: number;
}

/** The counts for `pods` pods: the 10,000-pod shape scaled by pods/10,000. */
export function scaleSize(pods = 10_000): ScaleSize {
  if (!Number.isInteger(pods) || pods < 100) throw new Error(`--pods must be ≥ 100, got ${pods}`);
  const f = pods / 10_000;
  const at = (n: number, min: number) => Math.max(min, Math.round(n * f));
  const networks = at(20, 3);
  const vfPods = at(64, 2);
  return {
    pods,
    namespaces: at(200, 8),
    networks,
    policedNetworks: networks - Math.max(1, Math.round(networks / 5)),
    nodes: at(100, 2),
    localPods: Math.max(vfPods, at(200, 2)),
    vfPods,
    policies: Math.max(at(1_000, 10), Math.ceil(vfPods / 2) + 1),
  };
}

/** A small seeded PRNG (mulberry32): deterministic, good enough for shapes. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const APPS = [
  "web",
  "api",
  "db",
  "cache",
  "queue",
  "upf",
  "smf",
  "amf",
  "auth",
  "search",
  "batch",
  "gateway",
];
const TIERS = ["frontend", "backend", "data"];
const ENVS = ["prod", "staging", "dev"];
const TEAMS = Array.from({ length: 10 }, (_, i) => `t${i}`);
const CONTAINER_PORTS = [
  { name: "http", containerPort: 8080 },
  { name: "metrics", containerPort: 9100 },
  { name: "grpc", containerPort: 9090 },
];

/** An IPv4 address in 10.64.0.0/10 for pod number `n` (churn pods use the top of the range). */
export function podIp(n: number): string {
  const v = (10 << 24) + (64 << 16) + 1 + n;
  return [v >>> 24, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff].join(".");
}

/** `0000:BB:DD.F` for VF number `n` on bus `bus`. */
export function pciAddress(bus: number, n: number): string {
  const hex = (v: number, w: number) => v.toString(16).padStart(w, "0");
  return `0000:${hex(bus + (n >> 8), 2)}:${hex((n >> 3) & 0x1f, 2)}.${n & 7}`;
}

/** The agent's node. */
export const LOCAL_NODE = "node-000";

/** One of the other nodes (1-based). */
export function remoteNode(i: number): string {
  return `node-${String(i).padStart(3, "0")}`;
}

/** A local namespace: its VF pods and the anchor policy that selects them. */
export interface LocalNamespace {
  name: string;
  /** Its policed network, `namespace/name`. */
  network: string;
  /** The app label of its VF pods (what the anchor selects). */
  app: string;
  /** The `interfaceKey()`s of its VF pods' interfaces. */
  vfKeys: string[];
  anchor: string;
  /** The anchor's rule-0 numeric port as loaded. */
  anchorPort: number;
  /** The first port of the anchor's rule-1 range. */
  anchorRange: number;
  /** The anchor's spec as loaded (edits replace `ingress`). */
  anchorSpec: Record<string, unknown>;
}

/** A remote pod of a local namespace whose `role` label the churn flips. */
export interface FlipPod {
  namespace: string;
  name: string;
  ip: string;
  role: "client" | "idle";
}

/** A namespace whose `zone` label the churn flips. */
export interface FlipNamespace {
  name: string;
  zone: "blue" | "green";
  /** Some addresses of its pods that anchors of the same network see when it is blue. */
  tokenIps: string[];
  /** The VF interfaces whose rules change when it flips. */
  affects: string[];
}

/** What the churn plan needs of the cluster (compact: the manifests can be dropped). */
export interface ChurnBasis {
  seed: number;
  node: string;
  nodes: number;
  localNamespaces: LocalNamespace[];
  flipPods: FlipPod[];
  flipNamespaces: FlipNamespace[];
}

/** The generated cluster. */
export interface ScaleCluster {
  size: ScaleSize;
  node: string;
  namespaces: Manifest[];
  networks: Manifest[];
  pods: Manifest[];
  policies: Manifest[];
  churn: ChurnBasis;
}

/** Picks one element. */
function pick<T>(random: () => number, items: readonly T[]): T {
  return items[Math.floor(random() * items.length)];
}

/** Picks `n` distinct elements, in the order drawn. */
function sample<T>(random: () => number, items: readonly T[], n: number): T[] {
  const copy = items.slice();
  for (let i = copy.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [copy[i], copy[j]] = [copy[j], copy[i]];
  }
  return copy.slice(0, n);
}

const NETWORK_STATUS = "k8s.v1.cni.cncf.io/network-status";

/** A pod manifest whose network-status names no device (no VF: a macvlan interface). */
function withoutDeviceInfo(manifest: Manifest): Manifest {
  const annotations = (manifest.metadata as { annotations: Record<string, string> }).annotations;
  const status = JSON.parse(annotations[NETWORK_STATUS]) as Record<string, unknown>[];
  for (const entry of status) delete entry["device-info"];
  annotations[NETWORK_STATUS] = JSON.stringify(status);
  return manifest;
}

/** One generic (non-anchor) policy, from a realistic mix of shapes. */
function genericPolicy(
  random: () => number,
  namespace: string,
  name: string,
  policyFor: string,
): Manifest {
  const apps = sample(random, APPS, 3);
  const target = random() < 0.5
    ? { matchLabels: { app: apps[0] } }
    : { matchExpressions: [{ key: "app", operator: "In", values: apps.slice(0, 2) }] };
  const roll = random();
  let spec: Record<string, unknown>;
  if (roll < 0.05) {
    spec = { podSelector: {}, policyTypes: ["Ingress"] };
  } else if (roll < 0.25) {
    spec = {
      podSelector: target,
      ingress: [{
        from: [{
          podSelector: {
            matchExpressions: [{ key: "app", operator: "In", values: apps.slice(1) }],
          },
        }],
        ports: [{ protocol: "TCP", port: "http" }],
      }],
    };
  } else if (roll < 0.45) {
    spec = {
      podSelector: target,
      ingress: [{
        from: [{
          namespaceSelector: {
            matchExpressions: [
              { key: "team", operator: "In", values: sample(random, TEAMS, 2) },
              { key: "env", operator: "NotIn", values: ["dev"] },
            ],
          },
          podSelector: { matchLabels: { tier: pick(random, TIERS) } },
        }],
        ports: [{ protocol: "TCP", port: 8080 }, { protocol: "TCP", port: 8443 }],
      }],
    };
  } else if (roll < 0.6) {
    const b = 1 + Math.floor(random() * 200);
    spec = {
      podSelector: target,
      ingress: [{
        from: [
          {
            ipBlock: {
              cidr: "192.168.0.0/16",
              except: [`192.168.${b}.0/24`, `192.168.${(b + 50) % 256}.0/24`],
            },
          },
          { ipBlock: { cidr: "172.16.0.0/12", except: ["172.17.0.0/16"] } },
        ],
        ports: [{ protocol: "TCP", port: 443 }, { protocol: "UDP", port: 5000, endPort: 5100 }],
      }],
    };
  } else if (roll < 0.75) {
    spec = {
      podSelector: target,
      policyTypes: ["Egress"],
      egress: [
        {
          to: [{
            podSelector: {
              matchExpressions: [
                { key: "tier", operator: "In", values: ["data"] },
                { key: "version", operator: "NotIn", values: ["v0"] },
              ],
            },
          }],
          ports: [{ protocol: "TCP", port: "metrics" }, { protocol: "TCP", port: 5432 }],
        },
        {
          to: [{ ipBlock: { cidr: "10.0.0.0/8", except: ["10.64.0.0/10"] } }],
          ports: [{ protocol: "UDP", port: 53 }],
        },
      ],
    };
  } else if (roll < 0.85) {
    spec = {
      podSelector: target,
      ingress: [{
        from: [{
          podSelector: {
            matchExpressions: [
              { key: "app", operator: "Exists" },
              { key: "canary", operator: "DoesNotExist" },
            ],
          },
        }],
        ports: [
          { protocol: "TCP", port: 8000, endPort: 8999 },
          { protocol: "SCTP", port: 3868 },
        ],
      }],
    };
  } else if (roll < 0.95) {
    spec = {
      podSelector: target,
      ingress: [{
        from: [{ namespaceSelector: { matchLabels: { purpose: "monitoring" } } }],
        ports: [{ protocol: "TCP", port: "metrics" }],
      }],
    };
  } else {
    spec = {
      podSelector: target,
      policyTypes: ["Ingress", "Egress"],
      ingress: [{ ports: [{ protocol: "TCP", port: 443 }] }],
      egress: [{
        to: [{
          namespaceSelector: { matchExpressions: [{ key: "team", operator: "Exists" }] },
          podSelector: { matchLabels: { tier: "backend" } },
        }],
        ports: [{ protocol: "TCP", port: "grpc" }],
      }],
    };
  }
  return mnp(namespace, name, policyFor, spec);
}

/** The anchor policy of a local namespace (see the module comment). */
function anchorSpec(app: string, port: number, range: number): Record<string, unknown> {
  return {
    podSelector: { matchExpressions: [{ key: "app", operator: "In", values: [app] }] },
    policyTypes: ["Ingress", "Egress"],
    ingress: anchorIngress(port, range),
    egress: [{
      to: [{ ipBlock: { cidr: "172.16.0.0/12", except: ["172.16.9.0/24"] } }],
      ports: [{ protocol: "UDP", port: 53 }, { protocol: "TCP", port: 53 }],
    }],
  };
}

/** The anchor's ingress rules with rule 0 on `port` and rule 1 on `range`..`range + 9`. */
export function anchorIngress(port: number, range: number): unknown[] {
  return [
    {
      from: [{ podSelector: { matchLabels: { role: "client" } } }],
      ports: [{ protocol: "TCP", port: "http" }, { protocol: "TCP", port }],
    },
    {
      from: [{
        namespaceSelector: {
          matchExpressions: [
            { key: "zone", operator: "In", values: ["blue"] },
            { key: "env", operator: "NotIn", values: ["dev"] },
          ],
        },
        podSelector: { matchExpressions: [{ key: "tier", operator: "Exists" }] },
      }],
      ports: [{ protocol: "TCP", port: range, endPort: range + 9 }],
    },
  ];
}

/** The first port of the anchor's rule-1 range for local namespace number `i`. */
export function anchorRange(i: number): number {
  return ANCHOR_RANGE_BASE + 10 * i;
}

/** Builds the cluster for `size`; deterministic for a given size and seed. */
export function generateCluster(size: ScaleSize, seed = 1): ScaleCluster {
  const random = rng(seed);
  const node = LOCAL_NODE;
  // Namespaces: tenants, plus monitoring and logging namespaces that policies name as peers.
  const special = Math.max(2, Math.round(size.namespaces / 50));
  const tenants = size.namespaces - special;
  const nsNames: string[] = [];
  const nsLabels: Record<string, string>[] = [];
  for (let i = 0; i < tenants; i++) {
    nsNames.push(`tenant-${String(i).padStart(3, "0")}`);
    nsLabels.push({
      team: TEAMS[i % TEAMS.length],
      env: pick(random, ENVS),
      zone: random() < 0.3 ? "blue" : "green",
      purpose: "apps",
    });
  }
  for (let i = 0; i < special; i++) {
    const purpose = i % 2 === 0 ? "monitoring" : "logging";
    nsNames.push(`${purpose}-${i >> 1}`);
    nsLabels.push({ team: "platform", env: "prod", zone: "green", purpose });
  }
  // Networks: the first `policedNetworks` are policed; each lives in a tenant namespace.
  const networkNames: string[] = [];
  const networks: Manifest[] = [];
  for (let j = 0; j < size.networks; j++) {
    const policed = j < size.policedNetworks;
    const namespace = nsNames[j % tenants];
    const name = policed ? `sriov-data-${j}` : `macvlan-mgmt-${j}`;
    networkNames.push(`${namespace}/${name}`);
    networks.push(forApi(nad(namespace, name, policed ? POLICED_TYPE : "macvlan")));
  }
  const macvlans = networkNames.slice(size.policedNetworks);
  const networkOf = (nsIndex: number) => networkNames[nsIndex % size.policedNetworks];

  // Local namespaces: two VF pods each; always zone green (never flipped).
  const localCount = Math.ceil(size.vfPods / 2);
  const localIdx = sample(random, Array.from({ length: tenants }, (_, i) => i), localCount)
    .sort((a, b) => a - b);
  const localSet = new Set(localIdx);
  for (const i of localIdx) nsLabels[i].zone = "green";

  const pods: Manifest[] = [];
  let podNumber = 0;
  const counters = new Map<string, number>();
  const nextName = (namespace: string, app: string) => {
    const n = counters.get(namespace) ?? 0;
    counters.set(namespace, n + 1);
    return `${app}-${String(n).padStart(4, "0")}`;
  };
  const labelsFor = (app: string) => {
    const labels: Record<string, string> = {
      app,
      version: random() < 0.7 ? "v1" : "v2",
      role: random() < 0.4 ? "client" : "idle",
    };
    if (random() < 0.8) labels.tier = pick(random, TIERS);
    if (random() < 0.05) labels.canary = "true";
    return labels;
  };
  const addressesFor = (n: number): string[] =>
    n % 10 === 0 ? [podIp(n), `fd00:64::${(n + 1).toString(16)}`] : [podIp(n)];

  // Local VF pods.
  const localNamespaces: LocalNamespace[] = [];
  const policies: Manifest[] = [];
  let vf = 0;
  localIdx.forEach((nsIndex, k) => {
    const namespace = nsNames[nsIndex];
    const network = networkOf(nsIndex);
    const app = pick(random, APPS);
    const vfKeys: string[] = [];
    for (let v = 0; v < 2 && vf < size.vfPods; v++, vf++) {
      const name = nextName(namespace, app);
      const n = podNumber++;
      pods.push(forApi(pod(namespace, name, {
        node,
        labels: { app, version: "v1", tier: "backend", role: "server" },
        nets: { [network]: addressesFor(n) },
        pci: { [network]: pciAddress(0x3b, vf) },
        ports: CONTAINER_PORTS,
      })));
      vfKeys.push(`${namespace}/${name}/${network}/net1`);
    }
    const anchor = `anchor-${app}`;
    const anchorPort = ANCHOR_PORT_BASE + k;
    const spec = anchorSpec(app, anchorPort, anchorRange(k));
    policies.push(mnp(namespace, anchor, network, spec));
    localNamespaces.push({
      name: namespace,
      network,
      app,
      vfKeys,
      anchor,
      anchorPort,
      anchorRange: anchorRange(k),
      anchorSpec: spec,
    });
  });
  // Local pods without a VF: on a macvlan network, not policed.
  for (let i = size.vfPods; i < size.localPods; i++) {
    const nsIndex = Math.floor(random() * tenants);
    const namespace = nsNames[nsIndex];
    const app = pick(random, APPS);
    pods.push(withoutDeviceInfo(forApi(pod(namespace, nextName(namespace, app), {
      node,
      labels: labelsFor(app),
      nets: { [pick(random, macvlans)]: addressesFor(podNumber++) },
      ports: CONTAINER_PORTS,
    }))));
  }
  // Remote pods, spread over the namespaces and nodes, on their namespace's network.
  const flipPods: FlipPod[] = [];
  const ipsByNamespace = new Map<number, string[]>();
  const remote = size.pods - size.localPods;
  for (let i = 0; i < remote; i++) {
    const nsIndex = i < nsNames.length ? i : Math.floor(random() * nsNames.length);
    const namespace = nsNames[nsIndex];
    const network = networkOf(nsIndex);
    const app = pick(random, APPS);
    const labels = labelsFor(app);
    const name = nextName(namespace, app);
    const n = podNumber++;
    const ips = addressesFor(n);
    pods.push(forApi(pod(namespace, name, {
      node: remoteNode(1 + (i % size.nodes)),
      labels,
      nets: { [network]: ips },
      pci: { [network]: pciAddress(0x5e, i % 2048) },
      ports: CONTAINER_PORTS,
    })));
    if (localSet.has(nsIndex)) {
      flipPods.push({ namespace, name, ip: ips[0], role: labels.role as FlipPod["role"] });
    }
    if (labels.tier !== undefined) {
      const list = ipsByNamespace.get(nsIndex) ?? [];
      if (list.length < 3) list.push(ips[0]);
      ipsByNamespace.set(nsIndex, list);
    }
  }
  // Namespaces whose zone flips: tenants that are not local, not dev, with pods that have a
  // tier, on the network of at least one local namespace.
  // Half of those that qualify flip; the others keep their random zone.
  const flipNamespaces: FlipNamespace[] = [];
  for (let i = 0; i < tenants; i++) {
    if (localSet.has(i) || !ipsByNamespace.has(i)) continue;
    const affects = localNamespaces
      .filter((local) => local.network === networkOf(i))
      .flatMap((local) => local.vfKeys);
    if (affects.length === 0 || (random() < 0.5 && flipNamespaces.length > 0)) continue;
    if (nsLabels[i].env === "dev") nsLabels[i].env = "staging";
    nsLabels[i].zone = "green";
    flipNamespaces.push({
      name: nsNames[i],
      zone: "green",
      tokenIps: ipsByNamespace.get(i)!,
      affects,
    });
  }
  // Generic policies: spread over tenant namespaces, on the namespace's network.
  for (let p = localNamespaces.length; p < size.policies; p++) {
    const nsIndex = Math.floor(random() * tenants);
    const namespace = nsNames[nsIndex];
    const policyFor = random() < 0.1
      ? `${networkOf(nsIndex)},${pick(random, macvlans)}`
      : networkOf(nsIndex);
    policies.push(
      genericPolicy(random, namespace, `policy-${String(p).padStart(4, "0")}`, policyFor),
    );
  }
  return {
    size,
    node,
    namespaces: nsNames.map((name, i) => ns(name, nsLabels[i])),
    networks,
    pods,
    policies,
    churn: {
      seed,
      node,
      nodes: size.nodes,
      localNamespaces,
      flipPods,
      flipNamespaces,
    },
  };
}
