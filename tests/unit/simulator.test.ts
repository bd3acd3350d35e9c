/**
 * The TC simulator's pieces, one case per flower key, action and conntrack
 * transition, and a generated program run end to end on one hook.
 */
import assert from "node:assert/strict";
import { deviceProgram } from "../../src/tc/generate.ts";
import { nodeRoles } from "../../src/tc/placement.ts";
import { Conntrack } from "../../src/tc/simulator/conntrack.ts";
import { type CtFlag, flowerMatches } from "../../src/tc/simulator/flower.ts";
import { runHook } from "../../src/tc/simulator/hook.ts";
import { type Packet, reversed } from "../../src/tc/simulator/packet.ts";
import type { EthProtocol, FlowerMatch, TcFilter } from "../../src/tc/model.ts";
import { interfaceRules } from "../support/cluster.ts";

const tcp = (src: string, dst: string, dport: number, flags: Packet["tcp"] = { syn: true }) =>
  ({ tags: [], ethType: "ip", src, dst, l4: "tcp", sport: 40000, dport, tcp: flags }) as Packet;
const none = new Set<CtFlag>();

const KEYS: { name: string; protocol: EthProtocol; match: FlowerMatch; yes: Packet; no: Packet }[] =
  [
    {
      name: "protocol ip: untagged IPv4 only",
      protocol: "ip",
      match: {},
      yes: tcp("10.0.0.1", "10.0.0.2", 80),
      no: { ...tcp("10.0.0.1", "10.0.0.2", 80), tags: ["802.1q"] },
    },
    {
      name: "802.1q + vlan_ethtype ipv6",
      protocol: "802.1q",
      match: { vlanEthType: "ipv6" },
      yes: { ...tcp("fd00::1", "fd00::2", 80), ethType: "ipv6", tags: ["802.1q"] },
      no: { ...tcp("10.0.0.1", "10.0.0.2", 80), tags: ["802.1q"] },
    },
    {
      name: "802.1ad + vlan_ethtype 802.1q + cvlan_ethtype ip",
      protocol: "802.1ad",
      match: { vlanEthType: "802.1q", cvlanEthType: "ip" },
      yes: { ...tcp("10.0.0.1", "10.0.0.2", 80), tags: ["802.1ad", "802.1q"] },
      no: { ...tcp("10.0.0.1", "10.0.0.2", 80), tags: ["802.1ad"] },
    },
    {
      name: "src_ip prefix",
      protocol: "ip",
      match: { srcIp: "10.1.0.0/16" },
      yes: tcp("10.1.2.3", "10.0.0.2", 80),
      no: tcp("10.2.0.1", "10.0.0.2", 80),
    },
    {
      name: "dst_ip IPv6 prefix",
      protocol: "ipv6",
      match: { dstIp: "fd00:1::/64" },
      yes: { ...tcp("fd00::9", "fd00:1::5", 80), ethType: "ipv6" },
      no: { ...tcp("fd00::9", "fd00:2::5", 80), ethType: "ipv6" },
    },
    {
      name: "ip_proto",
      protocol: "ip",
      match: { ipProto: "udp" },
      yes: { ...tcp("10.0.0.1", "10.0.0.2", 53), l4: "udp", tcp: undefined },
      no: tcp("10.0.0.1", "10.0.0.2", 53),
    },
    {
      name: "dst_port range",
      protocol: "ip",
      match: { ipProto: "tcp", dstPort: { first: 8000, last: 8100 } },
      yes: tcp("10.0.0.1", "10.0.0.2", 8100),
      no: tcp("10.0.0.1", "10.0.0.2", 8101),
    },
    {
      name: "dst_port single, SCTP",
      protocol: "ip",
      match: { ipProto: "sctp", dstPort: { first: 38412, last: 38412 } },
      yes: { ...tcp("10.0.0.1", "10.0.0.2", 38412), l4: "sctp", sctpChunk: "INIT" },
      no: { ...tcp("10.0.0.1", "10.0.0.2", 38413), l4: "sctp", sctpChunk: "INIT" },
    },
    {
      name: "icmpv6 type",
      protocol: "ipv6",
      match: { ipProto: "icmpv6", icmpType: 135 },
      yes: {
        tags: [],
        ethType: "ipv6",
        src: "fe80::1",
        dst: "ff02::1",
        l4: "icmpv6",
        icmpType: 135,
      },
      no: {
        tags: [],
        ethType: "ipv6",
        src: "fe80::1",
        dst: "ff02::1",
        l4: "icmpv6",
        icmpType: 128,
      },
    },
    {
      name: "protocol arp",
      protocol: "arp",
      match: {},
      yes: { tags: [], ethType: "arp" },
      no: tcp("10.0.0.1", "10.0.0.2", 80),
    },
  ];

for (const key of KEYS) {
  Deno.test(`simulator flower: ${key.name}`, () => {
    assert.equal(flowerMatches(key.protocol, key.match, key.yes, none), true);
    assert.equal(flowerMatches(key.protocol, key.match, key.no, none), false);
  });
}

Deno.test("simulator flower: ct_state wants its + flags set and its - flags unset", () => {
  const packet = tcp("10.0.0.1", "10.0.0.2", 80);
  const est = new Set<CtFlag>(["trk", "est", "rpl"]);
  assert.equal(flowerMatches("ip", { ctState: "+trk+est+rpl" }, packet, est), true);
  assert.equal(flowerMatches("ip", { ctState: "+trk+new" }, packet, est), false);
  assert.equal(flowerMatches("ip", { ctState: "-trk" }, packet, none), true);
  assert.equal(flowerMatches("ip", { ctState: "-trk" }, packet, est), false);
  assert.equal(flowerMatches("ip", { ctState: "+trk" }, packet, none), false);
});

const UDP: Packet = {
  tags: [],
  ethType: "ip",
  src: "10.0.0.1",
  dst: "10.0.0.2",
  l4: "udp",
  sport: 5000,
  dport: 53,
};

/** The flags conntrack gives each packet in turn, committing each. */
function flags(packets: Packet[], commit = true, ct = new Conntrack()): string[] {
  return packets.map((p) => [...ct.process(7, p, commit)].sort().join("+"));
}

Deno.test("simulator conntrack: the TCP handshake and data both ways", () => {
  const syn = tcp("10.0.0.1", "10.0.0.2", 80);
  const synAck = reversed(syn, { tcp: { syn: true, ack: true } });
  const ack = { ...syn, tcp: { ack: true } };
  const replyData = reversed(syn, { tcp: { ack: true } });
  assert.deepEqual(flags([syn, synAck, ack, replyData, ack]), [
    "new+trk",
    "est+rpl+trk",
    "est+trk",
    "est+rpl+trk",
    "est+trk",
  ]);
});

Deno.test("simulator conntrack: the first ACK with no SYN-ACK seen is invalid; a lone SYN-ACK too", () => {
  const syn = tcp("10.0.0.1", "10.0.0.2", 80);
  assert.deepEqual(flags([syn, { ...syn, tcp: { ack: true } }]), ["new+trk", "inv+trk"]);
  assert.deepEqual(flags([reversed(syn, { tcp: { syn: true, ack: true } })]), ["inv+trk"]);
  assert.deepEqual(flags([{ ...syn, tcp: { ack: true } }]), ["new+trk"], "loose pickup");
});

Deno.test("simulator conntrack: without commit nothing is remembered", () => {
  const ct = new Conntrack();
  const syn = tcp("10.0.0.1", "10.0.0.2", 80);
  flags([syn], false, ct);
  assert.equal(ct.size(7), 0);
  assert.deepEqual(flags([reversed(syn, { tcp: { syn: true, ack: true } })], true, ct), [
    "inv+trk",
  ]);
});

Deno.test("simulator conntrack: UDP, ICMP echo and SCTP INIT/INIT-ACK", () => {
  assert.deepEqual(flags([UDP, UDP, reversed(UDP), UDP]), [
    "new+trk",
    "new+trk",
    "est+rpl+trk",
    "est+trk",
  ]);
  const echo: Packet = {
    tags: [],
    ethType: "ipv6",
    src: "fd00::1",
    dst: "fd00::2",
    l4: "icmpv6",
    icmpType: 128,
    icmpId: 9,
  };
  assert.deepEqual(flags([echo, reversed(echo, { icmpType: 129 })]), ["new+trk", "est+rpl+trk"]);
  assert.deepEqual(
    flags([reversed(echo, { icmpType: 129 })]),
    ["inv+trk"],
    "an unsolicited echo reply",
  );
  const init: Packet = { ...UDP, l4: "sctp", sport: 38412, dport: 38412, sctpChunk: "INIT" };
  assert.deepEqual(flags([init, reversed(init, { sctpChunk: "INIT_ACK" })]), [
    "new+trk",
    "est+rpl+trk",
  ]);
  assert.deepEqual(flags([{ ...init, sctpChunk: "DATA" }]), ["inv+trk"]);
});

Deno.test("simulator conntrack: an ICMP error about a tracked connection is related", () => {
  const ct = new Conntrack();
  flags([UDP], true, ct);
  const error: Packet = {
    tags: [],
    ethType: "ip",
    src: "10.0.0.2",
    dst: "10.0.0.1",
    l4: "icmp",
    icmpType: 3,
    inner: UDP,
  };
  assert.deepEqual(flags([error], true, ct), ["rel+trk"]);
  assert.deepEqual(flags([{ ...error, inner: { ...UDP, dport: 54 } }], true, ct), ["inv+trk"]);
});

/**
 * A pod at 10.0.0.1 whose ingress allows TCP 80 from 10.0.0.2 only (egress
 * open), zone 5: its representor's program and the uplink's.
 */
function programs(): { representor: TcFilter[]; uplink: TcFilter[] } {
  const rules = interfaceRules(
    {
      isolated: true,
      policies: ["app/p"],
      allow: [{ cidrs: ["10.0.0.2/32"], protocol: "TCP", ports: [{ first: 80, last: 80 }] }],
    },
    { isolated: false, policies: [], allow: [] },
  );
  const [uplink, representor] = nodeRoles([
    { rules, representor: "rep0", uplink: "p0", switchId: "s", zone: 5 },
  ]).map((role) => deviceProgram(role, 1).filters);
  return { representor, uplink };
}

Deno.test("simulator hook: a generated program allows, drops and passes replies as it should", () => {
  const { representor, uplink } = programs();
  const ct = new Conntrack();
  // What the pod receives enters on the uplink: an allowed SYN commits in its zone and passes.
  const syn = tcp("10.0.0.2", "10.0.0.1", 80);
  const allowed = runHook(uplink, "ingress", syn, ct);
  assert.equal(allowed.verdict, "pass");
  assert.deepEqual(allowed.trace.map((s) => s.did.join(" then ")), [
    "goto chain 1050000",
    "ct zone 5 then goto chain 1050002",
    "goto chain 1050003",
    "ct zone 5 commit then pass",
  ]);
  // Its SYN-ACK enters on its own representor (egress open): a reply in the same zone.
  const synAck = runHook(
    representor,
    "ingress",
    reversed(syn, { tcp: { syn: true, ack: true } }),
    ct,
  );
  assert.equal(synAck.verdict, "pass");
  assert.deepEqual(synAck.trace.at(-1)!.ct.sort(), ["est", "rpl", "trk"]);
  // Another port, another peer: dropped by the final filters.
  const wrongPort = runHook(uplink, "ingress", tcp("10.0.0.2", "10.0.0.1", 81), ct);
  assert.equal(wrongPort.verdict, "drop");
  assert.equal(wrongPort.trace.at(-1)!.chain, 1_050_003);
  const wrongPeer = runHook(uplink, "ingress", tcp("10.0.0.3", "10.0.0.1", 80), ct);
  assert.equal(wrongPeer.verdict, "drop");
  assert.equal(wrongPeer.trace.at(-1)!.chain, 1_050_002);
  // Traffic for another address passes the uplink untouched.
  const elsewhere = runHook(uplink, "ingress", tcp("10.0.0.3", "10.0.0.9", 80), ct);
  assert.deepEqual([elsewhere.verdict, elsewhere.trace.at(-1)!.did], ["pass", ["pass"]]);
  // ARP passes in chain 0, before any conntrack.
  const arp = runHook(uplink, "ingress", { tags: [], ethType: "arp" }, ct);
  assert.deepEqual([arp.verdict, arp.trace.length, arp.trace[0].chain], ["pass", 1, 0]);
});

Deno.test("simulator hook: a packet that matches nothing in its chain is accepted", () => {
  const only: TcFilter = {
    hook: "ingress",
    chain: 0,
    prio: 1,
    handle: 1,
    protocol: "ip",
    match: { dstIp: "10.9.9.9/32" },
    actions: [{ kind: "drop" }],
  };
  const result = runHook([only], "ingress", tcp("10.0.0.1", "10.0.0.2", 80), new Conntrack());
  assert.deepEqual([result.verdict, result.fellThrough], ["pass", true]);
});
