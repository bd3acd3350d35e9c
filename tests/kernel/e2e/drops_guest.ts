/**
 * Runs inside the kernel VM: drop counters through the whole agent, with
 * each driver. Known numbers of denied pings go to a policed pod and from
 * one, and `/metrics` must show exactly that many more dropped packets; a
 * policy change (a new generation of every program) keeps the totals; and
 * `--drop-events` records a Warning Event on the pod.
 *
 *   drops_guest.ts KUBECONFIG
 */
import assert from "node:assert/strict";
import { objectsOf } from "../../support/cluster.ts";
import {
  apply as applyTo,
  installCrds,
  kubectl as kubectlTo,
  waitFor,
  warningEvents,
} from "../../support/controlplane.ts";
import { forApi, type Manifest } from "../../support/manifests.ts";
import { buildTopology, destroyTopology, interfaceOf } from "../scenario/topology.ts";
import { fakeSysfsFor, hostApi, logTail, startAgent, waitConverged } from "./agent_env.ts";
import { baseObjects, IP, NODE, policies, withRole } from "./cluster.ts";

const [kubeconfig] = Deno.args;
const api = hostApi(kubeconfig);
let objects: Manifest[] = [...baseObjects(), ...policies()];

/** The agent's drop counter of one pod and direction, from /metrics. */
async function dropped(pod: string, direction: string): Promise<number> {
  const text = await (await fetch("http://127.0.0.1:9811/metrics")).text();
  const line = text.split("\n").find((l) =>
    l.startsWith("mnp_policy_dropped_packets_total{") && l.includes(`pod="${pod}"`) &&
    l.includes(`direction="${direction}"`)
  );
  return line ? Number(line.split(" ").at(-1)) : 0;
}

/** `count` pings from a pod's namespace; returns how many were answered. */
async function ping(netns: string, address: string, count: number): Promise<number> {
  const out = await new Deno.Command("ip", {
    args: [
      "netns",
      "exec",
      netns,
      "ping",
      "-n",
      "-q",
      "-c",
      String(count),
      "-i",
      "0.2",
      "-W",
      "1",
      address,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  const received = /(\d+) received/.exec(text);
  if (!received) throw new Error(`ping gave no summary: ${text}`);
  return Number(received[1]);
}

async function relabel(name: string, role: string) {
  objects = withRole(objects, name, role);
  await kubectlTo(api, "label", "pod", "-n", "e2e", name, `role=${role}`, "--overwrite");
}

/** Waits until the counter shows `want` (the agent reads at most every 2 s); returns it. */
function counterReaches(pod: string, direction: string, want: number) {
  return waitFor(`${pod} ${direction} drops = ${want}`, async () => {
    const got = await dropped(pod, direction);
    if (got > want) throw new Error(`${pod} ${direction}: ${got} dropped, more than ${want}`);
    return got === want ? got + 1 : 0;
  }, { timeoutMs: 10_000, intervalMs: 500 });
}

await installCrds(api);
await applyTo(api, ...objects.map(forApi));
for (const driver of ["cmdline", "netlink"]) {
  const topology = await buildTopology(objectsOf(objects), NODE);
  const sysfs = await fakeSysfsFor(topology);
  const log = `/tmp/agent-drops-${driver}.log`;
  // The previous round's events would answer for this one.
  await kubectlTo(
    api,
    "delete",
    "events",
    "-n",
    "e2e",
    "--field-selector",
    "reason=PolicyDroppedTraffic",
  );
  const agent = startAgent(kubeconfig, NODE, sysfs.root, log, driver, ["--drop-events"]);
  try {
    await waitConverged(() => objectsOf(objects), NODE, topology, `${driver}: initial policies`);
    const other = interfaceOf(topology, "other");
    const client = interfaceOf(topology, "client");
    const ingress0 = await dropped("server", "ingress");
    const egress0 = await dropped("client", "egress");
    // other -> server: server takes TCP 80 from role=peer only; ICMP is dropped on the uplink.
    assert.equal(await ping(other.netns, IP.server, 7), 0, "pings to server are denied");
    await counterReaches("server", "ingress", ingress0 + 7);
    // client -> other: client may send TCP 80 to role=peer only; dropped on its representor.
    assert.equal(await ping(client.netns, IP.other, 5), 0, "pings from client are denied");
    await counterReaches("client", "egress", egress0 + 5);
    console.log(
      `  ok   ${driver}: 7 denied pings -> server ingress ${ingress0} -> ${ingress0 + 7}; ` +
        `5 from client -> client egress ${egress0} -> ${egress0 + 5}`,
    );
    // A label change grants role=peer to extra: every program moves to a new generation.
    const extra = driver === "cmdline" ? "peer" : "extra";
    await relabel("extra", extra);
    await waitConverged(() => objectsOf(objects), NODE, topology, `${driver}: after relabel`);
    assert.equal(await dropped("server", "ingress"), ingress0 + 7, "totals kept across the swap");
    assert.equal(await ping(other.netns, IP.server, 3), 0);
    await counterReaches("server", "ingress", ingress0 + 10);
    console.log(`  ok   ${driver}: totals kept across a program swap, then 3 more counted`);
    const events = await waitFor(
      "a PolicyDroppedTraffic event on server",
      async () =>
        (await warningEvents(
          kubeconfig,
          "e2e",
          "involvedObject.name=server,reason=PolicyDroppedTraffic",
        )) ?? null,
      { timeoutMs: 30_000, intervalMs: 1000 },
    );
    assert.match(events[0].message, /ingress packets? to net1 .* isolated by e2e\/server-ingress/);
    console.log(`  ok   ${driver}: event "${events[0].message}"`);
  } catch (error) {
    console.log(`agent log (last lines):\n${await logTail(log)}`);
    throw error;
  } finally {
    agent.kill("SIGTERM");
    await agent.status;
    await destroyTopology(topology);
    await sysfs.remove();
  }
}
console.log("drops: all checks passed");
