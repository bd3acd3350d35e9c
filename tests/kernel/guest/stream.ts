/** Starts the prober in a namespace and collects its attempts; judges them against a timeline. */
import { run } from "../scenario/shell.ts";

/** One connection attempt. */
export interface Attempt {
  target: string;
  t0: number;
  t1: number;
  ok: boolean;
  /** How long the TCP handshake took; null when it did not complete within the time limit. */
  connectMs: number | null;
}

/** A running prober. */
export interface Stream {
  stop(): Promise<Attempt[]>;
}

/**
 * Time limit for attempts to a destination that must never fail: a dropped SYN is only sent
 * again after 1 s, so any packet of the handshake dropped by the rules still fails the attempt,
 * while most stalls of the emulated guest's CPUs (a burst of `tc` or Deno start-up beside socat
 * forking its answer) do not. Whether a packet was dropped is counted by ./ledger.ts.
 */
export const PATIENT_MS = 900;

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

/**
 * Starts the prober in `netns` against `targets`: an attempt fails when no "pong" came within
 * `timeoutMs`, or within `limits[target]` for the targets given there.
 */
export async function startStream(
  netns: string,
  targets: string[],
  port: number,
  timeoutMs = 400,
  limits: Record<string, number> = {},
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
      ...targets.map((t) => t in limits ? `${t}=${limits[t]}` : t),
    ],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const output = child.output();
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

/** Lets `ms` milliseconds pass with the stream and the rules left alone. */
export async function settle(ms: number): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms));
}

/** Runs a command in a namespace (re-exported for tests). */
export { run };
