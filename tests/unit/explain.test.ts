/**
 * What `explain` reports beyond the verdict: every rule entry that allows a
 * packet (peer and port entry, or all of them), the isolating policies when
 * none does, fail-closed policies, VFs enforced as deny-all, which pod ends
 * are policed and why not, and how the network is chosen.
 */
import assert from "node:assert/strict";
import type { ClusterState } from "../../src/cluster/types.ts";
import { explainPacket, type PacketQuestion } from "../../src/policy/explain.ts";
import { ExplainInputError } from "../../src/policy/explain_ends.ts";
import { cluster } from "../support/cluster.ts";
import { type Manifest, mnp, nad, ns, pod } from "../support/manifests.ts";

const NET = "app/net-a";
const PLUGINS = { networkPlugins: ["accelerated-bridge"] };

function stateOf(...objects: Manifest[]): ClusterState {
  return cluster([ns("app", { team: "app" }), nad("app", "net-a"), ...objects]).state;
}

const web = (extra: Parameters<typeof pod>[2] = {}) =>
  pod("app", "web", { labels: { role: "web" }, nets: { [NET]: "10.0.0.1" }, ...extra });
const db = pod("app", "db", {
  labels: { role: "db" },
  node: "node-b",
  nets: { [NET]: "10.0.0.2" },
  ports: [{ name: "sql", containerPort: 5432 }],
});

function ask(state: ClusterState, question: Partial<PacketQuestion>) {
  return explainPacket(state, {
    from: "app/web",
    to: "app/db",
    family: 4,
    protocol: "TCP",
    port: 5432,
    ...question,
  }, PLUGINS);
}

Deno.test("explain: every rule entry that allows the packet is listed, all peers/ports as null", () => {
  const state = stateOf(
    web(),
    db,
    mnp("app", "a", "net-a", {
      podSelector: { matchLabels: { role: "db" } },
      ingress: [
        { from: [{ ipBlock: { cidr: "10.9.0.0/16" } }, { podSelector: {} }], ports: [{ port: 1 }] },
        {
          from: [{ podSelector: { matchLabels: { role: "web" } } }, {
            ipBlock: { cidr: "10.0.0.0/24" },
          }],
          ports: [{ port: "sql" }, { port: 5000, endPort: 6000 }, { protocol: "UDP", port: 5432 }],
        },
      ],
    }),
    mnp("app", "b", "net-a", { podSelector: {}, ingress: [{}] }),
  );
  const answer = ask(state, {});
  assert.equal(answer.verdict, "allow");
  assert.deepEqual(answer.directions.map((d) => [d.direction, d.pod, d.node]), [
    ["egress", "app/web", "node-a"],
    ["ingress", "app/db", "node-b"],
  ]);
  const ingress = answer.directions[1];
  assert.deepEqual(ingress.isolatedBy, ["app/a", "app/b"]);
  assert.deepEqual(ingress.allowedBy, [
    { policy: "app/a", rule: 1, peer: 0, port: 0 },
    { policy: "app/a", rule: 1, peer: 0, port: 1 },
    { policy: "app/a", rule: 1, peer: 1, port: 0 },
    { policy: "app/a", rule: 1, peer: 1, port: 1 },
    { policy: "app/b", rule: 0, peer: null, port: null },
  ]);
  assert.deepEqual(answer.directions[0], {
    direction: "egress",
    pod: "app/web",
    interface: "net1",
    node: "node-a",
    verdict: "allow",
    isolated: false,
    isolatedBy: [],
    allowedBy: [],
  });
});

Deno.test("explain: ICMP only through rules without ports; named ports on the peer for egress", () => {
  const state = stateOf(
    web(),
    db,
    mnp("app", "out", "net-a", {
      podSelector: { matchLabels: { role: "web" } },
      policyTypes: ["Egress"],
      egress: [
        { to: [{ podSelector: {} }], ports: [{ port: "sql" }] },
        { to: [{ ipBlock: { cidr: "10.0.0.0/24", except: ["10.0.0.2/32"] } }] },
      ],
    }),
  );
  const sql = ask(state, {});
  assert.deepEqual(sql.directions[0].allowedBy, [{ policy: "app/out", rule: 0, peer: 0, port: 0 }]);
  // web has no port named sql: from db, nothing resolves.
  const back = ask(state, { from: "app/db", to: "app/web" });
  assert.deepEqual(back.directions.map((d) => [d.direction, d.isolated]), [
    ["egress", false],
    ["ingress", false],
  ]);
  assert.equal(back.verdict, "allow");
  const excepted = ask(state, { to: "10.0.0.2", protocol: "ICMP", port: undefined });
  assert.equal(excepted.verdict, "deny");
  assert.equal(excepted.to.reason, "the address of app/db: name the pod to check its side");
  const icmp = ask(state, { protocol: "ICMP", port: undefined });
  assert.equal(icmp.verdict, "deny");
  assert.deepEqual(icmp.directions[0].isolatedBy, ["app/out"]);
  assert.deepEqual(icmp.directions[0].allowedBy, []);
  const icmpOther = ask(state, { to: "10.0.0.3", protocol: "ICMP", port: undefined });
  assert.deepEqual(icmpOther.directions[0].allowedBy, [
    { policy: "app/out", rule: 1, peer: 0, port: null },
  ]);
  assert.deepEqual(icmpOther.to, {
    address: "10.0.0.3",
    ip: "10.0.0.3",
    policed: false,
    reason: "an address",
  });
});

Deno.test("explain: fail closed: a malformed rule or podSelector isolates and grants nothing", () => {
  const state = stateOf(
    web(),
    db,
    mnp("app", "bad-rule", "net-a", {
      podSelector: { matchLabels: { role: "db" } },
      ingress: [{ from: [{ ipBlock: { cidr: "10.300.0.0/16" } }] }],
    }),
    mnp("app", "bad-selector", "net-a", {
      podSelector: { matchExpressions: [{ key: "role", operator: "In" }] },
      policyTypes: ["Egress"],
      egress: [{}],
    }),
  );
  const answer = ask(state, {});
  assert.equal(answer.verdict, "deny");
  assert.deepEqual(
    answer.directions.map((d) => [d.direction, d.verdict, d.isolatedBy, d.allowedBy.length]),
    [["egress", "deny", ["app/bad-selector"], 0], ["ingress", "deny", ["app/bad-rule"], 0]],
  );
});

Deno.test("explain: a VF claimed twice is deny-all both ways, and says why", () => {
  const pci = { [NET]: "0000:3b:00.1" };
  const state = stateOf(web({ pci }), pod("app", "twin", { nets: { [NET]: "10.0.0.9" }, pci }), db);
  for (const from of ["app/web", "app/twin"]) {
    const answer = ask(state, { from });
    assert.equal(answer.verdict, "deny");
    assert.deepEqual(
      answer.directions.map((d) => [d.direction, d.pod, d.verdict, d.isolated]),
      [["egress", from, "deny", true], ["ingress", "app/db", "allow", false]],
    );
    assert.equal(
      answer.directions[0].denyAll,
      "VF 0000:3b:00.1 is claimed by app/twin on app/net-a and app/web on app/net-a",
    );
  }
});

Deno.test("explain: pod ends not policed have no direction, with the reason", () => {
  const state = cluster([
    ns("app"),
    nad("app", "net-a"),
    nad("app", "mac", "macvlan"),
    web({ nets: { [NET]: "10.0.0.1", "app/mac": "10.1.0.1" } }),
    pod("app", "db", { nets: { [NET]: "10.0.0.2", "app/mac": "10.1.0.2" }, hostNetwork: true }),
  ]).state;
  // Two shared networks, one policed: that one.
  assert.equal(ask(state, {}).network, NET);
  const mac = ask(state, { network: "app/mac" });
  assert.deepEqual(mac.directions, []);
  assert.equal(mac.verdict, "allow");
  assert.equal(mac.from.reason, "its network's CNI type macvlan is not in --network-plugins");
  assert.equal(mac.to.reason, "a hostNetwork pod");
});

Deno.test("explain: questions it cannot answer say what is wrong", () => {
  const twoNets = stateOf(
    nad("app", "net-b"),
    web({ nets: { [NET]: "10.0.0.1", "app/net-b": "10.2.0.1" } }),
    pod("app", "db", { nets: { [NET]: "10.0.0.2", "app/net-b": "10.2.0.2" } }),
    pod("other", "far", { nets: { "app/net-b": "10.2.0.3" } }),
  );
  const cases: [Partial<PacketQuestion>, string][] = [
    [{}, "app/web -> app/db: on app/net-a and app/net-b; name the network (--network)"],
    [{ to: "app/nobody" }, "no pod app/nobody"],
    [{ to: "other/far", network: NET }, "other/far is not attached to app/net-a"],
    [{ network: NET, family: 6 }, "app/web has no IPv6 address on app/net-a"],
    [{ to: "fd00::1", network: NET }, "fd00::1 is not an IPv4 address"],
    [{ from: "10.0.0.9", to: "10.0.0.8" }, "explain needs a pod at one end at least"],
    [{ protocol: "ICMP", network: NET }, "ICMP has no port"],
    [{ port: undefined, network: NET }, "TCP needs a port"],
  ];
  for (const [question, message] of cases) {
    assert.throws(
      () => ask(twoNets, question),
      (e) => e instanceof ExplainInputError && e.message === message,
      message,
    );
  }
  const alone = stateOf(pod("app", "lonely", { nets: {} }), web());
  assert.throws(
    () => ask(alone, { from: "app/lonely", to: "10.0.0.1" }),
    /app\/lonely is on no secondary network/,
  );
  assert.throws(
    () => ask(alone, { from: "app/lonely", to: "app/web" }),
    /app\/lonely and app\/web share no network/,
  );
});
