/** What differs between an applied program and what the kernel holds, named for a log line. */
import assert from "node:assert/strict";
import { findDrift } from "../../src/tc/drift.ts";
import { generateProgram } from "../../src/tc/generate.ts";
import type { TcFilter, TcState } from "../../src/tc/model.ts";
import { iface, mnp, nad, ns, pod, render } from "../support/cluster.ts";

const rules = iface(
  render([
    ns("app"),
    nad("app", "data"),
    pod("app", "web", { nets: { "app/data": "10.0.0.1" } }),
    mnp("app", "to-lan", "data", {
      policyTypes: ["Egress"],
      egress: [{ to: [{ ipBlock: { cidr: "10.9.0.0/16" } }] }],
    }),
  ]),
  "app/web",
  "app/data",
);
const program = generateProgram(rules, { device: "rep0", zone: 3, generation: 1 });
const state = (filters: TcFilter[], clsact = true): TcState => ({
  device: "rep0",
  clsact,
  foreignQdiscs: [],
  filters,
});
/** The same filter with its match keys in reverse order, as a read-back may list them. */
const reordered = (f: TcFilter): TcFilter => ({
  ...f,
  match: Object.fromEntries(Object.entries(f.match).reverse()),
});

Deno.test("drift: none when the kernel lists the same filters, keys in any order", () => {
  assert.equal(findDrift(state(program.filters.map(reordered)), program), null);
});

Deno.test("drift: a missing qdisc, missing filters, changed and extra ones are named", () => {
  assert.equal(findDrift(state([], false), program)?.reason, "qdisc_missing");
  const [first, second, ...rest] = program.filters;
  const missing = findDrift(state([second, ...rest]), program)!;
  assert.equal(missing.reason, "filters_missing");
  assert.match(
    missing.detail,
    new RegExp(
      `^1 of our ${program.filters.length} filters missing \\(ingress/0/${first.prio}/${first.handle}\\)$`,
    ),
  );
  const changed = findDrift(
    state([{ ...first, actions: [{ kind: "drop" }] }, second, ...rest]),
    program,
  )!;
  assert.equal(changed.reason, "filters_changed");
  assert.match(changed.detail, /^1 changed/);
  const extra = findDrift(state([...program.filters, { ...first, prio: 999 }]), program)!;
  assert.match(extra.detail, /^1 marked filters we did not write \(ingress\/0\/999\//);
  // Someone's filter without our mark is no drift of ours.
  assert.equal(
    findDrift(state([...program.filters, { ...first, prio: 999, cookie: undefined }]), program),
    null,
  );
});
