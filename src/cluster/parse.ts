/**
 * Turns raw Kubernetes objects (parsed JSON/YAML, untrusted) into the typed
 * model of ./types.ts. Never throws on bad input: each problem becomes an
 * {@link ObjectError} naming the object and field, and the object is kept
 * in the safest usable form (fail closed for policies) or skipped.
 */
import { parseCidr, parseIp } from "../net/ip.ts";
import { NAMESPACE_NAME_LABEL } from "./types.ts";
import type {
  ContainerPort,
  Direction,
  IpBlock,
  LabelSelector,
  MultiNetworkPolicy,
  Namespace,
  NetworkAttachmentDefinition,
  NetworkSelection,
  NetworkStatus,
  ObjectError,
  Pod,
  PodPhase,
  PolicyPeer,
  PolicyPort,
  PolicyRule,
  Protocol,
  SelectorOperator,
  SelectorRequirement,
} from "./types.ts";
import {
  checkInterfaceName,
  checkNamespaceName,
  checkObjectName,
  checkPciAddress,
  checkPortName,
  checkUid,
} from "./validate.ts";

/** Annotation listing the networks a pod asks for. */
export const NETWORKS_ANNOTATION = "k8s.v1.cni.cncf.io/networks";
/** Annotation where Multus reports the pod's attached interfaces. */
export const NETWORK_STATUS_ANNOTATION = "k8s.v1.cni.cncf.io/network-status";
/** Annotation naming the networks a MultiNetworkPolicy applies to. */
export const POLICY_FOR_ANNOTATION = "k8s.v1.cni.cncf.io/policy-for";

/** A parsed object of one of the kinds the agent reads. */
export type ParsedObject =
  | { kind: "Pod"; value: Pod }
  | { kind: "Namespace"; value: Namespace }
  | { kind: "NetworkAttachmentDefinition"; value: NetworkAttachmentDefinition }
  | { kind: "MultiNetworkPolicy"; value: MultiNetworkPolicy };

/** The result of parsing: the objects kept and the problems found. */
export interface ParseResult<T> {
  value: T | null;
  errors: ObjectError[];
}

type Json = unknown;
type JsonObject = Record<string, Json>;

function isObject(value: Json): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Collects errors for one object, with its display name. */
class Reporter {
  readonly errors: ObjectError[] = [];
  constructor(public object: string) {}
  add(field: string, message: string): void {
    this.errors.push({ object: this.object, field, message });
  }
}

function describe(value: Json): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  return typeof value === "object" ? "an object" : `${typeof value} ${JSON.stringify(value)}`;
}

function readString(
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

function readObject(obj: JsonObject, key: string, field: string, r: Reporter): JsonObject | null {
  const value = obj[key];
  if (value === undefined || value === null) return null;
  if (!isObject(value)) {
    r.add(field, `want an object, got ${describe(value)}`);
    return null;
  }
  return value;
}

function readList(obj: JsonObject, key: string, field: string, r: Reporter): Json[] | null {
  const value = obj[key];
  if (value === undefined || value === null) return null;
  if (!Array.isArray(value)) {
    r.add(field, `want a list, got ${describe(value)}`);
    return null;
  }
  return value;
}

function readStringMap(obj: JsonObject, key: string, field: string, r: Reporter) {
  const map = readObject(obj, key, field, r);
  const out: Record<string, string> = {};
  if (!map) return out;
  for (const [k, v] of Object.entries(map)) {
    if (typeof v === "string") out[k] = v;
    else r.add(`${field}[${k}]`, `want a string, got ${describe(v)}`);
  }
  return out;
}

interface Meta {
  name: string;
  namespace: string;
  uid: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

function readMeta(raw: JsonObject, kind: string, namespaced: boolean): {
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
  const r = new Reporter(
    `${kind} ${namespaced ? `${namespace}/` : ""}${name === "" ? "<unnamed>" : name}`,
  );
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

const PROTOCOLS: readonly Protocol[] = ["TCP", "UDP", "SCTP"];

function readProtocol(obj: JsonObject, field: string, r: Reporter): Protocol | null {
  const value = obj.protocol;
  if (value === undefined || value === null) return "TCP";
  if (typeof value === "string" && (PROTOCOLS as readonly string[]).includes(value)) {
    return value as Protocol;
  }
  r.add(field, `unsupported protocol ${JSON.stringify(value)}: want TCP, UDP or SCTP`);
  return null;
}

function isPortNumber(value: Json): value is number {
  return typeof value === "number" && Number.isInteger(value) && value >= 1 && value <= 65535;
}

function readContainerPorts(spec: JsonObject, r: Reporter): ContainerPort[] {
  const ports: ContainerPort[] = [];
  const containers = readList(spec, "containers", "spec.containers", r) ?? [];
  containers.forEach((container, ci) => {
    if (!isObject(container)) {
      r.add(`spec.containers[${ci}]`, `want an object, got ${describe(container)}`);
      return;
    }
    const list = readList(container, "ports", `spec.containers[${ci}].ports`, r) ?? [];
    list.forEach((port, pi) => {
      const field = `spec.containers[${ci}].ports[${pi}]`;
      if (!isObject(port)) {
        r.add(field, `want an object, got ${describe(port)}`);
        return;
      }
      if (port.name === undefined || port.name === null) return;
      const name = readString(port, "name", `${field}.name`, r);
      const nameProblem = checkPortName(name);
      if (nameProblem) {
        r.add(`${field}.name`, nameProblem);
        return;
      }
      if (!isPortNumber(port.containerPort)) {
        r.add(
          `${field}.containerPort`,
          `want a port number 1-65535, got ${describe(port.containerPort)}`,
        );
        return;
      }
      const protocol = readProtocol(port, `${field}.protocol`, r);
      if (protocol) ports.push({ name, port: port.containerPort, protocol });
    });
  });
  return ports;
}

function qualifyNetwork(text: string, defaultNamespace: string): string | null {
  const parts = text.trim().split("/");
  if (parts.length > 2) return null;
  const [namespace, name] = parts.length === 2 ? parts : [defaultNamespace, parts[0]];
  if (checkNamespaceName(namespace) || checkObjectName(name)) return null;
  return `${namespace}/${name}`;
}

function parseNetworksAnnotation(text: string, namespace: string, r: Reporter): NetworkSelection[] {
  const field = `metadata.annotations[${NETWORKS_ANNOTATION}]`;
  const trimmed = text.trim();
  if (trimmed === "") return [];
  if (trimmed.startsWith("[") || trimmed.startsWith("{")) {
    let parsed: Json;
    try {
      parsed = JSON.parse(trimmed);
    } catch (error) {
      r.add(field, `invalid JSON: ${(error as Error).message}`);
      return [];
    }
    if (!Array.isArray(parsed)) {
      r.add(field, `want a JSON list, got ${describe(parsed)}`);
      return [];
    }
    const out: NetworkSelection[] = [];
    parsed.forEach((entry, i) => {
      if (!isObject(entry) || typeof entry.name !== "string") {
        r.add(`${field}[${i}].name`, "want an object with a string name");
        return;
      }
      const ns = typeof entry.namespace === "string" && entry.namespace !== ""
        ? entry.namespace
        : namespace;
      const network = qualifyNetwork(
        entry.name.includes("/") ? entry.name : `${ns}/${entry.name}`,
        ns,
      );
      if (!network) {
        r.add(`${field}[${i}].name`, `invalid network name ${JSON.stringify(entry.name)}`);
        return;
      }
      const selection: NetworkSelection = { network };
      if (typeof entry.interface === "string") selection.interfaceName = entry.interface;
      out.push(selection);
    });
    return out;
  }
  const out: NetworkSelection[] = [];
  trimmed.split(",").forEach((item, i) => {
    const [ref, ifname] = item.trim().split("@");
    const network = qualifyNetwork(ref, namespace);
    if (!network) {
      r.add(`${field}[${i}]`, `invalid network reference ${JSON.stringify(item.trim())}`);
      return;
    }
    out.push(ifname ? { network, interfaceName: ifname } : { network });
  });
  return out;
}

function parseNetworkStatus(text: string, namespace: string, r: Reporter): NetworkStatus[] {
  const field = `metadata.annotations[${NETWORK_STATUS_ANNOTATION}]`;
  let parsed: Json;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    r.add(field, `invalid JSON: ${(error as Error).message}`);
    return [];
  }
  if (!Array.isArray(parsed)) {
    r.add(field, `want a JSON list, got ${describe(parsed)}`);
    return [];
  }
  const out: NetworkStatus[] = [];
  parsed.forEach((entry, i) => {
    const at = `${field}[${i}]`;
    if (!isObject(entry)) {
      r.add(at, `want an object, got ${describe(entry)}`);
      return;
    }
    const rawName = readString(entry, "name", `${at}.name`, r);
    const network = qualifyNetwork(rawName, namespace);
    if (!network) {
      r.add(`${at}.name`, `invalid network name ${JSON.stringify(rawName)}; entry skipped`);
      return;
    }
    const interfaceName = readString(entry, "interface", `${at}.interface`, r);
    const isDefault = entry.default === true;
    if (!isDefault || interfaceName !== "") {
      const problem = checkInterfaceName(interfaceName);
      if (problem) {
        r.add(`${at}.interface`, `${problem}; interface rejected`);
        return;
      }
    }
    const ips: string[] = [];
    (readList(entry, "ips", `${at}.ips`, r) ?? []).forEach((ip, j) => {
      const text = typeof ip === "string" ? ip.split("/")[0] : "";
      if (typeof ip !== "string" || parseIp(text) === null) {
        r.add(`${at}.ips[${j}]`, `invalid IP address ${JSON.stringify(ip)}; address ignored`);
        return;
      }
      ips.push(text);
    });
    const status: NetworkStatus = { network, interfaceName, ips, isDefault };
    const mac = readString(entry, "mac", `${at}.mac`, r);
    if (mac !== "") status.mac = mac;
    const deviceInfo = readObject(entry, "device-info", `${at}.device-info`, r);
    const pci = deviceInfo ? readObject(deviceInfo, "pci", `${at}.device-info.pci`, r) : null;
    if (pci) {
      const address = readString(pci, "pci-address", `${at}.device-info.pci.pci-address`, r);
      const problem = checkPciAddress(address);
      if (problem) {
        r.add(`${at}.device-info.pci.pci-address`, `${problem}; interface rejected`);
        return;
      }
      status.pciAddress = address.toLowerCase();
    }
    out.push(status);
  });
  return out;
}

const PHASES: readonly PodPhase[] = ["Pending", "Running", "Succeeded", "Failed", "Unknown"];

/** Parses a Pod. */
export function parsePod(raw: JsonObject): ParseResult<Pod> {
  const { meta, reporter: r } = readMeta(raw, "Pod", true);
  if (!meta) return { value: null, errors: r.errors };
  const spec = readObject(raw, "spec", "spec", r) ?? {};
  const status = readObject(raw, "status", "status", r) ?? {};
  const phaseText = readString(status, "phase", "status.phase", r, "Pending");
  let phase: PodPhase = "Pending";
  if ((PHASES as readonly string[]).includes(phaseText)) phase = phaseText as PodPhase;
  else r.add("status.phase", `unknown phase ${JSON.stringify(phaseText)}`);
  const hostNetwork = spec.hostNetwork === true;
  if (spec.hostNetwork !== undefined && typeof spec.hostNetwork !== "boolean") {
    r.add("spec.hostNetwork", `want a boolean, got ${describe(spec.hostNetwork)}`);
  }
  const networksText = meta.annotations[NETWORKS_ANNOTATION];
  const statusText = meta.annotations[NETWORK_STATUS_ANNOTATION];
  return {
    value: {
      uid: meta.uid,
      namespace: meta.namespace,
      name: meta.name,
      labels: meta.labels,
      nodeName: readString(spec, "nodeName", "spec.nodeName", r),
      hostNetwork,
      phase,
      containerPorts: readContainerPorts(spec, r),
      networks: networksText === undefined
        ? []
        : parseNetworksAnnotation(networksText, meta.namespace, r),
      networkStatus: statusText === undefined
        ? []
        : parseNetworkStatus(statusText, meta.namespace, r),
    },
    errors: r.errors,
  };
}

/** Parses a Namespace. */
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

const OPERATORS: readonly SelectorOperator[] = ["In", "NotIn", "Exists", "DoesNotExist"];

/** Reads a label selector; null (with errors reported) when malformed. */
function readSelector(value: Json, field: string, r: Reporter): LabelSelector | null {
  if (!isObject(value)) {
    r.add(field, `want an object, got ${describe(value)}`);
    return null;
  }
  const before = r.errors.length;
  const matchLabels = readStringMap(value, "matchLabels", `${field}.matchLabels`, r);
  const matchExpressions: SelectorRequirement[] = [];
  (readList(value, "matchExpressions", `${field}.matchExpressions`, r) ?? []).forEach(
    (expr, i) => {
      const at = `${field}.matchExpressions[${i}]`;
      if (!isObject(expr)) {
        r.add(at, `want an object, got ${describe(expr)}`);
        return;
      }
      const key = readString(expr, "key", `${at}.key`, r);
      if (key === "") r.add(`${at}.key`, "must not be empty");
      const operator = expr.operator;
      if (typeof operator !== "string" || !(OPERATORS as readonly string[]).includes(operator)) {
        r.add(
          `${at}.operator`,
          `unknown operator ${JSON.stringify(operator)}: want In, NotIn, Exists or DoesNotExist`,
        );
        return;
      }
      const values: string[] = [];
      (readList(expr, "values", `${at}.values`, r) ?? []).forEach((v, j) => {
        if (typeof v === "string") values.push(v);
        else r.add(`${at}.values[${j}]`, `want a string, got ${describe(v)}`);
      });
      const needsValues = operator === "In" || operator === "NotIn";
      if (needsValues && values.length === 0) {
        r.add(`${at}.values`, `operator ${operator} needs at least one value`);
      }
      if (!needsValues && values.length > 0) {
        r.add(`${at}.values`, `operator ${operator} takes no values`);
      }
      matchExpressions.push({ key, operator: operator as SelectorOperator, values });
    },
  );
  return r.errors.length === before ? { matchLabels, matchExpressions } : null;
}

function readIpBlock(value: JsonObject, field: string, r: Reporter): IpBlock | null {
  const cidrText = value.cidr;
  const cidr = typeof cidrText === "string" ? parseCidr(cidrText) : null;
  if (!cidr) {
    r.add(`${field}.cidr`, `invalid CIDR ${JSON.stringify(cidrText)}`);
    return null;
  }
  const except: string[] = [];
  let ok = true;
  (readList(value, "except", `${field}.except`, r) ?? []).forEach((text, i) => {
    const parsed = typeof text === "string" ? parseCidr(text) : null;
    const inside = parsed && parsed.family === cidr.family && parsed.prefix >= cidr.prefix &&
      (parsed.base >> BigInt((cidr.family === 4 ? 32 : 128) - cidr.prefix)) ===
        (cidr.base >> BigInt((cidr.family === 4 ? 32 : 128) - cidr.prefix));
    if (!parsed) {
      r.add(`${field}.except[${i}]`, `invalid CIDR ${JSON.stringify(text)}`);
      ok = false;
    } else if (!inside) {
      r.add(`${field}.except[${i}]`, `${text} is not within ${cidrText}`);
      ok = false;
    } else {
      except.push(text as string);
    }
  });
  return ok ? { cidr: cidrText as string, except } : null;
}

function readPeer(value: Json, field: string, r: Reporter): PolicyPeer | null {
  if (!isObject(value)) {
    r.add(field, `want an object, got ${describe(value)}`);
    return null;
  }
  const hasIpBlock = value.ipBlock !== undefined && value.ipBlock !== null;
  const hasPods = value.podSelector !== undefined && value.podSelector !== null;
  const hasNamespaces = value.namespaceSelector !== undefined && value.namespaceSelector !== null;
  if (hasIpBlock && (hasPods || hasNamespaces)) {
    r.add(field, "ipBlock cannot be combined with podSelector or namespaceSelector");
    return null;
  }
  if (hasIpBlock) {
    if (!isObject(value.ipBlock)) {
      r.add(`${field}.ipBlock`, `want an object, got ${describe(value.ipBlock)}`);
      return null;
    }
    const ipBlock = readIpBlock(value.ipBlock, `${field}.ipBlock`, r);
    return ipBlock ? { kind: "ipBlock", ipBlock } : null;
  }
  if (!hasPods && !hasNamespaces) {
    r.add(field, "a peer needs podSelector, namespaceSelector or ipBlock");
    return null;
  }
  const peer: PolicyPeer = { kind: "selector" };
  if (hasPods) {
    const selector = readSelector(value.podSelector, `${field}.podSelector`, r);
    if (!selector) return null;
    peer.podSelector = selector;
  }
  if (hasNamespaces) {
    const selector = readSelector(value.namespaceSelector, `${field}.namespaceSelector`, r);
    if (!selector) return null;
    peer.namespaceSelector = selector;
  }
  return peer;
}

function readPolicyPort(value: Json, field: string, r: Reporter): PolicyPort | null {
  if (!isObject(value)) {
    r.add(field, `want an object, got ${describe(value)}`);
    return null;
  }
  const protocol = readProtocol(value, `${field}.protocol`, r);
  if (!protocol) return null;
  const out: PolicyPort = { protocol };
  const port = value.port;
  if (typeof port === "number") {
    if (!isPortNumber(port)) {
      r.add(`${field}.port`, `invalid port ${port}: want 1-65535`);
      return null;
    }
    out.port = { kind: "number", port };
  } else if (typeof port === "string") {
    const problem = checkPortName(port);
    if (problem) {
      r.add(`${field}.port`, problem);
      return null;
    }
    out.port = { kind: "name", name: port };
  } else if (port !== undefined && port !== null) {
    r.add(`${field}.port`, `want a number or a name, got ${describe(port)}`);
    return null;
  }
  const endPort = value.endPort;
  if (endPort !== undefined && endPort !== null) {
    if (out.port?.kind !== "number") {
      r.add(`${field}.endPort`, "endPort needs a numeric port");
      return null;
    }
    if (!isPortNumber(endPort) || endPort < out.port.port) {
      r.add(
        `${field}.endPort`,
        `invalid endPort ${JSON.stringify(endPort)}: want ${out.port.port}-65535`,
      );
      return null;
    }
    out.endPort = endPort;
  }
  return out;
}

function readRules(
  spec: JsonObject,
  direction: Direction,
  r: Reporter,
): PolicyRule[] {
  const peersKey = direction === "ingress" ? "from" : "to";
  const rules: PolicyRule[] = [];
  (readList(spec, direction, `spec.${direction}`, r) ?? []).forEach((raw, i) => {
    const field = `spec.${direction}[${i}]`;
    const before = r.errors.length;
    const rule: PolicyRule = { peers: [], ports: [] };
    if (!isObject(raw)) {
      r.add(field, `want an object, got ${describe(raw)}`);
    } else {
      (readList(raw, peersKey, `${field}.${peersKey}`, r) ?? []).forEach((peer, j) => {
        const parsed = readPeer(peer, `${field}.${peersKey}[${j}]`, r);
        if (parsed) rule.peers.push(parsed);
      });
      (readList(raw, "ports", `${field}.ports`, r) ?? []).forEach((port, j) => {
        const parsed = readPolicyPort(port, `${field}.ports[${j}]`, r);
        if (parsed) rule.ports.push(parsed);
      });
    }
    if (r.errors.length > before) {
      rule.invalid = `${r.errors[before].field}: ${r.errors[before].message}`;
      for (let k = before; k < r.errors.length; k++) {
        r.errors[k].message += "; the rule grants nothing";
      }
    }
    rules.push(rule);
  });
  return rules;
}

const EVERYTHING: LabelSelector = { matchLabels: {}, matchExpressions: [] };

/** Parses a MultiNetworkPolicy (v1beta1 or v1beta2), failing closed on malformed parts. */
export function parseMultiNetworkPolicy(raw: JsonObject): ParseResult<MultiNetworkPolicy> {
  const { meta, reporter: r } = readMeta(raw, "MultiNetworkPolicy", true);
  if (!meta) return { value: null, errors: r.errors };
  const spec = readObject(raw, "spec", "spec", r) ?? {};
  const policyFor: string[] = [];
  const forText = meta.annotations[POLICY_FOR_ANNOTATION];
  const forField = `metadata.annotations[${POLICY_FOR_ANNOTATION}]`;
  if (forText === undefined || forText.trim() === "") {
    r.add(forField, "missing: the policy applies to no network");
  } else {
    forText.split(",").forEach((item, i) => {
      const network = qualifyNetwork(item, meta.namespace);
      if (network) policyFor.push(network);
      else r.add(`${forField}[${i}]`, `invalid network reference ${JSON.stringify(item.trim())}`);
    });
  }
  let podSelector = EVERYTHING;
  if (spec.podSelector !== undefined && spec.podSelector !== null) {
    const selector = readSelector(spec.podSelector, "spec.podSelector", r);
    if (selector) podSelector = selector;
    else r.add("spec.podSelector", "malformed: the policy selects every pod of its namespace");
  }
  const ingress = readRules(spec, "ingress", r);
  const egress = readRules(spec, "egress", r);
  let policyTypes: Direction[];
  const typesRaw = spec.policyTypes;
  if (
    typesRaw === undefined || typesRaw === null ||
    (Array.isArray(typesRaw) && typesRaw.length === 0)
  ) {
    policyTypes = egress.length > 0 ? ["ingress", "egress"] : ["ingress"];
  } else if (
    Array.isArray(typesRaw) && typesRaw.every((t) => t === "Ingress" || t === "Egress")
  ) {
    policyTypes = [];
    if (typesRaw.includes("Ingress")) policyTypes.push("ingress");
    if (typesRaw.includes("Egress")) policyTypes.push("egress");
  } else {
    r.add(
      "spec.policyTypes",
      `want a list of Ingress/Egress, got ${JSON.stringify(typesRaw)}: both directions isolated`,
    );
    policyTypes = ["ingress", "egress"];
  }
  return {
    value: {
      namespace: meta.namespace,
      name: meta.name,
      policyFor,
      podSelector,
      policyTypes,
      ingress,
      egress,
    },
    errors: r.errors,
  };
}

/** Parses any supported object by kind, unwrapping `List` kinds. */
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
  const collect = <K extends ParsedObject["kind"]>(
    k: K,
    result: ParseResult<Extract<ParsedObject, { kind: K }>["value"]>,
  ) => {
    errors.push(...result.errors);
    if (result.value) objects.push({ kind: k, value: result.value } as ParsedObject);
  };
  switch (kind) {
    case "Pod":
      collect("Pod", parsePod(raw));
      break;
    case "Namespace":
      collect("Namespace", parseNamespace(raw));
      break;
    case "NetworkAttachmentDefinition":
      collect("NetworkAttachmentDefinition", parseNetworkAttachmentDefinition(raw));
      break;
    case "MultiNetworkPolicy":
      collect("MultiNetworkPolicy", parseMultiNetworkPolicy(raw));
      break;
    default: {
      const meta = isObject(raw.metadata) ? raw.metadata : {};
      const name = typeof meta.name === "string" ? meta.name : "<unnamed>";
      errors.push({
        object: `${typeof kind === "string" ? kind : "<no kind>"} ${name} (${where})`,
        field: "kind",
        message: `unsupported kind ${JSON.stringify(kind)}; object ignored`,
      });
    }
  }
  return { objects, errors };
}
