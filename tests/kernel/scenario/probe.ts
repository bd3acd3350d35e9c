/**
 * Real packets for scenarios: socat listeners in destination namespaces and
 * one new connection (or echo request) per probe from the source namespace.
 */
import { parseIp } from "../../../src/net/ip.ts";
import { resolveEnds } from "../../../src/tc/simulator/endpoints.ts";
import type { Probe, ProbeProtocol } from "./format.ts";
import { ensureHost, type Topology } from "./topology.ts";
import { inNetns, tryRun } from "./shell.ts";

/** Where a probe goes: the namespaces and addresses at both ends. */
export interface ProbePath {
  sourceNetns: string;
  sourceInterface: string;
  sourceAddress: string;
  destNetns: string;
  destInterface: string;
  destAddress: string;
}

const SOCAT: Record<Exclude<ProbeProtocol, "ICMP">, { listen: string; connect: string }> = {
  TCP: { listen: "TCP", connect: "TCP" },
  UDP: { listen: "UDP", connect: "UDP" },
  SCTP: { listen: "SCTP", connect: "SCTP" },
};

/** Resolves a probe's endpoints, creating a host for a plain destination address. */
export async function resolvePath(topology: Topology, probe: Probe): Promise<ProbePath> {
  const pods = topology.interfaces.map((i) => i.pod);
  const { from, to, network } = resolveEnds(pods, new Map(), probe);
  const at = (pod: string) =>
    topology.interfaces.find((i) =>
      `${i.pod.namespace}/${i.pod.name}` === pod && i.network === network
    )!;
  const source = at(probe.from);
  const toPod = probe.to.includes("/") && parseIp(probe.to) === null;
  if (toPod) {
    const dest = at(probe.to);
    return {
      sourceNetns: source.netns,
      sourceInterface: source.interfaceName,
      sourceAddress: from.address,
      destNetns: dest.netns,
      destInterface: dest.interfaceName,
      destAddress: to.address,
    };
  }
  const destNetns = await ensureHost(topology, network, probe.to);
  await tryRun([
    "ip",
    "netns",
    "exec",
    source.netns,
    "ip",
    probe.family === 6 ? "-6" : "-4",
    "route",
    "replace",
    probe.to,
    "dev",
    source.interfaceName,
  ]);
  return {
    sourceNetns: source.netns,
    sourceInterface: source.interfaceName,
    sourceAddress: from.address,
    destNetns,
    destInterface: "eth0",
    destAddress: probe.to,
  };
}

/** Listeners started for probes, to stop at the end. */
export class Listeners {
  #started = new Set<string>();
  #children: Deno.ChildProcess[] = [];

  /** Starts (once) a listener answering "pong" for the probe's destination. */
  async ensure(path: ProbePath, probe: Probe): Promise<void> {
    if (probe.protocol === "ICMP") return;
    const key = `${path.destNetns}/${probe.protocol}/${probe.family}/${probe.port}`;
    if (this.#started.has(key)) return;
    this.#started.add(key);
    const kind = SOCAT[probe.protocol];
    const listen = probe.protocol === "UDP"
      ? `UDP${probe.family}-RECVFROM:${probe.port},fork`
      : `${kind.listen}${probe.family}-LISTEN:${probe.port},fork,reuseaddr`;
    const child = new Deno.Command("ip", {
      args: ["netns", "exec", path.destNetns, "socat", listen, "SYSTEM:echo pong"],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    this.#children.push(child);
    await waitListening(path.destNetns, probe);
  }

  /** Stops every listener. */
  async stop(): Promise<void> {
    for (const child of this.#children) {
      try {
        child.kill("SIGKILL");
      } catch {
        // already gone
      }
      await child.status;
    }
    this.#children = [];
    this.#started.clear();
  }
}

async function waitListening(netns: string, probe: Probe): Promise<void> {
  // ss has no SCTP listing without sctp_diag; the kernel's endpoint table has it.
  const list = probe.protocol === "SCTP"
    ? ["cat", "/proc/net/sctp/eps"]
    : ["ss", probe.protocol === "UDP" ? "-uln" : "-tln"];
  for (let i = 0; i < 100; i++) {
    const result = await tryRun(["ip", "netns", "exec", netns, ...list]);
    if (new RegExp(`[\\s:.]${probe.port}\\s`).test(result.stdout)) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`listener for ${probe.protocol}/${probe.port} in ${netns} did not start`);
}

/** Adds VLAN subinterfaces and host routes so the probe's packets are sent tagged. */
export async function tagPath(path: ProbePath, probe: Probe): Promise<() => Promise<void>> {
  if (!probe.vlan) return async () => {};
  const name = `v${probe.vlan}`;
  const ends: [string, string, string][] = [
    [path.sourceNetns, path.sourceInterface, path.destAddress],
    [path.destNetns, path.destInterface, path.sourceAddress],
  ];
  const flag = probe.family === 6 ? "-6" : "-4";
  const own = [path.sourceAddress, path.destAddress];
  for (const [i, [netns, parent, peer]] of ends.entries()) {
    await tryRun([
      "ip",
      "netns",
      "exec",
      netns,
      "ip",
      "link",
      "add",
      "link",
      parent,
      "name",
      name,
      "type",
      "vlan",
      "id",
      String(probe.vlan),
    ]);
    await inNetns(netns, ["ip", "link", "set", name, "up"]);
    // IPv6 neighbour discovery answers only for addresses on the receiving interface.
    await inNetns(
      netns,
      probe.family === 6
        ? ["ip", "-6", "addr", "add", `${own[i]}/128`, "dev", name, "nodad"]
        : ["ip", "addr", "add", `${own[i]}/32`, "dev", name],
    );
    await inNetns(netns, ["ip", flag, "route", "replace", peer, "dev", name]);
  }
  return async () => {
    for (const [netns] of ends) {
      await tryRun(["ip", "netns", "exec", netns, "ip", "link", "del", name]);
    }
  };
}

/** Sends one probe; true when the destination answered. */
export async function sendProbe(
  path: ProbePath,
  probe: Probe,
  timeoutSeconds = 2,
): Promise<boolean> {
  const base = ["ip", "netns", "exec", path.sourceNetns];
  if (probe.protocol === "ICMP") {
    const result = await tryRun([
      ...base,
      "ping",
      `-${probe.family}`,
      "-c1",
      `-W${timeoutSeconds}`,
      path.destAddress,
    ]);
    return result.code === 0;
  }
  const host = probe.family === 6 ? `[${path.destAddress}]` : path.destAddress;
  const target = `${SOCAT[probe.protocol].connect}${probe.family}:${host}:${probe.port}` +
    (probe.protocol === "UDP" ? "" : `,connect-timeout=${timeoutSeconds}`);
  // TCP and SCTP only read (an SCTP sender that reaches EOF shuts the whole
  // association down before the answer); UDP sends one datagram to be answered.
  if (probe.protocol === "UDP") {
    return await udpExchange([...base, "socat", "STDIO", target], timeoutSeconds);
  }
  const result = await tryRun([...base, "socat", `-T${timeoutSeconds}`, "-u", target, "STDOUT"]);
  return result.stdout.includes("pong");
}

/**
 * One UDP datagram and its answer, waited for up to `timeoutSeconds`.
 * `socat STDIO UDP:...` fed "ping\n" on a closed stdin waits only its
 * closing timeout (`-t`, 0.5 s by default) for the answer once stdin ends,
 * not `-T`: a UDP probe had 0.5 s where TCP and ICMP have 2 s, so a first
 * exchange slowed by neighbour discovery (an NS retransmitted after 1 s)
 * could miss on UDP only. Here stdin stays open and the answer ends the wait.
 */
async function udpExchange(command: string[], timeoutSeconds: number): Promise<boolean> {
  const child = new Deno.Command(command[0], {
    args: command.slice(1),
    stdin: "piped",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const writer = child.stdin.getWriter();
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
  }, timeoutSeconds * 1000);
  let text = "";
  try {
    await writer.write(new TextEncoder().encode("ping\n"));
    const decoder = new TextDecoder();
    for await (const chunk of child.stdout) {
      text += decoder.decode(chunk, { stream: true });
      if (text.includes("pong")) break;
    }
  } finally {
    clearTimeout(timer);
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
    await writer.close().catch(() => {});
    await child.status;
  }
  return text.includes("pong");
}
