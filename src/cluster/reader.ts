/**
 * Reading untrusted Kubernetes JSON field by field: each problem is
 * recorded with the object and the field path, and a safe default is used.
 */
import { escapeControls, quoteUnlessPlain, show } from "../log/quote.ts";
import type { ObjectError, Protocol } from "./types.ts";
import { checkNamespaceName, checkObjectName, checkUid } from "./validate.ts";

/** The result of parsing: the objects kept and the problems found. */
export interface ParseResult<T> {
  value: T | null;
  errors: ObjectError[];
}

/** Untrusted JSON as parsed. */
export type Json = unknown;
/** A JSON object. */
export type JsonObject = Record<string, Json>;

/** Whether a value is a JSON object (not null, not a list). */
export function isObject(value: Json): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Collects errors for one object, with its display name. */
export class Reporter {
  readonly errors: ObjectError[] = [];
  constructor(public object: string) {}
  add(field: string, message: string): void {
    this.errors.push({ object: this.object, field, message });
  }
}

/** A value's type for error messages. */
export function describe(value: Json): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  return typeof value === "object" ? "an object" : `${typeof value} ${show(value)}`;
}

/** Reads an optional string field, reporting a wrong type. */
export function readString(
  obj: JsonObject,
  key: string,
  field: string,
  r: Reporter,
  fallback = "",
): string {
  const value = obj[key];
  if (value === undefined || value === null) return fallback;
  if (typeof value !== "string") {
    r.add(field, `want a string, got ${describe(value)}`);
    return fallback;
  }
  return value;
}

/** Reads an optional object field, reporting a wrong type. */
export function readObject(
  obj: JsonObject,
  key: string,
  field: string,
  r: Reporter,
): JsonObject | null {
  const value = obj[key];
  if (value === undefined || value === null) return null;
  if (!isObject(value)) {
    r.add(field, `want an object, got ${describe(value)}`);
    return null;
  }
  return value;
}

/** Reads an optional list field, reporting a wrong type. */
export function readList(obj: JsonObject, key: string, field: string, r: Reporter): Json[] | null {
  const value = obj[key];
  if (value === undefined || value === null) return null;
  if (!Array.isArray(value)) {
    r.add(field, `want a list, got ${describe(value)}`);
    return null;
  }
  return value;
}

/** Reads a string-to-string map (labels, annotations), reporting bad entries. */
export function readStringMap(obj: JsonObject, key: string, field: string, r: Reporter) {
  const map = readObject(obj, key, field, r);
  const out: Record<string, string> = {};
  if (!map) return out;
  for (const [k, v] of Object.entries(map)) {
    if (typeof v === "string") out[k] = v;
    else r.add(`${field}[${quoteUnlessPlain(k)}]`, `want a string, got ${describe(v)}`);
  }
  return out;
}

/** The metadata fields the agent uses. */
export interface Meta {
  name: string;
  namespace: string;
  uid: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

/** Reads and validates metadata; null meta when the object cannot be named. */
export function readMeta(raw: JsonObject, kind: string, namespaced: boolean): {
  meta: Meta | null;
  reporter: Reporter;
} {
  const metaRaw = isObject(raw.metadata) ? raw.metadata : {};
  const name = typeof metaRaw.name === "string" ? metaRaw.name : "";
  const namespace = namespaced
    ? (typeof metaRaw.namespace === "string" && metaRaw.namespace !== ""
      ? metaRaw.namespace
      : "default")
    : "";
  const shown = `${namespaced ? `${namespace}/` : ""}${name}`;
  const r = new Reporter(`${kind} ${name === "" ? "<unnamed>" : quoteUnlessPlain(shown)}`);
  if (!isObject(raw.metadata)) {
    r.add("metadata", `want an object, got ${describe(raw.metadata)}`);
    return { meta: null, reporter: r };
  }
  const nameProblem = namespaced || kind !== "Namespace"
    ? checkObjectName(name)
    : checkNamespaceName(name);
  if (nameProblem) {
    r.add("metadata.name", nameProblem);
    return { meta: null, reporter: r };
  }
  if (namespaced) {
    const nsProblem = checkNamespaceName(namespace);
    if (nsProblem) {
      r.add("metadata.namespace", nsProblem);
      return { meta: null, reporter: r };
    }
  }
  let uid = readString(metaRaw, "uid", "metadata.uid", r);
  const uidProblem = uid === "" ? null : checkUid(uid);
  if (uidProblem) {
    r.add("metadata.uid", uidProblem);
    uid = "";
  }
  return {
    meta: {
      name,
      namespace,
      uid,
      labels: readStringMap(metaRaw, "labels", "metadata.labels", r),
      annotations: readStringMap(metaRaw, "annotations", "metadata.annotations", r),
    },
    reporter: r,
  };
}

/** Protocols a port may name. */
export const PROTOCOLS: readonly Protocol[] = ["TCP", "UDP", "SCTP"];

/** Reads a port's protocol (default TCP). */
export function readProtocol(obj: JsonObject, field: string, r: Reporter): Protocol | null {
  const value = obj.protocol;
  if (value === undefined || value === null) return "TCP";
  if (typeof value === "string" && (PROTOCOLS as readonly string[]).includes(value)) {
    return value as Protocol;
  }
  r.add(field, `unsupported protocol ${show(value)}: want TCP, UDP or SCTP`);
  return null;
}

/** Whether a value is a port number 1-65535. */
export function isPortNumber(value: Json): value is number {
  return typeof value === "number" && Number.isInteger(value) && value >= 1 && value <= 65535;
}

/** `namespace/name` of a network reference, or null when invalid. */
export function qualifyNetwork(text: string, defaultNamespace: string): string | null {
  const parts = text.trim().split("/");
  if (parts.length > 2) return null;
  const [namespace, name] = parts.length === 2 ? parts : [defaultNamespace, parts[0]];
  if (checkNamespaceName(namespace) || checkObjectName(name)) return null;
  return `${namespace}/${name}`;
}

/** Parses an annotation holding a JSON list; null (with the problem reported) otherwise. */
export function readJsonList(text: string, field: string, r: Reporter): Json[] | null {
  let parsed: Json;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    r.add(field, `invalid JSON: ${escapeControls((error as Error).message)}`);
    return null;
  }
  if (!Array.isArray(parsed)) {
    r.add(field, `want a JSON list, got ${describe(parsed)}`);
    return null;
  }
  return parsed;
}
