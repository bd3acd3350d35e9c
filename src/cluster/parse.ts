/**
 * Turns raw Kubernetes objects (parsed JSON/YAML, untrusted) into the typed
 * model of ./types.ts. Never throws on bad input: each problem becomes an
 * {@link ObjectError} naming the object and field, and the object is kept
 * in the safest usable form (fail closed for policies) or skipped.
 */
import { show } from "../log/quote.ts";
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

/** Parses a NetworkAttachmentDefinition, extracting its main CNI plugin type. */
export function parseNetworkAttachmentDefinition(
  raw: JsonObject,
): ParseResult<NetworkAttachmentDefinition> {
  const { meta, reporter: r } = readMeta(raw, "NetworkAttachmentDefinition", true);
  if (!meta) return { value: null, errors: r.errors };
  const spec = readObject(raw, "spec", "spec", r) ?? {};
  const configText = readString(spec, "config", "spec.config", r);
  let pluginType = "";
  if (configText.trim() !== "") {
    try {
      const config: Json = JSON.parse(configText);
      if (!isObject(config)) {
        r.add("spec.config", `want a JSON object, got ${describe(config)}`);
      } else if (typeof config.type === "string") {
        pluginType = config.type;
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
  return {
    value: { namespace: meta.namespace, name: meta.name, pluginType },
    errors: r.errors,
  };
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

/** Parses one raw object (or a `List` of them) of any supported kind; `where` names its source. */
export function parseObjects(raw: Json, where = "document"): {
  objects: ParsedObject[];
  errors: ObjectError[];
} {
  const objects: ParsedObject[] = [];
  const errors: ObjectError[] = [];
  if (raw === null || raw === undefined) return { objects, errors };
  if (!isObject(raw)) {
    errors.push({
      object: where,
      field: "(root)",
      message: `want an object, got ${describe(raw)}`,
    });
    return { objects, errors };
  }
  const kind = raw.kind;
  if (typeof kind === "string" && kind.endsWith("List") && Array.isArray(raw.items)) {
    raw.items.forEach((item, i) => {
      const nested = parseObjects(item, `${where} items[${i}]`);
      objects.push(...nested.objects);
      errors.push(...nested.errors);
    });
    return { objects, errors };
  }
  if (typeof kind === "string" && Object.hasOwn(PARSERS, kind)) {
    const known = kind as ParsedObject["kind"];
    const result = PARSERS[known](raw);
    errors.push(...result.errors);
    if (result.value) objects.push({ kind: known, value: result.value } as ParsedObject);
    return { objects, errors };
  }
  const meta = isObject(raw.metadata) ? raw.metadata : {};
  const name = typeof meta.name === "string" ? meta.name : "<unnamed>";
  errors.push({
    object: `${typeof kind === "string" ? kind : "<no kind>"} ${name} (${where})`,
    field: "kind",
    message: `unsupported kind ${show(kind)}; object ignored`,
  });
  return { objects, errors };
}
