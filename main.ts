/**
 * multi-networkpolicy-tc: the node agent's entry point. With no subcommand it
 * runs the daemon; `render` prints offline what would be enforced; `simulate`
 * runs one flow through those programs; `explain` says which policy rules
 * allow or drop a packet.
 */
import denoConfig from "./deno.json" with { type: "json" };
import { agentHelp, parseAgentFlags, UsageError } from "./src/cli/flags.ts";
import { runRender } from "./src/cli/render.ts";
import { parseRenderFlags, renderHelp } from "./src/cli/render_flags.ts";
import { runSimulate } from "./src/cli/simulate.ts";
import { runExplain } from "./src/cli/explain.ts";
import { explainHelp, parseExplainFlags } from "./src/cli/explain_flags.ts";
import { parseSimulateFlags, simulateHelp } from "./src/cli/simulate_flags.ts";
import { runDaemon } from "./src/agent/daemon.ts";
import { subcommand, type SubcommandMain, usageFailure } from "./src/cli/subcommand.ts";
import { log } from "./src/log/klog.ts";

/** The version printed by `--version`. */
export const VERSION: string = denoConfig.version;

/** The offline subcommands, by name. */
const SUBCOMMANDS: Record<string, SubcommandMain> = {
  render: subcommand("render", parseRenderFlags, renderHelp, runRender),
  simulate: subcommand("simulate", parseSimulateFlags, simulateHelp, runSimulate),
  explain: subcommand("explain", parseExplainFlags, explainHelp, runExplain),
};

/** Runs the CLI with `args`; returns the process exit status. */
export async function main(args: string[]): Promise<number> {
  const command = Object.hasOwn(SUBCOMMANDS, args[0] ?? "") ? SUBCOMMANDS[args[0]] : undefined;
  if (command) return await command(args.slice(1));
  let options;
  try {
    options = parseAgentFlags(args);
  } catch (error) {
    if (error instanceof UsageError) return usageFailure(error, "--help");
    throw error;
  }
  if (options.help) {
    console.log(agentHelp());
    return 0;
  }
  if (options.version) {
    console.log(`multi-networkpolicy-tc ${VERSION}`);
    return 0;
  }
  try {
    log.configure(options.klog);
  } catch (error) {
    console.error(`multi-networkpolicy-tc: cannot set up logging: ${(error as Error).message}`);
    return 1;
  }
  log.info("multi-networkpolicy-tc", { version: VERSION });
  return await runDaemon(options);
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
