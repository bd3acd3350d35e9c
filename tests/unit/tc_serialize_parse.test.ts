import assert from "node:assert/strict";
import { batchText } from "../../src/tc/serialize.ts";
import { OWNER_COOKIE, type TcFilter } from "../../src/tc/model.ts";
import { sameFilters } from "../../src/tc/compare.ts";
import { OFFLOAD_SAMPLE } from "../support/tc_json_samples.ts";
import { parseFilterShow, parseQdiscShow } from "../../src/drivers/cmdline/tc_json.ts";
import { filterCommand, UnsafeTcInput } from "../../src/tc/serialize.ts";

const dispatch: TcFilter = {
  hook: "ingress",
  chain: 0,
  prio: 11,
  handle: 1,
  protocol: "ip",
  match: {},
  actions: [{ kind: "ct", zone: 7, commit: false }, { kind: "goto", chain: 1000000 }],
};

Deno.test("serialize: exact tc batch syntax", () => {
  assert.equal(
    filterCommand("replace", "rep0", dispatch),
    "filter replace dev rep0 ingress protocol ip prio 11 handle 1 chain 0 flower " +
      "action ct zone 7 pipe action goto chain 1000000",
  );
  const port: TcFilter = {
    hook: "egress",
    chain: 1000001,
    prio: 3,
    handle: 2,
    protocol: "802.1ad",
    match: {
      vlanEthType: "802.1q",
      cvlanEthType: "ip",
      ipProto: "tcp",
      dstPort: { first: 8000, last: 8100 },
      srcIp: "10.0.0.0/8",
      ctState: "+trk",
    },
    actions: [{ kind: "ct", zone: 7, commit: true }, { kind: "pass" }],
  };
  assert.equal(
    filterCommand("add", "rep0", port),
    "filter add dev rep0 egress protocol 802.1ad prio 3 handle 2 chain 1000001 flower " +
      "vlan_ethtype 802.1q cvlan_ethtype ip ip_proto tcp src_ip 10.0.0.0/8 dst_port 8000-8100 " +
      "ct_state +trk action ct commit zone 7 pipe action pass",
  );
  assert.equal(
    batchText("rep0", [{ op: "qdisc-add" }, { op: "chain-del", hook: "egress", chain: 2000000 }]),
    "qdisc add dev rep0 clsact\nchain del dev rep0 egress chain 2000000\n",
  );
});

Deno.test("serialize: the mark is the first action's cookie, skip_hw comes right after flower", () => {
  // iproute2 tc/m_action.c parse_action: `cookie HEX` follows the action's own arguments
  // (ct's `pipe`, gact's verdict, `goto chain N`); tc/f_flower.c reads `skip_hw` among the keys.
  assert.equal(
    filterCommand("add", "rep0", { ...dispatch, cookie: OWNER_COOKIE, skipHw: true }),
    "filter add dev rep0 ingress protocol ip prio 11 handle 1 chain 0 flower skip_hw " +
      "action ct zone 7 pipe cookie 6d6e702d746301 action goto chain 1000000",
  );
  const drop: TcFilter = {
    hook: "ingress",
    chain: 1000000,
    prio: 9,
    handle: 1,
    protocol: "all",
    match: {},
    actions: [{ kind: "drop" }],
    cookie: OWNER_COOKIE,
  };
  assert.equal(
    filterCommand("add", "rep0", drop),
    "filter add dev rep0 ingress protocol all prio 9 handle 1 chain 1000000 flower " +
      "action drop cookie 6d6e702d746301",
  );
  assert.equal(
    filterCommand("replace", "rep0", {
      ...drop,
      chain: 0,
      actions: [{ kind: "goto", chain: 2000000 }, { kind: "pass" }],
    }),
    "filter replace dev rep0 ingress protocol all prio 9 handle 1 chain 0 flower " +
      "action goto chain 2000000 cookie 6d6e702d746301 action pass",
  );
  // The largest cookie the kernel takes: 16 bytes.
  assert.match(
    filterCommand("add", "rep0", { ...drop, cookie: "ab".repeat(16) }),
    / action drop cookie (ab){16}$/,
  );
  // A delete names the filter only.
  assert.equal(
    batchText("rep0", [{ op: "filter-del", filter: { ...drop, skipHw: true } }]),
    "filter del dev rep0 ingress protocol all prio 9 handle 1 chain 1000000 flower\n",
  );
});

Deno.test("serialize: a malformed cookie throws instead of writing a batch line", () => {
  const bad = [
    "",
    "6d6e702d74630", // odd length
    "6D6E702D746301", // not the lower-case form the kernel reads back
    "6d6e702d74630g",
    "ab".repeat(17), // more than TC_COOKIE_MAX_SIZE (16 bytes)
    "6d6e action pass",
    "6d6e\nfilter del dev rep0 ingress",
  ];
  for (const cookie of bad) {
    assert.throws(
      () => filterCommand("add", "rep0", { ...dispatch, cookie }),
      UnsafeTcInput,
      JSON.stringify(cookie),
    );
    assert.throws(
      () => batchText("rep0", [{ op: "filter-replace", filter: { ...dispatch, cookie } }]),
      UnsafeTcInput,
    );
  }
  // A cookie rides on an action: a filter without one cannot carry it.
  assert.throws(
    () => filterCommand("add", "rep0", { ...dispatch, actions: [], cookie: OWNER_COOKIE }),
    /needs an action/,
  );
});

Deno.test("serialize: a device name with a newline, space or ';' never reaches a batch", () => {
  for (
    const device of ["rep0\nqdisc del dev eth0 root", "rep 0", "rep0;reboot", "", "a".repeat(16)]
  ) {
    assert.throws(
      () => filterCommand("add", device, dispatch),
      UnsafeTcInput,
      JSON.stringify(device),
    );
  }
  const evil = { ...dispatch, match: { dstIp: "10.0.0.0/8 action pass\nfilter" } };
  assert.throws(() => filterCommand("add", "rep0", evil), UnsafeTcInput);
});

// Captured with `tc -json filter show dev rep0 egress chain N` (iproute2 6.1, Linux 6.1).
const CAPTURED_G =
  `[{"protocol":"ip","pref":1,"kind":"flower"},{"protocol":"ip","pref":1,"kind":"flower","options":{"handle":1,"keys":{"eth_type":"ipv4","ct_state":"+trk+est+rpl"},"not_in_hw":true,"actions":[{"order":1,"kind":"gact","control_action":{"type":"pass"},"prob":{"random_type":"none","control_action":{"type":"pass"},"val":0},"index":83,"ref":1,"bind":1}]}},{"protocol":"ip","pref":3,"kind":"flower","options":{"handle":4,"keys":{"eth_type":"ipv4","src_ip":"10.9.0.0/16","ct_state":"+trk"},"not_in_hw":true,"actions":[{"order":1,"kind":"ct","action":"commit","zone":7,"control_action":{"type":"pipe"},"index":25,"ref":1,"bind":1},{"order":2,"kind":"gact","control_action":{"type":"pass"},"prob":{"random_type":"none","control_action":{"type":"pass"},"val":0},"index":98,"ref":1,"bind":1}]}},{"protocol":"802.1ad","pref":3,"kind":"flower","options":{"handle":1,"keys":{"vlan_ethtype":"802.1Q","cvlan_ethtype":"ip","eth_type":"ipv4","ip_proto":"tcp","dst_port":{"start":8000,"end":8100}},"not_in_hw":true,"actions":[{"order":1,"kind":"gact","control_action":{"type":"goto","chain":1000001},"prob":{"random_type":"none","control_action":{"type":"pass"},"val":0},"index":37,"ref":1,"bind":1}]}},{"protocol":"ipv6","pref":4,"kind":"flower","options":{"handle":1,"keys":{"eth_type":"ipv6","ip_proto":"icmpv6","icmp_type":"133"},"not_in_hw":true,"actions":[{"order":1,"kind":"gact","control_action":{"type":"drop"},"prob":{"random_type":"none","control_action":{"type":"pass"},"val":0},"index":2,"ref":1,"bind":1}]}},{"protocol":"ip","pref":9,"kind":"u32","options":{"handle":"800::800"}}]`;

Deno.test("parse: tc -json filter output back to TC objects; unknown kinds reported", () => {
  const parsed = parseFilterShow(CAPTURED_G, "egress", 1000000);
  assert.deepEqual(parsed.filters.map((f) => [f.prio, f.handle, f.protocol, f.match, f.actions]), [
    [1, 1, "ip", { ctState: "+trk+est+rpl" }, [{ kind: "pass" }]],
    [3, 4, "ip", { srcIp: "10.9.0.0/16", ctState: "+trk" }, [
      { kind: "ct", zone: 7, commit: true },
      { kind: "pass" },
    ]],
    [3, 1, "802.1ad", {
      vlanEthType: "802.1q",
      cvlanEthType: "ip",
      ipProto: "tcp",
      dstPort: { first: 8000, last: 8100 },
    }, [{ kind: "goto", chain: 1000001 }]],
    [4, 1, "ipv6", { ipProto: "icmpv6", icmpType: 133 }, [{ kind: "drop" }]],
  ]);
  assert.equal(parsed.foreign.length, 1);
  assert.match(parsed.foreign[0], /egress chain 1000000 prio 9 u32/);
});

Deno.test("parse: addresses come back in the generator's canonical form", () => {
  // tc prints IPv6 with inet_ntop (embedded IPv4 in dotted form) and hosts without a length.
  const text = JSON.stringify([{
    protocol: "ipv6",
    pref: 3,
    kind: "flower",
    options: {
      handle: 2,
      keys: { eth_type: "ipv6", src_ip: "::ffff:10.0.0.0/120", dst_ip: "fd00::0:1" },
      actions: [{ order: 1, kind: "gact", control_action: { type: "pass" } }],
    },
  }, {
    protocol: "ip",
    pref: 3,
    kind: "flower",
    options: {
      handle: 3,
      keys: { eth_type: "ipv4", dst_ip: "10.0.0.0/255.0.255.0" },
      actions: [{ order: 1, kind: "gact", control_action: { type: "pass" } }],
    },
  }]);
  const parsed = parseFilterShow(text, "ingress", 0);
  assert.deepEqual(parsed.filters.map((f) => f.match), [
    { srcIp: "::ffff:a00:0/120", dstIp: "fd00::1/128" },
  ]);
  // A mask that is not a prefix is not something the agent writes: foreign.
  assert.match(parsed.foreign[0], /prio 3 flower handle 3 \(dst_ip 10.0.0.0\/255.0.255.0\)/);
});

/** `tc -s -json filter show dev vb ingress` on a kernel 6.1 guest after 3 pings were dropped. */
const CAPTURED_HOOK_WITH_STATS = `[{"protocol":"arp","pref":1,"kind":"flower","chain":0},` +
  `{"protocol":"arp","pref":1,"kind":"flower","chain":0,"options":{"handle":1,"keys":{"eth_type":"arp"},"not_in_hw":true,"actions":[{"order":1,"kind":"gact","control_action":{"type":"pass"},"prob":{"random_type":"none","control_action":{"type":"pass"},"val":0},"index":1,"ref":1,"bind":1,"installed":3,"last_used":3,"first_used":3,"stats":{"bytes":28,"packets":1,"drops":0,"overlimits":0,"requeues":0,"backlog":0,"qlen":0}}]}},` +
  `{"protocol":"ip","pref":2,"kind":"flower","chain":0},` +
  `{"protocol":"ip","pref":2,"kind":"flower","chain":0,"options":{"handle":1,"keys":{"eth_type":"ipv4"},"not_in_hw":true,"actions":[{"order":1,"kind":"gact","control_action":{"type":"goto","chain":1000000},"prob":{"random_type":"none","control_action":{"type":"pass"},"val":0},"index":2,"ref":1,"bind":1,"installed":3,"last_used":1,"first_used":3,"stats":{"bytes":252,"packets":3,"drops":0,"overlimits":0,"requeues":0,"backlog":0,"qlen":0}}]}},` +
  `{"protocol":"all","pref":9,"kind":"flower","chain":1000000},` +
  `{"protocol":"all","pref":9,"kind":"flower","chain":1000000,"options":{"handle":1,"keys":{},"not_in_hw":true,"actions":[{"order":1,"kind":"gact","control_action":{"type":"drop"},"prob":{"random_type":"none","control_action":{"type":"pass"},"val":0},"index":3,"ref":1,"bind":1,"installed":3,"last_used":1,"first_used":3,"stats":{"bytes":252,"packets":3,"drops":3,"overlimits":0,"requeues":0,"backlog":0,"qlen":0}}]}}]`;

Deno.test("parse: one read per hook gives each filter's chain and its counters", () => {
  const parsed = parseFilterShow(CAPTURED_HOOK_WITH_STATS, "ingress");
  assert.deepEqual(
    parsed.filters.map((f) => [f.chain, f.prio, f.actions[0].kind]),
    [[0, 1, "pass"], [0, 2, "goto"], [1000000, 9, "drop"]],
  );
  assert.deepEqual(parsed.counters.get("ingress 1000000 9 1"), { packets: 3, bytes: 252 });
  assert.deepEqual(parsed.counters.get("ingress 0 1 1"), { packets: 1, bytes: 28 });
});

Deno.test("parse: qdisc listing", () => {
  assert.deepEqual(
    parseQdiscShow(
      `[{"kind":"noqueue","handle":"0:","root":true,"refcnt":2,"options":{}},{"kind":"clsact","handle":"ffff:","parent":"ffff:fff1","options":{}}]`,
    ),
    { clsact: true, ingress: false, others: ["noqueue"] },
  );
  // The Go agent's ingress qdisc is told apart, not reported as a foreign kind.
  assert.deepEqual(
    parseQdiscShow(`[{"kind":"ingress","handle":"ffff:","parent":"ffff:fff1","options":{}}]`),
    { clsact: false, ingress: true, others: [] },
  );
});

Deno.test("parse: cookie, skip_hw and where each filter is, read from tc -s -json", () => {
  const parsed = parseFilterShow(OFFLOAD_SAMPLE, "ingress");
  assert.deepEqual(parsed.foreign, []);
  assert.deepEqual(parsed.filters, [
    {
      hook: "ingress",
      chain: 0,
      prio: 11,
      handle: 1,
      protocol: "ip",
      match: {},
      actions: [{ kind: "ct", zone: 7, commit: false }, { kind: "goto", chain: 1000000 }],
      cookie: OWNER_COOKIE,
    },
    {
      hook: "ingress",
      chain: 1000000,
      prio: 9,
      handle: 1,
      protocol: "all",
      match: {},
      actions: [{ kind: "drop" }],
      cookie: OWNER_COOKIE,
      skipHw: true,
    },
    {
      hook: "ingress",
      chain: 0,
      prio: 50000,
      handle: 1,
      protocol: "ip",
      match: { ipProto: "tcp" },
      actions: [{ kind: "pass" }],
    },
    {
      hook: "ingress",
      chain: 0,
      prio: 50001,
      handle: 1,
      protocol: "ip",
      match: {},
      actions: [{ kind: "pass" }],
      cookie: "6d6e",
    },
  ]);
  // in_hw / not_in_hw say where a filter is: they go to `offload`, never into the filter.
  assert.deepEqual([...parsed.offload], [
    ["ingress 0 11 1", { inHw: true, inHwCount: 2 }],
    ["ingress 1000000 9 1", { inHw: false, inHwCount: 0 }],
    ["ingress 0 50000 1", { inHw: false, inHwCount: 0 }],
  ]);
  // The counters are still the first action's.
  assert.deepEqual([...parsed.counters], [
    ["ingress 0 11 1", { packets: 14, bytes: 1204 }],
    ["ingress 1000000 9 1", { packets: 4, bytes: 336 }],
    ["ingress 0 50000 1", { packets: 0, bytes: 0 }],
  ]);
});

Deno.test("parse: a filter read back equals the one written only with the same mark and flag", () => {
  const [written] = parseFilterShow(OFFLOAD_SAMPLE, "ingress").filters;
  const { cookie: _, ...unmarked } = written;
  assert.ok(sameFilters([written], [{ ...written }]));
  assert.ok(!sameFilters([written], [unmarked]), "a filter that lost its mark differs");
  assert.ok(!sameFilters([written], [{ ...written, cookie: "6d6e702d746302" }]));
  assert.ok(!sameFilters([written], [{ ...written, skipHw: true }]), "skip_hw differs");
  // Absent and false are the same: programs written before skip_hw existed still compare.
  assert.ok(sameFilters([written], [{ ...written, skipHw: false }]));
});
