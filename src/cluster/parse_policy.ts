/** Parsing MultiNetworkPolicies (v1beta1 and v1beta2), failing closed on malformed parts. */
import { show } from "../log/quote.ts";
import { parseCidr } from "../net/ip.ts";
import type {
  Direction,
  IpBlock,
  LabelSelector,
  MultiNetworkPolicy,
  PolicyPeer,
  PolicyPort,
  PolicyRule,
  SelectorOperator,
  SelectorRequirement,
} from "./types.ts";
import { checkLabelKey, checkLabelValue, checkPortName } from "./validate.ts";
import {
  describe,
  isObject,
  isPortNumber,
  type Json,
  type JsonObject,
  type ParseResult,
  qualifyNetwork,
  readList,
  readMeta,
  readObject,
  readProtocol,
  readString,
  readStringMap,
  type Reporter,
} from "./reader.ts";

/** The annotation listing the networks a policy applies to. */
export const POLICY_FOR_ANNOTATION = "k8s.v1.cni.cncf.io/policy-for";

const OPERATORS: readonly SelectorOperator[] = ["In", "NotIn", "Exists", "DoesNotExist"];

/** Reads a label selector; null (with errors reported) when malformed. */
function readSelector(value: Json, field: string, r: Reporter): LabelSelector | null {
  if (!isObject(value)) {
    r.add(field, `want an object, got ${describe(value)}`);
    return null;
  }
  const before = r.errors.length;
  const matchLabels = readStringMap(value, "matchLabels", `${field}.matchLabels`, r);
  for (const [key, label] of Object.entries(matchLabels)) {
    const problem = checkLabelKey(key) ?? checkLabelValue(label);
    if (problem) r.add(`${field}.matchLabels`, problem);
  }
  const matchExpressions: SelectorRequirement[] = [];
  (readList(value, "matchExpressions", `${field}.matchExpressions`, r) ?? []).forEach(
    (expr, i) => {
      const at = `${field}.matchExpressions[${i}]`;
      if (!isObject(expr)) {
        r.add(at, `want an object, got ${describe(expr)}`);
        return;
      }
      const key = readString(expr, "key", `${at}.key`, r);
      const keyProblem = checkLabelKey(key);
      if (keyProblem) r.add(`${at}.key`, keyProblem);
      const operator = expr.operator;
      if (typeof operator !== "string" || !(OPERATORS as readonly string[]).includes(operator)) {
        r.add(
          `${at}.operator`,
          `unknown operator ${show(operator)}: want In, NotIn, Exists or DoesNotExist`,
        );
        return;
      }
      const values: string[] = [];
      (readList(expr, "values", `${at}.values`, r) ?? []).forEach((v, j) => {
        const problem = typeof v === "string"
          ? checkLabelValue(v)
          : `want a string, got ${describe(v)}`;
        if (problem) r.add(`${at}.values[${j}]`, problem);
        else values.push(v as string);
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
    r.add(`${field}.cidr`, `invalid CIDR ${show(cidrText)}`);
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
      r.add(`${field}.except[${i}]`, `invalid CIDR ${show(text)}`);
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
        `invalid endPort ${show(endPort)}: want ${out.port.port}-65535`,
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
      else r.add(`${forField}[${i}]`, `invalid network reference ${show(item.trim())}`);
    });
  }
  let podSelector = EVERYTHING;
  let selectorValid = true;
  if (spec.podSelector !== undefined && spec.podSelector !== null) {
    const selector = readSelector(spec.podSelector, "spec.podSelector", r);
    if (selector) podSelector = selector;
    else {
      selectorValid = false;
      r.add(
        "spec.podSelector",
        "malformed: the policy isolates every pod of its namespace and grants nothing",
      );
    }
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
      `want a list of Ingress/Egress, got ${show(typesRaw)}: both directions isolated`,
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
      // Which pods the rules were meant for is unknown: they grant nothing to anyone.
      ingress: selectorValid ? ingress : [],
      egress: selectorValid ? egress : [],
    },
    errors: r.errors,
  };
}

/** Parses any supported object by kind, unwrapping `List` kinds. */
