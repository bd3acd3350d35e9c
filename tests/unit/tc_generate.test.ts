import assert from "node:assert/strict";
import { generateProgram, VARIANTS } from "../../src/tc/generate.ts";
import { chainId, type TcFilter } from "../../src/tc/model.ts";
import { regionsFor } from "../../src/tc/regions.ts";
import { interfaceRules } from "../support/cluster.ts";

const OPEN = { isolated: false, policies: [], allow: [] };
const options = { device: "rep0", zone: 9, generation: 1 };

function chainFilters(filters: TcFilter[], hook: string, chain: number) {
  return filters.filter((f) => f.hook === hook && f.chain === chain);
}

Deno.test("generate: no isolated direction means no qdisc and no filters", () => {
  const program = generateProgram(interfaceRules(OPEN, OPEN), options);
  assert.equal(program.enabled, false);
  assert.deepEqual(program.filters, []);
});

Deno.test("generate: hooks carry the right direction; every chain ends in a verdict", () => {
  const program = generateProgram(
    interfaceRules(OPEN, {
      isolated: true,
      policies: ["app/p"],
      allow: [{ cidrs: ["10.1.0.0/16"], protocol: "TCP", ports: [{ first: 80, last: 80 }] }],
    }),
    options,
  );
  assert.equal(program.enabled, true);
  const chains = new Set(program.filters.map((f) => `${f.hook}/${f.chain}`));
  for (const key of chains) {
    const [hook, chain] = key.split("/");
    const inChain = chainFilters(program.filters, hook, Number(chain));
    const last = inChain.reduce((a, b) => (b.prio > a.prio ? b : a));
    assert.equal(last.protocol, "all", `${key} must end with a catch-all`);
    assert.ok(["pass", "drop"].includes(last.actions[0].kind), key);
  }
  // Pod egress policy on the ingress hook: matches destination; ends in drop.
  const v4 = chainId(1, 0, 0);
  const ingressMain = chainFilters(program.filters, "ingress", v4);
  assert.ok(ingressMain.some((f) => f.match.dstIp === "10.1.0.0/16"));
  assert.equal(ingressMain.at(-1)!.actions[0].kind, "drop");
  // Pod ingress is open: the egress hook commits and passes everything.
  const egressMain = chainFilters(program.filters, "egress", v4);
  assert.deepEqual(egressMain.at(-1)!.actions, [{ kind: "pass" }]);
  assert.ok(egressMain.some((f) => f.actions[0].kind === "ct" && f.actions[0].commit));
});

Deno.test("generate: I addresses on P ports cost about I + P filters, not I x P", () => {
  const cidrs = Array.from({ length: 50 }, (_, i) => `10.2.${i}.0/24`).filter((_, i) =>
    i % 2 === 0
  );
  const ports = Array.from(
    { length: 20 },
    (_, i) => ({ first: 1000 + i * 10, last: 1000 + i * 10 }),
  );
  const program = generateProgram(
    interfaceRules(
      { isolated: true, policies: ["app/p"], allow: [{ cidrs, protocol: "TCP", ports }] },
      OPEN,
    ),
    options,
  );
  const v4Untagged = program.filters.filter((f) =>
    f.hook === "egress" && Math.floor(f.chain / 100_000) % 10 === 0 && f.chain !== 0
  );
  const addressFilters = v4Untagged.filter((f) => f.match.srcIp);
  const portFilters = v4Untagged.filter((f) => f.match.dstPort);
  assert.equal(addressFilters.length, 25);
  assert.equal(portFilters.length, 20);
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

Deno.test("generate: six variants (untagged, 802.1Q, QinQ) x (IPv4, IPv6)", () => {
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
  const program = generateProgram(
    interfaceRules({
      isolated: true,
      policies: ["app/p"],
      allow: [{
        cidrs: ["10.1.0.0/16", "fd00::/64"],
        protocol: "UDP",
        ports: [{ first: 53, last: 53 }],
      }],
    }, OPEN),
    options,
  );
  const v6Tagged = chainFilters(program.filters, "egress", chainId(1, 3, 0));
  assert.ok(v6Tagged.some((f) => f.match.srcIp === "fd00::/64" && f.match.vlanEthType === "ipv6"));
  assert.ok(!v6Tagged.some((f) => f.match.srcIp === "10.1.0.0/16"));
});
