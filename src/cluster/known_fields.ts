/**
 * The fields of a MultiNetworkPolicy, as its CRD defines them, so that a
 * misspelt field in a hand-written manifest (`form:` for `from:`) is reported
 * instead of silently dropped. The API server prunes unknown fields of CRDs;
 * `render`, which reads files, warns about them the way
 * `kubectl --validate=warn` does.
 */
import { isObject, type Json } from "./reader.ts";

/** A field's shape: an object with known fields, a list of one shape, or any value. */
type Shape = { [field: string]: Shape } | [Shape] | "value";

const SELECTOR: Shape = {
  matchLabels: "value",
  matchExpressions: [{ key: "value", operator: "value", values: "value" }],
};

const RULE = (peers: "from" | "to"): Shape => ({
  [peers]: [{
    podSelector: SELECTOR,
    namespaceSelector: SELECTOR,
    ipBlock: { cidr: "value", except: "value" },
  }],
  ports: [{ protocol: "value", port: "value", endPort: "value" }],
});

const MULTI_NETWORK_POLICY: Shape = {
  apiVersion: "value",
  kind: "value",
  metadata: "value",
  status: "value",
  spec: {
    podSelector: SELECTOR,
    policyTypes: "value",
    ingress: [RULE("from")],
    egress: [RULE("to")],
  },
};

function walk(value: Json, shape: Shape, path: string, out: string[]): void {
  if (shape === "value") return;
  if (Array.isArray(shape)) {
    if (Array.isArray(value)) {
      value.forEach((item, i) => walk(item, shape[0], `${path}[${i}]`, out));
    }
    return;
  }
  if (!isObject(value)) return;
  for (const [key, child] of Object.entries(value)) {
    const at = path === "" ? key : `${path}.${key}`;
    if (Object.hasOwn(shape, key)) walk(child, shape[key], at, out);
    else out.push(at);
  }
}

/** The paths of fields a MultiNetworkPolicy manifest has that its schema does not know. */
export function unknownPolicyFields(raw: Json): string[] {
  const out: string[] = [];
  walk(raw, MULTI_NETWORK_POLICY, "", out);
  return out;
}
