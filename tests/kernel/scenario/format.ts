/**
 * Scenario files for the kernel harness: a node name, Kubernetes objects,
 * and probes with the verdict each must get. See README.md, "Scenario files".
 */
import { parse } from "yaml";
import { type ParsedObject, parseObjects } from "../../../src/cluster/parse.ts";
import { formatObjectError } from "../../../src/cluster/types.ts";

/** Probe protocols. */
export type ProbeProtocol = "TCP" | "UDP" | "SCTP" | "ICMP";

/** One probe: a new connection (or echo) from a pod to a pod or address. */
export interface Probe {
  from: string;
  to: string;
  network?: string;
  protocol: ProbeProtocol;
  port?: number;
  family: 4 | 6;
  vlan?: number;
  expect: "allow" | "deny";
}

/** A parsed scenario. */
export interface Scenario {
  name: string;
  node: string;
  objects: ParsedObject[];
  /** The manifests as written, for creating them through an API server. */
  manifests: unknown[];
  probes: Probe[];
}

function fail(file: string, message: string): never {
  throw new Error(`${file}: ${message}`);
}

/** Reads and validates a scenario file. */
export function parseScenario(text: string, file: string): Scenario {
  const raw = parse(text) as Record<string, unknown> | null;
  if (!raw || typeof raw !== "object") fail(file, "want a mapping");
  if (typeof raw.node !== "string") fail(file, "node: want a string");
  if (!Array.isArray(raw.objects)) fail(file, "objects: want a list");
  if (!Array.isArray(raw.probes) || raw.probes.length === 0) fail(file, "probes: want a list");
  const objects: ParsedObject[] = [];
  for (const object of raw.objects) {
    const parsed = parseObjects(object, file);
    if (parsed.errors.length > 0) fail(file, parsed.errors.map(formatObjectError).join("; "));
    objects.push(...parsed.objects);
  }
  const probes = raw.probes.map((p: Record<string, unknown>, i: number): Probe => {
    const at = `probes[${i}]`;
    if (typeof p.from !== "string" || !p.from.includes("/")) fail(file, `${at}.from: want ns/pod`);
    if (typeof p.to !== "string") fail(file, `${at}.to: want ns/pod or an address`);
    const protocol = p.protocol;
    if (protocol !== "TCP" && protocol !== "UDP" && protocol !== "SCTP" && protocol !== "ICMP") {
      fail(file, `${at}.protocol: want TCP, UDP, SCTP or ICMP`);
    }
    if (protocol !== "ICMP" && typeof p.port !== "number") fail(file, `${at}.port: want a number`);
    if (p.expect !== "allow" && p.expect !== "deny") fail(file, `${at}.expect: want allow or deny`);
    const family = p.family === undefined ? 4 : p.family;
    if (family !== 4 && family !== 6) fail(file, `${at}.family: want 4 or 6`);
    if (p.vlan !== undefined && (typeof p.vlan !== "number" || p.vlan < 1 || p.vlan > 4094)) {
      fail(file, `${at}.vlan: want 1-4094`);
    }
    if (p.network !== undefined && typeof p.network !== "string") fail(file, `${at}.network`);
    return {
      from: p.from,
      to: p.to,
      network: p.network as string | undefined,
      protocol,
      port: p.port as number | undefined,
      family,
      vlan: p.vlan as number | undefined,
      expect: p.expect,
    };
  });
  return {
    name: file.split("/").pop()!.replace(/\.ya?ml$/, ""),
    node: raw.node,
    objects,
    manifests: raw.objects,
    probes,
  };
}

/** A probe as one line, for reports. */
export function describeProbe(probe: Probe): string {
  const port = probe.protocol === "ICMP" ? "" : `:${probe.port}`;
  const vlan = probe.vlan ? ` vlan ${probe.vlan}` : "";
  return `${probe.from} -> ${probe.to} ${probe.protocol}${port} v${probe.family}${vlan}` +
    ` (expect ${probe.expect})`;
}
