/**
 * Table-driven checks of MultiNetworkPolicy semantics (Kubernetes
 * NetworkPolicy semantics per network, as README.md lists them): every rule
 * has a case that allows and one that denies.
 */
import assert from "node:assert/strict";
import type { Direction } from "../../src/cluster/types.ts";
import { allows, cluster, type Flow, iface, render } from "../support/cluster.ts";
import { parseIp } from "../../src/net/ip.ts";
import { explainPacket } from "../../src/policy/explain.ts";
import { type Manifest, mnp, nad, ns, pod } from "../support/manifests.ts";

interface Probe {
  target: string;
  network?: string;
  direction: Direction;
  flow: Flow;
  expect: "allow" | "deny";
}

interface Case {
  name: string;
  objects: Manifest[];
  probes: Probe[];
}

const NET = "app/net-a";
const base = (): Manifest[] => [
  ns("app", { team: "app" }),
  ns("other", { team: "other" }),
  nad("app", "net-a"),
  nad("app", "net-b"),
];

const tcp = (peer: string, port: number): Flow => ({ peer, protocol: "TCP", port });

const CASES: Case[] = [
  {
    name: "no policy: both directions open",
    objects: [...base(), pod("app", "web", { nets: { [NET]: "10.0.0.1" } })],
    probes: [
      { target: "app/web", direction: "ingress", flow: tcp("10.9.9.9", 80), expect: "allow" },
      { target: "app/web", direction: "egress", flow: tcp("10.9.9.9", 80), expect: "allow" },
    ],
  },
  {
    name: "policyTypes defaulting: no policyTypes, no rules isolates ingress only",
    objects: [
      ...base(),
      pod("app", "web", { nets: { [NET]: "10.0.0.1" } }),
      mnp("app", "p", "net-a", {}),
    ],
    probes: [
      { target: "app/web", direction: "ingress", flow: tcp("10.9.9.9", 80), expect: "deny" },
      { target: "app/web", direction: "egress", flow: tcp("10.9.9.9", 80), expect: "allow" },
    ],
  },
  {
    name: "policyTypes defaulting: egress rules without policyTypes isolate egress too",
    objects: [
      ...base(),
      pod("app", "web", { nets: { [NET]: "10.0.0.1" } }),
      mnp("app", "p", "net-a", { egress: [{ to: [{ ipBlock: { cidr: "10.1.0.0/16" } }] }] }),
    ],
    probes: [
      { target: "app/web", direction: "egress", flow: tcp("10.1.2.3", 80), expect: "allow" },
      { target: "app/web", direction: "egress", flow: tcp("10.2.2.3", 80), expect: "deny" },
      { target: "app/web", direction: "ingress", flow: tcp("10.2.2.3", 80), expect: "deny" },
    ],
  },
  {
    name: "explicit policyTypes [Ingress] ignores egress rules",
    objects: [
      ...base(),
      pod("app", "web", { nets: { [NET]: "10.0.0.1" } }),
      mnp("app", "p", "net-a", {
        policyTypes: ["Ingress"],
        ingress: [{ from: [{ ipBlock: { cidr: "10.1.0.0/16" } }] }],
        egress: [{ to: [{ ipBlock: { cidr: "10.1.0.0/16" } }] }],
      }),
    ],
    probes: [
      { target: "app/web", direction: "egress", flow: tcp("10.2.0.1", 80), expect: "allow" },
      { target: "app/web", direction: "ingress", flow: tcp("10.1.0.1", 80), expect: "allow" },
      { target: "app/web", direction: "ingress", flow: tcp("10.2.0.1", 80), expect: "deny" },
    ],
  },
  {
    name: "empty podSelector selects every pod of the policy's namespace, not others",
    objects: [
      ...base(),
      pod("app", "web", { labels: { a: "1" }, nets: { [NET]: "10.0.0.1" } }),
      pod("other", "x", { nets: { [NET]: "10.0.0.2" } }),
      mnp("app", "deny-all", "net-a", { podSelector: {}, policyTypes: ["Ingress"] }),
    ],
    probes: [
      { target: "app/web", direction: "ingress", flow: tcp("10.9.9.9", 80), expect: "deny" },
      { target: "other/x", direction: "ingress", flow: tcp("10.9.9.9", 80), expect: "allow" },
    ],
  },
  {
    name: "podSelector matchLabels and matchExpressions select targets",
    objects: [
      ...base(),
      pod("app", "db", { labels: { role: "db", tier: "gold" }, nets: { [NET]: "10.0.0.1" } }),
      pod("app", "web", { labels: { role: "web" }, nets: { [NET]: "10.0.0.2" } }),
      pod("app", "cache", {
        labels: { role: "cache", tier: "bronze" },
        nets: { [NET]: "10.0.0.3" },
      }),
      mnp("app", "p", "net-a", {
        podSelector: {
          matchExpressions: [
            { key: "tier", operator: "Exists" },
            { key: "tier", operator: "NotIn", values: ["bronze"] },
            { key: "legacy", operator: "DoesNotExist" },
          ],
        },
        policyTypes: ["Ingress"],
      }),
    ],
    probes: [
      { target: "app/db", direction: "ingress", flow: tcp("10.9.9.9", 80), expect: "deny" },
      { target: "app/web", direction: "ingress", flow: tcp("10.9.9.9", 80), expect: "allow" },
      { target: "app/cache", direction: "ingress", flow: tcp("10.9.9.9", 80), expect: "allow" },
    ],
  },
  {
    name: "podSelector peer: pods of the policy's namespace only",
    objects: [
      ...base(),
      pod("app", "db", { labels: { role: "db" }, nets: { [NET]: "10.0.0.1" } }),
      pod("app", "web", { labels: { role: "web" }, nets: { [NET]: "10.0.0.2" } }),
      pod("other", "web", { labels: { role: "web" }, nets: { [NET]: "10.0.0.3" } }),
      mnp("app", "p", "net-a", {
        podSelector: { matchLabels: { role: "db" } },
        ingress: [{
          from: [{
            podSelector: {
              matchExpressions: [{ key: "role", operator: "In", values: ["web", "api"] }],
            },
          }],
        }],
      }),
    ],
    probes: [
      { target: "app/db", direction: "ingress", flow: tcp("10.0.0.2", 5432), expect: "allow" },
      { target: "app/db", direction: "ingress", flow: tcp("10.0.0.3", 5432), expect: "deny" },
    ],
  },
  {
    name: "namespaceSelector peer: every pod of matching namespaces",
    objects: [
      ...base(),
      ns("mon", { team: "ops" }),
      pod("app", "db", { labels: { role: "db" }, nets: { [NET]: "10.0.0.1" } }),
      pod("mon", "prom", { nets: { [NET]: "10.0.1.1" } }),
      pod("other", "x", { nets: { [NET]: "10.0.2.1" } }),
      mnp("app", "p", "net-a", {
        ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: "ops" } } }] }],
      }),
    ],
    probes: [
      { target: "app/db", direction: "ingress", flow: tcp("10.0.1.1", 9100), expect: "allow" },
      { target: "app/db", direction: "ingress", flow: tcp("10.0.2.1", 9100), expect: "deny" },
    ],
  },
  {
    name: "namespaceSelector AND podSelector in one peer",
    objects: [
      ...base(),
      ns("mon", { team: "ops" }),
      pod("app", "db", { nets: { [NET]: "10.0.0.1" } }),
      pod("mon", "prom", { labels: { app: "prom" }, nets: { [NET]: "10.0.1.1" } }),
      pod("mon", "grafana", { labels: { app: "grafana" }, nets: { [NET]: "10.0.1.2" } }),
      pod("app", "prom", { labels: { app: "prom" }, nets: { [NET]: "10.0.0.9" } }),
      mnp("app", "p", "net-a", {
        ingress: [{
          from: [{
            namespaceSelector: { matchLabels: { team: "ops" } },
            podSelector: { matchLabels: { app: "prom" } },
          }],
        }],
      }),
    ],
    probes: [
      { target: "app/db", direction: "ingress", flow: tcp("10.0.1.1", 80), expect: "allow" },
      { target: "app/db", direction: "ingress", flow: tcp("10.0.1.2", 80), expect: "deny" },
      { target: "app/db", direction: "ingress", flow: tcp("10.0.0.9", 80), expect: "deny" },
    ],
  },
  {
    name: "namespaceSelector and podSelector as two peers (OR)",
    objects: [
      ...base(),
      ns("mon", { team: "ops" }),
      pod("app", "db", { nets: { [NET]: "10.0.0.1" } }),
      pod("mon", "grafana", { labels: { app: "grafana" }, nets: { [NET]: "10.0.1.2" } }),
      pod("app", "prom", { labels: { app: "prom" }, nets: { [NET]: "10.0.0.9" } }),
      pod("other", "prom", { labels: { app: "prom" }, nets: { [NET]: "10.0.2.9" } }),
      mnp("app", "p", "net-a", {
        ingress: [{
          from: [
            { namespaceSelector: { matchLabels: { team: "ops" } } },
            { podSelector: { matchLabels: { app: "prom" } } },
          ],
        }],
      }),
    ],
    probes: [
      { target: "app/db", direction: "ingress", flow: tcp("10.0.1.2", 80), expect: "allow" },
      { target: "app/db", direction: "ingress", flow: tcp("10.0.0.9", 80), expect: "allow" },
      { target: "app/db", direction: "ingress", flow: tcp("10.0.2.9", 80), expect: "deny" },
    ],
  },
  {
    name: "ipBlock with except carves only the excepted range",
    objects: [
      ...base(),
      pod("app", "web", { nets: { [NET]: "10.0.0.1" } }),
      mnp("app", "p", "net-a", {
        policyTypes: ["Egress"],
        egress: [{ to: [{ ipBlock: { cidr: "192.168.0.0/16", except: ["192.168.5.0/24"] } }] }],
      }),
    ],
    probes: [
      { target: "app/web", direction: "egress", flow: tcp("192.168.4.255", 443), expect: "allow" },
      { target: "app/web", direction: "egress", flow: tcp("192.168.5.7", 443), expect: "deny" },
      { target: "app/web", direction: "egress", flow: tcp("192.169.0.1", 443), expect: "deny" },
    ],
  },
  {
    name: "except carved in one peer but allowed by another peer is allowed (union)",
    objects: [
      ...base(),
      pod("app", "web", { nets: { [NET]: "10.0.0.1" } }),
      mnp("app", "p", "net-a", {
        policyTypes: ["Egress"],
        egress: [{
          to: [
            { ipBlock: { cidr: "192.168.0.0/16", except: ["192.168.5.0/24"] } },
            { ipBlock: { cidr: "192.168.5.0/25" } },
          ],
        }],
      }),
    ],
    probes: [
      { target: "app/web", direction: "egress", flow: tcp("192.168.5.7", 443), expect: "allow" },
      { target: "app/web", direction: "egress", flow: tcp("192.168.5.200", 443), expect: "deny" },
    ],
  },
  {
    name: "except in one rule does not override another rule's allow",
    objects: [
      ...base(),
      pod("app", "web", { nets: { [NET]: "10.0.0.1" } }),
      mnp("app", "p", "net-a", {
        policyTypes: ["Egress"],
        egress: [
          {
            to: [{ ipBlock: { cidr: "10.0.0.0/8", except: ["10.1.0.0/16"] } }],
            ports: [{ port: 80 }],
          },
          { to: [{ ipBlock: { cidr: "10.1.2.0/24" } }], ports: [{ port: 80 }] },
        ],
      }),
    ],
    probes: [
      { target: "app/web", direction: "egress", flow: tcp("10.1.2.3", 80), expect: "allow" },
      { target: "app/web", direction: "egress", flow: tcp("10.1.3.3", 80), expect: "deny" },
    ],
  },
  {
    name: "empty from allows every peer; empty ports allows every protocol and port",
    objects: [
      ...base(),
      pod("app", "web", { nets: { [NET]: "10.0.0.1" } }),
      mnp("app", "all-from", "net-a", { ingress: [{ ports: [{ port: 80 }] }] }),
      mnp("app", "all-ports", "net-a", {
        policyTypes: ["Egress"],
        egress: [{ to: [{ ipBlock: { cidr: "10.5.0.0/16" } }] }],
      }),
    ],
    probes: [
      { target: "app/web", direction: "ingress", flow: tcp("203.0.113.9", 80), expect: "allow" },
      { target: "app/web", direction: "ingress", flow: tcp("203.0.113.9", 81), expect: "deny" },
      {
        target: "app/web",
        direction: "egress",
        flow: { peer: "10.5.1.1", protocol: "ICMP" },
        expect: "allow",
      },
      {
        target: "app/web",
        direction: "egress",
        flow: { peer: "10.5.1.1", protocol: "SCTP", port: 9 },
        expect: "allow",
      },
      {
        target: "app/web",
        direction: "egress",
        flow: { peer: "10.6.1.1", protocol: "ICMP" },
        expect: "deny",
      },
    ],
  },
  {
    name: "protocols: TCP default, UDP and SCTP distinct",
    objects: [
      ...base(),
      pod("app", "web", { nets: { [NET]: "10.0.0.1" } }),
      mnp("app", "p", "net-a", {
        ingress: [{
          ports: [{ port: 53, protocol: "UDP" }, { port: 38412, protocol: "SCTP" }, { port: 22 }],
        }],
      }),
    ],
    probes: [
      {
        target: "app/web",
        direction: "ingress",
        flow: { peer: "10.0.0.9", protocol: "UDP", port: 53 },
        expect: "allow",
      },
      { target: "app/web", direction: "ingress", flow: tcp("10.0.0.9", 53), expect: "deny" },
      {
        target: "app/web",
        direction: "ingress",
        flow: { peer: "10.0.0.9", protocol: "SCTP", port: 38412 },
        expect: "allow",
      },
      {
        target: "app/web",
        direction: "ingress",
        flow: { peer: "10.0.0.9", protocol: "UDP", port: 38412 },
        expect: "deny",
      },
      { target: "app/web", direction: "ingress", flow: tcp("10.0.0.9", 22), expect: "allow" },
    ],
  },
  {
    name: "a port without number allows all ports of that protocol only",
    objects: [
      ...base(),
      pod("app", "web", { nets: { [NET]: "10.0.0.1" } }),
      mnp("app", "p", "net-a", { ingress: [{ ports: [{ protocol: "UDP" }] }] }),
    ],
    probes: [
      {
        target: "app/web",
        direction: "ingress",
        flow: { peer: "10.0.0.9", protocol: "UDP", port: 5000 },
        expect: "allow",
      },
      { target: "app/web", direction: "ingress", flow: tcp("10.0.0.9", 5000), expect: "deny" },
    ],
  },
  {
    name: "endPort range is inclusive",
    objects: [
      ...base(),
      pod("app", "web", { nets: { [NET]: "10.0.0.1" } }),
      mnp("app", "p", "net-a", { ingress: [{ ports: [{ port: 8000, endPort: 8100 }] }] }),
    ],
    probes: [
      { target: "app/web", direction: "ingress", flow: tcp("10.0.0.9", 8000), expect: "allow" },
      { target: "app/web", direction: "ingress", flow: tcp("10.0.0.9", 8100), expect: "allow" },
      { target: "app/web", direction: "ingress", flow: tcp("10.0.0.9", 8101), expect: "deny" },
      { target: "app/web", direction: "ingress", flow: tcp("10.0.0.9", 7999), expect: "deny" },
    ],
  },
  {
    name: "named port on ingress resolves from the target pod; unresolved grants nothing",
    objects: [
      ...base(),
      pod("app", "web", {
        labels: { r: "web" },
        nets: { [NET]: "10.0.0.1" },
        ports: [{ name: "http", containerPort: 8080 }],
      }),
      pod("app", "nohttp", { labels: { r: "web" }, nets: { [NET]: "10.0.0.2" } }),
      mnp("app", "p", "net-a", {
        podSelector: { matchLabels: { r: "web" } },
        ingress: [{ ports: [{ port: "http" }] }],
      }),
    ],
    probes: [
      { target: "app/web", direction: "ingress", flow: tcp("10.0.0.9", 8080), expect: "allow" },
      { target: "app/web", direction: "ingress", flow: tcp("10.0.0.9", 80), expect: "deny" },
      { target: "app/nohttp", direction: "ingress", flow: tcp("10.0.0.9", 8080), expect: "deny" },
      { target: "app/nohttp", direction: "ingress", flow: tcp("10.0.0.9", 443), expect: "deny" },
    ],
  },
  {
    name: "named port on egress resolves differently for two peer pods",
    objects: [
      ...base(),
      pod("app", "client", { labels: { r: "client" }, nets: { [NET]: "10.0.0.1" } }),
      pod("app", "api-1", {
        labels: { r: "api" },
        nets: { [NET]: "10.0.0.2" },
        ports: [{ name: "http", containerPort: 8080 }],
      }),
      pod("app", "api-2", {
        labels: { r: "api" },
        nets: { [NET]: "10.0.0.3" },
        ports: [{ name: "http", containerPort: 9090 }],
      }),
      pod("app", "api-3", {
        labels: { r: "api" },
        nets: { [NET]: "10.0.0.4" },
        ports: [{ name: "http", containerPort: 7070, protocol: "UDP" }],
      }),
      mnp("app", "p", "net-a", {
        podSelector: { matchLabels: { r: "client" } },
        policyTypes: ["Egress"],
        egress: [{
          to: [{ podSelector: { matchLabels: { r: "api" } } }],
          ports: [{ port: "http" }],
        }],
      }),
    ],
    probes: [
      { target: "app/client", direction: "egress", flow: tcp("10.0.0.2", 8080), expect: "allow" },
      { target: "app/client", direction: "egress", flow: tcp("10.0.0.2", 9090), expect: "deny" },
      { target: "app/client", direction: "egress", flow: tcp("10.0.0.3", 9090), expect: "allow" },
      { target: "app/client", direction: "egress", flow: tcp("10.0.0.3", 8080), expect: "deny" },
      { target: "app/client", direction: "egress", flow: tcp("10.0.0.4", 7070), expect: "deny" },
    ],
  },
  {
    name: "peer addresses come only from the peer's interface on the same network",
    objects: [
      ...base(),
      pod("app", "db", { labels: { r: "db" }, nets: { [NET]: "10.0.0.1" } }),
      pod("app", "web", {
        labels: { r: "web" },
        nets: { [NET]: "10.0.0.2", "app/net-b": "10.8.0.2" },
      }),
      mnp("app", "p", "net-a", {
        podSelector: { matchLabels: { r: "db" } },
        ingress: [{ from: [{ podSelector: { matchLabels: { r: "web" } } }] }],
      }),
    ],
    probes: [
      { target: "app/db", direction: "ingress", flow: tcp("10.0.0.2", 5432), expect: "allow" },
      { target: "app/db", direction: "ingress", flow: tcp("10.8.0.2", 5432), expect: "deny" },
    ],
  },
  {
    name: "hostNetwork, finished and address-less pods contribute no peer addresses",
    objects: [
      ...base(),
      pod("app", "db", { labels: { r: "db" }, nets: { [NET]: "10.0.0.1" } }),
      pod("app", "live", { labels: { r: "web" }, nets: { [NET]: "10.0.0.2" } }),
      pod("app", "done", { labels: { r: "web" }, phase: "Succeeded", nets: { [NET]: "10.0.0.3" } }),
      pod("app", "failed", { labels: { r: "web" }, phase: "Failed", nets: { [NET]: "10.0.0.4" } }),
      pod("app", "host", { labels: { r: "web" }, hostNetwork: true, nets: { [NET]: "10.0.0.5" } }),
      pod("app", "empty", { labels: { r: "web" }, nets: { [NET]: [] } }),
      mnp("app", "p", "net-a", {
        podSelector: { matchLabels: { r: "db" } },
        ingress: [{ from: [{ podSelector: { matchLabels: { r: "web" } } }] }],
      }),
    ],
    probes: [
      { target: "app/db", direction: "ingress", flow: tcp("10.0.0.2", 1), expect: "allow" },
      { target: "app/db", direction: "ingress", flow: tcp("10.0.0.3", 1), expect: "deny" },
      { target: "app/db", direction: "ingress", flow: tcp("10.0.0.4", 1), expect: "deny" },
      { target: "app/db", direction: "ingress", flow: tcp("10.0.0.5", 1), expect: "deny" },
    ],
  },
  {
    name: "policy-for naming another namespace's network",
    objects: [
      ...base(),
      nad("shared", "fabric"),
      pod("app", "web", { nets: { "shared/fabric": "10.7.0.1" } }),
      pod("other", "web", { nets: { "shared/fabric": "10.7.0.2" } }),
      mnp("app", "p", "shared/fabric", { policyTypes: ["Ingress"] }),
      mnp("other", "q", "fabric", { policyTypes: ["Ingress"] }),
    ],
    probes: [
      {
        target: "app/web",
        network: "shared/fabric",
        direction: "ingress",
        flow: tcp("10.7.0.9", 1),
        expect: "deny",
      },
      {
        target: "other/web",
        network: "shared/fabric",
        direction: "ingress",
        flow: tcp("10.7.0.9", 1),
        expect: "allow",
      },
    ],
  },
  {
    name: "a pod on two networks where the policy names one",
    objects: [
      ...base(),
      pod("app", "web", { nets: { [NET]: "10.0.0.1", "app/net-b": "10.8.0.1" } }),
      mnp("app", "p", "net-a", { policyTypes: ["Ingress", "Egress"] }),
    ],
    probes: [
      { target: "app/web", direction: "ingress", flow: tcp("10.0.0.9", 1), expect: "deny" },
      {
        target: "app/web",
        network: "app/net-b",
        direction: "ingress",
        flow: tcp("10.8.0.9", 1),
        expect: "allow",
      },
      {
        target: "app/web",
        network: "app/net-b",
        direction: "egress",
        flow: tcp("10.8.0.9", 1),
        expect: "allow",
      },
    ],
  },
  {
    name: "a malformed CIDR voids its rule only; other rules apply and the pod stays isolated",
    objects: [
      ...base(),
      pod("app", "web", { nets: { [NET]: "10.0.0.1" } }),
      mnp("app", "p", "net-a", {
        ingress: [
          { from: [{ ipBlock: { cidr: "10.300.0.0/16" } }, { ipBlock: { cidr: "10.4.0.0/16" } }] },
          { from: [{ ipBlock: { cidr: "10.5.0.0/16" } }], ports: [{ port: 443 }] },
        ],
      }),
    ],
    probes: [
      { target: "app/web", direction: "ingress", flow: tcp("10.4.0.1", 443), expect: "deny" },
      { target: "app/web", direction: "ingress", flow: tcp("10.5.0.1", 443), expect: "allow" },
      { target: "app/web", direction: "ingress", flow: tcp("10.5.0.1", 80), expect: "deny" },
    ],
  },
  {
    name: "a malformed port voids its rule instead of widening it to every port",
    objects: [
      ...base(),
      pod("app", "web", { nets: { [NET]: "10.0.0.1" } }),
      mnp("app", "p", "net-a", { ingress: [{ ports: [{ port: 70000 }] }] }),
    ],
    probes: [
      { target: "app/web", direction: "ingress", flow: tcp("10.4.0.1", 80), expect: "deny" },
    ],
  },
  {
    name: "a malformed policyTypes fails closed: both directions isolated",
    objects: [
      ...base(),
      pod("app", "web", { nets: { [NET]: "10.0.0.1" } }),
      mnp("app", "p", "net-a", {
        policyTypes: ["Ingres"],
        ingress: [{ from: [{ ipBlock: { cidr: "10.4.0.0/16" } }] }],
      }),
    ],
    probes: [
      { target: "app/web", direction: "ingress", flow: tcp("10.4.0.1", 80), expect: "allow" },
      { target: "app/web", direction: "egress", flow: tcp("10.4.0.1", 80), expect: "deny" },
    ],
  },
  {
    name: "a malformed podSelector isolates the whole namespace and grants nothing",
    objects: [
      ...base(),
      pod("app", "web", { labels: { tier: "web" }, nets: { [NET]: "10.0.0.1" } }),
      pod("app", "db", { labels: { tier: "db" }, nets: { [NET]: "10.0.0.2" } }),
      pod("other", "x", { nets: { [NET]: "10.0.9.1" } }),
      mnp("app", "deny-all", "net-a", { podSelector: { matchLabels: { tier: "db" } } }),
      mnp("app", "broken", "net-a", {
        podSelector: { matchExpressions: [{ key: "tier", operator: "In" }] },
        policyTypes: ["Ingress"],
        ingress: [{}],
      }),
    ],
    probes: [
      { target: "app/db", direction: "ingress", flow: tcp("10.9.9.9", 80), expect: "deny" },
      { target: "app/web", direction: "ingress", flow: tcp("10.9.9.9", 80), expect: "deny" },
      { target: "app/web", direction: "egress", flow: tcp("10.9.9.9", 80), expect: "allow" },
      { target: "other/x", direction: "ingress", flow: tcp("10.9.9.9", 80), expect: "allow" },
    ],
  },
  {
    name: "a podSelector with an invalid label key or value is malformed, never 'matches nothing'",
    objects: [
      ...base(),
      pod("app", "web", { nets: { [NET]: "10.0.0.1" } }),
      mnp("app", "bad-key", "net-a", {
        podSelector: { matchExpressions: [{ key: "bad key", operator: "DoesNotExist" }] },
        policyTypes: ["Egress"],
        egress: [{}],
      }),
      mnp("app", "bad-value", "net-a", {
        podSelector: { matchLabels: { tier: "a\nb" } },
        policyTypes: ["Ingress"],
      }),
    ],
    probes: [
      { target: "app/web", direction: "egress", flow: tcp("10.9.9.9", 80), expect: "deny" },
      { target: "app/web", direction: "ingress", flow: tcp("10.9.9.9", 80), expect: "deny" },
    ],
  },
  {
    name: "an invalid peer selector matches nothing; the rule's other peers still count",
    objects: [
      ...base(),
      pod("app", "web", { labels: { r: "web" }, nets: { [NET]: "10.0.0.1" } }),
      pod("app", "cli", { labels: { r: "cli" }, nets: { [NET]: "10.0.0.2" } }),
      mnp("app", "p", "net-a", {
        podSelector: { matchLabels: { r: "web" } },
        ingress: [
          {
            from: [{ namespaceSelector: { matchExpressions: [{ key: "t", operator: "NotIn" }] } }],
          },
          { from: [{ podSelector: { matchExpressions: [{ key: "r", operator: "Bogus" }] } }] },
          { from: [{ ipBlock: { cidr: "10.5.0.0/16" } }] },
        ],
      }),
    ],
    probes: [
      { target: "app/web", direction: "ingress", flow: tcp("10.0.0.2", 80), expect: "deny" },
      { target: "app/web", direction: "ingress", flow: tcp("10.9.9.9", 80), expect: "deny" },
      { target: "app/web", direction: "ingress", flow: tcp("10.5.0.1", 80), expect: "allow" },
    ],
  },
  {
    name: "several policies: their allows are a union",
    objects: [
      ...base(),
      pod("app", "web", { labels: { r: "web" }, nets: { [NET]: "10.0.0.1" } }),
      mnp("app", "a", "net-a", { ingress: [{ from: [{ ipBlock: { cidr: "10.1.0.0/16" } }] }] }),
      mnp("app", "b", "net-a", {
        podSelector: { matchLabels: { r: "web" } },
        ingress: [{ from: [{ ipBlock: { cidr: "10.2.0.0/16" } }] }],
      }),
    ],
    probes: [
      { target: "app/web", direction: "ingress", flow: tcp("10.1.0.1", 80), expect: "allow" },
      { target: "app/web", direction: "ingress", flow: tcp("10.2.0.1", 80), expect: "allow" },
      { target: "app/web", direction: "ingress", flow: tcp("10.3.0.1", 80), expect: "deny" },
    ],
  },
  {
    name: "IPv6 peers and ipBlocks",
    objects: [
      ...base(),
      pod("app", "db", { labels: { r: "db" }, nets: { [NET]: ["10.0.0.1", "fd00::1"] } }),
      pod("app", "web", { labels: { r: "web" }, nets: { [NET]: ["10.0.0.2", "fd00::2"] } }),
      mnp("app", "p", "net-a", {
        podSelector: { matchLabels: { r: "db" } },
        ingress: [
          { from: [{ podSelector: { matchLabels: { r: "web" } } }] },
          { from: [{ ipBlock: { cidr: "2001:db8::/32", except: ["2001:db8:bad::/48"] } }] },
        ],
      }),
    ],
    probes: [
      { target: "app/db", direction: "ingress", flow: tcp("fd00::2", 5432), expect: "allow" },
      { target: "app/db", direction: "ingress", flow: tcp("fd00::3", 5432), expect: "deny" },
      { target: "app/db", direction: "ingress", flow: tcp("2001:db8:1::1", 5432), expect: "allow" },
      {
        target: "app/db",
        direction: "ingress",
        flow: tcp("2001:db8:bad::1", 5432),
        expect: "deny",
      },
    ],
  },
];

for (const testCase of CASES) {
  Deno.test(`semantics: ${testCase.name}`, () => {
    const result = render(testCase.objects);
    for (const probe of testCase.probes) {
      const rules = iface(result, probe.target, probe.network ?? NET)[probe.direction];
      const got = allows(rules, probe.flow) ? "allow" : "deny";
      assert.equal(
        got,
        probe.expect,
        `${probe.direction} ${probe.target} ${probe.flow.protocol} ${probe.flow.peer}:${
          probe.flow.port ?? ""
        }\n` +
          JSON.stringify(rules, null, 1),
      );
    }
  });
}

// `explain` answers from the same engine: each probe, asked as a packet between the target pod
// and the peer address, gets the same verdict for that one direction.
for (const testCase of CASES) {
  Deno.test(`explain: ${testCase.name}`, () => {
    const { state } = cluster(testCase.objects);
    for (const probe of testCase.probes) {
      const { peer, protocol, port } = probe.flow;
      const egress = probe.direction === "egress";
      const answer = explainPacket(state, {
        from: egress ? probe.target : peer,
        to: egress ? peer : probe.target,
        network: probe.network ?? NET,
        family: parseIp(peer)!.family,
        protocol,
        port,
      }, { networkPlugins: ["accelerated-bridge"] });
      const what = `${probe.direction} ${probe.target} ${protocol} ${peer}:${port ?? ""}`;
      assert.deepEqual(answer.directions.map((d) => d.direction), [probe.direction], what);
      assert.equal(answer.directions[0].verdict, probe.expect, what);
      assert.equal(answer.verdict, probe.expect, what);
    }
  });
}

Deno.test("interfaces: only this node's pods on networks of the allowed plugin types", () => {
  const result = render([
    ...base(),
    nad("app", "mac", "macvlan"),
    pod("app", "here", { nets: { [NET]: "10.0.0.1", "app/mac": "10.9.0.1" } }),
    pod("app", "there", { node: "node-b", nets: { [NET]: "10.0.0.2" } }),
    pod("app", "host", { hostNetwork: true, nets: { [NET]: "10.0.0.3" } }),
  ]);
  assert.deepEqual(
    result.interfaces.map((i) =>
      `${i.pod.name}/${i.network}/${i.interfaceName}/${i.pciAddress !== ""}`
    ),
    ["here/app/net-a/net1/true"],
  );
});

Deno.test("a malformed rule is reported naming the policy and the field", () => {
  const result = render([
    ...base(),
    pod("app", "web", { nets: { [NET]: "10.0.0.1" } }),
    mnp("app", "p", "net-a", { ingress: [{ from: [{ ipBlock: { cidr: "10.300.0.0/16" } }] }] }),
  ]);
  assert.deepEqual(result.parseErrors.map((e) => `${e.object}|${e.field}`), [
    "MultiNetworkPolicy app/p|spec.ingress[0].from[0].ipBlock.cidr",
  ]);
  assert.match(
    result.parseErrors[0].message,
    /invalid CIDR "10.300.0.0\/16"; the rule grants nothing/,
  );
});

Deno.test("a malformed podSelector is reported naming the policy and the field", () => {
  const result = render([
    ...base(),
    mnp("app", "broken", "net-a", {
      podSelector: { matchExpressions: [{ key: "tier", operator: "In" }] },
    }),
  ]);
  assert.deepEqual(result.parseErrors.map((e) => `${e.object}|${e.field}|${e.message}`), [
    "MultiNetworkPolicy app/broken|spec.podSelector.matchExpressions[0].values|" +
    "operator In needs at least one value",
    "MultiNetworkPolicy app/broken|spec.podSelector|" +
    "malformed: the policy isolates every pod of its namespace and grants nothing",
  ]);
});
