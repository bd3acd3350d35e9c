/**
 * Loading manifests from files: a key written twice is an error naming the
 * object and the key (the object is rejected, as the API server rejects it);
 * an unknown field of a MultiNetworkPolicy is a warning naming it.
 */
import assert from "node:assert/strict";
import { loadManifests, parseManifestText } from "../../src/cluster/manifests.ts";
import { formatObjectError } from "../../src/cluster/types.ts";
import { runMain } from "../support/main_process.ts";

const POLICY = (spec: string) =>
  `apiVersion: k8s.cni.cncf.io/v1beta2
kind: MultiNetworkPolicy
metadata:
  name: p
  namespace: app
  annotations:
    k8s.v1.cni.cncf.io/policy-for: net
spec:
${spec}`;

Deno.test("manifests: a duplicate key in YAML is an error naming the object and the key", () => {
  const result = parseManifestText(
    POLICY(`  podSelector: {}
  ingress:
  - from:
    - ipBlock:
        cidr: 10.0.0.0/8
    ports:
    - port: 80
    from:
    - ipBlock:
        cidr: 0.0.0.0/0
`),
    "p.yaml",
  );
  assert.deepEqual(result.objects, []);
  assert.deepEqual(result.errors.map(formatObjectError), [
    'MultiNetworkPolicy app/p (p.yaml document 1): spec.ingress[0]: duplicate key "from"; ' +
    "object rejected, as the API server rejects it",
  ]);
});

Deno.test("manifests: a duplicate key in JSON is an error too; other documents still load", () => {
  const result = parseManifestText(
    `{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a", "name": "b"}}
---
apiVersion: v1
kind: Namespace
metadata:
  name: ok
`,
    "ns.yaml",
  );
  assert.deepEqual(result.objects.map((o) => o.value.name), ["ok"]);
  assert.equal(result.errors.length, 1);
  assert.match(formatObjectError(result.errors[0]), /metadata: duplicate key "name"/);
});

Deno.test("manifests: unknown policy fields are warnings, one per field; the policy loads", () => {
  const result = parseManifestText(
    POLICY(`  podSelector: {}
  policyType: [Ingress]
  ingress:
  - form:
    - podSelector: {matchLabel: {a: b}}
    ports:
    - port: 80
      protcol: UDP
`),
    "p.yaml",
  );
  assert.equal(result.objects.length, 1);
  assert.deepEqual(result.errors, []);
  assert.deepEqual(result.warnings.map(formatObjectError), [
    "MultiNetworkPolicy app/p: spec.policyType: unknown field; ignored",
    "MultiNetworkPolicy app/p: spec.ingress[0].form: unknown field; ignored",
    "MultiNetworkPolicy app/p: spec.ingress[0].ports[0].protcol: unknown field; ignored",
  ]);
});

Deno.test("manifests: the bundled examples have no duplicate keys and no unknown fields", async () => {
  const loaded = await loadManifests([new URL("../../examples/", import.meta.url).pathname]);
  assert.deepEqual(loaded.errors, []);
  assert.deepEqual(loaded.warnings, []);
});

Deno.test("render: unknown fields are printed as warning lines; the exit status stays 0", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/p.yaml`, POLICY("  podSelector: {}\n  egres: []\n"));
    const out = await runMain("render", "-f", dir, "--node", "n");
    assert.equal(
      out.stderr,
      "warning: MultiNetworkPolicy app/p: spec.egres: unknown field; ignored\n",
    );
    assert.equal(out.code, 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("render: an interface over --max-filters-per-interface is shown as deny-all", async () => {
  const out = await runMain(
    "render",
    "-f",
    "examples/",
    "--node",
    "worker-1",
    "--max-filters-per-interface",
    "30",
  );
  assert.equal(out.code, 0, out.stderr);
  assert.match(
    out.stdout,
    /over the filter limit: its program needs \d+ filters, more than --max-filters-per-interface 30: deny all both ways/,
  );
  assert.doesNotMatch(out.stdout, /^\s+allow /m, "nothing is allowed anywhere");
});
