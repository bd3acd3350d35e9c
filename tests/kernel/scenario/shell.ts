/** Running host commands from the in-VM harness, with errors that say what failed. */
import { type ProcessResult, runProcess } from "../../../src/drivers/cmdline/process.ts";

/** Result of a command that is allowed to fail. */
export type CommandResult = ProcessResult;

/** Runs a command and returns its result, whatever the exit code. */
export function tryRun(args: string[], stdin?: string): Promise<CommandResult> {
  return runProcess(args[0], args.slice(1), stdin);
}

/** Runs a command; throws with its stderr when it fails. */
export async function run(args: string[], stdin?: string): Promise<string> {
  const result = await tryRun(args, stdin);
  if (result.code !== 0) {
    throw new Error(`${args.join(" ")} failed (${result.code}): ${result.stderr.trim()}`);
  }
  return result.stdout;
}

/** Runs a command inside a network namespace. */
export function inNetns(netns: string, args: string[], stdin?: string): Promise<string> {
  return run(["ip", "netns", "exec", netns, ...args], stdin);
}
