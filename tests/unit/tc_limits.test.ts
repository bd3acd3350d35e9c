/** The per-interface filter budget: a program that fits is untouched; one that does not is deny-all. */
import assert from "node:assert/strict";
import { countFilters, generateProgram } from "../../src/tc/generate.ts";
import { withinFilterLimit } from "../../src/tc/limits.ts";
import { interfaceRules } from "../support/cluster.ts";

const OPEN = { isolated: false, policies: [], allow: [] };
const cidrs = Array.from({ length: 300 }, (_, i) => `10.1.${i >> 8}.${i & 255}/32`);
const rules = interfaceRules(
  { isolated: true, policies: ["app/p"], allow: [{ cidrs, protocol: "TCP", ports: [] }] },
  OPEN,
);
// The interface's own checks: its representor's program and its ingress policy on the uplink.
const size = countFilters(rules);

Deno.test("limits: a program within the budget keeps its rules; 0 means no budget", () => {
  assert.equal(withinFilterLimit(rules, size), rules);
  assert.equal(withinFilterLimit(rules, 0), rules);
});

Deno.test("limits: one filter over the budget gives deny-all both ways, saying why", () => {
  const limited = withinFilterLimit(rules, size - 1);
  assert.deepEqual(limited.overLimit, { filters: size, max: size - 1 });
  assert.deepEqual(limited.ingress, { isolated: true, policies: ["app/p"], allow: [] });
  assert.deepEqual(limited.egress, { isolated: true, policies: [], allow: [] });
  const program = generateProgram(limited, { device: "rep0", zone: 1, generation: 1 });
  assert.ok(program.enabled);
  assert.ok(program.filters.length < 150, `deny-all is small: ${program.filters.length}`);
  assert.ok(
    program.filters.some((f) => f.chain === 0 && f.protocol === "arp"),
    "ARP still passes",
  );
});

Deno.test("limits: a program of 900,000 filters is refused without being built", () => {
  const many = Array.from(
    { length: 600_000 },
    (_, i) => `10.${i >> 16}.${(i >> 8) & 255}.${i & 255}/32`,
  )
    .filter((_, i) => i % 2 === 0);
  const huge = interfaceRules(
    { isolated: true, policies: ["app/p"], allow: [{ cidrs: many, protocol: "any", ports: [] }] },
    OPEN,
  );
  const before = Deno.memoryUsage().heapUsed;
  const limited = withinFilterLimit(huge, 10_000);
  const grown = Deno.memoryUsage().heapUsed - before;
  assert.equal(limited.overLimit?.max, 10_000);
  // Its representor: a dispatch of 11 (ARP, 5 ND, IPv4, IPv6, 2 tagged drops, the rest), an
  // open egress chain of 5 and an empty destination chain of 1 per family. The uplink: a
  // dispatch of 8 (ARP, 5 ND, IPv4, the rest), a destination chain of 2 (the pod's address, the
  // rest), and its ingress chain of 3 + 300,000 + 1.
  assert.equal(limited.overLimit?.filters, 11 + 2 * (5 + 1) + 8 + 2 + 300_004);
  assert.ok(grown < 256 * 2 ** 20, `heap grew ${Math.round(grown / 2 ** 20)} MiB`);
});
