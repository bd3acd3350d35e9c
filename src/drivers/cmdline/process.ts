/** Running a program with optional standard input, collecting its output. */

/** What a finished process left. */
export interface ProcessResult {
  code: number;
  stdout: string;
  stderr: string;
}

const decoder = new TextDecoder();

/** Runs `command args`, feeding `stdin` when given; never throws for a non-zero exit. */
export async function runProcess(
  command: string,
  args: string[],
  stdin?: string,
): Promise<ProcessResult> {
  const child = new Deno.Command(command, {
    args,
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
