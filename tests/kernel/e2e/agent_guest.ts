/**
 * Runs inside the kernel VM: the whole agent against the host's real
 * kube-apiserver (reached through qemu's user-mode network), on veth
 * "representors" found through a fake sysfs tree, checked with real packets
 * while the cluster changes; then a SIGKILL during a sync and a restart.
 *
 *   agent_guest.ts KUBECONFIG
 */
import assert from "node:assert/strict";
import { CmdlineDriver } from "../../../src/drivers/cmdline/driver.ts";
import { objectsOf } from "../../support/cluster.ts";
import {
  apply as applyTo,
  installCrds,
  kubectl as kubectlTo,
  sleep,
} from "../../support/controlplane.ts";
import { forApi, type Manifest } from "../../support/manifests.ts";
import type { Probe } from "../scenario/format.ts";
import { Listeners, resolvePath, sendProbe } from "../scenario/probe.ts";
import {
  buildTopology,
  destroyTopology,
  interfaceOf,
  type Topology,
} from "../scenario/topology.ts";
import { possiblyAllowed, startStream } from "../guest/stream.ts";
import {
  fakeSysfsFor,
  hostApi,
  logTail,
  startAgent as startAgentWith,
  waitConverged as waitConvergedWith,
} from "./agent_env.ts";
import { baseObjects, IP, NODE, policies, withRole } from "./cluster.ts";

const [kubeconfig] = Deno.args;
const driver = new CmdlineDriver();
let objects: Manifest[] = [...baseObjects(), ...policies()];

const api = hostApi(kubeconfig);
const kubectl = (args: string[]) => kubectlTo(api, ...args);
const apply = (manifests: Manifest[]) => applyTo(api, ...manifests.map(forApi));
const startAgent = (sysfs: string, log: string) => startAgentWith(kubeconfig, NODE, sysfs, log);
const waitConverged = (topology: Topology, what: string) =>
  waitConvergedWith(() => objectsOf(objects), NODE, topology, what);

async function probe(topology: Topology, listeners: Listeners, from: string, to: string) {
  const p: Probe = {
    from: `e2e/${from}`,
    to: `e2e/${to}`,
    protocol: "TCP",
    port: 80,
    family: 4,
    expect: "allow",
  };
  const path = await resolvePath(topology, p);
  await listeners.ensure(path, p);
  return await sendProbe(path, p) ? "allow" : "deny";
}

async function expectProbes(
  topology: Topology,
  listeners: Listeners,
  cases: [string, string, string][],
) {
  for (const [from, to, expect] of cases) {
    const got = await probe(topology, listeners, from, to);
    console.log(`  ${got === expect ? "ok  " : "FAIL"} ${from} -> ${to} TCP:80 (expect ${expect})`);
    assert.equal(got, expect, `${from} -> ${to}`);
  }
}

const MAIN = new URL("../../../main.ts", import.meta.url).pathname;

/** `simulate` against this live node: the verdict and the last filter the flow met. */
async function simulateLive(sysfs: string, from: string, to: string) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--no-check",
      MAIN,
      "simulate",
      "--kubeconfig",
      kubeconfig,
      "--node",
      NODE,
      "--sysfs-root",
      sysfs,
      "--from",
      `e2e/${from}`,
      "--to",
      `e2e/${to}`,
      "--protocol",
      "TCP",
      "--port",
      "80",
      "-o",
      "json",
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, stderr);
  const result = JSON.parse(new TextDecoder().decode(out.stdout));
  const last = result.packets.at(-1).steps.at(-1);
  return { verdict: result.verdict as string, last };
}

function relabel(name: string, role: string) {
  objects = withRole(objects, name, role);
  return kubectl(["label", "pod", "-n", "e2e", name, `role=${role}`, "--overwrite"]);
}

// --- set-up: CRDs, topology, fake sysfs mapping each VF to its veth representor ---
await installCrds(api);
const topology = await buildTopology(objectsOf(objects), NODE);
const sysfs = await fakeSysfsFor(topology);
const listeners = new Listeners();
const log = "/tmp/agent.log";
let agent = startAgent(sysfs.root, log);
try {
  await apply(objects);
  await waitConverged(topology, "initial policies");
  await expectProbes(topology, listeners, [
    ["peer", "server", "allow"], // ingress policy
    ["other", "server", "deny"],
    ["client", "peer", "allow"], // egress policy
    ["client", "other", "deny"],
  ]);
  // simulate against the live node: the programs its devices hold, read back, give the same.
  for (const [from, to, expect] of [["peer", "server", "allow"], ["other", "server", "deny"]]) {
    const { verdict, last } = await simulateLive(sysfs.root, from, to);
    assert.equal(verdict, expect, `simulate --kubeconfig ${from} -> ${to}`);
    if (expect === "deny") assert.deepEqual(last.did, ["drop"]);
    console.log(
      `  ok   simulate (live) ${from} -> ${to}: ${verdict}, last filter ${last.end} ` +
        `${last.hook} chain ${last.chain} prio ${last.prio}: ${last.did.join(", ")}`,
    );
  }

  await relabel("other", "peer"); // a label change that grants
  await waitConverged(topology, "label grants");
  await expectProbes(topology, listeners, [["other", "server", "allow"], [
    "client",
    "other",
    "allow",
  ]]);

  await relabel("peer", "gone"); // a label change that revokes
  await waitConverged(topology, "label revokes");
  await expectProbes(topology, listeners, [["peer", "server", "deny"], ["client", "peer", "deny"]]);

  const server = interfaceOf(topology, "server");
  // No kubelet runs to confirm a graceful deletion: delete at once.
  await kubectl(["delete", "pod", "-n", "e2e", "server", "--grace-period=0", "--force"]);
  objects = objects.filter((m) =>
    (m.metadata as { name: string }).name !== "server" || m.kind !== "Pod"
  );
  await waitConverged(topology, "pod deleted");
  assert.equal(
    (await driver.read(server.representor)).clsact,
    false,
    "deleted pod's rules are gone",
  );
  console.log("  ok   deleted pod's representor carries nothing");

  // --- kill test: SIGKILL during a sync, restart, converge; no denied probe passes meanwhile ---
  const client = interfaceOf(topology, "client");
  const stream = await startStream(client.netns, [IP.peer, IP.other], 80, 400);
  await sleep(2000);
  await relabel("extra", "peer"); // grants extra; peer stays denied, other stays allowed
  await sleep(150); // the sync is under way
  agent.kill("SIGKILL");
  await agent.status;
  agent = startAgent(sysfs.root, log);
  const convergeMs = await waitConverged(topology, "after SIGKILL and restart");
  await expectProbes(topology, listeners, [["client", "extra", "allow"]]);
  await sleep(1500);
  const attempts = await stream.stop();
  const none = new Set<string>();
  const leaked = attempts.filter((a) =>
    a.target === IP.peer && a.ok && !possiblyAllowed(IP.peer, a.t0, a.t1, none, [])
  ).length;
  const failedAllowed = attempts.filter((a) =>
    a.target === IP.other && !a.ok
  ).length;
  console.log(
    `kill: SIGKILL 150 ms after the change, converged ${convergeMs} ms after the restart; ` +
      `${attempts.length} attempts, ${leaked} denied passed, ${failedAllowed} allowed failed`,
  );
  assert.ok(attempts.length >= 5);
  assert.equal(leaked, 0);
  console.log("e2e: all checks passed");
} catch (error) {
  console.log(`agent log (last lines):\n${await logTail(log)}`);
  throw error;
} finally {
  try {
    agent.kill("SIGTERM");
  } catch {
    // gone
  }
  await agent.status;
  await listeners.stop();
  await destroyTopology(topology);
  await sysfs.remove();
}
