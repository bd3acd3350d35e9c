/**
 * Runs inside the kernel VM: a node with 64 policed VFs on one network
 * (bench/node_fixture.ts: every pod isolated both ways) on veth
 * representors and one uplink, with each driver — filters per node, the
 * first programming of every device, a restarted agent's convergence (it
 * reads every device and adopts what is there), a peer address moved in
 * every interface's rules (edited in place), and one policy change that
 * touches all 64 (a new port: a generation swap). Prints the figures as
 * one JSON line.
 *
 *   node_scale.ts [PODS]
 */
import { CmdlineDriver } from "../../src/drivers/cmdline/driver.ts";
import { NetlinkDriver } from "../../src/drivers/netlink/driver.ts";
import type { AllowEntry, InterfaceRules } from "../../src/policy/model.ts";
import { Actuator } from "../../src/tc/actuator.ts";
import type { TcDriver } from "../../src/tc/driver.ts";
import { deviceProgram } from "../../src/tc/generate.ts";
import { nodeRoles } from "../../src/tc/placement.ts";
import { nodeWithPods } from "../node_fixture.ts";

const pods = Number(Deno.args[0] ?? 64);
const UPLINK = "nsup0";
const representor = (i: number) => `nsrep${i}`;

async function sh(args: string[]): Promise<void> {
  const out = await new Deno.Command(args[0], { args: args.slice(1), stderr: "piped" }).output();
  if (!out.success) throw new Error(`${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
}

/** Every interface's rules with each allow entry of `direction` changed by `edit`. */
function withEntries(
  rules: InterfaceRules[],
  direction: "ingress" | "egress",
  edit: (entry: AllowEntry) => AllowEntry,
): InterfaceRules[] {
  return rules.map((r) => ({
    ...r,
    [direction]: { ...r[direction], allow: r[direction].allow.map(edit) },
  }));
}

/**
 * Every interface's rules with one more allowed port in `direction`: a
 * policy change touching every interface (ingress: the uplink holds those
 * checks; egress: every representor does).
 */
function withExtraPort(rules: InterfaceRules[], direction: "ingress" | "egress"): InterfaceRules[] {
  return withEntries(rules, direction, (entry) => ({
    ...entry,
    ports: [...entry.ports, { first: 8080, last: 8080 }],
  }));
}

/**
 * Every interface's rules with one peer address of `direction` moved (a
 * remote pod re-created elsewhere): a change edited in place.
 */
function withMovedPeer(
  rules: InterfaceRules[],
  direction: "ingress" | "egress",
  from: string,
  to: string,
): InterfaceRules[] {
  return withEntries(rules, direction, (entry) => ({
    ...entry,
    cidrs: entry.cidrs.map((cidr) => cidr === `${from}/32` ? `${to}/32` : cidr),
  }));
}

function roles(rules: InterfaceRules[]) {
  return nodeRoles(rules.map((r, i) => ({
    rules: r,
    representor: representor(i),
    uplink: UPLINK,
    switchId: "vm",
    zone: i + 1,
  })));
}

/** Syncs every device of `rules` with a fresh or given actuator; time, commands, filters. */
async function syncAll(actuator: Actuator, rules: InterfaceRules[]) {
  const start = performance.now();
  let commands = 0;
  let filters = 0;
  for (const role of roles(rules)) {
    const result = await actuator.sync(role.device, (g) => deviceProgram(role, g));
    commands += result.commands;
    filters += result.filters;
  }
  return { ms: Math.round(performance.now() - start), commands, filters };
}

await sh(["ip", "link", "add", UPLINK, "type", "veth", "peer", "name", `${UPLINK}p`]);
for (let i = 0; i < pods; i++) {
  await sh([
    "ip",
    "link",
    "add",
    representor(i),
    "type",
    "veth",
    "peer",
    "name",
    `${representor(i)}p`,
  ]);
}
const rules = nodeWithPods(pods);
// Each step changes only what its row says: the port steps start from the moved peers.
const clientMoved = withMovedPeer(rules, "ingress", "10.81.0.1", "10.81.0.9");
const dbMoved = withMovedPeer(clientMoved, "egress", "10.81.1.1", "10.81.1.9");
const ingressChange = withExtraPort(dbMoved, "ingress");
const egressChange = withExtraPort(ingressChange, "egress");
const figures: Record<string, unknown> = { pods, devices: roles(rules).length };
const makers: Record<string, () => TcDriver> = {
  cmdline: () => new CmdlineDriver(),
  netlink: () => new NetlinkDriver(),
};
for (const [name, make] of Object.entries(makers)) {
  const first = await syncAll(new Actuator(make()), rules);
  // A restarted agent: a new process knows nothing and reads every device.
  const restart = await syncAll(new Actuator(make()), rules);
  const live = new Actuator(make());
  await syncAll(live, rules);
  const ingressMove = await syncAll(live, clientMoved);
  const egressMove = await syncAll(live, dbMoved);
  const ingress = await syncAll(live, ingressChange);
  const egress = await syncAll(live, egressChange);
  figures[name] = { first, restart, ingressMove, egressMove, ingress, egress };
  for (const role of roles(egressChange)) await live.sync(role.device, null);
}
console.log(JSON.stringify(figures));
