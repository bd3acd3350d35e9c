/**
 * Builds a scenario's network in the kernel: one Linux bridge per network
 * (the accelerated bridge), one network namespace per pod, and per local pod
 * interface a veth pair whose host end plays the VF representor. Each
 * bridge has one uplink port (a veth whose host end plays the PF's uplink
 * representor); its far side is "the wire", a namespace with one bridge per
 * network, where pods of other nodes and plain addresses live.
 */
import type { ParsedObject } from "../../../src/cluster/parse.ts";
import type { Pod } from "../../../src/cluster/types.ts";
import { parseIp } from "../../../src/net/ip.ts";
import { inNetns, run, tryRun } from "./shell.ts";

/** A pod's interface on one network, as built. */
export interface BuiltInterface {
  pod: Pod;
  network: string;
  netns: string;
  interfaceName: string;
  /** The representor (local pods), or the pod's port on the wire (pods of other nodes). */
  representor: string;
  ips: string[];
  /** Whether the pod runs on the topology's node. */
  local: boolean;
  /** The VF's PCI address from the pod's annotation ("" when none). */
  pciAddress: string;
}

/** The built topology. */
export interface Topology {
  interfaces: BuiltInterface[];
  /** PCI address → representor netdev. */
  representors: Map<string, string>;
  bridges: Map<string, string>;
  netns: string[];
  /** Extra hosts created for probes to plain addresses: address → netns. */
  hosts: Map<string, string>;
  /** Network → the host end of its bridge's uplink port. */
  uplinks: Map<string, string>;
  /** The node whose pods are local. */
  node: string;
}

/** The namespace holding the wire side of every network. */
export const WIRE_NETNS = "mnp-wire";

const PREFIX = "mnp";

/**
 * Neighbour-table sizes for the harness's kernel. Every pod namespace shares
 * the kernel's one IPv4 and one IPv6 neighbour table (default hard limit
 * 1,024 entries). An IPv6 probe adds about 4 entries, most of them NOARP
 * multicast entries that `ip -6 neigh` hides (`nud all` shows them;
 * `/proc/net/stat/ndisc_cache` counts them): 1,000 first exchanges left
 * about 4,000. At the defaults forced garbage collection keeps the table at
 * 530–620 and nothing overflowed in 2,000 probes; with the limit lowered to
 * 64 half the probes miss, the packet never leaving the source
 * (`Ip6OutNoRoutes`). Raised here so that no run size can come near it; a
 * node with many pods can hit it the same way (operators raise `gc_thresh*`),
 * and the agent has nothing to let through for it.
 */
const NEIGHBOUR_TABLE = { gc_thresh1: 4096, gc_thresh2: 16384, gc_thresh3: 32768 };

async function sizeNeighbourTables(): Promise<void> {
  for (const family of ["ipv4", "ipv6"]) {
    for (const [key, value] of Object.entries(NEIGHBOUR_TABLE)) {
      await run(["sysctl", "-q", "-w", `net.${family}.neigh.default.${key}=${value}`]);
    }
  }
}

/** Creates the bridges, namespaces and veth pairs for the scenario's pods; `node` is local. */
export async function buildTopology(objects: ParsedObject[], node: string): Promise<Topology> {
  await removeLeftovers();
  await sizeNeighbourTables();
  const topology: Topology = {
    interfaces: [],
    representors: new Map(),
    bridges: new Map(),
    netns: [],
    hosts: new Map(),
    uplinks: new Map(),
    node,
  };
  await run(["ip", "netns", "add", WIRE_NETNS]);
  topology.netns.push(WIRE_NETNS);
  await inNetns(WIRE_NETNS, ["ip", "link", "set", "lo", "up"]);
  const pods = objects.filter((o) => o.kind === "Pod").map((o) => o.value as Pod);
  for (const [podIndex, pod] of pods.entries()) {
    const netns = `${PREFIX}-p${podIndex}`;
    await run(["ip", "netns", "add", netns]);
    topology.netns.push(netns);
    await inNetns(netns, ["ip", "link", "set", "lo", "up"]);
    for (const [entryIndex, status] of pod.networkStatus.entries()) {
      if (status.isDefault) continue;
      const bridge = await ensureBridge(topology, status.network);
      const local = pod.nodeName === node;
      const representor = `${PREFIX}p${podIndex}n${entryIndex}`;
      await run([
        "ip",
        "link",
        "add",
        representor,
        "type",
        "veth",
        "peer",
        "name",
        status.interfaceName,
        "netns",
        netns,
      ]);
      if (local) await run(["ip", "link", "set", representor, "master", bridge, "up"]);
      else await attachToWire(topology, representor, status.network);
      await inNetns(netns, ["ip", "link", "set", status.interfaceName, "up"]);
      for (const ip of status.ips) {
        const family = parseIp(ip)?.family;
        const args = family === 6
          ? ["ip", "-6", "addr", "add", `${ip}/64`, "dev", status.interfaceName, "nodad"]
          : ["ip", "addr", "add", `${ip}/24`, "dev", status.interfaceName];
        await inNetns(netns, args);
      }
      if (local && status.pciAddress) topology.representors.set(status.pciAddress, representor);
      topology.interfaces.push({
        pod,
        network: status.network,
        netns,
        interfaceName: status.interfaceName,
        representor,
        ips: status.ips,
        local,
        pciAddress: status.pciAddress ?? "",
      });
    }
  }
  return topology;
}

async function ensureBridge(topology: Topology, network: string): Promise<string> {
  let bridge = topology.bridges.get(network);
  if (!bridge) {
    const index = topology.bridges.size;
    bridge = `${PREFIX}br${index}`;
    await run(["ip", "link", "add", bridge, "type", "bridge"]);
    await run(["ip", "link", "set", bridge, "up"]);
    topology.bridges.set(network, bridge);
    // The wire side: a bridge in the wire namespace, joined to this one by the uplink.
    const wire = `wire${index}`;
    await inNetns(WIRE_NETNS, ["ip", "link", "add", wire, "type", "bridge"]);
    await inNetns(WIRE_NETNS, ["ip", "link", "set", wire, "up"]);
    const uplink = `${PREFIX}u${index}`;
    await run(["ip", "link", "add", uplink, "type", "veth", "peer", "name", `up${index}`]);
    await run(["ip", "link", "set", `up${index}`, "netns", WIRE_NETNS]);
    await inNetns(WIRE_NETNS, ["ip", "link", "set", `up${index}`, "master", wire, "up"]);
    await run(["ip", "link", "set", uplink, "master", bridge, "up"]);
    topology.uplinks.set(network, uplink);
  }
  return bridge;
}

/** Moves the host end of a veth pair into the wire namespace, onto `network`'s wire bridge. */
async function attachToWire(topology: Topology, link: string, network: string): Promise<void> {
  const bridge = topology.bridges.get(network)!;
  const wire = `wire${bridge.slice(`${PREFIX}br`.length)}`;
  await run(["ip", "link", "set", link, "netns", WIRE_NETNS]);
  await inNetns(WIRE_NETNS, ["ip", "link", "set", link, "master", wire, "up"]);
}

/** A host answering on a plain address, attached to a network's bridge. */
export async function ensureHost(topology: Topology, network: string, address: string) {
  const existing = topology.hosts.get(address);
  if (existing) return existing;
  const index = topology.hosts.size;
  const netns = `${PREFIX}-h${index}`;
  const link = `${PREFIX}h${index}`;
  await ensureBridge(topology, network);
  const v6 = parseIp(address)?.family === 6;
  await run(["ip", "netns", "add", netns]);
  topology.netns.push(netns);
  await inNetns(netns, ["ip", "link", "set", "lo", "up"]);
  await run(["ip", "link", "add", link, "type", "veth", "peer", "name", "eth0", "netns", netns]);
  await attachToWire(topology, link, network);
  await inNetns(netns, ["ip", "link", "set", "eth0", "up"]);
  await inNetns(
    netns,
    v6
      ? ["ip", "-6", "addr", "add", `${address}/128`, "dev", "eth0", "nodad"]
      : ["ip", "addr", "add", `${address}/32`, "dev", "eth0"],
  );
  await inNetns(netns, ["ip", v6 ? "-6" : "-4", "route", "add", "default", "dev", "eth0"]);
  topology.hosts.set(address, netns);
  return netns;
}

/** Builds a topology for `body` (pods of `node` local) and always tears it down. */
export async function withTopology<T>(
  objects: ParsedObject[],
  node: string,
  body: (topology: Topology) => Promise<T>,
): Promise<T> {
  const topology = await buildTopology(objects, node);
  try {
    return await body(topology);
  } finally {
    await destroyTopology(topology);
  }
}

/**
 * Deletes a local interface's representor (its veth pair goes with it) and
 * creates it again under the same names, on the same bridge and addresses:
 * what a VF reset or a driver reload does to a representor.
 */
export async function recreateInterface(topology: Topology, iface: BuiltInterface): Promise<void> {
  const bridge = topology.bridges.get(iface.network)!;
  await run(["ip", "link", "del", iface.representor]);
  await run([
    "ip",
    "link",
    "add",
    iface.representor,
    "type",
    "veth",
    "peer",
    "name",
    iface.interfaceName,
    "netns",
    iface.netns,
  ]);
  await run(["ip", "link", "set", iface.representor, "master", bridge, "up"]);
  await inNetns(iface.netns, ["ip", "link", "set", iface.interfaceName, "up"]);
  for (const ip of iface.ips) {
    const args = parseIp(ip)?.family === 6
      ? ["ip", "-6", "addr", "add", `${ip}/64`, "dev", iface.interfaceName, "nodad"]
      : ["ip", "addr", "add", `${ip}/24`, "dev", iface.interfaceName];
    await inNetns(iface.netns, args);
  }
}

/** The built interface of the pod named `name` (its first, for a pod on several networks). */
export function interfaceOf(topology: Topology, name: string): BuiltInterface {
  const found = topology.interfaces.find((i) => i.pod.name === name);
  if (!found) throw new Error(`no interface of a pod named ${name}`);
  return found;
}

/** Removes everything the topology created, including processes left in its namespaces. */
export async function destroyTopology(topology: Topology): Promise<void> {
  for (const netns of topology.netns) {
    const pids = (await tryRun(["ip", "netns", "pids", netns])).stdout.split(/\s+/).filter(Boolean);
    if (pids.length > 0) await tryRun(["kill", "-9", ...pids]);
  }
  for (const iface of topology.interfaces) await tryRun(["ip", "link", "del", iface.representor]);
  for (const uplink of topology.uplinks.values()) await tryRun(["ip", "link", "del", uplink]);
  for (const netns of topology.netns) await tryRun(["ip", "netns", "del", netns]);
  for (const bridge of topology.bridges.values()) await tryRun(["ip", "link", "del", bridge]);
}

/** Removes whatever an interrupted earlier run left behind (namespaces and links named mnp*). */
export async function removeLeftovers(): Promise<void> {
  const namespaces = (await tryRun(["ip", "netns", "list"])).stdout.split("\n")
    .map((line) => line.split(" ")[0]).filter((name) => name.startsWith(`${PREFIX}-`));
  const links = (await tryRun(["ip", "-o", "link", "show"])).stdout.split("\n")
    .map((line) => line.split(": ")[1]?.split("@")[0] ?? "").filter((name) =>
      name.startsWith(PREFIX)
    );
  await destroyTopology({
    interfaces: [],
    representors: new Map(),
    bridges: new Map(links.map((name) => [name, name])),
    netns: namespaces,
    hosts: new Map(),
    uplinks: new Map(links.filter((name) => name.startsWith(`${PREFIX}u`)).map((n) => [n, n])),
    node: "",
  });
}
