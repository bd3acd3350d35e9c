/** Running main.ts as users run it: a real subprocess, its exit code and output. */

const MAIN = new URL("../../main.ts", import.meta.url).pathname;
const ROOT = new URL("../../", import.meta.url).pathname;

/** What a run of main.ts printed and returned. */
export interface MainResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `main.ts ARGS...` from the repository root with render's permissions;
 * `--cached-only` keeps Deno's own download notices out of stderr.
 */
export async function runMain(...args: string[]): Promise<MainResult> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--cached-only",
      "--allow-read",
      "--allow-env",
      "--allow-sys=hostname",
      MAIN,
      ...args,
    ],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: decode(out.stdout), stderr: decode(out.stderr) };
}
