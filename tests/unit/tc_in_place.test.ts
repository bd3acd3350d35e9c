/**
 * Updates that cost what changed (src/tc/in_place.ts): a change of allow
 * filters is edited in place with a handful of commands, applied one at a
 * time to a kernel model that refuses what flower refuses, and every packet
 * of a sample meets the old or the new verdict after every command (in
 * either order of overlapping filters); anything riskier swaps generations.
 */
import assert from "node:assert/strict";
import type { InterfaceRules } from "../../src/policy/model.ts";
import { Actuator } from "../../src/tc/actuator.ts";
import { deviceProgram, generateProgram } from "../../src/tc/generate.ts";
import { provablyDisjoint } from "../../src/tc/in_place.ts";
import { sameProgram } from "../../src/tc/compare.ts";
import type {
  FlowerMatch,
  TcAction,
  TcCommand,
  TcFilter,
  TcProgram,
  TcState,
} from "../../src/tc/model.ts";
import { filter } from "../../src/tc/layout.ts";
import { planUpdate } from "../../src/tc/plan.ts";
import { sameFilters } from "../../src/tc/compare.ts";
import { Conntrack } from "../../src/tc/simulator/conntrack.ts";
import { runHook } from "../../src/tc/simulator/hook.ts";
import type { Packet } from "../../src/tc/simulator/packet.ts";
import { iface, render } from "../support/cluster.ts";
import { RecordingDriver } from "../support/fake_driver.ts";
import { type Manifest, mnp, nad, ns, pod } from "../support/manifests.ts";

const WEB = "10.0.0.1";
const DB = "10.0.0.2";

type Block = { cidr: string; except?: string[] };
type Rule = { blocks: Block[]; port?: number };

/** A policy of app/web's egress (or both pods' ingress) from ipBlock rules. */
function policy(direction: "egress" | "ingress", rules: Rule[]): Manifest {
  const entries = rules.map(({ blocks, port }) => ({
    [direction === "egress" ? "to" : "from"]: blocks.map((ipBlock) => ({ ipBlock })),
    ...(port ? { ports: [{ protocol: "TCP", port }] } : {}),
  }));
  return mnp("app", direction, "data", {
    policyTypes: [direction === "egress" ? "Egress" : "Ingress"],
    [direction]: entries,
  });
}

function rulesOf(manifests: Manifest[], name: "web" | "db"): InterfaceRules {
  const rendered = render([
    ns("app"),
    nad("app", "data"),
    pod("app", "web", { nets: { "app/data": WEB } }),
    pod("app", "db", { nets: { "app/data": DB } }),
    ...manifests,
  ]);
  return iface(rendered, `app/${name}`, "app/data");
}

/** Pod web's representor program under an egress policy. */
function egress(rules: Rule[]): (generation: number) => TcProgram {
  const web = rulesOf([policy("egress", rules)], "web");
  return (generation) => generateProgram(web, { device: "rep0", zone: 3, generation });
}

/** The uplink's program under an ingress policy of both pods. */
function uplinkIngress(rules: Rule[]): (generation: number) => TcProgram {
  const manifests = [policy("ingress", rules)];
  const receivers = (["web", "db"] as const).map((name, i) => ({
    rules: rulesOf(manifests, name),
    zone: i + 1,
  }));
  return (generation) => deviceProgram({ device: "p0", kind: "uplink", receivers }, generation);
}

function state(filters: TcFilter[]): TcState {
  return { device: "rep0", clsact: true, foreignQdiscs: [], filters };
}

function flowerKey(f: TcFilter): string {
  const match = Object.entries(f.match).sort(([a], [b]) => (a < b ? -1 : 1));
  return JSON.stringify([f.protocol, match]);
}

/** Applies one command as the kernel would, refusing what flower refuses. */
function applyStrictly(filters: TcFilter[], command: TcCommand): TcFilter[] {
  const at = (f: TcFilter, g: TcFilter) =>
    f.hook === g.hook && f.chain === g.chain && f.prio === g.prio;
  switch (command.op) {
    case "filter-add": {
      const add = command.filter;
      const tp = filters.filter((f) => at(f, add));
      assert.ok(!tp.some((f) => f.handle === add.handle), `handle ${add.handle} exists (EEXIST)`);
      assert.ok(!tp.some((f) => flowerKey(f) === flowerKey(add)), "same key twice (EEXIST)");
      assert.ok(tp.every((f) => f.protocol === add.protocol), "one protocol per prio (EINVAL)");
      return [...filters, add];
    }
    case "filter-replace": {
      const index = filters.findIndex((f) =>
        at(f, command.filter) && f.handle === command.filter.handle
      );
      if (index < 0) return [...filters, command.filter];
      const others = filters.filter((f, i) => i !== index && at(f, command.filter));
      assert.ok(!others.some((f) => flowerKey(f) === flowerKey(command.filter)), "EEXIST");
      return filters.map((f, i) => (i === index ? command.filter : f));
    }
    case "filter-del": {
      const left = filters.filter((f) =>
        !(at(f, command.filter) && f.handle === command.filter.handle)
      );
      assert.equal(left.length, filters.length - 1, "deleting a filter that is not there");
      return left;
    }
    case "chain-del":
      return filters.filter((f) => !(f.hook === command.hook && f.chain === command.chain));
    default:
      throw new Error(`unexpected ${command.op} in an update`);
  }
}

/** Every state the device passes through, one command at a time. */
function states(start: TcFilter[], commands: TcCommand[]): TcFilter[][] {
  const out = [start];
  for (const command of commands) out.push(applyStrictly(out.at(-1)!, command));
  return out;
}

/** New TCP connections and established originating packets from `src` to each address and port. */
function packets(src: string, destinations: string[]): Packet[] {
  return destinations.flatMap((dst) =>
    [22, 80, 443].flatMap((dport): Packet[] => [
      { tags: [], ethType: "ip", src, dst, l4: "tcp", sport: 40000, dport, tcp: { syn: true } },
    ])
  );
}

/** The hook's verdict for a packet, with filters of one prio in the given order or reversed. */
function verdict(filters: TcFilter[], packet: Packet, reverse: boolean): string {
  const ordered = reverse ? [...filters].reverse() : filters;
  const sorted = [...ordered].sort((a, b) => a.chain - b.chain || a.prio - b.prio);
  return runHook(sorted, "ingress", packet, new Conntrack()).verdict;
}

/** Asserts every packet meets the old or the new verdict in every state, in both orders. */
function assertOldOrNew(path: TcFilter[][], sample: Packet[]): void {
  const first = path[0];
  const last = path.at(-1)!;
  for (const packet of sample) {
    const allowed = new Set([verdict(first, packet, false), verdict(last, packet, false)]);
    for (const [i, filters] of path.entries()) {
      for (const reverse of [false, true]) {
        const got = verdict(filters, packet, reverse);
        assert.ok(
          allowed.has(got),
          `${packet.src} -> ${packet.dst}:${packet.dport} ${got} after ${i} commands`,
        );
      }
    }
  }
}

const BEFORE: Rule[] = [
  { blocks: [{ cidr: "10.20.0.0/16" }], port: 80 },
  { blocks: [{ cidr: "10.30.0.5/32" }], port: 80 },
  { blocks: [{ cidr: "10.40.0.0/24", except: ["10.40.0.128/25"] }], port: 443 },
];
const DESTINATIONS = [
  "10.20.0.1",
  "10.30.0.4",
  "10.30.0.5",
  "10.30.0.6",
  "10.40.0.1",
  "10.40.0.129",
  "10.50.0.1",
];

/** Runs one change in place: plan, the states it passes through, and what it ends with. */
function change(
  from: (g: number) => TcProgram,
  to: (g: number) => TcProgram,
  source: string,
  destinations: string[],
) {
  const current = from(1).filters;
  const plan = planUpdate(state(current), to);
  const path = states(current, plan.commands);
  assertOldOrNew(path, packets(source, destinations));
  return { plan, end: path.at(-1)! };
}

Deno.test("in place: one CIDR moved is one add and one delete, in the same generation", () => {
  const moved = BEFORE.map((r, i) => i === 1 ? { ...r, blocks: [{ cidr: "10.30.0.6/32" }] } : r);
  const { plan, end } = change(egress(BEFORE), egress(moved), WEB, DESTINATIONS);
  assert.deepEqual(plan.commands.map((c) => c.op), ["filter-add", "filter-del"]);
  assert.equal(plan.generation, 1);
  assert.ok(plan.program, "the program with the device's handles");
  assert.ok(sameFilters(end, plan.program.filters), "the device ends with the planned program");
  // It is the generator's program but for the handle the edit chose for the added filter.
  assert.ok(!sameFilters(end, egress(moved)(1).filters));
  assert.ok(sameProgram(end, egress(moved)(1).filters));
  assert.ok(!sameProgram(end, egress(BEFORE)(1).filters));
  // The same change by generation swap: the whole program again.
  const swapped = planUpdate(state(egress(BEFORE)(1).filters), egress(moved), {});
  assert.ok(swapped.commands.length === 2, "planUpdate is the in-place path");
  assert.ok(egress(moved)(2).filters.length > 10, "a swap would rewrite every filter");
});

Deno.test("in place: an edit cut short (adds done, deletes not) is finished by a swap", () => {
  const moved = BEFORE.map((r, i) => i === 1 ? { ...r, blocks: [{ cidr: "10.30.0.4/30" }] } : r);
  const current = egress(BEFORE)(1).filters;
  const plan = planUpdate(state(current), egress(moved));
  const adds = plan.commands.filter((c) => c.op === "filter-add");
  assert.ok(adds.length > 0 && adds.length < plan.commands.length);
  // The kernel holds the old and the new filters, overlapping: only a swap is safe from there.
  const halfway = states(current, adds).at(-1)!;
  const next = planUpdate(state(halfway), egress(moved));
  assert.equal(next.generation, 2);
  assertOldOrNew(states(halfway, next.commands), packets(WEB, DESTINATIONS));
});

Deno.test("in place: a CIDR moved to other ports is one replace under its handle", () => {
  const moved = BEFORE.map((r, i) => i === 1 ? { ...r, port: 443 } : r);
  const { plan } = change(egress(BEFORE), egress(moved), WEB, DESTINATIONS);
  assert.deepEqual(plan.commands.map((c) => c.op), ["filter-replace"]);
});

Deno.test("in place: an except dropped replaces overlapping filters, adds first", () => {
  const widened = BEFORE.map((r, i) => i === 2 ? { ...r, blocks: [{ cidr: "10.40.0.0/24" }] } : r);
  const { plan } = change(egress(BEFORE), egress(widened), WEB, DESTINATIONS);
  assert.deepEqual(plan.commands.map((c) => c.op), ["filter-add", "filter-del"]);
  // And back: the narrower block is added while the wider one still stands.
  const back = change(egress(widened), egress(BEFORE), WEB, DESTINATIONS);
  assert.deepEqual(back.plan.commands.map((c) => c.op), ["filter-add", "filter-del"]);
});

Deno.test("in place: two receivers' chains on the uplink change together (no packet meets both)", () => {
  const moved = BEFORE.map((r, i) => i === 1 ? { ...r, blocks: [{ cidr: "10.30.0.6/32" }] } : r);
  const current = uplinkIngress(BEFORE)(1).filters;
  const plan = planUpdate(state(current), uplinkIngress(moved));
  assert.equal(plan.generation, 1);
  assert.deepEqual(plan.commands.map((c) => c.op), [
    "filter-add",
    "filter-add",
    "filter-del",
    "filter-del",
  ]);
  const path = states(current, plan.commands);
  for (const receiver of [WEB, DB]) {
    const sample = ["10.20.0.1", "10.30.0.5", "10.30.0.6", "10.50.0.1"].flatMap((src) =>
      packets(src, [receiver])
    );
    assertOldOrNew(path, sample);
  }
});

Deno.test("in place: changes it cannot make safely swap generations", () => {
  const current = state(egress(BEFORE)(1).filters);
  // A new port spec is a new port chain.
  const newPort = BEFORE.map((r, i) => i === 1 ? { ...r, port: 22 } : r);
  assert.equal(planUpdate(current, egress(newPort)).generation, 2);
  // Isolation lifted: the final filter of the chain changes.
  assert.equal(planUpdate(current, egress([{ blocks: [{ cidr: "0.0.0.0/0" }] }])).generation, 2);
});

Deno.test("in place: chains on one path never change together", () => {
  const allow = (chain: number, handle: number, match: FlowerMatch, next: TcAction) =>
    filter("ingress", chain, 3, handle, "ip", { ctState: "+trk", ...match }, [next]);
  const final = (chain: number) => filter("ingress", chain, 9, 1, "all", {}, [{ kind: "drop" }]);
  const [A, B, C] = [1_000_000, 1_000_001, 1_000_002];
  const program = (a: string, b: string, c: string): TcProgram => ({
    device: "rep0",
    enabled: true,
    zone: 1,
    generation: 1,
    filters: [
      filter("ingress", 0, 11, 1, "ip", {}, [{ kind: "goto", chain: A }]),
      allow(A, 1, { dstIp: a }, { kind: "goto", chain: B }),
      allow(A, 2, { dstIp: "10.9.0.0/16" }, { kind: "goto", chain: C }),
      final(A),
      allow(B, 1, { srcIp: b }, { kind: "pass" }),
      final(B),
      allow(C, 1, { srcIp: c }, { kind: "pass" }),
      final(C),
    ],
  });
  const current = state(program("10.1.0.0/16", "10.2.0.0/16", "10.3.0.0/16").filters);
  const at = (next: TcProgram) => planUpdate(current, () => next).commands.length;
  // B and C are never on one packet's path: both change in place.
  assert.equal(at(program("10.1.0.0/16", "10.2.0.1/32", "10.3.0.1/32")), 4);
  // A reaches B: changing both at once could mix A's old verdict with B's new one.
  const both = planUpdate(current, (g) => ({
    ...program("10.1.0.1/32", "10.2.0.1/32", "10.3.0.0/16"),
    generation: g,
  }));
  assert.equal(both.generation, 2);
  assert.equal(at(program("10.1.0.1/32", "10.2.0.0/16", "10.3.0.0/16")), 2, "A alone: in place");
});

Deno.test("in place: overlapping allow filters are not edited in place", () => {
  const base = egress(BEFORE)(1).filters.filter((f) => f.prio === 3 && f.match.dstIp);
  assert.ok(base.length >= 3 && provablyDisjoint(base));
  const overlapping = { ...base[0], handle: 99, match: { ...base[0].match, dstIp: "10.0.0.0/8" } };
  assert.equal(provablyDisjoint([...base, overlapping]), false);
  const { dstIp: _, ...wildcard } = base[0].match;
  assert.equal(provablyDisjoint([...base, { ...base[0], handle: 98, match: wildcard }]), false);
  // A program whose allow filters overlap (which filter wins depends on their order) swaps.
  const chain = 1_000_000;
  const program = (narrow: string): TcProgram => ({
    device: "rep0",
    enabled: true,
    zone: 1,
    generation: 1,
    filters: [
      filter("ingress", 0, 11, 1, "ip", {}, [{ kind: "goto", chain }]),
      filter("ingress", chain, 3, 1, "ip", { dstIp: "10.0.0.0/8" }, [{ kind: "pass" }]),
      filter("ingress", chain, 3, 2, "ip", { dstIp: narrow }, [{ kind: "drop" }]),
      filter("ingress", chain, 9, 1, "all", {}, [{ kind: "drop" }]),
    ],
  });
  const plan = planUpdate(
    state(program("10.1.0.0/16").filters),
    (g) => ({ ...program("10.2.0.0/16"), generation: g }),
  );
  assert.equal(plan.generation, 2);
});

Deno.test("in place: the actuator keeps the device's handles, skips unchanged syncs and repairs drift", async () => {
  const kernel = new RecordingDriver();
  kernel.present.add("rep0");
  const actuator = new Actuator(kernel);
  await actuator.sync("rep0", egress(BEFORE));
  const moved = BEFORE.map((r, i) => i === 1 ? { ...r, blocks: [{ cidr: "10.30.0.6/32" }] } : r);
  const edit = await actuator.sync("rep0", egress(moved));
  assert.equal(edit.commands, 2);
  assert.ok(sameFilters(kernel.programmed.get("rep0")!, edit.program.filters));
  const calls = kernel.stats.calls;
  const again = await actuator.sync("rep0", egress(moved));
  assert.equal(again.commands, 0);
  assert.equal(kernel.stats.calls, calls, "an unchanged program is neither read nor applied");
  // Someone deletes the filter the edit added: a verified sync puts it back, in place.
  const added = edit.program.filters.find((f) => f.match.dstIp === "10.30.0.6/32")!;
  kernel.programmed.set("rep0", kernel.programmed.get("rep0")!.filter((f) => f !== added));
  const repaired = await actuator.sync("rep0", egress(moved), { verify: true });
  assert.equal(repaired.commands, 1);
  assert.equal(repaired.drift?.reason, "filters_missing");
  assert.ok(sameFilters(kernel.programmed.get("rep0")!, repaired.program.filters));
  assert.equal((await actuator.sync("rep0", egress(moved), { verify: true })).commands, 0);
});
