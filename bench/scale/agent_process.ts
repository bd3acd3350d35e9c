/**
 * The harness's handle on the agent process (./agent.ts): starts it, collects
 * what it streams (sink calls, syncs, "caches synced", warnings), and reads
 * its memory and CPU from /proc, as `top` would.
 */
import type { AgentEvent } from "./agent.ts";
import { denoRunArgs } from "./deno_run.ts";
import type { SinkCall } from "./recorder.ts";
import type { MemoryPoint, SyncRecord } from "./report.ts";

/**
 * The V8 flags the executable is built with: those of `deno task compile`
 * (deno.json), so that the agent is measured as it ships.
 */
export async function shippedV8Flags(): Promise<string[]> {
  const config = JSON.parse(
    await Deno.readTextFile(new URL("../../deno.json", import.meta.url)),
  ) as { tasks?: Record<string, string> };
  const task = config.tasks?.compile ?? "";
  const flags = /--v8-flags=(\S+)/.exec(task)?.[1];
  return flags ? flags.split(",") : [];
}

/** The agent under measurement, running in a child process. */
export class AgentProcess {
  readonly calls: SinkCall[] = [];
  readonly syncs: SyncRecord[] = [];
  cachesSyncedAt: number | null = null;
  warnings = 0;
  /** Interfaces the sink holds rules for, after the last call. */
  interfaces = 0;
  readonly #child: Deno.ChildProcess;
  readonly #stdin: WritableStreamDefaultWriter<Uint8Array>;
  readonly #memory: ((point: MemoryPoint) => void)[] = [];
  readonly #done: Promise<void>;
  #stopped: (() => void) | null = null;
  #exited = false;

  private constructor(
    child: Deno.ChildProcess,
    private readonly firstMemory: Promise<MemoryPoint>,
  ) {
    this.#child = child;
    this.#stdin = child.stdin.getWriter();
    this.#done = this.#read();
  }

  /**
   * Starts the agent with `agentFlags` and V8 flags `v8Flags`; its log goes
   * to `logPath`. Resolves with its memory before the daemon started.
   */
  static async start(
    agentFlags: string[],
    v8Flags: string[],
    logPath: string,
  ): Promise<{ agent: AgentProcess; baseline: MemoryPoint }> {
    const child = new Deno.Command(Deno.execPath(), {
      args: denoRunArgs(
        new URL("./agent.ts", import.meta.url),
        ["--log", logPath, "--", ...agentFlags],
        ["--expose-gc", ...v8Flags],
      ),
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    let first: (point: MemoryPoint) => void = () => {};
    const firstMemory = new Promise<MemoryPoint>((resolve) => first = resolve);
    const agent = new AgentProcess(child, firstMemory);
    agent.#memory.push(first);
    return { agent, baseline: await agent.firstMemory };
  }

  /** Whether the agent process has ended (its stdout closed). */
  get exited(): boolean {
    return this.#exited;
  }

  /** The process id. */
  get pid(): number {
    return this.#child.pid;
  }

  async #read(): Promise<void> {
    let pending = "";
    for await (const chunk of this.#child.stdout.pipeThrough(new TextDecoderStream())) {
      pending += chunk;
      let newline;
      while ((newline = pending.indexOf("\n")) >= 0) {
        this.#handle(JSON.parse(pending.slice(0, newline)) as AgentEvent);
        pending = pending.slice(newline + 1);
      }
    }
    this.#exited = true;
  }

  #handle(event: AgentEvent): void {
    switch (event.event) {
      case "cachesSynced":
        this.cachesSyncedAt = event.at;
        break;
      case "warning":
        this.warnings++;
        break;
      case "call":
        this.calls.push(event.call);
        this.interfaces = event.interfaces;
        break;
      case "sync": {
        const index = this.syncs.length;
        this.syncs.push(event.sync);
        const last = this.calls[this.calls.length - 1];
        const began = event.sync.end - event.sync.durationMs;
        if (last && last.sync === undefined && last.at >= began) last.sync = index;
        break;
      }
      case "memory":
        this.#memory.shift()?.(event.memory);
        break;
      case "stopped":
        this.#stopped?.();
        break;
    }
  }

  async #send(command: string): Promise<void> {
    if (this.#exited) throw new Error("the agent process has exited");
    await this.#stdin.write(new TextEncoder().encode(command + "\n"));
  }

  /** Memory after a forced collection in the agent. */
  async memory(): Promise<MemoryPoint> {
    const point = new Promise<MemoryPoint>((resolve) => this.#memory.push(resolve));
    await this.#send("mem");
    return await point;
  }

  /** Resident memory now, bytes, as the kernel counts it (no forced collection). */
  rss(): number {
    const status = Deno.readTextFileSync(`/proc/${this.pid}/status`);
    const kib = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1]);
    if (!Number.isFinite(kib)) throw new Error(`no VmRSS in /proc/${this.pid}/status`);
    return kib * 1024;
  }

  /** CPU seconds (user + system) the agent has used: /proc/PID/stat, in USER_HZ (100) ticks. */
  cpuSeconds(): number {
    const stat = Deno.readTextFileSync(`/proc/${this.pid}/stat`);
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100;
  }

  /** Stops the daemon and waits for the process to end. */
  async stop(): Promise<void> {
    if (!this.#exited) {
      const stopped = new Promise<void>((resolve) => this.#stopped = resolve);
      await this.#send("stop").catch(() => {});
      await Promise.race([stopped, new Promise((resolve) => setTimeout(resolve, 10_000))]);
    }
    try {
      this.#child.kill("SIGKILL");
    } catch {
      // already gone
    }
    await this.#child.status;
    await this.#done.catch(() => {});
  }
}
