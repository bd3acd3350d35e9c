/**
 * From what the harness recorded to figures: which sink call carried each
 * churn change (the first call after the write started with a change that
 * matches its token), latencies by kind, changes per sync, interfaces handed
 * over that no change explains, and the one table (or JSON) the harness
 * prints. Pure.
 */
import { CHURN_KINDS, type ChurnKind, type Token } from "./churn.ts";
import { type ChangeRecord, ipv4, rangesContain, type SinkCall } from "./recorder.ts";

/** One churn write as the harness did it. */
export interface OpRecord {
  seq: number;
  kind: ChurnKind;
  /** The object written; a later write of it carries this one's effect too. */
  object: string;
  target: string;
  token: Token;
  expected: string[];
  /** `performance.now()` when the request was sent, and when its response was read. */
  start: number;
  done: number;
  /** Null on success, else why the write failed. */
  error: string | null;
}

/** One sync as `onSync` reported it. */
export interface SyncRecord {
  /** `performance.now()` when it reported. */
  end: number;
  durationMs: number;
  full: boolean;
  changes: number;
  error?: string;
}

/** Where a change's effect arrived. */
export interface OpMatch {
  /** Index into the sink calls. */
  call: number;
  /** Milliseconds from the write's response to the sink call (0 when the call came first). */
  latencyMs: number;
  /** Milliseconds from the write's request to the sink call. */
  fromStartMs: number;
  /**
   * True when the write's own token never showed but a later write of the same object (issued
   * before that sink call) did: both were coalesced into one sync.
   */
  superseded: boolean;
}

/** How long after a write its effect is looked for. */
const MATCH_WINDOW_MS = 120_000;

function tokenMatches(token: Token, change: ChangeRecord, ips: number[]): boolean {
  switch (token.kind) {
    case "ips":
      return ips.some((ip) => rangesContain(token.enter ? change.ipsIn : change.ipsOut, ip));
    case "port":
      return rangesContain(change.newPorts, token.port);
    case "added":
      return !change.removed && change.key.startsWith(token.prefix);
    case "removed":
      return change.removed && change.key.startsWith(token.prefix);
  }
}

/**
 * For each op, the first sink call after its write started that carries its effect, or null.
 * An op whose token never shows is matched to the call that carried the next write of the same
 * object, if any (its effect was coalesced with that one's).
 */
export function matchOps(ops: readonly OpRecord[], calls: readonly SinkCall[]): (OpMatch | null)[] {
  const matches = directMatches(ops, calls);
  const next = new Map<string, number>();
  for (let i = ops.length - 1; i >= 0; i--) {
    const op = ops[i];
    const later = next.get(op.object);
    if (op.error === null) next.set(op.object, i);
    if (matches[i] || op.error !== null || later === undefined || !matches[later]) continue;
    const at = calls[matches[later]!.call].at;
    matches[i] = {
      call: matches[later]!.call,
      latencyMs: Math.max(0, at - op.done),
      fromStartMs: at - op.start,
      superseded: true,
    };
  }
  return matches;
}

function directMatches(ops: readonly OpRecord[], calls: readonly SinkCall[]): (OpMatch | null)[] {
  return ops.map((op) => {
    if (op.error !== null) return null;
    const ips = op.token.kind === "ips"
      ? op.token.ips.map(ipv4).filter((ip): ip is number => ip !== null)
      : [];
    let lo = 0;
    let hi = calls.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (calls[mid].at < op.start) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < calls.length && calls[i].at - op.start <= MATCH_WINDOW_MS; i++) {
      if (calls[i].changes.some((change) => tokenMatches(op.token, change, ips))) {
        return {
          call: i,
          latencyMs: Math.max(0, calls[i].at - op.done),
          fromStartMs: calls[i].at - op.start,
          superseded: false,
        };
      }
    }
    return null;
  });
}

/** Nearest-rank percentile of `values` (q in [0, 1]); NaN for none. */
export function percentile(values: readonly number[], q: number): number {
  if (values.length === 0) return NaN;
  const sorted = values.slice().sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

/** p50, p99 and max of some values. */
export interface Spread {
  n: number;
  p50: number;
  p99: number;
  max: number;
}

/** The {@link Spread} of `values`. */
export function spread(values: readonly number[]): Spread {
  return {
    n: values.length,
    p50: percentile(values, 0.5),
    p99: percentile(values, 0.99),
    max: values.length ? Math.max(...values) : NaN,
  };
}

/** Latencies of one kind of change. */
export interface KindFigures {
  writes: number;
  failed: number;
  /** Writes whose effect never reached the sink. */
  unmatched: number;
  /** Writes whose effect reached the sink with a later write of the same object. */
  superseded: number;
  /** Write response → sink, ms. */
  latency: Spread;
  /** Write request → sink, ms. */
  fromStart: Spread;
}

/** What the churn did to syncs and to the sink. */
export interface ChurnFigures {
  byKind: Record<ChurnKind, KindFigures>;
  all: KindFigures;
  /** Write response → start of the sync that carried the change, ms (coalescing and queueing). */
  wait: Spread;
  /** Start of that sync → sink, ms (rendering). */
  work: Spread;
  /** API write round trips, ms. */
  writeMs: Spread;
  /** A few writes whose effect never reached the sink (`seq kind target`). */
  unmatchedSample: string[];
  syncs: {
    /** Incremental syncs that handed the sink something, and how much. */
    changesPerSync: Spread;
    incremental: number;
    /** Incremental syncs that found nothing to hand over. */
    empty: number;
    /** Full resyncs (every interface handed over), and their sizes. */
    full: number;
    fullSizes: number[];
    durationMs: Spread;
    errors: number;
    /** Interfaces handed over by incremental syncs that no matched change expected. */
    unexpected: number;
    /** Interfaces a matched change expected that its sync did not hand over. */
    missing: number;
    /** A few unexpected keys, for a look. */
    unexpectedSample: string[];
  };
}

/** Figures of the churn phase from its records. */
export function churnFigures(
  ops: readonly OpRecord[],
  calls: readonly SinkCall[],
  syncs: readonly SyncRecord[],
): ChurnFigures {
  const matches = matchOps(ops, calls);
  const kindFigures = (pick: (op: OpRecord) => boolean): KindFigures => {
    const latency: number[] = [];
    const fromStart: number[] = [];
    let writes = 0;
    let failed = 0;
    let unmatched = 0;
    let superseded = 0;
    ops.forEach((op, i) => {
      if (!pick(op)) return;
      writes++;
      if (op.error !== null) failed++;
      else if (!matches[i]) unmatched++;
      else {
        if (matches[i]!.superseded) superseded++;
        latency.push(matches[i]!.latencyMs);
        fromStart.push(matches[i]!.fromStartMs);
      }
    });
    return {
      writes,
      failed,
      unmatched,
      superseded,
      latency: spread(latency),
      fromStart: spread(fromStart),
    };
  };
  const byKind = Object.fromEntries(
    CHURN_KINDS.map((kind) => [kind, kindFigures((op) => op.kind === kind)]),
  ) as Record<ChurnKind, KindFigures>;
  const wait: number[] = [];
  const work: number[] = [];
  const expectedByCall = new Map<number, Set<string>>();
  ops.forEach((op, i) => {
    const match = matches[i];
    if (!match) return;
    const call = calls[match.call];
    const sync = call.sync === undefined ? undefined : syncs[call.sync];
    if (sync) {
      const syncStart = sync.end - sync.durationMs;
      wait.push(Math.max(0, syncStart - op.done));
      work.push(call.at - syncStart);
    }
    const expected = expectedByCall.get(match.call) ?? new Set<string>();
    for (const key of op.expected) expected.add(key);
    expectedByCall.set(match.call, expected);
  });
  let unexpected = 0;
  let missing = 0;
  const unexpectedSample: string[] = [];
  const firstOpStart = ops.length ? ops[0].start : Infinity;
  for (const [index, expected] of expectedByCall) {
    const keys = new Set(calls[index].changes.map((change) => change.key));
    for (const key of expected) if (!keys.has(key)) missing++;
  }
  calls.forEach((call, index) => {
    if (call.at < firstOpStart || call.full) return;
    const expected = expectedByCall.get(index) ?? new Set<string>();
    for (const change of call.changes) {
      if (expected.has(change.key)) continue;
      unexpected++;
      if (unexpectedSample.length >= 5) continue;
      // What wrote near it that expected this interface, and where that write's effect was seen.
      const near = ops.flatMap((op, i) =>
        op.expected.includes(change.key) && Math.abs(op.start - call.at) < 5_000
          ? [
            `${op.seq} ${op.kind} ${op.target} @${Math.round(op.start - call.at)} ms → ${
              matches[i] ? `call ${matches[i]!.call}` : "unmatched"
            }`,
          ]
          : []
      );
      unexpectedSample.push(
        `${change.key} in call ${index} (${near.join("; ") || "no write near"})`,
      );
    }
  });
  const churnSyncs = syncs.filter((sync) => sync.end >= firstOpStart);
  const incremental = churnSyncs.filter((sync) => !sync.full);
  return {
    byKind,
    all: kindFigures(() => true),
    wait: spread(wait),
    work: spread(work),
    writeMs: spread(ops.filter((op) => op.error === null).map((op) => op.done - op.start)),
    unmatchedSample: ops.filter((op, i) => op.error === null && !matches[i]).slice(0, 5)
      .map((op) => `${op.seq} ${op.kind} ${op.target}`),
    syncs: {
      changesPerSync: spread(
        incremental.filter((sync) => sync.changes > 0).map((sync) => sync.changes),
      ),
      incremental: incremental.length,
      empty: incremental.filter((sync) => sync.changes === 0).length,
      full: churnSyncs.length - incremental.length,
      fullSizes: churnSyncs.filter((sync) => sync.full).map((sync) => sync.changes),
      durationMs: spread(churnSyncs.map((sync) => sync.durationMs)),
      errors: churnSyncs.filter((sync) => sync.error !== undefined).length,
      unexpected,
      missing,
      unexpectedSample,
    },
  };
}

/** Resident and heap memory at one point, bytes. */
export interface MemoryPoint {
  rss: number;
  heapUsed: number;
  /** V8 heap committed (used + free). */
  heapTotal: number;
  /** Memory of JS objects held outside the V8 heap (buffers). */
  external: number;
}

/** Everything one run measured. */
export interface ScaleReport {
  config: {
    pods: number;
    namespaces: number;
    networks: number;
    policedNetworks: number;
    policies: number;
    localPods: number;
    vfPods: number;
    nodes: number;
    minutes: number;
    rate: number;
    seed: number;
    agentFlags: string[];
    /** V8 flags of the agent process. */
    v8Flags: string[];
  };
  load: { seconds: number; objects: number; perSecond: number; byKind: Record<string, number> };
  startup: {
    /** Daemon start → "caches synced". */
    cachesSyncedS: number;
    /** Daemon start → first full sync at the sink. */
    firstSyncS: number;
    /** "caches synced" → first full sync at the sink. */
    afterCachesS: number;
    /** The first sync's own duration (render + diff + sink). */
    firstSyncMs: number;
    interfaces: number;
    cpuS: number;
  };
  memory: {
    /** The agent process with its modules loaded, before the daemon started. */
    baseline: MemoryPoint;
    /** 2 s after the first sync, after a forced collection. */
    afterSync: MemoryPoint;
    /** RSS 2 s after the first sync as the kernel counts it (no forced collection), bytes. */
    settledAfterSync: number;
    /** After the churn settled, after a forced collection. */
    afterChurn: MemoryPoint;
    /** RSS after the churn settled, no forced collection, bytes. */
    settledAfterChurn: number;
    /** RSS growth over the churn (both after a forced collection), percent. */
    growthPct: number;
    /** Heap growth over the churn, percent. */
    heapGrowthPct: number;
    /** RSS every 10 s of churn, bytes (no forced collection). */
    churnSamples: number[];
  };
  churn: ChurnFigures & { seconds: number; cpuS: number; warnings: number };
  breakdown?: Record<string, number>;
  targets: { name: string; target: string; value: string; ok: boolean }[];
}

const MIB = 1024 * 1024;

/** Bytes as MiB with one decimal. */
export function mib(bytes: number): string {
  return `${(bytes / MIB).toFixed(1)} MiB`;
}

function memoryText(point: MemoryPoint): string {
  return `${mib(point.rss)} / ${mib(point.heapUsed)} / ${mib(point.heapTotal)}`;
}

function ms(value: number): string {
  return Number.isNaN(value) ? "-" : `${Math.round(value)}`;
}

/** The targets of issue 15, judged. */
export function judge(report: Omit<ScaleReport, "targets">): ScaleReport["targets"] {
  const churn = report.churn;
  return [
    {
      name: "first full sync after caches synced",
      target: "≤ 5 s",
      value: `${report.startup.afterCachesS.toFixed(2)} s`,
      ok: report.startup.afterCachesS <= 5,
    },
    {
      name: "agent RSS after first sync",
      target: "≤ 200 MiB",
      value: mib(report.memory.settledAfterSync),
      ok: report.memory.settledAfterSync <= 200 * MIB,
    },
    {
      name: "agent RSS growth over the churn (after a forced GC)",
      target: "≤ 5 %",
      value: `${report.memory.growthPct.toFixed(1)} %`,
      ok: report.memory.growthPct <= 5,
    },
    {
      name: "change → sink p99",
      target: "≤ 200 ms",
      value: `${ms(churn.all.latency.p99)} ms`,
      ok: churn.all.latency.p99 <= 200,
    },
    {
      name: "only affected interfaces handed over",
      target: "0 unexpected, 0 missing, 0 unmatched",
      value:
        `${churn.syncs.unexpected} unexpected, ${churn.syncs.missing} missing, ${churn.all.unmatched} unmatched`,
      ok: churn.syncs.unexpected === 0 && churn.syncs.missing === 0 && churn.all.unmatched === 0,
    },
  ];
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((row) => (row[c] ?? "").length)));
  return rows.map((row) => row.map((cell, c) => cell.padEnd(widths[c])).join("  ").trimEnd())
    .join("\n");
}

/** The report as the table the harness prints. */
export function formatReport(report: ScaleReport): string {
  const c = report.config;
  const lines: string[] = [];
  lines.push(
    `scale: ${c.pods} pods (${c.localPods} on the node, ${c.vfPods} with VFs), ` +
      `${c.namespaces} namespaces, ${c.networks} networks (${c.policedNetworks} policed), ` +
      `${c.policies} policies, ${c.nodes + 1} nodes; churn ${c.rate}/s for ${c.minutes} min; ` +
      `seed ${c.seed}${c.agentFlags.length ? `; agent ${c.agentFlags.join(" ")}` : ""}; ` +
      `V8 ${c.v8Flags.length ? c.v8Flags.join(",") : "(defaults)"}`,
  );
  lines.push("");
  const s = report.startup;
  const m = report.memory;
  const ch = report.churn;
  lines.push(table([
    ["measure", "value"],
    [
      "load",
      `${report.load.objects} objects in ${report.load.seconds.toFixed(1)} s ` +
      `(${Math.round(report.load.perSecond)}/s)`,
    ],
    ["start → caches synced", `${s.cachesSyncedS.toFixed(2)} s`],
    ["start → first full sync at the sink", `${s.firstSyncS.toFixed(2)} s`],
    ["caches synced → first full sync", `${s.afterCachesS.toFixed(2)} s`],
    ["first sync duration", `${ms(s.firstSyncMs)} ms (${s.interfaces} interfaces)`],
    ["CPU, start → first sync", `${s.cpuS.toFixed(2)} s`],
    ["agent RSS / heap used / heap total, modules loaded", memoryText(m.baseline)],
    [
      "agent RSS after first sync / after churn (no forced GC)",
      `${mib(m.settledAfterSync)} / ${mib(m.settledAfterChurn)}`,
    ],
    ["agent RSS / heap used / heap total, after first sync, forced GC", memoryText(m.afterSync)],
    ["agent RSS / heap used / heap total, after churn, forced GC", memoryText(m.afterChurn)],
    [
      "RSS / heap growth over churn",
      `${m.growthPct.toFixed(1)} % / ${m.heapGrowthPct.toFixed(1)} %`,
    ],
    [
      "agent RSS during churn, every 10 s (min / max)",
      m.churnSamples.length
        ? `${mib(Math.min(...m.churnSamples))} / ${mib(Math.max(...m.churnSamples))}`
        : "-",
    ],
    [
      "churn",
      `${ch.all.writes} writes in ${ch.seconds.toFixed(0)} s, ${ch.all.failed} failed, ` +
      `${ch.all.unmatched} unmatched, ${ch.all.superseded} coalesced with a later write`,
    ],
    [
      "CPU during churn",
      `${ch.cpuS.toFixed(1)} s (${
        (100 * ch.cpuS / Math.max(1, ch.seconds)).toFixed(1)
      } % of a core)`,
    ],
    [
      "API write round trip p50/p99/max",
      `${ms(ch.writeMs.p50)} / ${ms(ch.writeMs.p99)} / ${ms(ch.writeMs.max)} ms`,
    ],
    [
      "syncs during churn",
      `${ch.syncs.incremental} incremental (${ch.syncs.empty} empty), ${ch.syncs.full} full ` +
      `(${ch.syncs.fullSizes.join(", ") || "-"} interfaces), ${ch.syncs.errors} failed`,
    ],
    [
      "interfaces per sync p50/p99/max",
      `${ms(ch.syncs.changesPerSync.p50)} / ${ms(ch.syncs.changesPerSync.p99)} / ${
        ms(ch.syncs.changesPerSync.max)
      }`,
    ],
    [
      "sync duration p50/p99/max",
      `${ms(ch.syncs.durationMs.p50)} / ${ms(ch.syncs.durationMs.p99)} / ${
        ms(ch.syncs.durationMs.max)
      } ms`,
    ],
    [
      "unexpected / missing interfaces",
      `${ch.syncs.unexpected} / ${ch.syncs.missing}${
        ch.syncs.unexpectedSample.length ? ` (e.g. ${ch.syncs.unexpectedSample[0]})` : ""
      }`,
    ],
    [
      "write → sync start p50/p99/max",
      `${ms(ch.wait.p50)} / ${ms(ch.wait.p99)} / ${ms(ch.wait.max)} ms`,
    ],
    [
      "sync start → sink p50/p99/max",
      `${ms(ch.work.p50)} / ${ms(ch.work.p99)} / ${ms(ch.work.max)} ms`,
    ],
    ["agent warnings logged", `${ch.warnings}`],
  ]));
  lines.push("");
  const latencyRows = [["change → sink (ms)", "writes", "p50", "p99", "max", "from request p99"]];
  for (const kind of CHURN_KINDS) {
    const k = ch.byKind[kind];
    if (k.writes === 0) continue;
    latencyRows.push([
      kind,
      `${k.writes}`,
      ms(k.latency.p50),
      ms(k.latency.p99),
      ms(k.latency.max),
      ms(k.fromStart.p99),
    ]);
  }
  latencyRows.push([
    "all",
    `${ch.all.writes}`,
    ms(ch.all.latency.p50),
    ms(ch.all.latency.p99),
    ms(ch.all.latency.max),
    ms(ch.all.fromStart.p99),
  ]);
  lines.push(table(latencyRows));
  if (report.breakdown) {
    lines.push("");
    lines.push(table([
      ["heap breakdown (estimate)", "MiB"],
      ...Object.entries(report.breakdown).map(([name, bytes]) => [name, (bytes / MIB).toFixed(1)]),
    ]));
  }
  lines.push("");
  lines.push(table([
    ["target", "goal", "measured", ""],
    ...report.targets.map((t) => [t.name, t.target, t.value, t.ok ? "ok" : "MISSED"]),
  ]));
  return lines.join("\n");
}
