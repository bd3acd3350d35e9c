/**
 * The offline subcommands' common frame (`render`, `simulate`): parse the
 * flags, print `--help`, or run; a usage mistake is one line and exit 2.
 */
import { hostIdentity } from "../cluster/node_name.ts";
import { UsageError } from "./flag_table.ts";

/** Prints a usage mistake as one line, pointing at `hint`; returns exit status 2. */
export function usageFailure(error: UsageError, hint: string): number {
  console.error(`multi-networkpolicy-tc: ${error.message} (see ${hint})`);
  return 2;
}

/** This host's node name, as the daemon decides it; a usage error when it has none. */
function thisNode(): string {
  try {
    return hostIdentity("", () => Deno.hostname()).name;
  } catch (error) {
    throw new UsageError(`${(error as Error).message}: give --node`);
  }
}

/** A subcommand's entry point: its arguments in, its exit status out. */
export type SubcommandMain = (args: string[]) => Promise<number>;

/** Builds a subcommand's entry point from its flag parser, help and body. */
export function subcommand<O extends { help: boolean }>(
  name: string,
  parse: (args: string[], defaultNode: () => string) => O,
  help: () => string,
  run: (options: O) => Promise<number>,
): SubcommandMain {
  return async (args) => {
    try {
      const options = parse(args, thisNode);
      if (options.help) {
        console.log(help());
        return 0;
      }
      return await run(options);
    } catch (error) {
      if (error instanceof UsageError) return usageFailure(error, `${name} --help`);
      throw error;
    }
  };
}
