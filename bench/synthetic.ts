/**
 * A synthetic cluster for benchmarks: N pods across namespaces and two
 * policed networks, P policies mixing every peer form, and a number of
 * pods on the local node.
 */
import type {
  ClusterState,
  MultiNetworkPolicy,
  Namespace,
  NetworkAttachmentDefinition,
  Pod,
  PolicyRule,
} from "../src/cluster/types.ts";

/** Size of the synthetic cluster. */
export interface SyntheticSize {
  pods: number;
  policies: number;
  localInterfaces: number;
  namespaces?: number;
}

const APPS = ["web", "api", "db", "cache", "upf", "smf", "amf", "prom", "log", "etl"];

/** Builds the synthetic cluster; deterministic for a given size. */
export function syntheticCluster(size: SyntheticSize): ClusterState {
  const nsCount = size.namespaces ?? 50;
  const namespaces: Namespace[] = [];
  for (let n = 0; n < nsCount; n++) {
    namespaces.push({
      name: `ns-${n}`,
      labels: {
        "kubernetes.io/metadata.name": `ns-${n}`,
        team: `team-${n % 5}`,
        env: n % 2 ? "prod" : "dev",
      },
    });
  }
  const networks: NetworkAttachmentDefinition[] = [
    { namespace: "ns-0", name: "data", pluginType: "accelerated-bridge", resourceName: "" },
    { namespace: "ns-0", name: "mgmt", pluginType: "accelerated-bridge", resourceName: "" },
  ];
  const pods: Pod[] = [];
  for (let i = 0; i < size.pods; i++) {
    const local = i < size.localInterfaces;
    const network = i % 4 === 3 ? "ns-0/mgmt" : "ns-0/data";
    const a = (i >> 16) & 0xff;
    const b = (i >> 8) & 0xff;
    const c = i & 0xff;
    pods.push({
      uid: `uid-${i}`,
      namespace: `ns-${i % nsCount}`,
      name: `pod-${i}`,
      labels: {
        // Independent of the namespace (i % nsCount), so every namespace runs every app.
        app: APPS[Math.floor(i / nsCount) % APPS.length],
        shard: `s${i % 7}`,
        ...(i % 3 ? { canary: "no" } : {}),
      },
      nodeName: local ? "local" : `node-${i % 200}`,
      hostNetwork: false,
      phase: "Running",
      containerPorts: [
        { name: "http", port: 8000 + (i % 5), protocol: "TCP" },
        { name: "metrics", port: 9100, protocol: "TCP" },
      ],
      networks: [{ network }],
      networkStatus: [{
        network,
        interfaceName: "net1",
        ips: [`10.${64 + a}.${b}.${c}`, `fd00::${i.toString(16)}`],
        pciAddress: `0000:3b:${(i % 32).toString(16).padStart(2, "0")}.${i % 8}`,
        isDefault: false,
      }],
    });
  }
  const policies: MultiNetworkPolicy[] = [];
  for (let p = 0; p < size.policies; p++) {
    const namespace = `ns-${p % nsCount}`;
    // Independent of the namespace (p % nsCount): policies spread over (namespace, app).
    const app = APPS[Math.floor(p / nsCount) % APPS.length];
    const peerApp = APPS[(Math.floor(p / nsCount) + 3) % APPS.length];
    const rules: PolicyRule[] = [
      {
        peers: [{
          kind: "selector",
          podSelector: { matchLabels: { app: peerApp }, matchExpressions: [] },
        }],
        ports: [{ protocol: "TCP", port: { kind: "name", name: "http" } }],
      },
      {
        peers: [{
          kind: "selector",
          namespaceSelector: { matchLabels: { team: `team-${p % 5}` }, matchExpressions: [] },
          podSelector: {
            matchLabels: {},
            matchExpressions: [{
              key: "shard",
              operator: "In",
              values: [`s${p % 7}`, `s${(p + 1) % 7}`],
            }],
          },
        }],
        ports: [{ protocol: "TCP", port: { kind: "number", port: 9100 }, endPort: 9199 }],
      },
      {
        peers: [{
          kind: "ipBlock",
          ipBlock: {
            cidr: `172.${16 + (p % 16)}.0.0/16`,
            except: [`172.${16 + (p % 16)}.${p % 256}.0/24`],
          },
        }],
        ports: [{ protocol: "UDP", port: { kind: "number", port: 53 } }],
      },
    ];
    policies.push({
      namespace,
      name: `policy-${p}`,
      policyFor: [p % 4 === 3 ? "ns-0/mgmt" : "ns-0/data"],
      podSelector: { matchLabels: { app }, matchExpressions: [] },
      policyTypes: p % 2 ? ["ingress", "egress"] : ["ingress"],
      ingress: rules,
      egress: p % 2 ? rules : [],
    });
  }
  return { pods, namespaces, networks, policies };
}
