/**
 * TC programming cost: 1,000 filters on one representor, in the kernel VM,
 * programmed and read back by the cmdline driver (one `tc -batch`, `tc -json`)
 * and the netlink driver in the same run, with their ratio; and, once, one
 * tc process per filter. Prints the figures. The Deno.bench below measures
 * generating and serializing the same program (pure, on the host).
 */
import { batchText } from "../src/tc/serialize.ts";
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
    const c = f.cmdline;
    const n = f.netlink;
    const ratio = (a: number, b: number) => `${(a / b).toFixed(1)}x`;
    console.log(
      `tc programming (VM, emulated CPU): ${f.filters} filters on one representor, ` +
        `median of ${f.rounds} rounds after a warm-up (driver calls only)\n` +
        `  program, cmdline (one tc -batch):  ${c.programMs} ms ${
          JSON.stringify(c.programRounds)
        }, ` +
        `${c.programCalls} tc processes\n` +
        `  program, netlink:                  ${n.programMs} ms ${
          JSON.stringify(n.programRounds)
        }, ` +
        `${n.programCalls} sendmsg calls  -> netlink ${ratio(c.programMs, n.programMs)} faster\n` +
        `  read back, cmdline (tc -json):     ${c.readMs} ms ${JSON.stringify(c.readRounds)}, ` +
        `${c.readCalls} tc processes\n` +
        `  read back, netlink (dumps):        ${n.readMs} ms ${JSON.stringify(n.readRounds)}, ` +
        `${n.readCalls} dump requests  -> netlink ${ratio(c.readMs, n.readMs)} faster\n` +
        `  one tc process per filter:         ${f.perFilter.ms} ms, ${f.perFilter.processes} tc ` +
        `processes (${ratio(f.perFilter.ms, c.programMs)} slower than one tc -batch)`,
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
