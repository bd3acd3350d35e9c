/**
 * The agent under measurement, in a process of its own: the scale harness
 * (./main.ts) starts it, so that the memory and CPU it reads are the agent's
 * alone, as a user would see them, and not the harness's. It runs the daemon
 * with the agent flags it is given and a recording sink (./recorder.ts), and
 * streams on stdout one JSON line per event ({@link AgentEvent}): the first
 * "caches synced", each warning, each sink call, each sync, and memory when
 * asked. The agent's log goes to the file named by `--log`.
 *
 * stdin takes one command per line: `mem` (force a collection, then report
 * memory), `stop` (stop the daemon and exit).
 *
 * Usage: `deno run -A --v8-flags=--expose-gc bench/scale/agent.ts --log FILE -- AGENT_FLAGS...`
 */
import { parseArgs } from "node:util";
import { startDaemon } from "../../src/agent/daemon.ts";
import { parseAgentFlags } from "../../src/cli/flags.ts";
import { log } from "../../src/log/klog.ts";
import { ScaleSink, type SinkCall } from "./recorder.ts";
import type { MemoryPoint, SyncRecord } from "./report.ts";

/** One line of the agent process's stdout. */
export type AgentEvent =
  | { event: "cachesSynced"; at: number }
  | { event: "warning" }
  | { event: "call"; call: SinkCall; interfaces: number }
  | { event: "sync"; sync: SyncRecord }
  | { event: "memory"; memory: MemoryPoint }
  | { event: "stopped" };

/** Milliseconds on a clock both processes share (the epoch, sub-millisecond). */
export function sharedNow(): number {
  return performance.timeOrigin + performance.now();
}

/** RSS and heap after a forced collection. */
function memory(): MemoryPoint {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error("run with --v8-flags=--expose-gc");
  gc();
  gc();
  const usage = Deno.memoryUsage();
  return {
    rss: usage.rss,
    heapUsed: usage.heapUsed,
    heapTotal: usage.heapTotal,
    external: usage.external,
  };
}

const encoder = new TextEncoder();
function emit(event: AgentEvent): void {
  Deno.stdout.writeSync(encoder.encode(JSON.stringify(event) + "\n"));
}

/** Hands each call on as it is recorded and keeps none of them. */
class StreamingSink extends ScaleSink {
  override async apply(...args: Parameters<ScaleSink["apply"]>) {
    const results = await super.apply(...args);
    emit({ event: "call", call: this.calls.pop()!, interfaces: this.interfaces });
    return results;
  }
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    options: { log: { type: "string" } },
    allowPositionals: true,
  });
  if (!values.log) throw new Error("--log is required");
  const logFile = await Deno.open(values.log, { create: true, write: true, truncate: true });
  const options = parseAgentFlags(positionals);
  log.configure(options.klog);
  let cachesSynced = false;
  log.setStderrSink({
    write(line, severity) {
      if (!cachesSynced && line.includes("caches synced")) {
        cachesSynced = true;
        emit({ event: "cachesSynced", at: sharedNow() });
      }
      if (severity !== "I") emit({ event: "warning" });
      logFile.writeSync(encoder.encode(line));
    },
  });
  const sink = new StreamingSink(sharedNow);
  emit({ event: "memory", memory: memory() });
  const daemon = startDaemon(options, sink, {
    onSync(report) {
      emit({
        event: "sync",
        sync: {
          end: sharedNow(),
          durationMs: report.durationMs,
          full: report.full,
          changes: report.changes.length,
          ...(report.error ? { error: report.error } : {}),
        },
      });
    },
  });
  const lines = Deno.stdin.readable.pipeThrough(new TextDecoderStream());
  let pending = "";
  for await (const chunk of lines) {
    pending += chunk;
    let newline;
    while ((newline = pending.indexOf("\n")) >= 0) {
      const command = pending.slice(0, newline).trim();
      pending = pending.slice(newline + 1);
      if (command === "mem") emit({ event: "memory", memory: memory() });
      else if (command === "stop") {
        await daemon.stop();
        emit({ event: "stopped" });
        logFile.close();
        Deno.exit(0);
      }
    }
  }
  await daemon.stop();
  logFile.close();
}

if (import.meta.main) await main();
