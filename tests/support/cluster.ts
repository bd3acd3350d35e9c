/**
 * From test manifests (built with ./manifests.ts) to rules: parsing, the
 * engine's rules for a node, one interface's rules, and a packet verdict
 * helper that answers "would this flow pass?" from a rule model.
 *
 * @module
 */
import { type ParsedObject, parseObjects } from "../../src/cluster/parse.ts";
import { stateFromObjects } from "../../src/cluster/manifests.ts";
import type { ClusterState, ObjectError, Protocol } from "../../src/cluster/types.ts";
import { parseCidr, parseIp } from "../../src/net/ip.ts";
import type { DirectionRules, InterfaceRules, NodeRules } from "../../src/policy/model.ts";
import { computeNodeRules } from "../../src/policy/engine.ts";
import { type Manifest, mnp, nad, ns, pod } from "./manifests.ts";

// The builders, for importers that take them from here.
export { type Manifest, mnp, nad, ns, pod, type PodSpec } from "./manifests.ts";

/** Parses manifests into a snapshot, returning the parse errors too. */
export function cluster(manifests: Manifest[]): { state: ClusterState; errors: ObjectError[] } {
  const objects = [];
  const errors: ObjectError[] = [];
  for (const manifest of manifests) {
    const parsed = parseObjects(manifest);
    objects.push(...parsed.objects);
    errors.push(...parsed.errors);
  }
  return { state: stateFromObjects(objects), errors };
}

/** Parses manifests; throws on any parse error. */
export function objectsOf(manifests: Manifest[]): ParsedObject[] {
  return manifests.flatMap((manifest) => {
    const parsed = parseObjects(manifest);
    if (parsed.errors.length > 0) throw new Error(JSON.stringify(parsed.errors));
    return parsed.objects;
  });
}

/** The engine's rules for a node, with the default plugin list. */
export function rulesFor(state: ClusterState, node: string): NodeRules {
  return computeNodeRules(state, { node, networkPlugins: ["accelerated-bridge"] });
}

/** Runs the engine for node-a (or `node`) with the default plugin list. */
export function render(
  manifests: Manifest[],
  node = "node-a",
): NodeRules & { parseErrors: ObjectError[] } {
  const { state, errors } = cluster(manifests);
  return { ...rulesFor(state, node), parseErrors: errors };
}

/** Finds one interface's rules by pod (`ns/name`) and network (`ns/name`). */
export function iface(result: NodeRules, podRef: string, network: string): InterfaceRules {
  const found = result.interfaces.find((i) =>
    `${i.pod.namespace}/${i.pod.name}` === podRef && i.network === network
  );
  if (!found) throw new Error(`no interface for ${podRef} on ${network}`);
  return found;
}

/** Pod app/web (10.0.0.1 on app/data) under one deny-all policy of the given types. */
export function webDenied(policyTypes: ("Ingress" | "Egress")[]): InterfaceRules {
  return iface(
    render([
      ns("app"),
      nad("app", "data"),
      pod("app", "web", { nets: { "app/data": "10.0.0.1" } }),
      mnp("app", "deny", "data", { policyTypes }),
    ]),
    "app/web",
    "app/data",
  );
}

/** A flow as a probe describes it: the remote address, protocol and port. */
export interface Flow {
  peer: string;
  protocol: Protocol | "ICMP";
  port?: number;
}

/** Whether the direction's rules let a new connection of `flow` through. */
export function allows(rules: DirectionRules, flow: Flow): boolean {
  if (!rules.isolated) return true;
  const ip = parseIp(flow.peer);
  if (!ip) throw new Error(`bad probe address ${flow.peer}`);
  return rules.allow.some((entry) => {
    const inSet = entry.cidrs.some((text) => {
      const cidr = parseCidr(text)!;
      if (cidr.family !== ip.family) return false;
      const bits = BigInt((cidr.family === 4 ? 32 : 128) - cidr.prefix);
      return (ip.value >> bits) === (cidr.base >> bits);
    });
    if (!inSet) return false;
    if (entry.protocol === "any") return true;
    if (entry.protocol !== flow.protocol) return false;
    return entry.ports.some((r) =>
      flow.port !== undefined && flow.port >= r.first && flow.port <= r.last
    );
  });
}

/** An interface's rules with the given directions, for a pod app/web on app/data. */
export function interfaceRules(
  ingress: InterfaceRules["ingress"],
  egress: InterfaceRules["egress"],
): InterfaceRules {
  return {
    pod: { namespace: "app", name: "web", uid: "u1" },
    network: "app/data",
    pluginType: "accelerated-bridge",
    interfaceName: "net1",
    pciAddress: "0000:3b:00.1",
    ips: ["10.0.0.1"],
    ingress,
    egress,
  };
}
