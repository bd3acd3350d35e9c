/**
 * How the scale harness starts one of the project's scripts in a process of
 * its own (the loader, the agent, the heap breakdown; the test suite's smoke
 * run starts the harness itself the same way).
 */

/** The project's deno.json: its import map and settings. */
const CONFIG = new URL("../../deno.json", import.meta.url).pathname;

/** The arguments of `deno run` for `script` with `args`: every permission, deno.json, and `v8Flags` if any. */
export function denoRunArgs(script: URL, args: string[], v8Flags: string[] = []): string[] {
  return [
    "run",
    "--allow-all",
    ...(v8Flags.length > 0 ? [`--v8-flags=${v8Flags.join(",")}`] : []),
    "--config",
    CONFIG,
    script.pathname,
    ...args,
  ];
}
