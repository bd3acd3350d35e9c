/**
 * The daemon's command line: the flags of the original Go agent and klog's,
 * with the same names, meanings and defaults. Each flag is declared once here
 * (or in `shared_flags.ts`); parsing, validation and `--help` derive from it.
 */
import { OFFLOAD_MODES } from "../agent/offload_policy.ts";
import { DEFAULT_POD_RESOURCES_SOCKET } from "../sriov/pod_resources.ts";
import type { AgentOptions } from "../agent/options.ts";
import { TC_DRIVERS, type TcDriverName } from "../drivers/factory.ts";
import { DEFAULT_KLOG_OPTIONS, parseSeverity, parseVmodule, SEVERITY_NAMES } from "../log/klog.ts";
import { flagsUsage } from "./flag_help.ts";
import { parseFlags } from "./flag_parse.ts";
import {
  boolFlag,
  choiceFlag,
  convertedFlag,
  durationFlag,
  type Flag,
  type FlagGroup,
  intFlag,
  InvalidValue,
  stringFlag,
} from "./flag_table.ts";
import { HELP_FLAG, MAX_FILTERS_FLAG, NETWORK_PLUGINS_FLAG } from "./shared_flags.ts";

/** A command-line mistake: printed on one line, exit status 2. */
export { UsageError } from "./flag_table.ts";

/** What each `--tc-driver` name does, for `--help`; every driver must be described. */
const TC_DRIVER_HELP: Record<TcDriverName, string> = {
  cmdline: "runs tc -batch and tc -json",
  netlink: "talks rtnetlink to the kernel directly; needs no tc binary",
};

/** Why a `--vmodule` value is refused, if it is. */
function vmoduleProblem(value: string): string | undefined {
  try {
    parseVmodule(value);
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}

/** What `--stderrthreshold` accepts, as its usage error says it. */
const SEVERITY_WANTED = `want ${SEVERITY_NAMES.join(", ")} (any case) or 0-3`;

/** A `--stderrthreshold` value as a severity rank; throws {@link InvalidValue}. */
function severityArg(text: string): number {
  const rank = parseSeverity(text);
  if (rank === undefined) throw new InvalidValue(SEVERITY_WANTED, text);
  return rank;
}

/** klog's own defaults, which its flags here keep. */
const KLOG = DEFAULT_KLOG_OPTIONS;

/** A listen address flag's check: empty, or `host:port`. */
function checkListenAddress(value: string): string | undefined {
  return value === "" || /^(\[[0-9a-fA-F:.]+\]|[^:\s]*):\d{1,5}$/.test(value)
    ? undefined
    : "want host:port";
}

/** Every flag the daemon accepts, in `--help` order, by the property it parses to. */
export const AGENT_FLAGS = {
  kubeconfig: stringFlag({
    name: "kubeconfig",
    default: "",
    group: "agent",
    help:
      "Path to kubeconfig file with authorization information (the master location is set by the master flag). Empty: in-cluster configuration.",
  }),
  master: stringFlag({
    name: "master",
    default: "",
    group: "agent",
    help: "The address of the Kubernetes API server (overrides any value in kubeconfig).",
  }),
  hostnameOverride: stringFlag({
    name: "hostname-override",
    default: "",
    group: "agent",
    help:
      "If non-empty, will use this string as identification instead of the actual hostname (the node whose pods are enforced). Trimmed and lower-cased; a pod is on this node when the first DNS label of its spec.nodeName equals this name's (any case).",
  }),
  networkPlugins: NETWORK_PLUGINS_FLAG,
  podRulesPath: stringFlag({
    name: "pod-rules-path",
    default: "",
    group: "agent",
    help:
      "If non-empty, write the TC rules applied for each pod interface under this directory, for troubleshooting.",
  }),
  tcDriver: choiceFlag({
    name: "tc-driver",
    choices: TC_DRIVERS,
    describe: TC_DRIVER_HELP,
    default: "cmdline",
    group: "agent",
    help: "TC driver to use",
  }),
  sysfsRoot: stringFlag({
    name: "sysfs-root",
    default: "/sys",
    group: "agent",
    hidden: true,
    help: "Root of the sysfs tree used to find VF representors (tests point it at a fake tree).",
  }),
  healthAddress: stringFlag({
    name: "health-address",
    default: "0.0.0.0:9810",
    group: "agent",
    help: "host:port to serve /healthz and /readyz on (what the kubelet probes). Empty: none.",
    check: checkListenAddress,
  }),
  podResourcesSocket: stringFlag({
    name: "pod-resources-socket",
    default: DEFAULT_POD_RESOURCES_SOCKET,
    group: "agent",
    help:
      "The kubelet's PodResources socket, the authority on which VF each pod owns. Empty: believe the pods' network-status annotations (for hosts without a kubelet; pods can edit their own annotations).",
  }),
  maxFiltersPerInterface: MAX_FILTERS_FLAG,
  metricsAddress: stringFlag({
    name: "metrics-address",
    default: "127.0.0.1:9811",
    group: "agent",
    help:
      "host:port to serve /metrics (Prometheus) on; loopback by default, so that pods of a hostNetwork node cannot read it. Empty: none. Equal to --health-address: served there.",
    check: checkListenAddress,
  }),
  resyncPeriodMs: durationFlag({
    name: "resync-period",
    default: 5 * 60_000,
    group: "agent",
    help:
      "Period of the full resync: every local interface is rendered again and handed to TC, as a safety net. 0: never.",
  }),
  dropEvents: boolFlag({
    name: "drop-events",
    default: false,
    group: "agent",
    help:
      "Record a Warning Event on a pod when policy drops its traffic (at most one per interface per minute), naming the direction and the isolating policies. The counts are always in /metrics.",
  }),
  offload: choiceFlag({
    name: "offload",
    choices: OFFLOAD_MODES,
    describe: {
      auto:
        "filters go to the NIC where it takes them; metrics say where each is, and a FilterNotOffloaded Warning names one the NIC should hold but does not",
      require:
        "as auto, but an interface whose filters cannot all be in the NIC is enforced as deny-all, ARP and neighbour discovery passing, with a Warning",
      off: "software only, every filter written skip_hw, for hosts without TC offload",
    },
    default: "auto",
    group: "agent",
    help: "Hardware offload of the TC filters",
  }),
  minSyncIntervalMs: durationFlag({
    name: "min-sync-interval",
    default: 100,
    group: "agent",
    help:
      "Minimum time between two syncs; changes arriving meanwhile are coalesced into the next one.",
  }),
  v: intFlag({
    name: "v",
    short: "v",
    default: KLOG.v,
    min: 0,
    group: "klog",
    help: "number for the log level verbosity",
  }),
  vmodule: stringFlag({
    name: "vmodule",
    default: KLOG.vmodule,
    group: "klog",
    help: "comma-separated list of pattern=N settings for file-filtered logging",
    check: vmoduleProblem,
  }),
  logtostderr: boolFlag({
    name: "logtostderr",
    default: KLOG.logtostderr,
    group: "klog",
    help: "log to standard error instead of files",
  }),
  alsologtostderr: boolFlag({
    name: "alsologtostderr",
    default: KLOG.alsologtostderr,
    group: "klog",
    help: "log to standard error as well as files (no effect when -logtostderr=true)",
  }),
  logDir: stringFlag({
    name: "log_dir",
    default: KLOG.logDir,
    group: "klog",
    help: "If non-empty, write log files in this directory (no effect when -logtostderr=true)",
  }),
  logFile: stringFlag({
    name: "log_file",
    default: KLOG.logFile,
    group: "klog",
    help: "If non-empty, use this log file (no effect when -logtostderr=true)",
  }),
  logFileMaxSizeMB: intFlag({
    name: "log_file_max_size",
    default: KLOG.logFileMaxSizeMB,
    min: 0,
    group: "klog",
    help:
      "Defines the maximum size a log file can grow to (no effect when -logtostderr=true). Unit is megabytes. If the value is 0, the maximum file size is unlimited.",
  }),
  oneOutput: boolFlag({
    name: "one_output",
    default: KLOG.oneOutput,
    group: "klog",
    help:
      "If true, only write logs to their native severity level's file, not also to each lower severity level's",
    noEffect: "this agent writes all severities to one log file",
  }),
  skipHeaders: boolFlag({
    name: "skip_headers",
    default: KLOG.skipHeaders,
    group: "klog",
    help: "If true, avoid header prefixes in the log messages",
  }),
  skipLogHeaders: boolFlag({
    name: "skip_log_headers",
    default: KLOG.skipLogHeaders,
    group: "klog",
    help: "If true, avoid headers when opening log files",
    noEffect: "this agent writes no header lines when it opens a log file",
  }),
  stderrthreshold: convertedFlag({
    name: "stderrthreshold",
    default: KLOG.stderrthreshold,
    defaultArg: String(KLOG.stderrthreshold),
    argName: "severity",
    group: "klog",
    help:
      "logs at or above this threshold go to stderr when writing to files and stderr (no effect when -logtostderr=true or -alsologtostderr=true); a severity name, INFO, WARNING, ERROR or FATAL (any case), or its number 0-3",
  }, severityArg),
  addDirHeader: boolFlag({
    name: "add_dir_header",
    default: KLOG.addDirHeader,
    group: "klog",
    help: "If true, adds the file directory to the header of the log messages",
  }),
  logBacktraceAt: stringFlag({
    name: "log_backtrace_at",
    default: ":0",
    group: "klog",
    help: "when logging hits line file:N, emit a stack trace",
    check: (value) => /^([^:]*:\d+)?$/.test(value) ? undefined : "want file:N",
  }),
  logFlushFrequencyMs: durationFlag({
    name: "log-flush-frequency",
    default: 5000,
    group: "klog",
    help: "Maximum number of seconds between log flushes",
    noEffect: "every log line is written synchronously, so nothing waits to be flushed",
  }),
  help: HELP_FLAG,
  version: boolFlag({
    name: "version",
    default: false,
    group: "general",
    help: "print the version and exit",
  }),
} as const;

/** Every flag the daemon accepts, in `--help` order. */
export const FLAG_SPECS: readonly Flag<unknown>[] = Object.values(AGENT_FLAGS);

/** Parses the daemon's arguments; throws {@link UsageError} on any mistake. */
export function parseAgentFlags(args: string[]): AgentOptions {
  const flags = parseFlags(AGENT_FLAGS, args);
  return {
    kubeconfig: flags.kubeconfig,
    master: flags.master,
    hostnameOverride: flags.hostnameOverride,
    networkPlugins: flags.networkPlugins,
    podRulesPath: flags.podRulesPath,
    tcDriver: flags.tcDriver,
    sysfsRoot: flags.sysfsRoot,
    healthAddress: flags.healthAddress,
    metricsAddress: flags.metricsAddress,
    maxFiltersPerInterface: flags.maxFiltersPerInterface,
    podResourcesSocket: flags.podResourcesSocket,
    resyncPeriodMs: flags.resyncPeriodMs,
    dropEvents: flags.dropEvents,
    offload: flags.offload,
    minSyncIntervalMs: flags.minSyncIntervalMs,
    logFlushFrequencyMs: flags.logFlushFrequencyMs,
    klog: {
      v: flags.v,
      vmodule: flags.vmodule,
      logtostderr: flags.logtostderr,
      alsologtostderr: flags.alsologtostderr,
      logDir: flags.logDir,
      logFile: flags.logFile,
      logFileMaxSizeMB: flags.logFileMaxSizeMB,
      oneOutput: flags.oneOutput,
      skipHeaders: flags.skipHeaders,
      skipLogHeaders: flags.skipLogHeaders,
      stderrthreshold: flags.stderrthreshold,
      addDirHeader: flags.addDirHeader,
      logBacktraceAt: flags.logBacktraceAt === AGENT_FLAGS.logBacktraceAt.default
        ? ""
        : flags.logBacktraceAt,
    },
    help: flags.help,
    version: flags.version,
  };
}

/** The `--help` text; README's configuration reference is generated from it. */
export function agentHelp(): string {
  const section = (group: FlagGroup) => flagsUsage(FLAG_SPECS.filter((f) => f.group === group));
  return [
    "multi-networkpolicy-tc: enforces MultiNetworkPolicy on SR-IOV secondary networks",
    "with TC flower filters on VF representors.",
    "",
    "Usage:",
    "  multi-networkpolicy-tc [flags]                 run the node agent (daemon)",
    "  multi-networkpolicy-tc render -f PATH [flags]  print what would be enforced, offline",
    "                                                 (see: multi-networkpolicy-tc render --help)",
    "  multi-networkpolicy-tc simulate -f PATH --from NS/POD --to NS/POD|ADDRESS [flags]",
    "                                                 run one flow through those TC programs",
    "                                                 (see: multi-networkpolicy-tc simulate --help)",
    "  multi-networkpolicy-tc explain -f PATH --from NS/POD|ADDRESS --to NS/POD|ADDRESS [flags]",
    "                                                 which policy rules allow or drop a packet",
    "                                                 (see: multi-networkpolicy-tc explain --help)",
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
