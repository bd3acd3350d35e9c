/** Running host commands from the in-VM harness, with errors that say what failed. */

const decoder = new TextDecoder();

/** Result of a command that is allowed to fail. */
export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command and returns its result, whatever the exit code. */
export async function tryRun(args: string[], stdin?: string): Promise<CommandResult> {
  const child = new Deno.Command(args[0], {
    args: args.slice(1),
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(stdin));
    await writer.close();
  }
  const out = await child.output();
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
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
