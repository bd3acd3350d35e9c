/**
 * Command line for the test VM: runs one command in a fresh qemu guest (see `vm.ts`), prints its
 * output as it comes and exits with its exit code.
 *
 * ```sh
 * deno run -A tests/kernel/vm/run.ts [--timeout N] [--kvm] [--memory MiB] [--cpus N] \
 *   [--host-forward] [--host-port PORT]... [--env K=V]... [--cwd DIR] [--share DIR]... \
 *   [--verbose] -- cmd args...
 * ```
 *
 * `--host-port PORT` lets the guest reach 127.0.0.1:PORT on the host at 10.0.2.100:PORT (and
 * nothing else); `--host-forward` gives it an unrestricted user-mode network instead.
 *
 * `--verbose` also prints the guest console and the timings to stderr.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { runInVm, VM_FAILURE_CODE, vmPrerequisites } from "./vm.ts";

const USAGE = "usage: deno run -A tests/kernel/vm/run.ts [--timeout N] [--kvm] [--memory MiB] " +
  "[--cpus N] [--host-forward] [--host-port PORT]... [--env K=V]... [--cwd DIR] " +
  "[--share DIR]... [--verbose] -- cmd args...";

/** Parses `args`, runs the command in the VM and returns the exit code to exit with. */
export async function main(args: string[]): Promise<number> {
  const parsed = parseArgs({
    args,
    allowPositionals: true,
    strict: true,
    options: {
      timeout: { type: "string" },
      kvm: { type: "boolean" },
      memory: { type: "string" },
      cpus: { type: "string" },
      "host-forward": { type: "boolean" },
      "host-port": { type: "string", multiple: true },
      env: { type: "string", multiple: true },
      cwd: { type: "string" },
      share: { type: "string", multiple: true },
      verbose: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  const v = parsed.values;
  if (v.help) {
    console.log(USAGE);
    return 0;
  }
  if (parsed.positionals.length === 0) {
    console.error(USAGE);
    return 2;
  }
  const num = (name: string, s: string | undefined): number | undefined => {
    if (s === undefined) return undefined;
    const n = Number(s);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name}: not a positive number: ${s}`);
    return n;
  };
  const env: Record<string, string> = {};
  for (const kv of v.env ?? []) {
    const eq = kv.indexOf("=");
    if (eq <= 0) throw new Error(`--env: expected K=V, got ${kv}`);
    env[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  const reason = await vmPrerequisites();
  if (reason) {
    console.error(reason);
    return VM_FAILURE_CODE;
  }
  const enc = new TextEncoder();
  let streamed = false;
  // Ctrl-C or a TERM stops the VM instead of leaving qemu to its own timeout.
  const abort = new AbortController();
  const stop = () => abort.abort();
  const signals: Deno.Signal[] = ["SIGINT", "SIGTERM"];
  for (const sig of signals) Deno.addSignalListener(sig, stop);
  const result = await runInVm({
    signal: abort.signal,
    shares: v.share,
    command: parsed.positionals,
    cwd: v.cwd,
    env,
    timeoutSeconds: num("timeout", v.timeout),
    kvm: v.kvm ?? false,
    memoryMiB: num("memory", v.memory),
    cpus: num("cpus", v.cpus),
    hostForward: v["host-forward"] ?? false,
    hostPorts: (v["host-port"] ?? []).map((p) => num("host-port", p) ?? 0),
    onOutput: (text) => {
      streamed = true;
      Deno.stdout.writeSync(enc.encode(text));
    },
  }).finally(() => {
    for (const sig of signals) Deno.removeSignalListener(sig, stop);
  });
  if (v.verbose) {
    console.error(`--- guest console ---\n${result.console}\n--- end of guest console ---`);
  }
  if (!streamed) {
    Deno.stdout.writeSync(enc.encode(result.output));
  } else if (result.code === VM_FAILURE_CODE || result.timedOut) {
    // The explanation is appended on the host side, after the streamed part.
    const tail = result.output.slice(result.output.lastIndexOf("\nvm: ") + 1);
    Deno.stdout.writeSync(enc.encode(tail));
  }
  if (v.verbose) {
    console.error(
      `vm: exit ${result.code}, boot ${result.bootSeconds.toFixed(1)} s, ` +
        `total ${result.totalSeconds.toFixed(1)} s`,
    );
  }
  return result.code;
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
