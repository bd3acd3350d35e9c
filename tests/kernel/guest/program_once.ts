/**
 * A one-shot "agent": programs one interface's representor and its uplink
 * from a rules JSON file with a fresh actuator (as a restarted agent would)
 * and prints the number of commands it took.
 *
 *   program_once.ts REPRESENTOR UPLINK RULES.json
 */
import { CmdlineDriver } from "../../../src/drivers/cmdline/driver.ts";
import type { InterfaceRules } from "../../../src/policy/model.ts";
import { Actuator } from "../../../src/tc/actuator.ts";
import { deviceProgram } from "../../../src/tc/generate.ts";
import { nodeRoles } from "../../../src/tc/placement.ts";

const [representor, uplink, file] = Deno.args;
const rules = JSON.parse(await Deno.readTextFile(file)) as InterfaceRules;
const actuator = new Actuator(new CmdlineDriver());
let commands = 0;
for (const role of nodeRoles([{ rules, representor, uplink, switchId: "vm", zone: 7 }])) {
  commands += (await actuator.sync(role.device, (g) => deviceProgram(role, g))).commands;
}
console.log(JSON.stringify({ commands }));
