/**
 * Inside the kernel VM: the pieces for running the real agent against an
 * API server — how kubectl reaches it, a fake sysfs tree mapping each VF to its veth
 * representor, the agent process, and a convergence check against what a
 * fresh agent would program.
 */
import type { ParsedObject } from "../../../src/cluster/parse.ts";
import { stateFromObjects } from "../../../src/cluster/manifests.ts";
import { CmdlineDriver } from "../../../src/drivers/cmdline/driver.ts";
import { deviceProgram } from "../../../src/tc/generate.ts";
import type { TcFilter } from "../../../src/tc/model.ts";
import { nodeRoles } from "../../../src/tc/placement.ts";
import { isOurs, referencedGenerations } from "../../../src/tc/plan.ts";
import { sameProgram } from "../../../src/tc/compare.ts";
import { placeInTopology } from "../scenario/runner.ts";
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

/**
 * A fake sysfs tree where the VFs of each network are on a PF of their own,
 * whose uplink representor is that network's uplink port, and each VF's
 * representor is its veth.
 */
export async function fakeSysfsFor(topology: Topology): Promise<FakeSysfs> {
  const sysfs = await FakeSysfs.create();
  const networks = [...topology.uplinks.keys()];
  for (const [k, network] of networks.entries()) {
    const pf = `0000:3a:00.${k}`;
    const vfs = topology.interfaces.filter((i) =>
      i.local && i.network === network && topology.representors.get(i.pciAddress)
    );
    await sysfs.addPf(pf, vfs.map((i) => i.pciAddress));
    await sysfs.addNetdevs(
      { name: topology.uplinks.get(network)!, pci: pf, portName: `p${k}`, switchId: `e2e${k}` },
      ...vfs.map((vf, n) => ({
        name: vf.representor,
        portName: `pf${k}vf${n}`,
        switchId: `e2e${k}`,
        plainClassDir: true,
      })),
    );
  }
  return sysfs;
}

/** Starts the agent (main.ts, daemon mode); its log is appended to `log`. */
export function startAgent(
  kubeconfig: string,
  node: string,
  sysfs: string,
  log: string,
  tcDriver = "cmdline",
  extraArgs: string[] = [],
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
      ...extraArgs,
    ],
    env: { AGENT_LOG: log },
    stdin: "null",
  }).spawn();
}

const driver = new CmdlineDriver();

/** A filter with its conntrack zones left out (the agent picks zones itself). */
function withoutZones(filter: TcFilter): TcFilter {
  return {
    ...filter,
    actions: filter.actions.map((a) => (a.kind === "ct" ? { ...a, zone: 0 } : a)),
  };
}

/**
 * Whether every representor and uplink on `node` carries exactly what a
 * fresh agent would program (zones aside, and the handles of allow filters
 * that an in-place edit chose).
 */
export async function converged(
  objects: ParsedObject[],
  node: string,
  topology: Topology,
): Promise<boolean> {
  const rules = rulesFor(stateFromObjects(objects), node);
  const placed = placeInTopology(
    topology,
    rules.interfaces.filter((r) => topology.representors.has(r.pciAddress)),
  ).map((p) => ({ ...p, zone: 0 }));
  const roles = new Map(nodeRoles(placed).map((role) => [role.device, role]));
  const devices = [...topology.representors.values(), ...topology.uplinks.values()];
  for (const device of devices) {
    const ours = (await driver.read(device)).filters.filter(isOurs);
    const role = roles.get(device);
    if (!role) {
      if (ours.length > 0) return false;
      continue;
    }
    const generations = referencedGenerations(ours);
    if (generations.size !== 1) return false;
    const [generation] = generations;
    if (!sameProgram(ours.map(withoutZones), deviceProgram(role, generation).filters)) {
      return false;
    }
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
