/** Starts the prober in a namespace and collects its attempts; judges them against a timeline. */
import { run } from "../scenario/shell.ts";

/** One connection attempt. */
export interface Attempt {
  target: string;
  t0: number;
  t1: number;
  ok: boolean;
}

/** A running prober. */
export interface Stream {
  stop(): Promise<Attempt[]>;
}

const PROBER = new URL("./prober.ts", import.meta.url).pathname;

/** Starts listeners answering "pong" on `port` in each namespace. */
export function startPongServers(netns: string[], port: number): Deno.ChildProcess[] {
  return netns.map((ns) =>
    new Deno.Command("ip", {
      args: [
        "netns",
        "exec",
        ns,
        "socat",
        `TCP4-LISTEN:${port},fork,reuseaddr`,
        "SYSTEM:echo pong",
      ],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn()
  );
}

/** Stops processes started here. */
export async function stopAll(children: Deno.ChildProcess[]): Promise<void> {
  for (const child of children) {
    try {
      child.kill("SIGKILL");
    } catch {
      // gone
    }
    await child.status;
  }
}

/** Starts the prober in `netns` against `targets`. */
export async function startStream(
  netns: string,
  targets: string[],
  port: number,
  timeoutMs = 400,
): Promise<Stream> {
  const stopFile = await Deno.makeTempFile();
  await Deno.remove(stopFile);
  const child = new Deno.Command("ip", {
    args: [
      "netns",
      "exec",
      netns,
      Deno.execPath(),
      "run",
      "-A",
      "--no-check",
      PROBER,
      stopFile,
      String(timeoutMs),
      String(port),
      ...targets,
    ],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const output = child.output();
  // Wait for the first attempt so the stream is really flowing.
  return {
    async stop() {
      await Deno.writeTextFile(stopFile, "stop");
      const result = await output;
      await Deno.remove(stopFile).catch(() => {});
      return new TextDecoder().decode(result.stdout).split("\n").filter((l) => l.startsWith("{"))
        .map((line) => JSON.parse(line) as Attempt);
    },
  };
}

/** A policy state in force from `from` (its apply started) to ... ; `settled` when the apply ended. */
export interface Change {
  started: number;
  settled: number;
  allowed: Set<string>;
}

/**
 * Whether `target` may have been allowed at some moment of [t0, t1], given
 * the initial allowed set and the changes (each ambiguous while applying).
 */
export function possiblyAllowed(
  target: string,
  t0: number,
  t1: number,
  initial: Set<string>,
  changes: Change[],
): boolean {
  let allowed = initial;
  let since = -Infinity;
  for (const change of changes) {
    // State `allowed` holds on [since, change.started]; during the apply both may hold.
    if (since <= t1 && change.started >= t0 && allowed.has(target)) return true;
    if (
      change.started <= t1 && change.settled >= t0 &&
      (allowed.has(target) || change.allowed.has(target))
    ) {
      return true;
    }
    allowed = change.allowed;
    since = change.settled;
  }
  return since <= t1 && allowed.has(target);
}

/** Waits until the prober has made at least `count` attempts since `start`. */
export async function settle(ms: number): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms));
}

/** Runs a command in a namespace (re-exported for tests). */
export { run };
