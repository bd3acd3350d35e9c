import assert from "node:assert/strict";
import { parseCidr, setFromCidrs } from "../../src/net/ip.ts";
import { mergeRanges, normaliseGrants } from "../../src/policy/normalise.ts";
import type { Grant } from "../../src/policy/normalise.ts";

const set = (...texts: string[]) => setFromCidrs(texts.map((t) => parseCidr(t)!));
const tcp = (addresses: ReturnType<typeof set>, first: number, last = first): Grant => ({
  addresses,
  protocol: "TCP",
  ports: [{ first, last }],
});

Deno.test("normalise: port ranges merge when overlapping or adjacent", () => {
  assert.deepEqual(
    mergeRanges([{ first: 10, last: 20 }, { first: 21, last: 30 }, { first: 5, last: 5 }]),
    [
      { first: 5, last: 5 },
      { first: 10, last: 30 },
    ],
  );
});

Deno.test("normalise: duplicates removed, same ports merge addresses, same addresses merge ports", () => {
  const entries = normaliseGrants([
    tcp(set("10.0.0.0/25"), 80),
    tcp(set("10.0.0.128/25"), 80),
    tcp(set("10.0.0.0/24"), 80),
    tcp(set("10.0.0.0/24"), 81),
    tcp(set("10.9.0.0/16"), 443),
  ]);
  assert.deepEqual(entries, [
    { cidrs: ["10.0.0.0/24"], protocol: "TCP", ports: [{ first: 80, last: 81 }] },
    { cidrs: ["10.9.0.0/16"], protocol: "TCP", ports: [{ first: 443, last: 443 }] },
  ]);
});

Deno.test("normalise: an any-protocol allow absorbs per-port allows for its addresses", () => {
  const entries = normaliseGrants([
    tcp(set("10.0.0.0/16"), 80),
    { addresses: set("10.0.0.0/24"), protocol: "any", ports: [] },
  ]);
  assert.deepEqual(entries.map((e) => `${e.protocol} ${e.cidrs.join(",")}`), [
    "any 10.0.0.0/24",
    "TCP 10.0.1.0/24,10.0.2.0/23,10.0.4.0/22,10.0.8.0/21,10.0.16.0/20,10.0.32.0/19,10.0.64.0/18,10.0.128.0/17",
  ]);
});

Deno.test("normalise: output order does not depend on input order", () => {
  const grants: Grant[] = [
    tcp(set("10.0.0.5/32"), 22),
    { addresses: set("fd00::/64"), protocol: "UDP", ports: [{ first: 53, last: 53 }] },
    tcp(set("10.0.0.1/32"), 22),
    { addresses: set("10.1.0.0/16"), protocol: "SCTP", ports: [{ first: 1, last: 2 }] },
    tcp(set("10.0.0.9/32"), 8080),
  ];
  const forward = normaliseGrants(grants);
  const backward = normaliseGrants(grants.slice().reverse());
  assert.deepEqual(forward, backward);
  assert.deepEqual(forward.map((e) => e.protocol), ["TCP", "TCP", "UDP", "SCTP"]);
});
