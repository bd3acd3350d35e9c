/**
 * Fuzzing the trust boundary: seeded, reproducible mutations of the bundled
 * example objects (every field of every object, and the JSON inside
 * annotations). For each mutation:
 * - nothing throws: parsing, the policy engine, TC generation and serialization;
 * - a MultiNetworkPolicy with an error grants nothing that the same policy
 *   without its erroneous parts would not (checked on probe flows, every
 *   interface, both directions);
 * - an error in one pod's object never changes another pod's enforcement:
 *   the same interfaces, on the same VFs, isolated by the same policies.
 * `FUZZ_SEED` and `FUZZ_MUTATIONS` change the seed and the count.
 */
import assert from "node:assert/strict";
import { parseAllDocuments } from "yaml";
import { stateFromObjects } from "../../src/cluster/manifests.ts";
import { type ParsedObject, parseObjects } from "../../src/cluster/parse.ts";
import type { ObjectError } from "../../src/cluster/types.ts";
import { formatIp, parseCidr } from "../../src/net/ip.ts";
import { computeNodeRules } from "../../src/policy/engine.ts";
import type { InterfaceRules, NodeRules } from "../../src/policy/model.ts";
import { generateProgram } from "../../src/tc/generate.ts";
import { batchText } from "../../src/tc/serialize.ts";
import { allows, type Flow } from "../support/cluster.ts";

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

const SEED = Number(Deno.env.get("FUZZ_SEED") ?? 20261129);
const MUTATIONS = Number(Deno.env.get("FUZZ_MUTATIONS") ?? 10_000);
const NODES = ["worker-1", "worker-2"];

/** A small seeded generator (mulberry32): the same seed gives the same run. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const HOSTILE: Json[] = [
  null,
  "",
  "a\nb",
  "x;reboot",
  -1,
  0,
  65536,
  1.5,
  true,
  [],
  {},
  [{}],
  "10.0.0.0/33",
  "0.0.0.0/0",
  "::/0",
  "fd00::1",
  "In",
  "NotIn",
  "Exists",
  "SCTP",
  "ICMP",
  "Egress",
  "x".repeat(300),
  "0000:3b:02.1",
  "telco/sriov-data",
  { key: "app", operator: "In" },
];

/**
 * A namespace-wide default deny on both telco networks, as operators add beside
 * their allow policies: with it, a broken policy that granted pods more than it
 * should would show (without it, most pods' directions are open anyway).
 */
const DEFAULT_DENY: JsonObject = {
  apiVersion: "k8s.cni.cncf.io/v1beta2",
  kind: "MultiNetworkPolicy",
  metadata: {
    name: "default-deny",
    namespace: "telco",
    annotations: { "k8s.v1.cni.cncf.io/policy-for": "sriov-data,sriov-mgmt" },
  },
  spec: { podSelector: {}, policyTypes: ["Ingress", "Egress"] },
};

/** The example objects as raw JSON, and a default deny (never mutated). */
async function examples(): Promise<JsonObject[]> {
  const out: JsonObject[] = [];
  const dir = new URL("../../examples/", import.meta.url);
  const names = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
  for (const name of names) {
    const text = await Deno.readTextFile(new URL(name, dir));
    for (const doc of parseAllDocuments(text)) out.push(doc.toJS() as JsonObject);
  }
  return out;
}

/** Every (container, key) inside a value, JSON strings inside annotations included. */
function slots(value: Json, out: [Json[] | JsonObject, string | number][] = []) {
  if (Array.isArray(value)) {
    value.forEach((item, i) => {
      out.push([value, i]);
      slots(item, out);
    });
  } else if (value !== null && typeof value === "object") {
    for (const [key, item] of Object.entries(value)) {
      out.push([value, key]);
      slots(item, out);
    }
  }
  return out;
}

/** Applies one random mutation to a deep copy of `object`; says what it did. */
function mutate(object: JsonObject, next: () => number): { object: JsonObject; what: string } {
  const copy = structuredClone(object);
  const pick = <T>(list: T[]): T => list[Math.floor(next() * list.length)];
  const all = slots(copy);
  const [container, key] = pick(all);
  const current = (container as Record<string | number, Json>)[key];
  const op = Math.floor(next() * 5);
  const set = (value: Json) => ((container as Record<string | number, Json>)[key] = value);
  if (typeof current === "string" && current.startsWith("[") && op < 2) {
    // JSON inside an annotation: mutate the parsed value, write it back.
    try {
      const inner = JSON.parse(current) as Json;
      const wrapped = mutate({ inner } as JsonObject, next);
      set(JSON.stringify(wrapped.object.inner));
      return { object: copy, what: `${key} JSON: ${wrapped.what}` };
    } catch {
      // Not JSON: fall through to a plain mutation.
    }
  }
  switch (op) {
    case 0:
      if (Array.isArray(container)) container.splice(key as number, 1);
      else delete (container as JsonObject)[key];
      return { object: copy, what: `delete ${key}` };
    case 1:
      if (Array.isArray(container)) container.push(structuredClone(current));
      else set([current, current]);
      return { object: copy, what: `duplicate ${key}` };
    case 2:
      if (typeof current === "string") {
        set(current + pick(["\n", " ", "/", "*", "\u202e", "0", "-"]));
        return { object: copy, what: `append to ${key}` };
      }
      set(pick(HOSTILE));
      return { object: copy, what: `replace ${key}` };
    default:
      set(pick(HOSTILE));
      return { object: copy, what: `replace ${key}` };
  }
}

interface Rendered {
  errors: ObjectError[];
  rules: Map<string, InterfaceRules>;
}

/** Parses, renders for every node, and generates and serializes every program. */
function render(raw: JsonObject[]): Rendered {
  const objects: ParsedObject[] = [];
  const errors: ObjectError[] = [];
  for (const object of raw) {
    const parsed = parseObjects(object);
    objects.push(...parsed.objects);
    errors.push(...parsed.errors);
  }
  const state = stateFromObjects(objects);
  const rules = new Map<string, InterfaceRules>();
  for (const node of NODES) {
    const result: NodeRules = computeNodeRules(state, {
      node,
      networkPlugins: ["accelerated-bridge"],
    });
    for (const iface of result.interfaces) {
      const program = generateProgram(iface, { device: "rep0", zone: 7, generation: 1 });
      batchText("rep0", program.filters.map((filter) => ({ op: "filter-add", filter })));
      rules.set(
        `${iface.pod.namespace}/${iface.pod.name}/${iface.network}/${iface.interfaceName}`,
        iface,
      );
    }
  }
  return { errors, rules };
}

/** Probe flows: the edges of every allowed prefix and port range, and fixed ones. */
function probes(results: Rendered[]): Flow[] {
  const peers = new Set(["10.56.1.10", "10.57.1.10", "192.0.2.1", "fd00:56::10", "2001:db8::1"]);
  const ports = new Set([1, 80, 2152, 9100, 65535]);
  for (const { rules } of results) {
    for (const iface of rules.values()) {
      for (const entry of [...iface.ingress.allow, ...iface.egress.allow]) {
        for (const text of entry.cidrs.slice(0, 8)) {
          const cidr = parseCidr(text);
          if (cidr) peers.add(formatIp(cidr.family, cidr.base));
        }
        for (const range of entry.ports) {
          for (const p of [range.first, range.last]) {
            if (p >= 1 && p <= 65535) ports.add(p);
          }
        }
      }
    }
  }
  const flows: Flow[] = [];
  for (const peer of [...peers].slice(0, 40)) {
    flows.push({ peer, protocol: "ICMP" });
    for (const protocol of ["TCP", "UDP", "SCTP"] as const) {
      for (const port of ports) flows.push({ peer, protocol, port });
    }
  }
  return flows;
}

/**
 * The policy with the parts its errors name removed: the "same policy without
 * them". A `podSelector` that cannot be evaluated leaves no policy at all: which
 * pods it was meant for is unknown, so it may grant nothing to anyone. Null:
 * the errors are outside the spec (metadata, annotations), with nothing to compare.
 */
function withoutErroneousParts(
  policy: JsonObject,
  errors: ObjectError[],
): JsonObject | "nothing" | null {
  if (errors.some((error) => error.field.startsWith("spec.podSelector"))) return "nothing";
  const copy = structuredClone(policy);
  const spec = copy.spec;
  const removals: [string, number | null][] = [];
  for (const error of errors) {
    const m = /^spec\.(ingress|egress)(?:\[(\d+)\])?/.exec(error.field) ??
      /^spec\.(podSelector|policyTypes)/.exec(error.field) ?? /^(spec)$/.exec(error.field);
    if (!m) return null; // metadata or annotation problems: no "policy without it" to compare.
    removals.push([m[1], m[2] === undefined ? null : Number(m[2])]);
  }
  if (spec === null || typeof spec !== "object" || Array.isArray(spec)) {
    delete copy.spec;
    return copy;
  }
  const distinct = [...new Map(removals.map((r) => [r.join(":"), r])).values()];
  const indexed = distinct.filter(([, i]) => i !== null).sort((a, b) => b[1]! - a[1]!);
  for (const [field, index] of indexed) {
    const list = spec[field];
    if (Array.isArray(list) && index! < list.length) list.splice(index!, 1);
  }
  for (const [field, index] of distinct) if (index === null) delete spec[field];
  return copy;
}

Deno.test("fuzz: mutated example objects never crash, widen access, or move another pod", async () => {
  const base = await examples();
  const fixed = [DEFAULT_DENY];
  const baseline = render([...base, ...fixed]);
  assert.deepEqual(baseline.errors, [], "the examples must be clean");
  const next = random(SEED);
  const counts = { mutations: 0, withErrors: 0, policyChecks: 0, podChecks: 0, flows: 0 };
  for (let n = 0; n < MUTATIONS; n++) {
    const index = Math.floor(next() * base.length);
    const { object, what } = mutate(base[index], next);
    const objects = base.slice();
    objects[index] = object;
    const where = `mutation ${n} (seed ${SEED}) of ${base[index].kind} ${
      (base[index].metadata as JsonObject).name
    }: ${JSON.stringify(what)}`;
    let mutated: Rendered;
    try {
      mutated = render([...objects, ...fixed]);
    } catch (error) {
      assert.fail(`${where}: threw ${(error as Error).stack}`);
    }
    counts.mutations++;
    if (mutated.errors.length === 0) continue;
    counts.withErrors++;
    if (object.kind === "MultiNetworkPolicy") {
      const reference = withoutErroneousParts(object, mutated.errors);
      if (!reference) continue;
      const refObjects = base.slice();
      if (reference === "nothing") refObjects.splice(index, 1);
      else refObjects[index] = reference;
      const expected = render([...refObjects, ...fixed]);
      const flows = probes([mutated, expected]);
      for (const [key, iface] of mutated.rules) {
        const ref = expected.rules.get(key);
        assert.ok(ref, `${where}: interface ${key} only with the error`);
        for (const direction of ["ingress", "egress"] as const) {
          for (const flow of flows) {
            if (allows(iface[direction], flow) && !allows(ref[direction], flow)) {
              assert.fail(
                `${where}: ${key} ${direction} allows ${JSON.stringify(flow)} only with the error`,
              );
            }
          }
          counts.flows += flows.length;
        }
      }
      counts.policyChecks++;
    } else if (object.kind === "Pod") {
      const self = `${(base[index].metadata as JsonObject).namespace}/${
        (base[index].metadata as JsonObject).name
      }/`;
      for (const [key, before] of baseline.rules) {
        if (key.startsWith(self)) continue;
        const after = mutated.rules.get(key);
        assert.ok(after, `${where}: another pod's interface ${key} is no longer enforced`);
        assert.equal(after.pciAddress, before.pciAddress, `${where}: ${key} VF`);
        for (const direction of ["ingress", "egress"] as const) {
          assert.equal(after[direction].isolated, before[direction].isolated, `${where}: ${key}`);
          assert.deepEqual(after[direction].policies, before[direction].policies, where);
        }
      }
      counts.podChecks++;
    }
  }
  console.log(
    `fuzz (seed ${SEED}): ${counts.mutations} mutations, ${counts.withErrors} with errors; ` +
      `${counts.policyChecks} erroneous policies compared on ${counts.flows} flow verdicts; ` +
      `${counts.podChecks} erroneous pods checked against every other pod`,
  );
  assert.ok(counts.policyChecks > 100 && counts.podChecks > 100, JSON.stringify(counts));
});
