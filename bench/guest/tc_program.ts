/**
 * Runs inside the kernel VM: programs one representor with a program of
 * about 1,000 filters and reads it back, with the cmdline driver (one
 * `tc -batch`; `tc -json` per chain) and the netlink driver. Both apply the
 * same command list, the one the actuator makes for a bare representor,
 * so the figures are the drivers' own. After one untimed warm-up each,
 * five rounds alternate which driver goes first; then the same filters go
 * in with one tc process each on another representor. Prints the figures
 * as one JSON line.
 */
import assert from "node:assert/strict";
import { CmdlineDriver } from "../../src/drivers/cmdline/driver.ts";
import type { TcDriver } from "../../src/tc/driver.ts";
import { NetlinkDriver } from "../../src/drivers/netlink/driver.ts";
import { clsactCommand, filterCommand } from "../../src/tc/serialize.ts";
import { generateProgram } from "../../src/tc/generate.ts";
import { planUpdate } from "../../src/tc/plan.ts";
import { thousandFilterRules } from "../tc_fixture.ts";

async function sh(args: string[]): Promise<void> {
  const out = await new Deno.Command(args[0], { args: args.slice(1), stderr: "piped" }).output();
  if (!out.success) throw new Error(`${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
}

const ROUNDS = 5;
const rules = thousandFilterRules();
const devices = { cmdline: "benchrep0", netlink: "benchrep1", perFilter: "benchrep2" };
for (const dev of Object.values(devices)) {
  await sh(["ip", "link", "add", dev, "type", "veth", "peer", "name", `${dev}p`]);
  await sh(["ip", "link", "set", dev, "up"]);
}
const program = (device: string) => generateProgram(rules, { device, zone: 5, generation: 1 });
const bare = (device: string) => ({ device, clsact: false, foreignQdiscs: [], filters: [] });
const commandsFor = (device: string) => planUpdate(bare(device), () => program(device)).commands;

interface Figures {
  programMs: number[];
  programCalls: number[];
  readMs: number[];
  readCalls: number[];
}

const drivers: Record<"cmdline" | "netlink", TcDriver> = {
  cmdline: new CmdlineDriver(),
  netlink: new NetlinkDriver(),
};
const figures: Record<string, Figures> = {};
const reads: Record<string, unknown> = {};

async function round(name: "cmdline" | "netlink", timed: boolean): Promise<void> {
  const driver = drivers[name];
  const device = devices[name];
  const commands = commandsFor(device);
  await sh(["sh", "-c", `tc qdisc del dev ${device} clsact 2>/dev/null || true`]);
  const f = figures[name] ??= { programMs: [], programCalls: [], readMs: [], readCalls: [] };
  let calls = driver.stats.calls;
  let t = performance.now();
  await driver.apply(device, commands);
  const programMs = performance.now() - t;
  const programCalls = driver.stats.calls - calls;
  calls = driver.stats.calls;
  t = performance.now();
  const read = await driver.read(device);
  const readMs = performance.now() - t;
  assert.equal(read.filters.length, commands.length - 1);
  reads[name] = { ...read, device: "" };
  if (!timed) return;
  f.programMs.push(programMs);
  f.programCalls.push(programCalls);
  f.readMs.push(readMs);
  f.readCalls.push(driver.stats.calls - calls);
}

await round("cmdline", false);
await round("netlink", false);
for (let r = 0; r < ROUNDS; r++) {
  const order = r % 2 === 0 ? ["cmdline", "netlink"] as const : ["netlink", "cmdline"] as const;
  for (const name of order) await round(name, true);
}
// Both drivers programmed and read the same thing.
assert.deepEqual(reads.netlink, reads.cmdline);

const perFilter = [
  clsactCommand("add", devices.perFilter),
  ...program(devices.perFilter).filters.map((f) => filterCommand("add", devices.perFilter, f)),
];
const t = performance.now();
for (const command of perFilter) await sh(["tc", ...command.split(" ")]);
const perFilterMs = performance.now() - t;

const median = (values: number[]) => [...values].sort((a, b) => a - b)[values.length >> 1];
const summary = (f: Figures) => ({
  programMs: Math.round(median(f.programMs)),
  programRounds: f.programMs.map(Math.round),
  programCalls: median(f.programCalls),
  readMs: Math.round(median(f.readMs)),
  readRounds: f.readMs.map(Math.round),
  readCalls: median(f.readCalls),
});
console.log(JSON.stringify({
  filters: commandsFor("x").length - 1,
  rounds: ROUNDS,
  cmdline: summary(figures.cmdline),
  netlink: summary(figures.netlink),
  perFilter: { ms: Math.round(perFilterMs), processes: perFilter.length },
}));
