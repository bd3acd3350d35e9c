/**
 * Runs inside the kernel VM: programs one representor with a program of
 * about 1,000 filters and reads it back, with the cmdline driver (one
 * `tc -batch`, `tc -json` per chain) and the netlink driver, three rounds
 * each, alternating; then the same filters with one tc process each on
 * another representor. Prints the figures as one JSON line.
 */
import assert from "node:assert/strict";
import { CmdlineDriver } from "../../src/drivers/cmdline.ts";
import type { TcDriver } from "../../src/drivers/driver.ts";
import { NetlinkDriver } from "../../src/drivers/netlink.ts";
import { Actuator } from "../../src/tc/actuator.ts";
import { clsactCommand, filterCommand } from "../../src/tc/serialize.ts";
import { generateProgram } from "../../src/tc/generate.ts";
import { thousandFilterRules } from "../tc_fixture.ts";

async function sh(args: string[]): Promise<void> {
  const out = await new Deno.Command(args[0], { args: args.slice(1), stderr: "piped" }).output();
  if (!out.success) throw new Error(`${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
}

const ROUNDS = 3;
const rules = thousandFilterRules();
const devices = { cmdline: "benchrep0", netlink: "benchrep1", perFilter: "benchrep2" };
for (const dev of Object.values(devices)) {
  await sh(["ip", "link", "add", dev, "type", "veth", "peer", "name", `${dev}p`]);
  await sh(["ip", "link", "set", dev, "up"]);
}

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
let filters = 0;
const reads: Record<string, unknown> = {};
for (let round = 0; round < ROUNDS; round++) {
  for (const name of ["cmdline", "netlink"] as const) {
    const driver = drivers[name];
    const device = devices[name];
    if (round > 0) await sh(["tc", "qdisc", "del", "dev", device, "clsact"]);
    const f = figures[name] ??= { programMs: [], programCalls: [], readMs: [], readCalls: [] };
    const actuator = new Actuator(driver, { zoneFor: () => Promise.resolve(5) });
    let calls = driver.stats.calls;
    let t = performance.now();
    filters = (await actuator.sync(device, rules)).filters;
    f.programMs.push(performance.now() - t);
    f.programCalls.push(driver.stats.calls - calls);
    calls = driver.stats.calls;
    t = performance.now();
    const read = await driver.read(device);
    f.readMs.push(performance.now() - t);
    f.readCalls.push(driver.stats.calls - calls);
    assert.equal(read.filters.length, filters);
    reads[name] = { ...read, device: "" };
  }
}
// Both drivers programmed and read the same thing.
assert.deepEqual(reads.netlink, reads.cmdline);

const program = generateProgram(rules, { device: devices.perFilter, zone: 5, generation: 1 });
const commands = [
  clsactCommand("add", devices.perFilter),
  ...program.filters.map((f) => filterCommand("add", devices.perFilter, f)),
];
const t = performance.now();
for (const command of commands) await sh(["tc", ...command.split(" ")]);
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
  filters,
  rounds: ROUNDS,
  cmdline: summary(figures.cmdline),
  netlink: summary(figures.netlink),
  perFilter: { ms: Math.round(perFilterMs), processes: commands.length },
}));
