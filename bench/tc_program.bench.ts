/**
 * TC programming cost: 1,000 filters on one representor, in the kernel VM,
 * with one `tc -batch` (the cmdline driver) versus one tc process per filter,
 * measured in the same run; plus reading the program back. Prints the
 * figures. The Deno.bench below measures generating and serializing the
 * same program (pure, on the host).
 */
import { batchText } from "../src/drivers/cmdline.ts";
import { generateProgram } from "../src/tc/generate.ts";
import { runInVm, vmPrerequisites } from "../tests/kernel/vm/vm.ts";
import { thousandFilterRules } from "./tc_fixture.ts";

const missing = await vmPrerequisites();
if (missing) {
  console.log(`tc programming (VM): skipped: ${missing}`);
} else {
  const root = new URL("../", import.meta.url).pathname;
  const result = await runInVm({
    command: ["deno", "run", "-A", "--no-check", "bench/guest/tc_program.ts"],
    cwd: root,
    timeoutSeconds: 600,
  });
  const line = result.output.split("\n").find((l) => l.startsWith("{"));
  if (result.code !== 0 || !line) {
    console.log(`tc programming (VM): failed (${result.code}): ${result.output.slice(-500)}`);
  } else {
    const f = JSON.parse(line);
    console.log(
      `tc programming (VM, emulated CPU): ${f.filters} filters on one representor (read back ${f.readBack})\n` +
        `  one tc -batch:        ${f.batch.ms} ms, ${f.batch.processes} tc processes\n` +
        `  one tc per filter:    ${f.perFilter.ms} ms, ${f.perFilter.processes} tc processes ` +
        `(${(f.perFilter.ms / f.batch.ms).toFixed(1)}x slower)\n` +
        `  read back (tc -json): ${f.read.ms} ms, ${f.read.processes} tc processes`,
    );
  }
}

Deno.bench("generate + serialize a 1,000-filter program", () => {
  const program = generateProgram(thousandFilterRules(), {
    device: "rep0",
    zone: 5,
    generation: 1,
  });
  batchText("rep0", program.filters.map((filter) => ({ op: "filter-add" as const, filter })));
});
