import assert from "node:assert/strict";
import {
  deviceProgram,
  type DeviceRole,
  generateProgram,
  STAGE_INDEX,
  VARIANTS,
} from "../../src/tc/generate.ts";
import { chainId, OWNER_COOKIE, type TcFilter } from "../../src/tc/model.ts";
import { nodeRoles } from "../../src/tc/placement.ts";
import { alignedBlocks, blockMask } from "../../src/tc/ports.ts";
import { regionsFor } from "../../src/tc/regions.ts";
import type { DirectionRules, InterfaceRules } from "../../src/policy/model.ts";
import { interfaceRules } from "../support/cluster.ts";

const OPEN = { isolated: false, policies: [], allow: [] };
const options = { device: "rep0", zone: 9, generation: 1 };

function chainFilters(filters: TcFilter[], chain: number) {
  return filters.filter((f) => f.chain === chain);
}

function pod(name: string, ip: string, ingress: DirectionRules, egress: DirectionRules) {
  const rules = interfaceRules(ingress, egress);
  return { ...rules, pod: { namespace: "app", name, uid: `u-${name}` }, ips: [ip] };
}

function uplinkOf(...receivers: InterfaceRules[]): DeviceRole {
  return {
    device: "p0",
    kind: "uplink",
    receivers: receivers.map((rules, i) => ({ rules, zone: i + 1 })),
  };
}

/**
 * Every chain ends in a catch-all verdict, every goto goes to a higher chain,
 * and every filter carries the agent's mark.
 */
function assertWellFormed(filters: TcFilter[]) {
  for (const chain of new Set(filters.map((f) => f.chain))) {
    const inChain = chainFilters(filters, chain);
    const last = inChain.reduce((a, b) => (b.prio > a.prio ? b : a));
    assert.equal(last.protocol, "all", `chain ${chain} must end with a catch-all`);
    assert.deepEqual(last.match, {}, `chain ${chain}`);
  }
  for (const f of filters) {
    assert.equal(f.hook, "ingress", "every filter sits on an ingress hook");
    assert.equal(f.cookie, OWNER_COOKIE, "every filter carries the agent's mark");
    for (const a of f.actions) if (a.kind === "goto") assert.ok(a.chain > f.chain, "goto forward");
    assert.ok(f.actions.filter((a) => a.kind === "ct").length <= 1, "one ct action per filter");
  }
}

Deno.test("generate: no isolated direction means no qdisc and no filters", () => {
  const program = generateProgram(interfaceRules(OPEN, OPEN), options);
  assert.equal(program.enabled, false);
  assert.deepEqual(program.filters, []);
});

Deno.test("generate: a pod's egress policy sits on its representor's ingress hook", () => {
  const program = generateProgram(
    interfaceRules(OPEN, {
      isolated: true,
      policies: ["app/p"],
      allow: [{ cidrs: ["10.1.0.0/16"], protocol: "TCP", ports: [{ first: 80, last: 80 }] }],
    }),
    options,
  );
  assert.equal(program.enabled, true);
  assertWellFormed(program.filters);
  const source = chainFilters(program.filters, chainId(1, 0, STAGE_INDEX.source));
  assert.ok(source.some((f) => f.match.dstIp === "10.1.0.0/16"));
  assert.deepEqual(source.at(-1)!.actions, [{ kind: "drop" }]);
  // The dispatch sends IP through the pod's own zone into the source stage.
  const dispatch = program.filters.find((f) => f.chain === 0 && f.protocol === "ip")!;
  assert.deepEqual(dispatch.actions[0], { kind: "ct", zone: 9, commit: false });
});

Deno.test("generate: the uplink carries each receiver's ingress policy, by destination", () => {
  const db = pod("db", "10.0.0.5", {
    isolated: true,
    policies: ["app/db"],
    allow: [{ cidrs: ["10.9.0.0/16"], protocol: "TCP", ports: [{ first: 5432, last: 5432 }] }],
  }, OPEN);
  const web = pod("web", "10.0.0.6", OPEN, { isolated: true, policies: ["app/w"], allow: [] });
  const program = deviceProgram(uplinkOf(db, web), 1);
  assertWellFormed(program.filters);
  const destination = chainFilters(program.filters, chainId(1, 0, STAGE_INDEX.destination));
  const toDb = destination.find((f) => f.match.dstIp === "10.0.0.5/32")!;
  const toWeb = destination.find((f) => f.match.dstIp === "10.0.0.6/32")!;
  assert.deepEqual(toDb.actions[0], { kind: "ct", zone: 1, commit: false });
  assert.deepEqual(toWeb.actions[0], { kind: "ct", zone: 2, commit: false });
  // Traffic for nobody policed passes untouched; no conntrack on the way in.
  assert.deepEqual(destination.at(-1)!.actions, [{ kind: "pass" }]);
  assert.ok(!program.filters.some((f) => f.chain === 0 && f.actions[0].kind === "ct"));
  // db's chain: the allowed source, then its port; web's ingress is open: commit and pass.
  const dbChain = chainFilters(
    program.filters,
    (toDb.actions[1] as { chain: number }).chain,
  );
  assert.ok(dbChain.some((f) => f.match.srcIp === "10.9.0.0/16"));
  const webChain = chainFilters(
    program.filters,
    (toWeb.actions[1] as { chain: number }).chain,
  );
  assert.ok(webChain.some((f) => f.actions[0].kind === "ct" && f.actions[0].commit));
});

Deno.test("generate: on a sender's representor a receiver's policy shrinks to that sender", () => {
  const db = pod("db", "10.0.0.5", {
    isolated: true,
    policies: ["app/db"],
    allow: [{
      cidrs: ["10.0.0.0/24", "10.9.0.0/16"],
      protocol: "TCP",
      ports: [{ first: 5432, last: 5432 }],
    }],
  }, OPEN);
  const web = pod("web", "10.0.0.6", OPEN, OPEN);
  const other = pod("other", "10.7.0.1", OPEN, OPEN);
  const roles = nodeRoles([
    { rules: db, representor: "rep0", uplink: "p0", switchId: "s", zone: 1 },
    { rules: web, representor: "rep1", uplink: "p0", switchId: "s", zone: 2 },
    {
      rules: { ...other, network: "app/other" },
      representor: "rep2",
      uplink: "p0",
      switchId: "s",
      zone: 3,
    },
  ]);
  assert.deepEqual(roles.map((r) => r.device), ["p0", "rep0", "rep1"]);
  const onWeb = deviceProgram(roles.find((r) => r.device === "rep1")!, 1).filters;
  assertWellFormed(onWeb);
  // Only web's own address is matched as a source, never the rest of the allowed prefixes.
  const sources = onWeb.filter((f) => f.match.srcIp).map((f) => f.match.srcIp);
  assert.deepEqual(sources, ["10.0.0.6/32"]);
  // A network's other pods do not send through a representor of another network.
  assert.ok(!roles.some((r) => r.device === "rep2"));
});

Deno.test("generate: I addresses on P ports cost about I + P filters, not I x P", () => {
  const cidrs = Array.from({ length: 50 }, (_, i) => `10.2.${i}.0/24`).filter((_, i) =>
    i % 2 === 0
  );
  const ports = Array.from(
    { length: 20 },
    (_, i) => ({ first: 1000 + i * 10, last: 1000 + i * 10 }),
  );
  const db = pod("db", "10.0.0.5", {
    isolated: true,
    policies: ["app/p"],
    allow: [{ cidrs, protocol: "TCP", ports }],
  }, OPEN);
  const filters = deviceProgram(uplinkOf(db), 1).filters;
  assert.equal(filters.filter((f) => f.match.srcIp).length, 25);
  assert.equal(filters.filter((f) => f.match.dstPort).length, 20);
});

Deno.test("ports: a range is written as the fewest aligned (masked) blocks", () => {
  assert.deepEqual(alignedBlocks({ first: 9100, last: 9199 }).map((b) => [b.first, b.last]), [
    [9100, 9103],
    [9104, 9119],
    [9120, 9151],
    [9152, 9183],
    [9184, 9199],
  ]);
  assert.deepEqual(alignedBlocks({ first: 0, last: 65535 }), [{ first: 0, last: 65535 }]);
  assert.equal(blockMask({ first: 9100, last: 9103 }), 0xfffc);
  assert.equal(blockMask({ first: 80, last: 80 }), 0xffff);
  assert.equal(blockMask({ first: 9100, last: 9199 }), null);
  const db = pod("db", "10.0.0.5", {
    isolated: true,
    policies: ["app/p"],
    allow: [{ cidrs: ["10.9.0.0/16"], protocol: "TCP", ports: [{ first: 9100, last: 9199 }] }],
  }, OPEN);
  const ported = deviceProgram(uplinkOf(db), 1).filters.filter((f) => f.match.dstPort);
  assert.equal(ported.length, 5);
  assert.ok(ported.every((f) => blockMask(f.match.dstPort!) !== null));
});

Deno.test("regions: overlapping entries with different ports stay exact", () => {
  const regions = regionsFor([
    { cidrs: ["10.0.0.0/24"], protocol: "TCP", ports: [{ first: 80, last: 80 }] },
    { cidrs: ["10.0.0.128/25"], protocol: "TCP", ports: [{ first: 443, last: 443 }] },
    { cidrs: ["10.0.0.192/26"], protocol: "any", ports: [] },
  ], 4);
  assert.deepEqual(
    regions.map((r) => `${r.portsKey} ${r.cidrs.join(",")}`).sort(),
    [
      "TCP:80-80 10.0.0.0/25",
      "TCP:80-80,443-443 10.0.0.128/26",
      "any 10.0.0.192/26",
    ],
  );
});

Deno.test("generate: tagged variants only on trunk networks; elsewhere tagged frames drop", () => {
  assert.deepEqual(
    VARIANTS.map((v) =>
      `${v.protocol}/${v.match.vlanEthType ?? "-"}/${v.match.cvlanEthType ?? "-"}`
    ),
    [
      "ip/-/-",
      "ipv6/-/-",
      "802.1q/ip/-",
      "802.1q/ipv6/-",
      "802.1ad/802.1q/ip",
      "802.1ad/802.1q/ipv6",
    ],
  );
  const egress: DirectionRules = {
    isolated: true,
    policies: ["app/p"],
    allow: [{
      cidrs: ["10.1.0.0/16", "fd00::/64"],
      protocol: "UDP",
      ports: [{ first: 53, last: 53 }],
    }],
  };
  const plain = generateProgram(interfaceRules(OPEN, egress), options).filters;
  assert.deepEqual(
    plain.filter((f) => f.chain === 0 && f.actions[0].kind === "drop").map((f) => f.protocol),
    ["802.1q", "802.1ad"],
  );
  assert.ok(!plain.some((f) => f.match.vlanEthType));
  const trunk = generateProgram({ ...interfaceRules(OPEN, egress), trunk: true }, options).filters;
  const v6Tagged = chainFilters(trunk, chainId(1, 3, STAGE_INDEX.source));
  assert.ok(v6Tagged.some((f) => f.match.dstIp === "fd00::/64" && f.match.vlanEthType === "ipv6"));
  assert.ok(!v6Tagged.some((f) => f.match.dstIp === "10.1.0.0/16"));
  assert.ok(!trunk.some((f) => f.chain === 0 && f.actions[0].kind === "drop"));
});

Deno.test("generate: a receiver on a VLAN network is matched with its VLAN id on the uplink", () => {
  const db = {
    ...pod("db", "10.0.0.5", { isolated: true, policies: [], allow: [] }, OPEN),
    vlan: 100,
  };
  const filters = deviceProgram(uplinkOf(db), 1).filters;
  const dispatch = filters.filter((f) => f.chain === 0 && f.actions[0].kind === "goto");
  assert.deepEqual(dispatch.map((f) => [f.protocol, f.match.vlanId, f.match.vlanEthType]), [
    ["802.1q", 100, "ip"],
  ]);
  const toDb = filters.find((f) => f.match.dstIp === "10.0.0.5/32")!;
  assert.equal(toDb.match.vlanId, 100);
});

Deno.test("placement: a representor checks only receivers its pod can exchange traffic with", () => {
  const only = (cidr: string): DirectionRules => ({
    isolated: true,
    policies: ["app/p"],
    allow: [{ cidrs: [cidr], protocol: "TCP", ports: [{ first: 80, last: 80 }] }],
  });
  const none: DirectionRules = { isolated: true, policies: ["app/p"], allow: [] };
  const a = pod("a", "10.0.0.1", none, only("10.0.0.2/32"));
  const b = pod("b", "10.0.0.2", only("10.0.0.1/32"), none);
  const c = pod("c", "10.0.0.3", none, none);
  const roles = nodeRoles([a, b, c].map((rules, i) => ({
    rules,
    representor: `rep${i}`,
    uplink: "p0",
    switchId: "s",
    zone: i + 1,
  })));
  const receivers = Object.fromEntries(
    roles.map((r) => [r.device, r.receivers.map((x) => x.rules.pod.name)]),
  );
  assert.deepEqual(receivers, {
    p0: ["a", "b", "c"],
    // a may open connections to b.
    rep0: ["b"],
    // b answers a's connections: a's zone must see the answers.
    rep1: ["a"],
    // c can neither send to nor answer anyone here.
    rep2: [],
  });
});
