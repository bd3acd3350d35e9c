/**
 * A one-shot "agent": programs one representor from a rules JSON file with
 * a fresh actuator (as a restarted agent would) and prints the sync result.
 *
 *   program_once.ts DEVICE RULES.json
 */
import { CmdlineDriver } from "../../../src/drivers/cmdline/driver.ts";
import type { InterfaceRules } from "../../../src/policy/model.ts";
import { Actuator } from "../../../src/tc/actuator.ts";

const [device, file] = Deno.args;
const rules = JSON.parse(await Deno.readTextFile(file)) as InterfaceRules;
const actuator = new Actuator(new CmdlineDriver(), { zoneFor: () => Promise.resolve(7) });
console.log(JSON.stringify(await actuator.sync(device, rules)));
