/**
 * The scale harness's pure parts (bench/scale/): the generated cluster has
 * the counts and shape asked for and is deterministic, the policy engine
 * renders it without errors, and every planned churn change, replayed on the
 * manifests through the engine, changes exactly the interfaces it expects and
 * is recognised by its token, as the harness matches them at the sink.
 */
import assert from "node:assert/strict";
import { ANCHOR_PORT_MIN, generateCluster, scaleSize } from "../../bench/scale/cluster.ts";
import { CHURN_KINDS, type ChurnKind, ChurnPlan } from "../../bench/scale/churn.ts";
import {
  ipv4,
  mergeRanges,
  type Ranges,
  ScaleSink,
  subtractRanges,
} from "../../bench/scale/recorder.ts";
import { matchOps, type OpRecord } from "../../bench/scale/report.ts";
import type { RulesChange } from "../../src/agent/sink.ts";
import { interfaceKey, type InterfaceRules } from "../../src/policy/model.ts";
import { cluster, rulesFor } from "../support/cluster.ts";
import type { Manifest } from "../support/manifests.ts";

type Meta = { name: string; namespace?: string; labels?: Record<string, string> };
const meta = (m: Manifest) => m.metadata as Meta;

Deno.test("scale cluster: 10,000 pods has the asked-for counts", () => {
  const size = scaleSize(10_000);
  const c = generateCluster(size, 1);
  assert.equal(c.namespaces.length, 200);
  assert.equal(c.networks.length, 20);
  assert.equal(c.pods.length, 10_000);
  assert.equal(c.policies.length, 1_000);
  const types = c.networks.map((n) => JSON.parse((n.spec as { config: string }).config).type);
  assert.equal(types.filter((t) => t === "accelerated-bridge").length, 16);
  const nodeOf = (p: Manifest) => (p.spec as { nodeName: string }).nodeName;
  const local = c.pods.filter((p) => nodeOf(p) === c.node);
  assert.equal(local.length, 200);
  const withPci = local.filter((p) =>
    JSON.stringify((p.metadata as { annotations: Record<string, string> }).annotations)
      .includes("pci-address")
  );
  assert.equal(withPci.length, 64);
  assert.equal(new Set(c.pods.map(nodeOf).filter((n) => n !== c.node)).size, 100);
  // Namespaces carry labels; pods a few labels and a secondary-network address.
  assert.ok(c.namespaces.every((n) => Object.keys(meta(n).labels ?? {}).length >= 3));
  assert.ok(c.pods.every((p) => Object.keys(meta(p).labels ?? {}).length >= 3));
  const names = new Set(c.pods.map((p) => `${meta(p).namespace}/${meta(p).name}`));
  assert.equal(names.size, 10_000);
  assert.equal(c.churn.localNamespaces.length, 32);
  assert.ok(c.churn.flipPods.length > 500, `${c.churn.flipPods.length} pods to flip`);
  assert.ok(c.churn.flipNamespaces.length > 10, `${c.churn.flipNamespaces.length} to flip`);
});

Deno.test("scale cluster: deterministic per seed, and --pods scales every count", () => {
  const a = generateCluster(scaleSize(1_000), 7);
  const b = generateCluster(scaleSize(1_000), 7);
  assert.deepEqual(a, b);
  assert.notDeepEqual(generateCluster(scaleSize(1_000), 8).pods, a.pods);
  const small = scaleSize(1_000);
  assert.deepEqual(
    [small.namespaces, small.localPods, small.vfPods, small.policies, small.nodes],
    [20, 20, 6, 100, 10],
  );
});

Deno.test("scale cluster: a realistic policy mix, with anchor ports only in anchors", () => {
  const c = generateCluster(scaleSize(10_000), 1);
  const text = JSON.stringify(c.policies);
  for (const form of ["matchExpressions", '"except"', '"endPort"', '"port":"http"', "NotIn"]) {
    assert.ok(text.includes(form), form);
  }
  for (const form of ['"Exists"', "DoesNotExist", "namespaceSelector", '"SCTP"', '"UDP"']) {
    assert.ok(text.includes(form), form);
  }
  const anchors = new Set(c.churn.localNamespaces.map((n) => `${n.name}/${n.anchor}`));
  for (const policy of c.policies) {
    const numbers = [...JSON.stringify(policy.spec).matchAll(/"(?:port|endPort)":(\d+)/g)]
      .map((m) => Number(m[1]));
    const isAnchor = anchors.has(`${meta(policy).namespace}/${meta(policy).name}`);
    assert.equal(numbers.some((n) => n >= ANCHOR_PORT_MIN), isAnchor, meta(policy).name);
  }
});

Deno.test("scale cluster: the engine renders every VF interface without errors", () => {
  const c = generateCluster(scaleSize(2_000), 3);
  const parsed = cluster([...c.namespaces, ...c.networks, ...c.pods, ...c.policies]);
  assert.deepEqual(parsed.errors, []);
  const rules = rulesFor(parsed.state, c.node);
  assert.deepEqual(rules.errors, []);
  const keys = rules.interfaces.map(interfaceKey).sort();
  assert.deepEqual(keys, c.churn.localNamespaces.flatMap((n) => n.vfKeys).sort());
  for (const iface of rules.interfaces) {
    assert.ok(iface.ingress.isolated && iface.egress.isolated, interfaceKey(iface));
    const anchor = c.churn.localNamespaces.find((n) => n.name === iface.pod.namespace)!;
    assert.ok(iface.ingress.policies.includes(`${anchor.name}/${anchor.anchor}`));
  }
});

/** RFC 7386 JSON merge patch. */
function mergePatch(target: unknown, patch: unknown): unknown {
  if (typeof patch !== "object" || patch === null || Array.isArray(patch)) return patch;
  const out: Record<string, unknown> =
    typeof target === "object" && target !== null && !Array.isArray(target)
      ? { ...target as Record<string, unknown> }
      : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete out[key];
    else out[key] = mergePatch(out[key], value);
  }
  return out;
}

/** What the API server would do with a churn write, on a list of manifests. */
function applyWrite(
  objects: Manifest[],
  method: string,
  path: string,
  body: unknown,
): Manifest[] {
  if (method === "POST") return [...objects, body as Manifest];
  const parts = path.split("?")[0].split("/");
  const name = parts[parts.length - 1];
  const collection = parts[parts.length - 2];
  const namespace = collection === "namespaces" ? undefined : parts[parts.length - 3];
  const kind =
    { pods: "Pod", namespaces: "Namespace", "multi-networkpolicies": "MultiNetworkPolicy" }[
      collection
    ];
  const index = objects.findIndex((o) =>
    o.kind === kind && meta(o).name === name && meta(o).namespace === namespace
  );
  assert.ok(index >= 0, `${method} ${path}: no such object`);
  if (method === "DELETE") return objects.filter((_, i) => i !== index);
  return objects.map((o, i) => i === index ? mergePatch(o, body) as Manifest : o);
}

function render(objects: Manifest[], node: string): Map<string, InterfaceRules> {
  const parsed = cluster(objects);
  assert.deepEqual(parsed.errors, []);
  const rules = rulesFor(parsed.state, node);
  assert.deepEqual(rules.errors, []);
  return new Map(rules.interfaces.map((i) => [interfaceKey(i), i]));
}

Deno.test("scale churn: each change alters exactly the expected interfaces, and its token shows it", () => {
  const c = generateCluster(scaleSize(1_000), 5);
  let objects = [...c.namespaces, ...c.networks, ...c.pods, ...c.policies];
  const plan = new ChurnPlan(c.churn);
  let clock = 0;
  const sink = new ScaleSink(() => clock);
  let before = render(objects, c.node);
  void sink.apply([...before].map(([key, rules]) => ({ key, rules })), { verify: "all" });
  const ops: OpRecord[] = [];
  const seen = new Set<ChurnKind>();
  for (let i = 0; i < 160; i++) {
    const op = plan.next();
    seen.add(op.kind);
    clock = 10 * (i + 1);
    objects = applyWrite(objects, op.request.method, op.request.path, op.request.body);
    ops.push({ ...op, start: clock, done: clock + 1, error: null });
    const after = render(objects, c.node);
    const changes: RulesChange[] = [];
    for (const [key, rules] of after) {
      if (JSON.stringify(rules) !== JSON.stringify(before.get(key))) changes.push({ key, rules });
    }
    for (const key of before.keys()) if (!after.has(key)) changes.push({ key, rules: null });
    assert.deepEqual(
      changes.map((change) => change.key).sort(),
      [...op.expected].sort(),
      `${op.seq} ${op.kind} ${op.target}`,
    );
    clock += 5;
    void sink.apply(changes);
    before = after;
  }
  assert.deepEqual([...seen].sort(), [...CHURN_KINDS].sort());
  const matches = matchOps(ops, sink.calls);
  matches.forEach((match, i) => {
    assert.equal(match?.call, i + 1, `${ops[i].seq} ${ops[i].kind} ${ops[i].target}`);
    assert.equal(match?.latencyMs, 4);
    assert.equal(match?.superseded, false);
  });
});

Deno.test("scale report: a write coalesced with a later one of the same object is matched to it", () => {
  const op = (seq: number, object: string, port: number): OpRecord => ({
    seq,
    kind: "policy-edit",
    object,
    target: `${object} port=${port}`,
    token: { kind: "port", port },
    expected: [],
    start: seq * 10,
    done: seq * 10 + 1,
    error: null,
  });
  const ops = [op(0, "a", 21000), op(1, "b", 21001), op(2, "a", 21002)];
  const calls = [{
    at: 50,
    full: false,
    changes: [{
      key: "k",
      removed: false,
      ipsIn: [],
      ipsOut: [],
      newPorts: [[21002, 21002]] as Ranges,
    }],
  }];
  const [first, second, third] = matchOps(ops, calls);
  assert.deepEqual(first, { call: 0, latencyMs: 49, fromStartMs: 50, superseded: true });
  assert.equal(second, null);
  assert.deepEqual(third, { call: 0, latencyMs: 29, fromStartMs: 30, superseded: false });
});

Deno.test("scale recorder: range arithmetic and the anchor view", () => {
  assert.deepEqual(subtractRanges([[0, 10], [20, 30]], [[5, 22]]), [[0, 4], [23, 30]]);
  assert.deepEqual(mergeRanges([[5, 6], [0, 4], [8, 9]]), [[0, 6], [8, 9]]);
  const sink = new ScaleSink(() => 1);
  const rules = (cidrs: string[], port: number) => ({
    pod: { namespace: "a", name: "p", uid: "" },
    network: "a/n",
    pluginType: "accelerated-bridge",
    interfaceName: "net1",
    pciAddress: "0000:3b:02.0",
    ips: [],
    ingress: {
      isolated: true,
      policies: [],
      allow: [
        { cidrs, protocol: "TCP" as const, ports: [{ first: port, last: port }] },
        { cidrs: ["10.0.0.0/8"], protocol: "TCP" as const, ports: [{ first: 80, last: 80 }] },
      ],
    },
    egress: { isolated: false, policies: [], allow: [] },
  });
  void sink.apply([{ key: "k", rules: rules(["10.64.0.0/30"], 21000) }]);
  void sink.apply([{ key: "k", rules: rules(["10.64.0.0/31"], 21005) }]);
  const change = sink.calls[1].changes[0];
  assert.deepEqual(change.ipsIn, []);
  assert.deepEqual(change.ipsOut, [[ipv4("10.64.0.2")!, ipv4("10.64.0.3")!]]);
  assert.deepEqual(change.newPorts, [[21005, 21005]]);
});

Deno.test("scale report: an address entering and leaving are told apart", () => {
  const op = (seq: number, enter: boolean): OpRecord => ({
    seq,
    kind: enter ? "remote-create" : "remote-delete",
    object: "Pod a/x",
    target: "Pod a/x",
    token: { kind: "ips", ips: ["10.64.0.9"], enter },
    expected: [],
    start: seq,
    done: seq + 1,
    error: null,
  });
  const x = ipv4("10.64.0.9")!;
  const change = (ipsIn: Ranges, ipsOut: Ranges) => ({
    key: "k",
    removed: false,
    ipsIn,
    ipsOut,
    newPorts: [],
  });
  // Both writes were sent before the first sync, which saw only the create.
  const calls = [
    { at: 10, full: false, changes: [change([[x, x]], [])] },
    { at: 20, full: false, changes: [change([], [[x, x]])] },
  ];
  assert.deepEqual(matchOps([op(0, true), op(1, false)], calls).map((m) => m?.call), [0, 1]);
});
