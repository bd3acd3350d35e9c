/**
 * The daemon's command line: the flags of the original Go agent and klog's,
 * with the same names, meanings and defaults. One table drives parsing,
 * validation and `--help`, so they cannot disagree.
 */
import { parseArgs } from "node:util";
import type { AgentOptions } from "../agent/options.ts";
import { TC_DRIVERS, type TcDriverName } from "../drivers/factory.ts";
import { DEFAULT_KLOG_OPTIONS, parseVmodule } from "../log/klog.ts";

/** A command-line mistake; the CLI prints it on one line and exits 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

type FlagKind = "string" | "bool" | "int" | "list" | "duration";

/** One flag's name, type, default and help text. */
export interface FlagSpec {
  name: string;
  short?: string;
  kind: FlagKind;
  defaultText: string;
  help: string;
  hidden?: boolean;
  group: "agent" | "klog" | "general";
}

/** Every flag the daemon accepts, in `--help` order. */
export const FLAG_SPECS: readonly FlagSpec[] = [
  {
    name: "kubeconfig",
    kind: "string",
    defaultText: "",
    group: "agent",
    help:
      "Path to kubeconfig file with authorization information (the master location is set by the master flag). Empty: in-cluster configuration.",
  },
  {
    name: "master",
    kind: "string",
    defaultText: "",
    group: "agent",
    help: "The address of the Kubernetes API server (overrides any value in kubeconfig).",
  },
  {
    name: "hostname-override",
    kind: "string",
    defaultText: "",
    group: "agent",
    help:
      "If non-empty, will use this string as identification instead of the actual hostname (the node whose pods are enforced).",
  },
  {
    name: "network-plugins",
    kind: "list",
    defaultText: "accelerated-bridge",
    group: "agent",
    help:
      "Comma-separated list of CNI plugin types whose networks are considered for network policies.",
  },
  {
    name: "pod-rules-path",
    kind: "string",
    defaultText: "",
    group: "agent",
    help:
      "If non-empty, write the TC rules applied for each pod interface under this directory, for troubleshooting.",
  },
  {
    name: "tc-driver",
    kind: "string",
    defaultText: "cmdline",
    group: "agent",
    help:
      "TC driver to use, one of: cmdline (runs tc -batch and tc -json), netlink (talks rtnetlink to the kernel directly; needs no tc binary).",
  },
  {
    name: "sysfs-root",
    kind: "string",
    defaultText: "/sys",
    group: "agent",
    hidden: true,
    help: "Root of the sysfs tree used to find VF representors (tests point it at a fake tree).",
  },

  {
    name: "health-address",
    kind: "string",
    defaultText: "0.0.0.0:9810",
    group: "agent",
    help: "host:port to serve /healthz, /readyz and /metrics (Prometheus) on. Empty: no endpoints.",
  },
  {
    name: "resync-period",
    kind: "duration",
    defaultText: "5m",
    group: "agent",
    help:
      "Period of the full resync: every local interface is rendered again and handed to TC, as a safety net. 0: never.",
  },
  {
    name: "min-sync-interval",
    kind: "duration",
    defaultText: "1s",
    group: "agent",
    help:
      "Minimum time between two syncs; changes arriving meanwhile are coalesced into the next one.",
  },
  {
    name: "v",
    short: "v",
    kind: "int",
    defaultText: "0",
    group: "klog",
    help: "number for the log level verbosity",
  },
  {
    name: "vmodule",
    kind: "string",
    defaultText: "",
    group: "klog",
    help: "comma-separated list of pattern=N settings for file-filtered logging",
  },
  {
    name: "logtostderr",
    kind: "bool",
    defaultText: "true",
    group: "klog",
    help: "log to standard error instead of files",
  },
  {
    name: "alsologtostderr",
    kind: "bool",
    defaultText: "false",
    group: "klog",
    help: "log to standard error as well as files (no effect when -logtostderr=true)",
  },
  {
    name: "log_dir",
    kind: "string",
    defaultText: "",
    group: "klog",
    help: "If non-empty, write log files in this directory (no effect when -logtostderr=true)",
  },
  {
    name: "log_file",
    kind: "string",
    defaultText: "",
    group: "klog",
    help: "If non-empty, use this log file (no effect when -logtostderr=true)",
  },
  {
    name: "log_file_max_size",
    kind: "int",
    defaultText: "1800",
    group: "klog",
    help:
      "Defines the maximum size a log file can grow to (no effect when -logtostderr=true). Unit is megabytes. If the value is 0, the maximum file size is unlimited.",
  },
  {
    name: "one_output",
    kind: "bool",
    defaultText: "false",
    group: "klog",
    help:
      "If true, only write logs to their native severity level (vs also writing to each lower severity level; no effect when -logtostderr=true)",
  },
  {
    name: "skip_headers",
    kind: "bool",
    defaultText: "false",
    group: "klog",
    help: "If true, avoid header prefixes in the log messages",
  },
  {
    name: "skip_log_headers",
    kind: "bool",
    defaultText: "false",
    group: "klog",
    help: "If true, avoid headers when opening log files (no effect when -logtostderr=true)",
  },
  {
    name: "stderrthreshold",
    kind: "int",
    defaultText: "2",
    group: "klog",
    help:
      "logs at or above this threshold go to stderr when writing to files and stderr (no effect when -logtostderr=true or -alsologtostderr=true)",
  },
  {
    name: "add_dir_header",
    kind: "bool",
    defaultText: "false",
    group: "klog",
    help: "If true, adds the file directory to the header of the log messages",
  },
  {
    name: "log_backtrace_at",
    kind: "string",
    defaultText: ":0",
    group: "klog",
    help: "when logging hits line file:N, emit a stack trace",
  },
  {
    name: "log-flush-frequency",
    kind: "duration",
    defaultText: "5s",
    group: "klog",
    help: "Maximum number of seconds between log flushes",
  },
  { name: "help", short: "h", kind: "bool", defaultText: "false", group: "general", help: "help" },
  {
    name: "version",
    kind: "bool",
    defaultText: "false",
    group: "general",
    help: "print the version and exit",
  },
];

const SPEC_BY_NAME = new Map(FLAG_SPECS.map((spec) => [spec.name, spec]));
const SPEC_BY_SHORT = new Map(
  FLAG_SPECS.filter((spec) => spec.short).map((spec) => [spec.short as string, spec]),
);

/** Parses a Go duration such as `5s`, `1m30s` or `250ms` into milliseconds. */
export function parseGoDuration(text: string): number {
  const units: Record<string, number> = {
    ns: 1e-6,
    us: 1e-3,
    "µs": 1e-3,
    ms: 1,
    s: 1000,
    m: 60_000,
    h: 3_600_000,
  };
  if (text === "0") return 0;
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/gy;
  let total = 0;
  let consumed = 0;
  for (const match of text.matchAll(re)) {
    total += Number(match[1]) * units[match[2]];
    consumed += match[0].length;
  }
  if (consumed === 0 || consumed !== text.length) {
    throw new UsageError(`invalid duration "${text}"`);
  }
  return total;
}

/**
 * Rewrites Go/pflag spellings that node's parser does not know:
 * `-flag` for long names, `-v=2`, and `--bool=true|false`.
 */
function normaliseArgs(args: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--") {
      out.push(...args.slice(i));
      break;
    }
    const match = /^(--?)([^=]+)(?:=(.*))?$/s.exec(arg);
    if (!match || arg === "-") {
      out.push(arg);
      continue;
    }
    const [, dashes, name, value] = match;
    const spec = dashes === "-" && name.length === 1 ? SPEC_BY_SHORT.get(name) : SPEC_BY_NAME.get(
      name,
    );
    if (!spec) {
      throw new UsageError(`unknown flag: ${dashes}${name}`);
    }
    if (spec.kind === "bool") {
      if (value === undefined || value === "true") out.push(`--${spec.name}`);
      else if (value === "false") out.push(`--no-${spec.name}`);
      else throw new UsageError(`invalid boolean value "${value}" for --${spec.name}`);
      continue;
    }
    out.push(`--${spec.name}`);
    if (value !== undefined) out.push(value);
    else if (i + 1 < args.length) out.push(args[++i]);
    else throw new UsageError(`flag needs an argument: --${spec.name}`);
  }
  return out;
}

function parseIntFlag(name: string, text: string, min: number): number {
  if (!/^-?\d+$/.test(text)) throw new UsageError(`invalid value "${text}" for --${name}`);
  const value = Number(text);
  if (value < min) throw new UsageError(`invalid value "${text}" for --${name}: below ${min}`);
  return value;
}

/** Parses the daemon's arguments; throws {@link UsageError} on any mistake. */
export function parseAgentFlags(args: string[]): AgentOptions {
  const options: Record<string, { type: "string" | "boolean"; multiple?: boolean }> = {};
  for (const spec of FLAG_SPECS) {
    options[spec.name] = spec.kind === "bool"
      ? { type: "boolean" }
      : { type: "string", multiple: spec.kind === "list" };
  }
  let parsed;
  try {
    parsed = parseArgs({
      args: normaliseArgs(args),
      options,
      strict: true,
      allowPositionals: true,
      allowNegative: true,
    });
  } catch (error) {
    if (error instanceof UsageError) throw error;
    throw new UsageError((error as Error).message.split("\n")[0], { cause: error });
  }
  if (parsed.positionals.length > 0) {
    throw new UsageError(`unexpected argument: ${parsed.positionals[0]}`);
  }
  const values = parsed.values as Record<string, string | boolean | string[] | undefined>;
  const str = (name: string): string => {
    const value = values[name];
    return typeof value === "string" ? value : (SPEC_BY_NAME.get(name)?.defaultText ?? "");
  };
  const bool = (name: string): boolean => {
    const value = values[name];
    return typeof value === "boolean" ? value : SPEC_BY_NAME.get(name)?.defaultText === "true";
  };
  const listValue = values["network-plugins"];
  const networkPlugins = Array.isArray(listValue)
    ? listValue.flatMap((item) => item.split(",")).map((item) => item.trim()).filter(Boolean)
    : ["accelerated-bridge"];
  if (networkPlugins.length === 0) {
    throw new UsageError("invalid value for --network-plugins: empty list");
  }
  const tcDriver = str("tc-driver");
  if (!(TC_DRIVERS as readonly string[]).includes(tcDriver)) {
    throw new UsageError(`invalid value "${tcDriver}" for --tc-driver: want cmdline or netlink`);
  }
  const healthAddress = str("health-address");
  if (healthAddress !== "" && !/^(\[[0-9a-fA-F:.]+\]|[^:\s]*):\d{1,5}$/.test(healthAddress)) {
    throw new UsageError(`invalid value "${healthAddress}" for --health-address: want host:port`);
  }
  const vmodule = str("vmodule");
  try {
    parseVmodule(vmodule);
  } catch (error) {
    throw new UsageError(`invalid value for --vmodule: ${(error as Error).message}`);
  }
  const backtraceAt = str("log_backtrace_at");
  if (!/^([^:]*:\d+)?$/.test(backtraceAt)) {
    throw new UsageError(`invalid value "${backtraceAt}" for --log_backtrace_at: want file:N`);
  }
  return {
    kubeconfig: str("kubeconfig"),
    master: str("master"),
    hostnameOverride: str("hostname-override"),
    networkPlugins,
    podRulesPath: str("pod-rules-path"),
    tcDriver: tcDriver as TcDriverName,
    sysfsRoot: str("sysfs-root"),
    healthAddress,
    resyncPeriodMs: parseGoDuration(str("resync-period")),
    minSyncIntervalMs: parseGoDuration(str("min-sync-interval")),
    logFlushFrequencyMs: parseGoDuration(str("log-flush-frequency")),
    klog: {
      ...DEFAULT_KLOG_OPTIONS,
      v: parseIntFlag("v", str("v"), 0),
      vmodule,
      logtostderr: bool("logtostderr"),
      alsologtostderr: bool("alsologtostderr"),
      logDir: str("log_dir"),
      logFile: str("log_file"),
      logFileMaxSizeMB: parseIntFlag("log_file_max_size", str("log_file_max_size"), 0),
      oneOutput: bool("one_output"),
      skipHeaders: bool("skip_headers"),
      skipLogHeaders: bool("skip_log_headers"),
      stderrthreshold: parseIntFlag("stderrthreshold", str("stderrthreshold"), 0),
      addDirHeader: bool("add_dir_header"),
      logBacktraceAt: backtraceAt === ":0" ? "" : backtraceAt,
    },
    help: bool("help"),
    version: bool("version"),
  };
}

function flagUsage(spec: FlagSpec): string {
  const names = spec.short && spec.short !== spec.name
    ? `-${spec.short}, --${spec.name}`
    : spec.name.length === 1
    ? `-${spec.name}, --${spec.name}`
    : `    --${spec.name}`;
  const arg = spec.kind === "bool"
    ? ""
    : spec.kind === "list"
    ? " strings"
    : spec.kind === "int"
    ? " int"
    : spec.kind === "duration"
    ? " duration"
    : " string";
  const shown = spec.kind === "bool" ? spec.defaultText === "true" : spec.defaultText !== "";
  const def = shown
    ? ` (default ${spec.kind === "list" ? `[${spec.defaultText}]` : spec.defaultText})`
    : "";
  return `  ${names}${arg}\n        ${spec.help}${def}`;
}

/** The `--help` text; README's configuration reference is generated from it. */
export function agentHelp(): string {
  const visible = FLAG_SPECS.filter((spec) => !spec.hidden);
  const section = (group: FlagSpec["group"]) =>
    visible.filter((spec) => spec.group === group).map(flagUsage).join("\n");
  return [
    "multi-networkpolicy-tc: enforces MultiNetworkPolicy on SR-IOV secondary networks",
    "with TC flower filters on VF representors.",
    "",
    "Usage:",
    "  multi-networkpolicy-tc [flags]                 run the node agent (daemon)",
    "  multi-networkpolicy-tc render -f PATH [flags]  print what would be enforced, offline",
    "                                                 (see: multi-networkpolicy-tc render --help)",
    "",
    "Flags:",
    section("agent"),
    "",
    "Logging flags (klog):",
    section("klog"),
    "",
    "General:",
    section("general"),
    "",
  ].join("\n");
}
