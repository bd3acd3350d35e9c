/**
 * Inside the kernel VM: the pieces for running the real agent against an
 * API server — how kubectl reaches it, a fake sysfs tree mapping each VF to its veth
 * representor, the agent process, and a convergence check against what a
 * fresh agent would program.
 */
import type { ParsedObject } from "../../../src/cluster/parse.ts";
import { stateFromObjects } from "../../../src/cluster/manifests.ts";
import { CmdlineDriver } from "../../../src/drivers/cmdline/driver.ts";
import { zoneFromIfindex } from "../../../src/tc/actuator.ts";
import { generateProgram } from "../../../src/tc/generate.ts";
import { planUpdate } from "../../../src/tc/plan.ts";
import { type Kube, sleep } from "../../support/controlplane.ts";
import { rulesFor } from "../../support/cluster.ts";
import { FakeSysfs } from "../../support/fake_sysfs.ts";
import type { Topology } from "../scenario/topology.ts";

const MAIN = new URL("../../../main.ts", import.meta.url).pathname;

/**
 * The host's API server as kubectl reaches it from the VM, through qemu's
 * user-mode network: every request gives up after 20 s.
 */
export function hostApi(kubeconfig: string): Kube {
  return { kubeconfig, flags: ["--request-timeout=20s"] };
}

/** A fake sysfs tree where every VF of the topology is on one PF and its representor is the veth. */
export async function fakeSysfsFor(topology: Topology): Promise<FakeSysfs> {
  const sysfs = await FakeSysfs.create();
  const vfs = [...topology.representors.keys()];
  await sysfs.addPf("0000:3a:00.0", vfs);
  await sysfs.addNetdevs(
    { name: "uplink0", pci: "0000:3a:00.0", portName: "p0", switchId: "e2e0" },
    ...vfs.map((vf, n) => ({
      name: topology.representors.get(vf)!,
      portName: `pf0vf${n}`,
      switchId: "e2e0",
      plainClassDir: true,
    })),
  );
  return sysfs;
}

/** Starts the agent (main.ts, daemon mode); its log is appended to `log`. */
export function startAgent(
  kubeconfig: string,
  node: string,
  sysfs: string,
  log: string,
  tcDriver = "cmdline",
): Deno.ChildProcess {
  return new Deno.Command("sh", {
    args: [
      "-c",
      'exec "$@" >>"$AGENT_LOG" 2>&1',
      "sh",
      Deno.execPath(),
      "run",
      "-A",
      "--no-check",
      MAIN,
      "--kubeconfig",
      kubeconfig,
      "--hostname-override",
      node,
      "--sysfs-root",
      sysfs,
      "--tc-driver",
      tcDriver,
      "--health-address",
      "127.0.0.1:9810",
      "--metrics-address",
      "127.0.0.1:9811",
      "--pod-resources-socket=",
      "--min-sync-interval",
      "200ms",
      "--v",
      "2",
    ],
    env: { AGENT_LOG: log },
    stdin: "null",
  }).spawn();
}

const driver = new CmdlineDriver();

/** Whether every representor on `node` carries exactly what a fresh agent would program. */
export async function converged(
  objects: ParsedObject[],
  node: string,
  topology: Topology,
): Promise<boolean> {
  const rules = rulesFor(stateFromObjects(objects), node);
  for (const [pci, device] of topology.representors) {
    const wanted = rules.interfaces.find((r) => r.pciAddress === pci);
    const zone = await zoneFromIfindex(device);
    const plan = planUpdate(
      await driver.read(device),
      (generation) =>
        wanted
          ? generateProgram(wanted, { device, zone, generation })
          : { device, enabled: false, zone, generation, filters: [] },
    );
    if (plan.commands.length > 0) return false;
  }
  return true;
}

/** Waits until {@link converged}; returns how long it took (throws after 90 s). */
export async function waitConverged(
  objects: () => ParsedObject[],
  node: string,
  topology: Topology,
  what: string,
): Promise<number> {
  const started = Date.now();
  while (!(await converged(objects(), node, topology))) {
    if (Date.now() - started > 90_000) throw new Error(`not converged after 90 s: ${what}`);
    await sleep(300);
  }
  const ms = Date.now() - started;
  console.log(`converged (${what}) in ${ms} ms`);
  return ms;
}

/** The last lines of the agent's log, for failure reports. */
export async function logTail(log: string, lines = 40): Promise<string> {
  const text = await Deno.readTextFile(log).catch(() => "");
  return text.split("\n").slice(-lines).join("\n");
}
