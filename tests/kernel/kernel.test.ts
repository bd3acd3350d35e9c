/**
 * Kernel tests: boots the test VM (a stock Debian kernel with cls_flower,
 * act_gact and act_ct) and runs, inside it, every scenario file in
 * scenarios/ (once per TC driver) and the guest test files in guest/, against real veth
 * "representors", network namespaces and packets.
 *
 * Without qemu or the kernel package this skips with a one-line reason,
 * except under CI, where it fails.
 */
import assert from "node:assert/strict";
import { stripVTControlCharacters } from "node:util";
import { runInVm, vmPrerequisites } from "./vm/vm.ts";
import { SUMMARY } from "./scenario/summary.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const missing = await vmPrerequisites();
if (missing && Deno.env.get("CI")) throw new Error(`kernel tests cannot run in CI: ${missing}`);
if (missing) console.log(`skipping kernel tests: ${missing}`);

async function filesIn(dir: string, pattern: RegExp): Promise<string[]> {
  const files: string[] = [];
  for await (const entry of Deno.readDir(`${ROOT}${dir}`)) {
    if (entry.isFile && pattern.test(entry.name)) files.push(`${dir}/${entry.name}`);
  }
  return files.sort();
}

async function inVm(command: string[], timeoutSeconds: number): Promise<string> {
  const result = await runInVm({ command, cwd: ROOT, timeoutSeconds });
  console.log(result.output.trimEnd());
  console.log(
    `(vm: boot ${result.bootSeconds.toFixed(1)} s, total ${result.totalSeconds.toFixed(1)} s)`,
  );
  // The message carries the end of the guest's output, so a failure shows where it stopped
  // even when only the test summary is kept.
  const tail = result.output.trimEnd().split("\n").slice(-60).join("\n");
  assert.equal(result.code, 0, `exit ${result.code}; the guest's last lines:\n${tail}`);
  return result.output;
}

for (const driver of ["cmdline", "netlink"]) {
  Deno.test({
    name: `kernel: every scenario in tests/kernel/scenarios passes with real packets (${driver})`,
    ignore: missing !== null,
    sanitizeResources: false,
    sanitizeOps: false,
    async fn() {
      const files = await filesIn("tests/kernel/scenarios", /\.ya?ml$/);
      assert.ok(files.length >= 6);
      const output = await inVm(
        [
          "deno",
          "run",
          "-A",
          "--no-check",
          "tests/kernel/scenario/runner.ts",
          "--tc-driver",
          driver,
          ...files,
        ],
        1200,
      );
      const summary = SUMMARY.exec(output);
      assert.ok(summary, "no summary line");
      assert.equal(summary[2], "0");
      assert.ok(Number(summary[1]) >= 50);
    },
  });
}

/**
 * Guest test files, each run in a VM of its own with its own bound (three to four times what it
 * takes on the development machine), so a slow or stuck one is named and cannot starve the rest.
 */
const GUEST_RUNS: { file: string; filter?: string; seconds: number }[] = [
  { file: "roundtrip_guest.ts", seconds: 300 },
  { file: "netlink_guest.ts", seconds: 360 },
  { file: "monitor_guest.ts", seconds: 180 },
  { file: "latency_guest.ts", seconds: 600 },
  {
    file: "noleak_guest.ts",
    filter: "(in place) under a stream of new connections (cmdline)",
    seconds: 480,
  },
  {
    file: "noleak_guest.ts",
    filter: "(in place) under a stream of new connections (netlink)",
    seconds: 480,
  },
  {
    file: "noleak_guest.ts",
    filter: "(swap) under a stream of new connections (cmdline)",
    seconds: 480,
  },
  {
    file: "noleak_guest.ts",
    filter: "(swap) under a stream of new connections (netlink)",
    seconds: 480,
  },
  { file: "restart_guest.ts", seconds: 240 },
  { file: "revocation_guest.ts", seconds: 240 },
  { file: "takeover_guest.ts", seconds: 300 },
  { file: "repair_guest.ts", seconds: 480 },
  { file: "offload_guest.ts", seconds: 480 },
  { file: "vflag_guest.ts", seconds: 300 },
];

Deno.test({
  name: "kernel: every guest test file is run",
  async fn() {
    const listed = new Set(GUEST_RUNS.map((r) => `tests/kernel/guest/${r.file}`));
    assert.deepEqual(await filesIn("tests/kernel/guest", /_guest\.ts$/), [...listed].sort());
  },
});

for (const { file, filter, seconds } of GUEST_RUNS) {
  Deno.test({
    name: `kernel: guest tests in ${file}${filter ? ` ${filter}` : ""}`,
    ignore: missing !== null,
    sanitizeResources: false,
    sanitizeOps: false,
    async fn() {
      const select = filter ? ["--filter", filter] : [];
      const output = await inVm(
        ["deno", "test", "-A", "--no-check", ...select, `tests/kernel/guest/${file}`],
        seconds,
      );
      assert.match(
        stripVTControlCharacters(output),
        /^ok \| [1-9]\d* passed/m,
        "the guest ran its tests",
      );
    },
  });
}
