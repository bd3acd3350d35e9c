/**
 * The offload checker on small hand-built programs: each rule of the mlx5
 * profile and of the checker, with a case that passes it and one that fails.
 */
import assert from "node:assert/strict";
import type { FlowerMatch, TcFilter } from "../../src/tc/model.ts";
import { ct, DROP, filterBuilder, goto, PASS } from "../support/tc_filters.ts";
import { chainsAfterCt, checkProgram } from "../../src/tc/offload/checker.ts";
import { offloadRefusals } from "../../src/tc/offload/offloadable.ts";
import { MLX5_PROFILE, type OffloadProfile } from "../../src/tc/offload/profile.ts";

const filter = filterBuilder("ip");

/** Chain 0 sends everything through ct to chain 100, which ends in a drop. */
const DISPATCH = filter(0, 1, {}, [ct(), goto(100)], { protocol: "all" });
const ESTABLISHED = filter(100, 1, { ctState: "+trk+est" }, [PASS]);
const LAST_DROP = filter(100, 9, {}, [DROP], { protocol: "all" });

function classOf(program: TcFilter[], target: TcFilter) {
  const check = checkProgram(program).filters.find((c) => c.filter === target)!;
  return check;
}

Deno.test("offload: a filter of offloaded keys and actions runs in hardware", () => {
  const masked = filter(100, 3, { ipProto: "tcp", dstPort: { first: 9100, last: 9103 } }, [
    ct(3, true),
    PASS,
  ]);
  const vlan = filter(0, 2, { vlanId: 100, vlanEthType: "ip" }, [goto(100)], {
    protocol: "802.1q",
  });
  const program = [DISPATCH, vlan, ESTABLISHED, masked, LAST_DROP];
  const check = checkProgram(program);
  assert.deepEqual(check.filters.map((c) => c.classification), Array(5).fill("hardware"));
  assert.deepEqual(check.summary, { filters: 5, hardware: 5, softwareOnly: 0, breaks: 0 });
});

Deno.test("offload: an egress-hook filter breaks, the same filter on ingress does not", () => {
  const egress = filter(100, 9, {}, [DROP], { hook: "egress", protocol: "all" });
  const check = classOf([DISPATCH, ESTABLISHED, egress], egress);
  assert.equal(check.classification, "breaks");
  assert.match(check.reason, /egress hook/);
  assert.equal(classOf([DISPATCH, ESTABLISHED, LAST_DROP], LAST_DROP).classification, "hardware");
});

Deno.test("offload: two ct actions in one filter break; one does not", () => {
  const twice = filter(0, 1, {}, [ct(3), ct(4), goto(100)], { protocol: "all" });
  const check = classOf([twice, ESTABLISHED, LAST_DROP], twice);
  assert.equal(check.classification, "breaks");
  assert.match(check.reason, /2 ct actions/);
  assert.equal(classOf([DISPATCH, ESTABLISHED], DISPATCH).classification, "hardware");
});

Deno.test("offload: a backward goto breaks, a forward one does not", () => {
  const back = filter(100, 5, { ipProto: "udp" }, [goto(100)]);
  assert.match(classOf([DISPATCH, back], back).reason, /goto chain 100 from chain 100 jumps back/);
  assert.equal(classOf([DISPATCH, back], back).classification, "breaks");
  const forward = filter(100, 5, { ipProto: "udp" }, [goto(200)]);
  assert.equal(classOf([DISPATCH, forward], forward).classification, "hardware");
});

Deno.test("offload: a port range in chain 0 breaks: hardware skips it", () => {
  const range = filter(0, 1, { ipProto: "tcp", dstPort: { first: 9100, last: 9199 } }, [DROP]);
  const dispatch = { ...DISPATCH, prio: 2 };
  const check = classOf([range, dispatch], range);
  assert.equal(check.classification, "breaks");
  assert.match(check.reason, /^port range 9100-9199 is not offloaded: in chain 0/);
  assert.match(
    check.reason,
    /packets skip it in hardware and meet prio 2 handle 1 \(ct zone 3, goto chain 100\) after/,
  );
  // Alone in its chain, the packet falls off the tables instead.
  assert.match(
    classOf([range], range).reason,
    /fall off chain 0 and are forwarded by the e-switch/,
  );
});

Deno.test("offload: a port range after ct breaks, since established TCP stays in hardware", () => {
  const range = filter(100, 5, { ipProto: "tcp", dstPort: { first: 9100, last: 9199 } }, [PASS]);
  const check = classOf([DISPATCH, range, LAST_DROP], range);
  assert.equal(check.classification, "breaks");
  assert.equal(
    check.reason,
    "port range 9100-9199 is not offloaded: established TCP skips it in hardware and " +
      "meets prio 9 handle 1 (drop) after it",
  );
});

Deno.test("offload: a refused filter that only SCTP, ICMP or +new packets match is safe after ct", () => {
  const sctp = filter(100, 5, { ipProto: "sctp", dstPort: { first: 38412, last: 38412 } }, [PASS]);
  const icmp = filter(100, 6, { ipProto: "icmpv6", icmpType: 128 }, [PASS], {
    protocol: "ipv6",
  });
  const fresh = filter(100, 7, {
    ctState: "+trk+new",
    ipProto: "tcp",
    dstPort: { first: 9100, last: 9199 },
  }, [ct(3, true), PASS]);
  const program = [DISPATCH, sctp, icmp, fresh, LAST_DROP];
  const check = checkProgram(program);
  for (const target of [sctp, icmp, fresh]) {
    const got = check.filters.find((c) => c.filter === target)!;
    assert.equal(got.classification, "software-only", got.reason);
    assert.match(got.reason, /safe, chain 100 is only reached after a ct action/);
  }
  assert.deepEqual(check.summary, { filters: 5, hardware: 2, softwareOnly: 3, breaks: 0 });
  // The same +new filter in chain 0 breaks: nothing there has left hardware yet.
  const early = { ...fresh, chain: 0 };
  assert.equal(classOf([early, DISPATCH], early).classification, "breaks");
});

Deno.test("offload: a chain reached without ct makes its refused filters break", () => {
  const sctp = filter(200, 5, { ipProto: "sctp", dstPort: { first: 38412, last: 38412 } }, [PASS]);
  // The goto runs before the ct action: chain 200 is reached with nothing tracked.
  const early = filter(0, 1, { ipProto: "sctp" }, [goto(200), ct()]);
  const check = classOf([early, DISPATCH, sctp], sctp);
  assert.equal(check.classification, "breaks");
  assert.match(check.reason, /chain 200 is reached in hardware without a ct action first/);
  const late = filter(0, 1, { ipProto: "sctp" }, [ct(), goto(200)]);
  assert.equal(classOf([late, DISPATCH, sctp], sctp).classification, "software-only");
});

Deno.test("offload: after-ct chains follow gotos, and one jump without ct spoils a chain", () => {
  const hop = filter(100, 2, { ipProto: "udp" }, [goto(300)]);
  const skip = filter(0, 2, { ipProto: "udp" }, [goto(300)]);
  assert.deepEqual([...chainsAfterCt([DISPATCH, hop])].sort(), [100, 300]);
  assert.deepEqual([...chainsAfterCt([DISPATCH, hop, skip])], [100]);
  // Chains only reached from each other are unreachable: taken as after ct.
  const a = filter(500, 1, {}, [goto(600)]);
  const b = filter(600, 1, {}, [goto(500)]);
  assert.deepEqual([...chainsAfterCt([a, b])].sort(), [500, 600]);
});

Deno.test("offload: ct_state flags, ICMP types and ports follow the mlx5 profile", () => {
  const refusals = (match: FlowerMatch) =>
    offloadRefusals(filter(100, 1, match, [PASS]), MLX5_PROFILE);
  assert.deepEqual(refusals({ ctState: "+trk+est+rpl" }), []);
  assert.deepEqual(refusals({ ctState: "+trk-new-rel-inv" }), []);
  assert.deepEqual(refusals({ ctState: "+trk+new" }), ["ct_state +new"]);
  assert.deepEqual(refusals({ ctState: "+trk+rel+inv" }), ["ct_state +rel+inv"]);
  assert.deepEqual(refusals({ ipProto: "icmpv6", icmpType: 135 }), ["icmpType match"]);
  assert.deepEqual(refusals({ ipProto: "udp", dstPort: { first: 1024, last: 2047 } }), []);
  assert.deepEqual(refusals({ ipProto: "udp", dstPort: { first: 1000, last: 2000 } }), [
    "port range 1000-2000",
  ]);
  assert.deepEqual(refusals({ ipProto: "sctp", dstPort: { first: 80, last: 80 } }), [
    "port 80 on sctp",
  ]);
});

Deno.test("offload: the profile is data: a NIC without chains refuses chain 100", () => {
  const small: OffloadProfile = {
    ...MLX5_PROFILE,
    chains: { ...MLX5_PROFILE.chains, value: { maxChain: 3, maxPrio: 16 } },
  };
  const check = checkProgram([DISPATCH, ESTABLISHED], small);
  assert.deepEqual(check.summary, { filters: 2, hardware: 0, softwareOnly: 0, breaks: 2 });
  assert.deepEqual(offloadRefusals(DISPATCH, small), ["goto chain 100 (max 3)"]);
  assert.deepEqual(offloadRefusals(ESTABLISHED, small), ["chain 100 (max 3)"]);
  assert.equal(checkProgram([DISPATCH, ESTABLISHED]).summary.hardware, 2);
});

Deno.test("offload: more ct zones than the NIC restores is noted", () => {
  const many = Array.from({ length: 256 }, (_, i) => filter(0, i + 1, {}, [ct(i + 1), PASS]));
  assert.match(checkProgram(many).notes.join(), /256 ct zones: .* at most 255/);
  assert.deepEqual(checkProgram(many.slice(0, 255)).notes, []);
});

Deno.test("offload: every fact of the profile names its Linux source", () => {
  const facts: { source: string }[] = [
    MLX5_PROFILE.hooks,
    MLX5_PROFILE.protocols,
    ...Object.values(MLX5_PROFILE.keys),
    ...Object.values(MLX5_PROFILE.actions),
    MLX5_PROFILE.chains,
    ...Object.values(MLX5_PROFILE.conntrack),
    MLX5_PROFILE.fallOff,
    MLX5_PROFILE.skipSw,
    ...MLX5_PROFILE.laterKernels,
  ];
  for (const fact of facts) assert.match(fact.source, /^(drivers|net|include)\/\S+\.[ch] \w+/);
});

/** An IPv6 neighbour-discovery pass (ICMPv6 type 135) in `chain`. */
const nd = (chain: number, prio: number) =>
  filter(chain, prio, { ipProto: "icmpv6", icmpType: 135 }, [PASS], { protocol: "ipv6" });

Deno.test("offload: an ND pass in chain 0 is safe when the next hardware filter runs ct", () => {
  const chain0 = nd(0, 4);
  const dispatch = filter(0, 12, {}, [ct(), goto(100)], { protocol: "ipv6" });
  const drop = filter(100, 9, {}, [DROP], { protocol: "all" });
  const check = classOf([chain0, dispatch, drop], chain0);
  assert.equal(check.classification, "software-only", check.reason);
  // Without ct on the way, hardware drops the neighbour solicitation software passes.
  const blind = filter(0, 12, {}, [goto(100)], { protocol: "ipv6" });
  const broken = classOf([chain0, blind, drop], chain0);
  assert.equal(broken.classification, "breaks");
  assert.match(broken.reason, /chain 100 prio 9 handle 1 drops ND in hardware/);
});

Deno.test("offload: an ND pass is safe where a goto leads to a chain that passes ND before ct", () => {
  const chain0 = nd(0, 4);
  const toDestination = filter(0, 12, {}, [goto(100)], { protocol: "ipv6" });
  const receiver = filter(100, 3, { dstIp: "fd00::5/128" }, [ct(), goto(200)], {
    protocol: "ipv6",
  });
  const rest = filter(100, 9, {}, [PASS], { protocol: "all" });
  const ndThere = nd(100, 1);
  const safe = classOf([chain0, toDestination, ndThere, receiver, rest], chain0);
  assert.equal(safe.classification, "software-only", safe.reason);
  assert.equal(
    classOf([chain0, toDestination, ndThere, receiver, rest], ndThere).classification,
    "software-only",
  );
  // The destination chain's ct with no ND pass before it: software would see ND as invalid.
  const unsafe = classOf([chain0, toDestination, receiver, rest], chain0);
  assert.equal(unsafe.classification, "breaks");
  assert.match(unsafe.reason, /no ND pass before it/);
  // And a NIC whose ct misses resume at the action (6.3) never re-runs the pass.
  const later: OffloadProfile = {
    ...MLX5_PROFILE,
    conntrack: {
      ...MLX5_PROFILE.conntrack,
      missResumes: { ...MLX5_PROFILE.conntrack.missResumes, value: "action" },
    },
  };
  const resumed = checkProgram([chain0, toDestination, ndThere, receiver, rest], later).filters
    .find((c) => c.filter === chain0)!;
  assert.equal(resumed.classification, "breaks");
});
