/**
 * Builds a scenario's network in the kernel: one Linux bridge per network
 * (the accelerated bridge), one network namespace per pod, and per pod
 * interface a veth pair whose host end plays the VF representor.
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
  representor: string;
  ips: string[];
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
}

const PREFIX = "mnp";

/** Creates the bridges, namespaces and veth pairs for the scenario's pods. */
export async function buildTopology(objects: ParsedObject[]): Promise<Topology> {
  await removeLeftovers();
  const topology: Topology = {
    interfaces: [],
    representors: new Map(),
    bridges: new Map(),
    netns: [],
    hosts: new Map(),
  };
  const pods = objects.filter((o) => o.kind === "Pod").map((o) => o.value as Pod);
  for (const [podIndex, pod] of pods.entries()) {
    const netns = `${PREFIX}-p${podIndex}`;
    await run(["ip", "netns", "add", netns]);
    topology.netns.push(netns);
    await inNetns(netns, ["ip", "link", "set", "lo", "up"]);
    for (const [entryIndex, status] of pod.networkStatus.entries()) {
      if (status.isDefault) continue;
      const bridge = await ensureBridge(topology, status.network);
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
      await run(["ip", "link", "set", representor, "master", bridge, "up"]);
      await inNetns(netns, ["ip", "link", "set", status.interfaceName, "up"]);
      for (const ip of status.ips) {
        const family = parseIp(ip)?.family;
        const args = family === 6
          ? ["ip", "-6", "addr", "add", `${ip}/64`, "dev", status.interfaceName, "nodad"]
          : ["ip", "addr", "add", `${ip}/24`, "dev", status.interfaceName];
        await inNetns(netns, args);
      }
      if (status.pciAddress) topology.representors.set(status.pciAddress, representor);
      topology.interfaces.push({
        pod,
        network: status.network,
        netns,
        interfaceName: status.interfaceName,
        representor,
        ips: status.ips,
      });
    }
  }
  return topology;
}

async function ensureBridge(topology: Topology, network: string): Promise<string> {
  let bridge = topology.bridges.get(network);
  if (!bridge) {
    bridge = `${PREFIX}br${topology.bridges.size}`;
    await run(["ip", "link", "add", bridge, "type", "bridge"]);
    await run(["ip", "link", "set", bridge, "up"]);
    topology.bridges.set(network, bridge);
  }
  return bridge;
}

/** A host answering on a plain address, attached to a network's bridge. */
export async function ensureHost(topology: Topology, network: string, address: string) {
  const existing = topology.hosts.get(address);
  if (existing) return existing;
  const index = topology.hosts.size;
  const netns = `${PREFIX}-h${index}`;
  const link = `${PREFIX}h${index}`;
  const bridge = await ensureBridge(topology, network);
  const v6 = parseIp(address)?.family === 6;
  await run(["ip", "netns", "add", netns]);
  topology.netns.push(netns);
  await inNetns(netns, ["ip", "link", "set", "lo", "up"]);
  await run(["ip", "link", "add", link, "type", "veth", "peer", "name", "eth0", "netns", netns]);
  await run(["ip", "link", "set", link, "master", bridge, "up"]);
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

/** Builds a topology for `body` and always tears it down. */
export async function withTopology<T>(
  objects: ParsedObject[],
  body: (topology: Topology) => Promise<T>,
): Promise<T> {
  const topology = await buildTopology(objects);
  try {
    return await body(topology);
  } finally {
    await destroyTopology(topology);
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
  });
}
