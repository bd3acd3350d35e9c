/**
 * `deno task scenario [--tc-driver cmdline|netlink] FILE...`: boots the kernel
 * VM once and runs the scenario files in it; ends with `N passed, M failed`.
 */
import { parseArgs } from "node:util";
import { runInVm, vmPrerequisites } from "./vm/vm.ts";

const { values, positionals } = parseArgs({
  args: Deno.args,
  options: {
    "tc-driver": { type: "string", default: "cmdline" },
    timeout: { type: "string", default: "900" },
  },
  allowPositionals: true,
});
if (positionals.length === 0) {
  console.error("usage: deno task scenario [--tc-driver cmdline|netlink] FILE...");
  Deno.exit(2);
}
const missing = await vmPrerequisites();
if (missing) {
  console.error(`scenario: cannot run the kernel VM: ${missing}`);
  Deno.exit(1);
}
const root = new URL("../../", import.meta.url).pathname;
const files = positionals.map((file) => (file.startsWith("/") ? file : `${Deno.cwd()}/${file}`));
const result = await runInVm({
  command: [
    "deno",
    "run",
    "-A",
    "tests/kernel/scenario/runner.ts",
    "--tc-driver",
    values["tc-driver"],
    ...files,
  ],
  cwd: root,
  timeoutSeconds: Number(values.timeout),
  onOutput: (text) => Deno.stdout.writeSync(new TextEncoder().encode(text)),
});
if (result.code !== 0 && !/\d+ passed, \d+ failed/.test(result.output)) {
  console.log(result.output.split("\n").slice(-5).join("\n"));
  console.log("0 passed, 1 failed");
}
Deno.exit(result.code);
