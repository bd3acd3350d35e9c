import assert from "node:assert/strict";
import {
  difference,
  formatCidr,
  parseCidr,
  parseIp,
  setFromCidrs,
  setToCidrs,
  unionAll,
} from "../../src/net/ip.ts";

const cidrs = (...texts: string[]) => setFromCidrs(texts.map((t) => parseCidr(t)!));
const show = (set: ReturnType<typeof cidrs>) => setToCidrs(set).map(formatCidr);

Deno.test("ip: parses IPv4 and IPv6 strictly", () => {
  for (
    const good of [
      "0.0.0.0",
      "10.1.2.3",
      "255.255.255.255",
      "::",
      "::1",
      "fd00::1",
      "2001:db8::ffff:1.2.3.4",
    ]
  ) {
    assert.notEqual(parseIp(good), null, good);
  }
  for (
    const bad of [
      "",
      "10.1.2",
      "10.1.2.256",
      "01.1.1.1",
      "1.2.3.4.5",
      "1:2:3:4:5:6:7:8:9",
      "::1::",
      "fe80::1%eth0",
      "10.0.0.1\n",
      " 10.0.0.1",
      "gg::1",
    ]
  ) {
    assert.equal(parseIp(bad), null, JSON.stringify(bad));
  }
});

Deno.test("ip: CIDRs are canonicalised and bounded", () => {
  assert.equal(formatCidr(parseCidr("10.1.2.3/8")!), "10.0.0.0/8");
  assert.equal(formatCidr(parseCidr("2001:DB8:0:0:0:0:0:1/64")!), "2001:db8::/64");
  assert.equal(formatCidr(parseCidr("2001:db8:0:1:0:0:0:1/128")!), "2001:db8:0:1::1/128");
  for (
    const bad of ["10.0.0.0/33", "10.0.0.0", "::/129", "10.0.0.0/-1", "10.0.0.0/08", "10.0.0.0/ 8"]
  ) {
    assert.equal(parseCidr(bad), null, bad);
  }
});

Deno.test("ip: union merges overlapping and adjacent prefixes", () => {
  assert.deepEqual(show(cidrs("10.0.0.0/25", "10.0.0.128/25", "10.0.0.64/26")), ["10.0.0.0/24"]);
  assert.deepEqual(show(unionAll([cidrs("10.0.1.0/24"), cidrs("10.0.0.0/24", "fd00::/64")])), [
    "10.0.0.0/23",
    "fd00::/64",
  ]);
  assert.deepEqual(show(cidrs("10.0.0.1/32", "10.0.0.3/32")), ["10.0.0.1/32", "10.0.0.3/32"]);
});

Deno.test("ip: difference carves exactly", () => {
  assert.deepEqual(show(difference(cidrs("10.0.0.0/24"), cidrs("10.0.0.0/26"))), [
    "10.0.0.64/26",
    "10.0.0.128/25",
  ]);
  assert.deepEqual(show(difference(cidrs("10.0.0.0/24"), cidrs("10.0.0.0/24"))), []);
  assert.deepEqual(show(difference(cidrs("::/0"), cidrs("8000::/1"))), ["::/1"]);
  assert.deepEqual(show(difference(cidrs("10.0.0.0/30"), cidrs("10.0.0.1/32", "10.0.0.2/32"))), [
    "10.0.0.0/32",
    "10.0.0.3/32",
  ]);
});
