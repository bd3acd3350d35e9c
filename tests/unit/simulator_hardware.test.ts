/**
 * The simulator's hardware mode on small hand-built programs: which filters
 * the NIC holds, what a hardware `ct` hit or miss does, and which packets an
 * e-switch decides without ever reaching software.
 */
import assert from "node:assert/strict";
import type { FlowerMatch, TcFilter } from "../../src/tc/model.ts";
import { ct, DROP, filterBuilder, goto, PASS } from "../support/tc_filters.ts";
import { MLX5_PROFILE, type OffloadProfile } from "../../src/tc/offload/profile.ts";
import { Conntrack } from "../../src/tc/simulator/conntrack.ts";
import {
  type FlowEnd,
  type FlowResult,
  type FlowSpec,
  simulateFlow,
} from "../../src/tc/simulator/flow.ts";

const filter = filterBuilder("all");

const end = (address: string, filters?: TcFilter[]): FlowEnd => ({ address, filters });
const TCP80: FlowSpec = { protocol: "TCP", port: 80, family: 4 };

function run(from: FlowEnd, to: FlowEnd, spec: FlowSpec, conntrack = new Conntrack()) {
  return simulateFlow(from, to, spec, conntrack, { mode: "hardware" });
}

/** Per packet: its name, verdict, and where each filter it met ran. */
function paths(result: FlowResult): string[] {
  return result.packets.map((p) =>
    `${p.name}: ${p.verdict} ${p.inHardware ? "hw" : "sw"} [` +
    p.steps.map((s) => `${s.where === "hardware" ? "H" : "S"}${s.chain}/${s.prio}`).join(" ") +
    "]"
  );
}

/** A stateful program in zone 3: chain 0 tracks, chain 100 passes established and `admit`. */
function stateful(admit: FlowerMatch | null): TcFilter[] {
  return [
    filter(0, 1, {}, [ct(), goto(100)]),
    filter(100, 1, { ctState: "+trk+est" }, [PASS]),
    ...(admit ? [filter(100, 2, { ctState: "+trk+new", ...admit }, [ct(3, true), PASS])] : []),
    filter(100, 9, {}, [DROP]),
  ];
}

Deno.test("hardware: an egress-hook drop is not enforced, since the e-switch forwards past it", () => {
  const receiver = end("10.0.0.2", [filter(0, 1, {}, [DROP], { hook: "egress" })]);
  const sender = end("10.0.0.1", [filter(0, 1, {}, [PASS])]);
  assert.equal(simulateFlow(sender, receiver, TCP80).verdict, "deny");
  const hw = run(sender, receiver, TCP80);
  assert.equal(hw.verdict, "allow");
  assert.ok(hw.packets.every((p) => p.inHardware && p.steps.every((s) => s.hook === "ingress")));
});

Deno.test("hardware: an offloaded drop is enforced in hardware", () => {
  const sender = end("10.0.0.1", [
    filter(0, 1, { ipProto: "tcp", dstPort: { first: 80, last: 80 } }, [DROP], { protocol: "ip" }),
  ]);
  const hw = run(sender, end("10.0.0.2"), TCP80);
  assert.equal(hw.verdict, "deny");
  assert.deepEqual(paths(hw), ["SYN: drop hw [H0/1]"]);
});

Deno.test("hardware: a filter the NIC refuses is skipped, and the next hardware filter decides", () => {
  const sender = end("10.0.0.1", [
    filter(0, 1, { ipProto: "tcp", dstPort: { first: 9100, last: 9199 } }, [PASS], {
      protocol: "ip",
    }),
    filter(0, 9, {}, [DROP]),
  ]);
  const spec: FlowSpec = { protocol: "TCP", port: 9150, family: 4 };
  assert.equal(simulateFlow(sender, end("10.0.0.2"), spec).verdict, "allow");
  const hw = run(sender, end("10.0.0.2"), spec);
  assert.equal(hw.verdict, "deny");
  assert.deepEqual(paths(hw), ["SYN: drop hw [H0/9]"]);
});

Deno.test("hardware: a packet that falls off the hardware tables is forwarded", () => {
  const sender = end("10.0.0.1", [filter(0, 1, { ipProto: "udp" }, [DROP], { protocol: "ip" })]);
  const hw = run(sender, end("10.0.0.2"), TCP80);
  assert.equal(hw.verdict, "allow");
  assert.deepEqual(hw.packets.map((p) => [p.inHardware, p.steps.length]), Array(5).fill([true, 0]));
});

Deno.test("hardware: a new TCP connection misses at ct and goes on in software; then it stays in hardware", () => {
  const client = end("10.0.0.1", stateful({ ipProto: "tcp" }));
  const server = end("10.0.0.2", stateful(null));
  const hw = run(client, server, TCP80);
  assert.equal(hw.verdict, "allow");
  assert.deepEqual(paths(hw), [
    // The miss hands the packet to software, which runs chain 0 again (mlx5 on 6.1).
    "SYN: pass sw [H0/1 S0/1 S100/2]",
    "SYN-ACK: pass sw [H0/1 S0/1 S100/1]",
    // The handshake's last ACK makes the connection ASSURED: act_ct offloads it.
    "ACK: pass sw [H0/1 S0/1 S100/1]",
    "answer: pass hw [H0/1 H100/1]",
    "ACK of the answer: pass hw [H0/1 H100/1]",
  ]);
  const syn = hw.packets[0].steps[0];
  assert.deepEqual(syn.did, ["ct zone 3 (miss: to software)"]);
  assert.deepEqual(hw.packets[3].steps[0].ct.sort(), ["est", "rpl", "trk"]);
  // Software mode runs every packet through software, as the VM does.
  const sw = simulateFlow(client, server, TCP80);
  assert.ok(sw.packets.every((p) => p.inHardware === undefined));
  assert.ok(sw.packets.every((p) => p.steps.every((s) => s.where === "software")));
});

Deno.test("hardware: a connection the program refused never reaches the hardware table", () => {
  const client = end("10.0.0.1", stateful({ ipProto: "udp" }));
  const server = end("10.0.0.2", stateful(null));
  const hw = run(client, server, TCP80);
  assert.equal(hw.verdict, "deny");
  assert.deepEqual(paths(hw), ["SYN: drop sw [H0/1 S0/1 S100/9]"]);
});

Deno.test("hardware: SCTP and ICMP always leave hardware at ct", () => {
  const client = end("fd00::1", stateful({}));
  const server = end("fd00::2", stateful(null));
  const conntrack = new Conntrack();
  for (const spec of [{ protocol: "SCTP", port: 38412 }, { protocol: "ICMP" }] as const) {
    for (let round = 0; round < 2; round++) {
      const hw = run(client, server, { ...spec, family: 6 }, conntrack);
      assert.equal(hw.verdict, "allow", spec.protocol);
      assert.ok(hw.packets.every((p) => p.inHardware === false), paths(hw).join("\n"));
    }
  }
});

Deno.test("hardware: UDP reaches the hardware table once assured (a packet after the reply)", () => {
  const client = end("10.0.0.1", stateful({ ipProto: "udp" }));
  const server = end("10.0.0.2", stateful(null));
  const conntrack = new Conntrack();
  const spec: FlowSpec = { protocol: "UDP", port: 2152, family: 4 };
  assert.deepEqual(paths(run(client, server, spec, conntrack)), [
    "request: pass sw [H0/1 S0/1 S100/2]",
    "reply: pass sw [H0/1 S0/1 S100/1]",
  ]);
  assert.deepEqual(paths(run(client, server, spec, conntrack)), [
    "request: pass sw [H0/1 S0/1 S100/1]",
    "reply: pass hw [H0/1 H100/1]",
  ]);
});

Deno.test("hardware: where software resumes after a ct miss is the profile's choice", () => {
  // A filter the NIC refuses sits in chain 0 before the ct dispatch.
  const program = [
    filter(0, 1, { ipProto: "tcp", dstPort: { first: 9100, last: 9199 } }, [DROP], {
      protocol: "ip",
    }),
    ...stateful({ ipProto: "tcp" }).map((f) => f.chain === 0 ? { ...f, prio: 2 } : f),
  ];
  const spec: FlowSpec = { protocol: "TCP", port: 9150, family: 4 };
  // mlx5 on 6.1 restores the chain: software meets the refused drop first.
  const chain = run(end("10.0.0.1", program), end("10.0.0.2"), spec);
  assert.deepEqual(paths(chain), ["SYN: drop sw [H0/2 S0/1]"]);
  // From 6.3 software resumes at the missed ct action and never meets it.
  const later: OffloadProfile = {
    ...MLX5_PROFILE,
    conntrack: {
      ...MLX5_PROFILE.conntrack,
      missResumes: { ...MLX5_PROFILE.conntrack.missResumes, value: "action" },
    },
  };
  const action = simulateFlow(end("10.0.0.1", program), end("10.0.0.2"), spec, new Conntrack(), {
    mode: "hardware",
    profile: later,
  });
  assert.deepEqual(paths(action).slice(0, 1), ["SYN: pass sw [H0/2 S0/2 S100/2]"]);
});
