/**
 * The scale harness (`deno task bench:scale`): starts the test suite's real
 * kube-apiserver and etcd, loads a large cluster (./cluster.ts, created by the
 * child process ./load.ts), runs the agent in a process of its own
 * (./agent.ts, with a recording sink: ./recorder.ts) so that the memory and
 * CPU read are the agent's alone, applies churn at a steady rate
 * (./churn.ts), estimates where the agent's
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
 * `--agent-flag=--min-sync-interval=200ms`), `--v8-flags F,F` (V8 flags of
 * the agent process; default those `deno task compile` builds the executable
 * with; `--v8-flags=` for none), `--no-breakdown` (skip the heap
 * breakdown after the run), `--json` (print the report as JSON instead of the
 * table). Progress goes to stderr.
 */
import { parseArgs } from "node:util";
import { type ControlPlane, startControlPlane } from "../../tests/k8s/controlplane/controlplane.ts";
import { installCrds } from "../../tests/support/controlplane.ts";
import { sharedNow } from "./agent.ts";
import { AgentProcess, shippedV8Flags } from "./agent_process.ts";
import { ApiClient, failure } from "./api.ts";
import type { Breakdown } from "./breakdown.ts";
import { denoRunArgs } from "./deno_run.ts";
import { ChurnPlan } from "./churn.ts";
import type { LoadResult } from "./load.ts";
import {
  churnFigures,
  formatReport,
  judge,
  mib,
  type OpRecord,
  type ScaleReport,
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
    "v8-flags": { type: "string" },
    "no-breakdown": { type: "boolean", default: false },
    json: { type: "boolean", default: false },
    help: { type: "boolean", short: "h", default: false },
  },
});

if (flags.help) {
  console.log(
    "usage: deno task bench:scale [--pods N] [--minutes M] [--rate R] [--seed S] " +
      "[--concurrency C] [--log-dir DIR] [--agent-flag FLAG]... [--v8-flags F,F] [--no-breakdown] [--json]",
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
const v8Flags = flags["v8-flags"] === undefined
  ? await shippedV8Flags()
  : flags["v8-flags"].split(",").filter((flag) => flag !== "");

const began = performance.now();
/** A progress line on stderr. */
function progress(message: string): void {
  console.error(`[${((performance.now() - began) / 1000).toFixed(1).padStart(6)} s] ${message}`);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const logDir = flags["log-dir"] ?? await Deno.makeTempDir({ prefix: "mnp-scale-" });
await Deno.mkdir(logDir, { recursive: true });

let cp: ControlPlane | null = null;
let api: ApiClient | null = null;
let agent: AgentProcess | null = null;
let exitCode = 0;
try {
  cp = await startControlPlane({ http2: false, logDir });
  progress(`control plane up at ${cp.server}`);
  await installCrds(cp.adminKubeconfig);
  api = await ApiClient.fromKubeconfig(cp.adminKubeconfig);

  // Load, in a child process: building and sending the objects stays out of this one's memory.
  progress(`loading ${pods} pods' worth of objects; logs in ${logDir}`);
  const loader = await new Deno.Command(Deno.execPath(), {
    args: denoRunArgs(new URL("./load.ts", import.meta.url), [
      "--kubeconfig",
      cp.adminKubeconfig,
      "--pods",
      String(Math.round(pods)),
      "--seed",
      String(seed),
      "--concurrency",
      String(concurrency),
    ]),
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

  // Start the agent, in a process of its own.
  const { agent: started, baseline } = await AgentProcess.start(
    [
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
    ],
    v8Flags,
    `${logDir}/agent.log`,
  );
  agent = started;
  const cpuBefore = agent.cpuSeconds();
  const startedAt = sharedNow();
  const deadline = startedAt + 600_000;
  while (!agent.calls.some((call) => call.full)) {
    if (sharedNow() > deadline) throw new Error("no full sync within 10 minutes");
    if (agent.exited) throw new Error(`the agent exited before its first sync; see ${logDir}`);
    await sleep(20);
  }
  const firstCall = agent.calls.find((call) => call.full)!;
  while (agent.syncs.length === 0) await sleep(5);
  const cpuStartup = agent.cpuSeconds() - cpuBefore;
  const synced = agent.cachesSyncedAt ?? NaN;
  const startup = {
    cachesSyncedS: (synced - startedAt) / 1000,
    firstSyncS: (firstCall.at - startedAt) / 1000,
    afterCachesS: (firstCall.at - synced) / 1000,
    firstSyncMs: agent.syncs.find((sync) => sync.full)?.durationMs ?? NaN,
    interfaces: agent.interfaces,
    cpuS: cpuStartup,
  };
  progress(
    `first full sync: ${startup.interfaces} interfaces, ${
      startup.firstSyncS.toFixed(2)
    } s after start, ${startup.afterCachesS.toFixed(2)} s after caches synced`,
  );
  await sleep(2000);
  const settledRss = agent.rss();
  const afterSync = await agent.memory();
  progress(
    `agent RSS after first sync: ${mib(settledRss)}; ${mib(afterSync.rss)} after a forced GC`,
  );

  // Churn.
  const plan = new ChurnPlan(basis);
  const total = Math.round(minutes * 60 * rate);
  const ops: OpRecord[] = [];
  /** RSS every 30 s of churn (no forced collection). */
  const samples: number[] = [];
  const inflight = new Set<Promise<void>>();
  const churnCpu = agent.cpuSeconds();
  const churnStart = sharedNow();
  let nextReport = churnStart + 10_000;
  for (let i = 0; i < total; i++) {
    const wait = churnStart + (i * 1000) / rate - sharedNow();
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
      start: sharedNow(),
      done: NaN,
      error: null,
    };
    ops.push(record);
    const write: Promise<void> = api.request(op.request).then(
      (response) => {
        record.done = sharedNow();
        record.error = failure(response);
      },
      (error) => {
        record.done = sharedNow();
        record.error = String(error);
      },
    ).finally(() => inflight.delete(write));
    inflight.add(write);
    if (sharedNow() >= nextReport) {
      nextReport += 10_000;
      const rss = agent.rss();
      samples.push(rss);
      progress(
        `churn: ${i + 1}/${total} writes, ${agent.syncs.length} syncs, RSS ${
          (rss / 1048576).toFixed(1)
        } MiB`,
      );
    }
  }
  await Promise.all(inflight);
  // Let the last changes through: no sync and no write for 3 s (at most 30 s).
  const settleLimit = sharedNow() + 30_000;
  while (sharedNow() < settleLimit) {
    const lastSync = agent.syncs[agent.syncs.length - 1]?.end ?? 0;
    const lastWrite = ops[ops.length - 1]?.done ?? 0;
    if (sharedNow() - Math.max(lastSync, lastWrite) >= 3000) break;
    await sleep(200);
  }
  const churnSeconds = (sharedNow() - churnStart) / 1000;
  const churnCpuS = agent.cpuSeconds() - churnCpu;
  const settledEndRss = agent.rss();
  const afterChurn = await agent.memory();
  progress(
    `churn done: ${ops.length} writes in ${churnSeconds.toFixed(0)} s; RSS ${
      (afterChurn.rss / 1048576).toFixed(1)
    } MiB`,
  );

  await agent.stop();
  // Heap breakdown, in a fresh process: what the agent's view of the cluster takes, per kind.
  let breakdown: Record<string, number> | undefined;
  if (!flags["no-breakdown"]) {
    const child = await new Deno.Command(Deno.execPath(), {
      args: denoRunArgs(
        new URL("./breakdown.ts", import.meta.url),
        ["--kubeconfig", cp.adminKubeconfig],
        ["--expose-gc"],
      ),
      stdout: "piped",
      stderr: "inherit",
    }).output();
    if (!child.success) throw new Error(`heap breakdown failed (exit ${child.code})`);
    const measured = JSON.parse(new TextDecoder().decode(child.stdout)) as Breakdown;
    const agentHeap = afterSync.heapUsed - baseline.heapUsed;
    const parsed = Object.values(measured.kinds).reduce((sum, kind) => sum + kind.bytes, 0);
    const pods = measured.kinds.Pod;
    breakdown = {
      "agent heap after the first sync, over its imports": agentHeap,
      "  the cluster as the agent keeps it (parsed + slim cache)": parsed,
      [`    pods (${pods.objects}; ${Math.round(pods.bytes / pods.objects)} bytes each)`]:
        pods.bytes,
      [`    policies (${measured.kinds.MultiNetworkPolicy.objects})`]:
        measured.kinds.MultiNetworkPolicy.bytes,
      "    namespaces and networks": measured.kinds.Namespace.bytes +
        measured.kinds.NetworkAttachmentDefinition.bytes,
      "  rest (sync state: index caches, rendered rules, metrics)": agentHeap - parsed,
    };
  }

  const figures = churnFigures(ops, agent.calls, agent.syncs);
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
      v8Flags,
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
      settledAfterSync: settledRss,
      afterChurn,
      settledAfterChurn: settledEndRss,
      growthPct: (100 * (afterChurn.rss - afterSync.rss)) / afterSync.rss,
      heapGrowthPct: (100 * (afterChurn.heapUsed - afterSync.heapUsed)) / afterSync.heapUsed,
      churnSamples: samples,
    },
    churn: { ...figures, seconds: churnSeconds, cpuS: churnCpuS, warnings: agent.warnings },
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
  await agent?.stop().catch(() => {});
  api?.close();
  await cp?.stop().catch(() => {});
  progress(`logs kept in ${logDir}`);
}
Deno.exit(exitCode);
