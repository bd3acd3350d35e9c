/** The make-before-break plan of one representor: command order, no-ops, foreign filters. */
import assert from "node:assert/strict";
import { generateProgram } from "../../src/tc/generate.ts";
import {
  chainGeneration,
  type TcCommand,
  type TcFilter,
  type TcProgram,
  type TcState,
} from "../../src/tc/model.ts";
import { isOurs, planUpdate } from "../../src/tc/plan.ts";
import { iface, type Manifest, mnp, nad, ns, pod, render } from "../support/cluster.ts";
import { goAgentFilter } from "../support/tc_filters.ts";

/** The program for pod app/web under `policies`, at any generation. */
function desired(policies: Manifest[]): (generation: number) => TcProgram {
  const rules = iface(
    render([
      ns("app"),
      nad("app", "data"),
      pod("app", "web", { nets: { "app/data": "10.0.0.1" } }),
      ...policies,
    ]),
    "app/web",
    "app/data",
  );
  return (generation) => generateProgram(rules, { device: "rep0", zone: 3, generation });
}

// Egress policies: what the pod's own representor carries.
const DENY = [mnp("app", "deny", "data", { policyTypes: ["Egress"] })];
const ALLOW_CIDR = [
  mnp("app", "to-lan", "data", {
    policyTypes: ["Egress"],
    egress: [{ to: [{ ipBlock: { cidr: "10.9.0.0/16" } }] }],
  }),
];
/** Like ALLOW_CIDR on one port: from DENY a new port chain, which only a new generation adds. */
const ALLOW_PORT = [
  mnp("app", "to-lan", "data", {
    policyTypes: ["Egress"],
    egress: [{
      to: [{ ipBlock: { cidr: "10.9.0.0/16" } }],
      ports: [{ protocol: "TCP", port: 80 }],
    }],
  }),
];

/** What the kernel carries after `program` was written. */
function programmed(program: TcProgram, extra: TcFilter[] = []): TcState {
  return {
    device: "rep0",
    clsact: true,
    foreignQdiscs: [],
    filters: [...program.filters, ...extra],
  };
}

const FOREIGN: TcFilter = {
  hook: "ingress",
  chain: 0,
  prio: 50_000,
  handle: 1,
  protocol: "ip",
  match: { ipProto: "tcp" },
  actions: [{ kind: "pass" }],
};

function touches(command: TcCommand, filter: TcFilter): boolean {
  if (command.op === "chain-del") {
    return command.hook === filter.hook && command.chain === filter.chain;
  }
  return "filter" in command && command.filter === filter;
}

Deno.test("plan: a change writes new chains, then swaps the dispatch, then deletes the old chains", () => {
  const current = programmed(desired(DENY)(1));
  const plan = planUpdate(current, desired(ALLOW_PORT));
  assert.equal(plan.generation, 2);
  const at = (predicate: (c: TcCommand) => boolean) => plan.commands.findIndex(predicate);
  const lastAt = (predicate: (c: TcCommand) => boolean) => plan.commands.findLastIndex(predicate);
  const newChain = (c: TcCommand) => c.op === "filter-add" && c.filter.chain !== 0;
  const dispatch = (c: TcCommand) =>
    (c.op === "filter-replace" || c.op === "filter-add" || c.op === "filter-del") &&
    c.filter.chain === 0;
  const oldChainDel = (c: TcCommand) => c.op === "chain-del" && chainGeneration(c.chain) === 1;
  assert.ok(at(newChain) >= 0, "new chains are written");
  assert.ok(at(dispatch) >= 0, "the dispatch is swapped");
  assert.ok(at(oldChainDel) >= 0, "old chains are deleted");
  assert.ok(lastAt(newChain) < at(dispatch), "every new chain before the dispatch changes");
  assert.ok(lastAt(dispatch) < at(oldChainDel), "old chains only after the dispatch changes");
  for (const command of plan.commands) {
    if (newChain(command) && command.op === "filter-add") {
      assert.equal(chainGeneration(command.filter.chain), 2);
    }
  }
  assert.ok(
    plan.commands.some((c) => c.op === "filter-replace" && c.filter.chain === 0),
    "the dispatch is replaced in place, not deleted and re-added",
  );
  assert.ok(!plan.commands.some((c) => c.op === "qdisc-del" || c.op === "qdisc-add"));
});

Deno.test("plan: the state already carrying the program gives no commands", () => {
  const program = desired(DENY);
  const plan = planUpdate(programmed(program(1)), program);
  assert.deepEqual(plan.commands, []);
  assert.equal(plan.generation, 1);
  assert.deepEqual(plan.foreign, []);
});

Deno.test("plan: the next change goes back to a free generation", () => {
  const plan = planUpdate(programmed(desired(ALLOW_PORT)(2)), desired(DENY));
  assert.equal(plan.generation, 1);
  assert.ok(plan.commands.some((c) => c.op === "chain-del" && chainGeneration(c.chain) === 2));
});

Deno.test("plan: a foreign filter is reported and never deleted, on a swap or a removal", () => {
  assert.equal(isOurs(FOREIGN), false);
  const current = programmed(desired(DENY)(1), [FOREIGN]);
  const swap = planUpdate(current, desired(ALLOW_CIDR));
  assert.equal(swap.foreign.length, 1);
  assert.ok(swap.commands.length > 0);
  assert.ok(!swap.commands.some((c) => touches(c, FOREIGN)));
  const removal = planUpdate(current, desired([]));
  assert.equal(removal.generation, 0);
  assert.ok(removal.commands.length > 0, "our filters are removed");
  assert.ok(!removal.commands.some((c) => c.op === "qdisc-del"), "the qdisc stays for it");
  assert.ok(!removal.commands.some((c) => touches(c, FOREIGN)));
});

Deno.test("plan: without foreign filters, removing the policy deletes the qdisc", () => {
  const plan = planUpdate(programmed(desired(DENY)(1)), desired([]));
  assert.deepEqual(plan.commands, [{ op: "qdisc-del", kind: "clsact" }]);
  assert.equal(plan.generation, 0);
});

Deno.test("plan: a first program adds the qdisc, the chains, then the dispatch", () => {
  const current: TcState = { device: "rep0", clsact: false, foreignQdiscs: [], filters: [] };
  const plan = planUpdate(current, desired(DENY));
  assert.equal(plan.generation, 1);
  assert.deepEqual(plan.commands[0], { op: "qdisc-add" });
  const firstDispatch = plan.commands.findIndex((c) =>
    c.op === "filter-add" && c.filter.chain === 0
  );
  const lastChain = plan.commands.findLastIndex((c) =>
    c.op === "filter-add" && c.filter.chain !== 0
  );
  assert.ok(lastChain > 0 && lastChain < firstDispatch);
});

/** The Go agent's filters for an egress policy allowing 10.9.0.0/16 (its documented layout). */
function goAgentFilters(): TcFilter[] {
  const rule = goAgentFilter;
  return [
    rule(200, "ip", { dstIp: "10.9.0.0/16" }, "pass"),
    rule(202, "802.1q", { vlanEthType: "ip", dstIp: "10.9.0.0/16" }, "pass"),
    rule(300, "ip", {}, "drop"),
    rule(301, "ipv6", {}, "drop"),
    rule(302, "802.1q", { vlanEthType: "ip" }, "drop"),
  ];
}

Deno.test("plan: the Go agent's ingress qdisc is taken over: ours first, its filters last", () => {
  const program = desired(ALLOW_CIDR);
  const go = goAgentFilters();
  const current: TcState = {
    device: "rep0",
    clsact: false,
    ingressQdisc: true,
    foreignQdiscs: [],
    filters: go,
  };
  const plan = planUpdate(current, program);
  assert.ok(!plan.commands.some((c) => c.op === "qdisc-add"), "the ingress qdisc is used as it is");
  const adds = plan.commands.filter((c) => c.op === "filter-add");
  assert.equal(adds.length, program(1).filters.length);
  // Every filter of the Go agent goes, and only after the last of ours is in place.
  const lastAdd = plan.commands.findLastIndex((c) => c.op === "filter-add");
  const deletes = plan.commands.map((c, i) => [c, i] as const).filter(([c]) =>
    c.op === "filter-del"
  );
  assert.equal(deletes.length, go.length);
  assert.ok(deletes.every(([, i]) => i > lastAdd));
  assert.deepEqual(plan.foreign, []);
  // Our dispatch ends before the Go agent's first prio: its filters are never reached meanwhile.
  assert.ok(Math.max(...program(1).filters.filter((f) => f.chain === 0).map((f) => f.prio)) < 100);
  // Removing the policy later removes the ingress qdisc (nothing foreign left on it).
  const after: TcState = { ...current, filters: program(1).filters };
  const removal = planUpdate(after, () => ({ ...program(1), enabled: false, filters: [] }));
  assert.deepEqual(removal.commands, [{ op: "qdisc-del", kind: "ingress" }]);
});

Deno.test("plan: on a clsact qdisc, filters at the Go agent's prios are foreign and stay", () => {
  const program = desired(ALLOW_CIDR);
  const plan = planUpdate(programmed(program(1), goAgentFilters()), program);
  assert.deepEqual(plan.commands, []);
  assert.equal(plan.foreign.length, goAgentFilters().length);
  assert.deepEqual(plan.ahead, [], "after our last dispatch filter: never reached");
});
