/**
 * The scale harness (`deno task bench:scale`): starts the test suite's real
 * kube-apiserver and etcd, loads a large cluster (./cluster.ts, created by the
 * child process ./load.ts so that this one's memory holds only the agent),
 * runs the agent in this process with a recording sink (./recorder.ts),
 * applies churn at a steady rate (./churn.ts), estimates where the agent's
 * heap goes (child process ./breakdown.ts), and prints what it measured
 * (./report.ts): time to the first full sync, memory, change → sink latency,
 * interfaces per sync, CPU.
 *
 * Flags: `--pods N` (default 10000; every count scales with it), `--minutes M`
 * (churn duration, default 10), `--rate R` (changes per second, default 10),
 * `--seed S`, `--concurrency C` (parallel creates while loading, default 32),
 * `--log-dir DIR` (keeps the agent's, etcd's and the apiserver's logs and the
 * report as `report.json`; default a new temporary directory),
 * `--agent-flag FLAG` (repeatable: a flag for the agent, e.g.
 * `--agent-flag=--min-sync-interval=200ms`), `--no-breakdown` (skip the heap
 * breakdown after the run), `--json` (print the report as JSON instead of the
 * table). Progress goes to stderr.
 */
import { parseArgs } from "node:util";
import { startDaemon } from "../../src/agent/daemon.ts";
import type { SyncReport } from "../../src/agent/sync.ts";
import { parseAgentFlags } from "../../src/cli/flags.ts";
import { log, type Severity } from "../../src/log/klog.ts";
import { type ControlPlane, startControlPlane } from "../../tests/k8s/controlplane/controlplane.ts";
import { installCrds } from "../../tests/support/controlplane.ts";
import { ApiClient, failure } from "./api.ts";
import type { Breakdown } from "./breakdown.ts";
import { ChurnPlan } from "./churn.ts";
import type { LoadResult } from "./load.ts";
import { ScaleSink } from "./recorder.ts";
import {
  churnFigures,
  formatReport,
  judge,
  type MemoryPoint,
  type OpRecord,
  type ScaleReport,
  type SyncRecord,
} from "./report.ts";

const { values: flags } = parseArgs({
  args: Deno.args,
  options: {
    pods: { type: "string", default: "10000" },
    minutes: { type: "string", default: "10" },
    rate: { type: "string", default: "10" },
    seed: { type: "string", default: "1" },
    concurrency: { type: "string", default: "32" },
    "log-dir": { type: "string" },
    "agent-flag": { type: "string", multiple: true, default: [] },
    "no-breakdown": { type: "boolean", default: false },
    json: { type: "boolean", default: false },
    help: { type: "boolean", short: "h", default: false },
  },
});

if (flags.help) {
  console.log(
    "usage: deno task bench:scale [--pods N] [--minutes M] [--rate R] [--seed S] " +
      "[--concurrency C] [--log-dir DIR] [--agent-flag FLAG]... [--no-breakdown] [--json]",
  );
  Deno.exit(0);
}

function number(name: string, text: string, min: number): number {
  const value = Number(text);
  if (!Number.isFinite(value) || value < min) {
    console.error(`--${name}: want a number ≥ ${min}, got ${JSON.stringify(text)}`);
    Deno.exit(2);
  }
  return value;
}

const pods = number("pods", flags.pods, 100);
const minutes = number("minutes", flags.minutes, 0);
const rate = number("rate", flags.rate, 0.1);
const seed = number("seed", flags.seed, 0);
const concurrency = number("concurrency", flags.concurrency, 1);
const agentFlags = flags["agent-flag"];

const began = performance.now();
/** A progress line on stderr. */
function progress(message: string): void {
  console.error(`[${((performance.now() - began) / 1000).toFixed(1).padStart(6)} s] ${message}`);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** RSS and heap after a forced collection (when `--expose-gc` is on). */
function memory(): MemoryPoint {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  gc?.();
  const usage = Deno.memoryUsage();
  return {
    rss: usage.rss,
    heapUsed: usage.heapUsed,
    heapTotal: usage.heapTotal,
    external: usage.external,
  };
}

/** CPU seconds (user + system) this process has used: /proc/self/stat, in USER_HZ (100) ticks. */
function cpuSeconds(): number {
  const stat = Deno.readTextFileSync("/proc/self/stat");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

const logDir = flags["log-dir"] ?? await Deno.makeTempDir({ prefix: "mnp-scale-" });
await Deno.mkdir(logDir, { recursive: true });

let cp: ControlPlane | null = null;
let api: ApiClient | null = null;
let daemon: ReturnType<typeof startDaemon> | null = null;
const agentLog = await Deno.open(`${logDir}/agent.log`, {
  create: true,
  write: true,
  truncate: true,
});
let exitCode = 0;
try {
  cp = await startControlPlane({ http2: false, logDir });
  progress(`control plane up at ${cp.server}`);
  await installCrds(cp.adminKubeconfig);
  api = await ApiClient.fromKubeconfig(cp.adminKubeconfig);

  // Load, in a child process: building and sending the objects stays out of this one's memory.
  progress(`loading ${pods} pods' worth of objects; logs in ${logDir}`);
  const loader = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-all",
      "--config",
      new URL("../../deno.json", import.meta.url).pathname,
      new URL("./load.ts", import.meta.url).pathname,
      "--kubeconfig",
      cp.adminKubeconfig,
      "--pods",
      String(Math.round(pods)),
      "--seed",
      String(seed),
      "--concurrency",
      String(concurrency),
    ],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  if (!loader.success) throw new Error(`loading failed (exit ${loader.code})`);
  const loaded = JSON.parse(new TextDecoder().decode(loader.stdout)) as LoadResult;
  const { size, basis } = loaded;
  progress(
    `loaded ${loaded.objects} objects in ${loaded.seconds.toFixed(1)} s (${
      Math.round(loaded.objects / loaded.seconds)
    }/s)`,
  );

  // Start the agent.
  const baseline = memory();
  const sink = new ScaleSink();
  const syncs: SyncRecord[] = [];
  let cachesSyncedAt: number | null = null;
  let warnings = 0;
  const encoder = new TextEncoder();
  const options = parseAgentFlags([
    "--kubeconfig",
    cp.adminKubeconfig,
    "--hostname-override",
    basis.node,
    "--health-address",
    "127.0.0.1:0",
    "--metrics-address",
    "127.0.0.2:0",
    "--pod-resources-socket=",
    ...agentFlags,
  ]);
  log.configure(options.klog);
  log.setStderrSink({
    write(line: string, severity: Severity) {
      if (cachesSyncedAt === null && line.includes("caches synced")) {
        cachesSyncedAt = performance.now();
      }
      if (severity !== "I") warnings++;
      agentLog.writeSync(encoder.encode(line));
    },
  });
  const onSync = (report: SyncReport) => {
    const end = performance.now();
    const index = syncs.length;
    syncs.push({
      end,
      durationMs: report.durationMs,
      full: report.full,
      changes: report.changes.length,
      ...(report.error ? { error: report.error } : {}),
    });
    const last = sink.calls[sink.calls.length - 1];
    if (last && last.sync === undefined && last.at >= end - report.durationMs) last.sync = index;
  };
  const cpuBefore = cpuSeconds();
  const started = performance.now();
  daemon = startDaemon(options, sink, { onSync });
  const deadline = started + 600_000;
  while (!sink.calls.some((call) => call.full)) {
    if (performance.now() > deadline) throw new Error("no full sync within 10 minutes");
    await sleep(20);
  }
  const firstCall = sink.calls.find((call) => call.full)!;
  while (syncs.length === 0) await sleep(5);
  const cpuStartup = cpuSeconds() - cpuBefore;
  const synced = cachesSyncedAt ?? NaN;
  const startup = {
    cachesSyncedS: (synced - started) / 1000,
    firstSyncS: (firstCall.at - started) / 1000,
    afterCachesS: (firstCall.at - synced) / 1000,
    firstSyncMs: syncs.find((sync) => sync.full)?.durationMs ?? NaN,
    interfaces: sink.interfaces,
    cpuS: cpuStartup,
  };
  progress(
    `first full sync: ${startup.interfaces} interfaces, ${
      startup.firstSyncS.toFixed(2)
    } s after start, ${startup.afterCachesS.toFixed(2)} s after caches synced`,
  );
  await sleep(2000);
  const afterSync = memory();
  progress(`RSS after first sync: ${(afterSync.rss / 1048576).toFixed(1)} MiB`);

  // Churn.
  const plan = new ChurnPlan(basis);
  const total = Math.round(minutes * 60 * rate);
  const ops: OpRecord[] = [];
  /** RSS every 30 s of churn (no forced collection). */
  const samples: number[] = [];
  const inflight = new Set<Promise<void>>();
  const churnCpu = cpuSeconds();
  const churnStart = performance.now();
  let nextReport = churnStart + 30_000;
  for (let i = 0; i < total; i++) {
    const wait = churnStart + (i * 1000) / rate - performance.now();
    if (wait > 0) await sleep(wait);
    while (inflight.size >= 32) await Promise.race(inflight);
    const op = plan.next();
    const record: OpRecord = {
      seq: op.seq,
      kind: op.kind,
      object: op.object,
      target: op.target,
      token: op.token,
      expected: op.expected,
      start: performance.now(),
      done: NaN,
      error: null,
    };
    ops.push(record);
    const write: Promise<void> = api.request(op.request).then(
      (response) => {
        record.done = performance.now();
        record.error = failure(response);
      },
      (error) => {
        record.done = performance.now();
        record.error = String(error);
      },
    ).finally(() => inflight.delete(write));
    inflight.add(write);
    if (performance.now() >= nextReport) {
      nextReport += 30_000;
      const rss = Deno.memoryUsage().rss;
      samples.push(rss);
      progress(
        `churn: ${i + 1}/${total} writes, ${syncs.length} syncs, RSS ${
          (rss / 1048576).toFixed(1)
        } MiB`,
      );
    }
  }
  await Promise.all(inflight);
  // Let the last changes through: no sync and no write for 3 s (at most 30 s).
  const settleLimit = performance.now() + 30_000;
  while (performance.now() < settleLimit) {
    const lastSync = syncs[syncs.length - 1]?.end ?? 0;
    const lastWrite = ops[ops.length - 1]?.done ?? 0;
    if (performance.now() - Math.max(lastSync, lastWrite) >= 3000) break;
    await sleep(200);
  }
  const churnSeconds = (performance.now() - churnStart) / 1000;
  const churnCpuS = cpuSeconds() - churnCpu;
  const afterChurn = memory();
  progress(
    `churn done: ${ops.length} writes in ${churnSeconds.toFixed(0)} s; RSS ${
      (afterChurn.rss / 1048576).toFixed(1)
    } MiB`,
  );

  await daemon.stop();
  daemon = null;
  // Heap breakdown, in a fresh process: the agent's two copies of the cluster alone.
  let breakdown: Record<string, number> | undefined;
  if (!flags["no-breakdown"]) {
    const child = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-all",
        "--v8-flags=--expose-gc",
        "--config",
        new URL("../../deno.json", import.meta.url).pathname,
        new URL("./breakdown.ts", import.meta.url).pathname,
        "--kubeconfig",
        cp.adminKubeconfig,
      ],
      stdout: "piped",
      stderr: "inherit",
    }).output();
    if (!child.success) throw new Error(`heap breakdown failed (exit ${child.code})`);
    const measured = JSON.parse(new TextDecoder().decode(child.stdout)) as Breakdown;
    const agentHeap = afterSync.heapUsed - baseline.heapUsed;
    breakdown = {
      "agent heap after the first sync (over the harness alone)": agentHeap,
      "  API objects as parsed JSON (what the informers' caches hold)": measured.raw,
      "  ClusterStore alone (parsed objects + their JSON text)": measured.store,
      "  both together (the store shares strings with them)": measured.both,
      "  rest (sync state, client-node, the sink's views)": agentHeap - measured.both,
    };
  }

  const figures = churnFigures(ops, sink.calls, syncs);
  const partial: Omit<ScaleReport, "targets"> = {
    config: {
      pods: size.pods,
      namespaces: size.namespaces,
      networks: size.networks,
      policedNetworks: size.policedNetworks,
      policies: size.policies,
      localPods: size.localPods,
      vfPods: size.vfPods,
      nodes: size.nodes,
      minutes,
      rate,
      seed,
      agentFlags,
    },
    load: {
      seconds: loaded.seconds,
      objects: loaded.objects,
      perSecond: loaded.objects / loaded.seconds,
      byKind: loaded.steps,
    },
    startup,
    memory: {
      baseline,
      afterSync,
      afterChurn,
      growthPct: (100 * (afterChurn.rss - afterSync.rss)) / afterSync.rss,
      heapGrowthPct: (100 * (afterChurn.heapUsed - afterSync.heapUsed)) / afterSync.heapUsed,
      churnSamples: samples,
    },
    churn: { ...figures, seconds: churnSeconds, cpuS: churnCpuS, warnings },
    breakdown,
  };
  const report: ScaleReport = { ...partial, targets: judge(partial) };
  for (const target of figures.unmatchedSample) progress(`no effect seen at the sink: ${target}`);
  for (const line of figures.syncs.unexpectedSample) progress(`handed over unexpectedly: ${line}`);
  await Deno.writeTextFile(`${logDir}/report.json`, JSON.stringify(report, null, 2) + "\n");
  if (flags.json) console.log(JSON.stringify(report, null, 2));
  else console.log(formatReport(report));
} catch (error) {
  exitCode = 1;
  console.error(`scale harness failed: ${error instanceof Error ? error.stack : String(error)}`);
} finally {
  await daemon?.stop().catch(() => {});
  api?.close();
  await cp?.stop().catch(() => {});
  agentLog.close();
  log.setStderrSink({
    write: (line) => void Deno.stderr.writeSync(new TextEncoder().encode(line)),
  });
  progress(`logs kept in ${logDir}`);
}
Deno.exit(exitCode);
