/**
 * Turns raw Kubernetes objects (parsed JSON/YAML, untrusted) into the typed
 * model of ./types.ts. Never throws on bad input: each problem becomes an
 * {@link ObjectError} naming the object and field, and the object is kept
 * in the safest usable form (fail closed for policies) or skipped.
 */
import { quoteUnlessPlain, show } from "../log/quote.ts";
import { checkResourceName } from "./validate.ts";
import { unknownPolicyFields } from "./known_fields.ts";
import { NAMESPACE_NAME_LABEL } from "./types.ts";
import type {
  MultiNetworkPolicy,
  Namespace,
  NetworkAttachmentDefinition,
  ObjectError,
  Pod,
} from "./types.ts";
import { parsePod } from "./parse_pod.ts";
import { parseMultiNetworkPolicy } from "./parse_policy.ts";
import {
  describe,
  isObject,
  type Json,
  type JsonObject,
  type ParseResult,
  readMeta,
  readObject,
  readString,
  type Reporter,
} from "./reader.ts";

export { NETWORK_STATUS_ANNOTATION, NETWORKS_ANNOTATION, parsePod } from "./parse_pod.ts";
export { parseMultiNetworkPolicy, POLICY_FOR_ANNOTATION } from "./parse_policy.ts";
export type { ParseResult } from "./reader.ts";

/** A parsed object of one of the kinds the agent reads. */
export type ParsedObject =
  | { kind: "Pod"; value: Pod }
  | { kind: "Namespace"; value: Namespace }
  | { kind: "NetworkAttachmentDefinition"; value: NetworkAttachmentDefinition }
  | { kind: "MultiNetworkPolicy"; value: MultiNetworkPolicy };

/** Parses a Namespace: its name and labels. */
export function parseNamespace(raw: JsonObject): ParseResult<Namespace> {
  const { meta, reporter: r } = readMeta(raw, "Namespace", false);
  if (!meta) return { value: null, errors: r.errors };
  const labels = { ...meta.labels, [NAMESPACE_NAME_LABEL]: meta.name };
  return { value: { name: meta.name, labels }, errors: r.errors };
}

/** The annotation naming the device-plugin resource a network's VFs come from. */
export const RESOURCE_NAME_ANNOTATION = "k8s.v1.cni.cncf.io/resourceName";

/** Parses a NetworkAttachmentDefinition: its main CNI plugin type and device resource. */
export function parseNetworkAttachmentDefinition(
  raw: JsonObject,
): ParseResult<NetworkAttachmentDefinition> {
  const { meta, reporter: r } = readMeta(raw, "NetworkAttachmentDefinition", true);
  if (!meta) return { value: null, errors: r.errors };
  const spec = readObject(raw, "spec", "spec", r) ?? {};
  const configText = readString(spec, "config", "spec.config", r);
  let pluginType = "";
  let encapsulation: { vlan?: number; trunk?: boolean } = {};
  if (configText.trim() !== "") {
    try {
      const config: Json = JSON.parse(configText);
      if (!isObject(config)) {
        r.add("spec.config", `want a JSON object, got ${describe(config)}`);
      } else if (typeof config.type === "string") {
        pluginType = config.type;
        encapsulation = readEncapsulation(config, r);
      } else if (Array.isArray(config.plugins)) {
        const first = config.plugins[0];
        if (isObject(first) && typeof first.type === "string") pluginType = first.type;
        else r.add("spec.config.plugins[0].type", "want a string");
      } else {
        r.add("spec.config", "neither a plugin (type) nor a conflist (plugins)");
      }
    } catch (error) {
      r.add("spec.config", `invalid JSON: ${(error as Error).message}`);
    }
  }
  const resourceName = (meta.annotations[RESOURCE_NAME_ANNOTATION] ?? "").trim();
  const resourceProblem = resourceName === "" ? null : checkResourceName(resourceName);
  if (resourceProblem) r.add(`metadata.annotations[${RESOURCE_NAME_ANNOTATION}]`, resourceProblem);
  return {
    value: {
      namespace: meta.namespace,
      name: meta.name,
      pluginType,
      resourceName: resourceProblem ? "" : resourceName,
      ...encapsulation,
    },
    errors: r.errors,
  };
}

/**
 * The VLAN settings of an accelerated-bridge config: `vlan` (1-4094; 0 or
 * absent: untagged) and `trunk` (a non-empty list: pods may send tagged
 * frames). A malformed `trunk` counts as a trunk, so tagged frames stay policed.
 */
function readEncapsulation(
  config: JsonObject,
  r: Reporter,
): { vlan?: number; trunk?: boolean } {
  const out: { vlan?: number; trunk?: boolean } = {};
  const vlan = config.vlan;
  if (vlan !== undefined && vlan !== 0) {
    if (typeof vlan === "number" && Number.isInteger(vlan) && vlan >= 1 && vlan <= 4094) {
      out.vlan = vlan;
    } else r.add("spec.config.vlan", `want a VLAN id 0-4094, got ${describe(vlan)}`);
  }
  const trunk = config.trunk;
  if (trunk !== undefined) {
    if (!Array.isArray(trunk)) {
      r.add("spec.config.trunk", `want a list, got ${describe(trunk)}; tagged frames stay policed`);
      out.trunk = true;
    } else if (trunk.length > 0) out.trunk = true;
  }
  return out;
}

/** The parser of each supported kind. */
export const PARSERS: {
  [K in ParsedObject["kind"]]: (
    raw: JsonObject,
  ) => ParseResult<Extract<ParsedObject, { kind: K }>["value"]>;
} = {
  Pod: parsePod,
  Namespace: parseNamespace,
  NetworkAttachmentDefinition: parseNetworkAttachmentDefinition,
  MultiNetworkPolicy: parseMultiNetworkPolicy,
};

/** How an error names a raw object: `Kind namespace/name`, quoted unless plain. */
export function objectName(raw: Json): string {
  const object = isObject(raw) ? raw : {};
  const meta = isObject(object.metadata) ? object.metadata : {};
  const kind = typeof object.kind === "string" ? quoteUnlessPlain(object.kind) : "<no kind>";
  const namespace = typeof meta.namespace === "string" && meta.namespace !== ""
    ? `${meta.namespace}/`
    : "";
  const name = typeof meta.name === "string" ? meta.name : "<unnamed>";
  return `${kind} ${quoteUnlessPlain(namespace + name)}`;
}

/** What {@link parseObjects} found: objects kept, errors, and warnings that change nothing. */
export interface ParsedObjects {
  objects: ParsedObject[];
  errors: ObjectError[];
  warnings: ObjectError[];
}

/** Parses one raw object (or a `List` of them) of any supported kind; `where` names its source. */
export function parseObjects(raw: Json, where = "document"): ParsedObjects {
  const out: ParsedObjects = { objects: [], errors: [], warnings: [] };
  if (raw === null || raw === undefined) return out;
  if (!isObject(raw)) {
    out.errors.push({
      object: where,
      field: "(root)",
      message: `want an object, got ${describe(raw)}`,
    });
    return out;
  }
  const kind = raw.kind;
  if (typeof kind === "string" && kind.endsWith("List") && Array.isArray(raw.items)) {
    raw.items.forEach((item, i) => {
      const nested = parseObjects(item, `${where} items[${i}]`);
      for (const item of nested.objects) out.objects.push(item);
      for (const item of nested.errors) out.errors.push(item);
      for (const item of nested.warnings) out.warnings.push(item);
    });
    return out;
  }
  if (typeof kind === "string" && Object.hasOwn(PARSERS, kind)) {
    const known = kind as ParsedObject["kind"];
    const result = PARSERS[known](raw);
    for (const item of result.errors) out.errors.push(item);
    if (result.value) out.objects.push({ kind: known, value: result.value } as ParsedObject);
    if (known === "MultiNetworkPolicy") {
      const object = objectName(raw);
      for (const field of unknownPolicyFields(raw)) {
        out.warnings.push({ object, field, message: "unknown field; ignored" });
      }
    }
    return out;
  }
  const meta = isObject(raw.metadata) ? raw.metadata : {};
  const name = typeof meta.name === "string" ? quoteUnlessPlain(meta.name) : "<unnamed>";
  out.errors.push({
    object: `${typeof kind === "string" ? quoteUnlessPlain(kind) : "<no kind>"} ${name} (${where})`,
    field: "kind",
    message: `unsupported kind ${show(kind)}; object ignored`,
  });
  return out;
}
