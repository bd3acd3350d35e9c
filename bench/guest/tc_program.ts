/**
 * Runs inside the kernel VM: programs one representor with a program of
 * about 1,000 filters through the cmdline driver (one `tc -batch`), then the
 * same filters with one tc process each on a second representor, reads the
 * first back, and prints the figures as one JSON line.
 */
import { CmdlineDriver } from "../../src/drivers/cmdline.ts";
import { Actuator } from "../../src/tc/actuator.ts";
import { clsactCommand, filterCommand } from "../../src/tc/serialize.ts";
import { generateProgram } from "../../src/tc/generate.ts";
import { thousandFilterRules } from "../tc_fixture.ts";

async function sh(args: string[]): Promise<void> {
  const out = await new Deno.Command(args[0], { args: args.slice(1), stderr: "piped" }).output();
  if (!out.success) throw new Error(`${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
}

const rules = thousandFilterRules();
for (const dev of ["benchrep0", "benchrep1"]) {
  await sh(["ip", "link", "add", dev, "type", "veth", "peer", "name", `${dev}p`]);
  await sh(["ip", "link", "set", dev, "up"]);
}
const driver = new CmdlineDriver();
const actuator = new Actuator(driver, { zoneFor: () => Promise.resolve(5) });
let t = performance.now();
const result = await actuator.sync("benchrep0", rules);
const batchMs = performance.now() - t;
const batchProcesses = driver.stats.calls;

const program = generateProgram(rules, { device: "benchrep1", zone: 5, generation: 1 });
const commands = [
  clsactCommand("add", "benchrep1"),
  ...program.filters.map((f) => filterCommand("add", "benchrep1", f)),
];
t = performance.now();
for (const command of commands) await sh(["tc", ...command.split(" ")]);
const perFilterMs = performance.now() - t;

const callsBefore = driver.stats.calls;
t = performance.now();
const read = await driver.read("benchrep0");
const readMs = performance.now() - t;
console.log(JSON.stringify({
  filters: result.filters,
  readBack: read.filters.length,
  batch: { ms: Math.round(batchMs), processes: batchProcesses },
  perFilter: { ms: Math.round(perFilterMs), processes: commands.length },
  read: { ms: Math.round(readMs), processes: driver.stats.calls - callsBefore },
}));
