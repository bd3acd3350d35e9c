/** The daemon's and `render`'s flags: parsing, defaults, choices and `--help`, from one declaration each. */
import { DEFAULT_MAX_FILTERS } from "../../src/tc/limits.ts";
import assert from "node:assert/strict";
import {
  AGENT_FLAGS,
  agentHelp,
  FLAG_SPECS,
  parseAgentFlags,
  UsageError,
} from "../../src/cli/flags.ts";
import { formatGoDuration, parseGoDuration } from "../../src/cli/duration.ts";
import { flagUsage } from "../../src/cli/flag_help.ts";
import { parseFlags } from "../../src/cli/flag_parse.ts";
import type { Flag } from "../../src/cli/flag_table.ts";
import { parseRenderFlags, RENDER_FLAGS, renderHelp } from "../../src/cli/render_flags.ts";
import { DEFAULT_NETWORK_PLUGINS } from "../../src/cli/shared_flags.ts";
import { TC_DRIVERS } from "../../src/drivers/factory.ts";
import { DEFAULT_KLOG_OPTIONS } from "../../src/log/klog.ts";

const RENDER_SPECS: readonly Flag<unknown>[] = Object.values(RENDER_FLAGS);

/** Asserts that `parse` fails with a one-line {@link UsageError} matching `pattern`. */
function assertUsageError(parse: () => unknown, pattern: RegExp, what: string): void {
  assert.throws(parse, (error: unknown) => {
    assert.ok(error instanceof UsageError, `${what}: ${error}`);
    assert.match(error.message, pattern, what);
    assert.ok(!error.message.includes("\n"), what);
    return true;
  });
}

Deno.test("flags: defaults match the original agent and klog", () => {
  const options = parseAgentFlags([]);
  assert.equal(options.kubeconfig, "");
  assert.equal(options.master, "");
  assert.equal(options.hostnameOverride, "");
  assert.deepEqual(options.networkPlugins, ["accelerated-bridge"]);
  assert.equal(options.podRulesPath, "");
  assert.equal(options.tcDriver, "cmdline");
  assert.equal(options.sysfsRoot, "/sys");
  assert.equal(options.healthAddress, "0.0.0.0:9810");
  assert.equal(options.metricsAddress, "127.0.0.1:9811", "metrics on loopback by default");
  assert.equal(options.maxFiltersPerInterface, DEFAULT_MAX_FILTERS);
  assert.equal(options.resyncPeriodMs, 300_000);
  assert.equal(options.minSyncIntervalMs, 100);
  assert.equal(options.klog.v, 0);
  assert.equal(options.klog.logtostderr, true);
  assert.equal(options.klog.stderrthreshold, 2);
  assert.equal(options.klog.logFileMaxSizeMB, 1800);
  assert.equal(options.logFlushFrequencyMs, 5000);
  assert.equal(options.help, false);
  assert.equal(options.version, false);
});

Deno.test("flags: with no arguments every value is its declared default", () => {
  const values = parseFlags(AGENT_FLAGS, []);
  for (const [key, flag] of Object.entries(AGENT_FLAGS)) {
    assert.deepEqual(values[key as keyof typeof AGENT_FLAGS], flag.default, flag.name);
  }
  const options = parseAgentFlags([]);
  assert.deepEqual(options.networkPlugins, DEFAULT_NETWORK_PLUGINS);
  assert.equal(options.tcDriver, AGENT_FLAGS.tcDriver.default);
  assert.equal(options.resyncPeriodMs, AGENT_FLAGS.resyncPeriodMs.default);
  assert.equal(options.logFlushFrequencyMs, AGENT_FLAGS.logFlushFrequencyMs.default);
  assert.deepEqual(options.klog, DEFAULT_KLOG_OPTIONS);
  const render = parseFlags(RENDER_FLAGS, []);
  for (const [key, flag] of Object.entries(RENDER_FLAGS)) {
    assert.deepEqual(render[key as keyof typeof RENDER_FLAGS], flag.default, flag.name);
  }
});

Deno.test("flags: the default --help prints is the argument that parses to the default", () => {
  for (const flag of [...FLAG_SPECS, ...RENDER_SPECS]) {
    if (flag.kind === "bool" || flag.defaultArg === "") continue;
    assert.deepEqual(flag.parse([flag.defaultArg]), flag.default, flag.name);
    const shown = flag.kind === "list" ? `[${flag.defaultArg}]` : flag.defaultArg;
    assert.ok(flagUsage(flag).endsWith(` (default ${shown})`), flag.name);
  }
  assert.equal(formatGoDuration(90_000), "1m30s");
  assert.equal(formatGoDuration(0), "0");
  assert.equal(parseGoDuration("1m30s"), 90_000);
  assert.equal(parseGoDuration("5 s"), undefined);
});

Deno.test("flags: --flag value, --flag=value, -v N, -v=N and Go single-dash long flags", () => {
  const options = parseAgentFlags([
    "--kubeconfig",
    "/etc/kube.conf",
    "--master=https://10.0.0.1:6443",
    "-v=4",
    "--hostname-override",
    "worker-7",
    "--network-plugins=accelerated-bridge,sriov",
    "--network-plugins",
    "macvlan",
    "--tc-driver=cmdline",
    "-logtostderr=false",
    "--log_file=/var/log/mnp.log",
    "--log-flush-frequency=1m30s",
    "--vmodule=engine=5,tc*=3",
  ]);
  assert.equal(options.kubeconfig, "/etc/kube.conf");
  assert.equal(options.master, "https://10.0.0.1:6443");
  assert.equal(options.klog.v, 4);
  assert.equal(options.hostnameOverride, "worker-7");
  assert.deepEqual(options.networkPlugins, ["accelerated-bridge", "sriov", "macvlan"]);
  assert.equal(options.tcDriver, "cmdline");
  assert.equal(options.klog.logtostderr, false);
  assert.equal(options.klog.logFile, "/var/log/mnp.log");
  assert.equal(options.logFlushFrequencyMs, 90_000);
  assert.equal(parseAgentFlags(["--tc-driver", "netlink"]).tcDriver, "netlink");
  assert.equal(parseAgentFlags([]).tcDriver, "cmdline");
  assert.equal(parseAgentFlags(["-v", "2"]).klog.v, 2);
  assert.equal(parseAgentFlags(["--v=3"]).klog.v, 3);
  assert.equal(parseAgentFlags(["-v2"]).klog.v, 2);
  assert.equal(parseAgentFlags(["-v=1", "--v", "5"]).klog.v, 5, "the last one wins");
  assert.equal(parseAgentFlags(["--logtostderr=false", "--logtostderr"]).klog.logtostderr, true);
  assert.equal(parseAgentFlags(["-help"]).help, true);
  assert.equal(parseAgentFlags(["-h"]).help, true);
  assert.equal(parseAgentFlags(["--help=false"]).help, false);
  assert.equal(parseAgentFlags(["--kubeconfig", "-"]).kubeconfig, "-");
  assert.equal(parseAgentFlags(["--sysfs-root=/tmp/sys"]).sysfsRoot, "/tmp/sys");
  assert.equal(parseAgentFlags(["--log_backtrace_at=a.ts:3"]).klog.logBacktraceAt, "a.ts:3");
});

Deno.test("flags: unknown flags and bad values are usage errors with one-line reasons", () => {
  const cases: [string[], RegExp][] = [
    [["--kubeconfg=x"], /^unknown flag: --kubeconfg$/],
    [["-kubeconfg"], /^unknown flag: -kubeconfg$/],
    [["--tc-driver=tcx"], /^invalid value "tcx" for --tc-driver: want cmdline or netlink$/],
    [["-v=high"], /^invalid value "high" for --v$/],
    [["--v=-1"], /^invalid value "-1" for --v: below 0$/],
    [["--logtostderr=maybe"], /^invalid boolean value "maybe" for --logtostderr$/],
    [
      ["--log-flush-frequency=5 s"],
      /^invalid value "5 s" for --log-flush-frequency: want a duration/,
    ],
    [["--vmodule=engine"], /^invalid value "engine" for --vmodule: invalid vmodule entry "engine"/],
    [["--health-address=x"], /^invalid value "x" for --health-address: want host:port$/],
    [["--metrics-address=:x"], /^invalid value ":x" for --metrics-address: want host:port$/],
    [["--log_backtrace_at=bad"], /^invalid value "bad" for --log_backtrace_at: want file:N$/],
    [["--kubeconfig"], /^flag needs an argument: --kubeconfig$/],
    [["--kubeconfig", "--master", "x"], /^flag needs an argument: --kubeconfig$/],
    [["stray"], /^unexpected argument: stray$/],
    [["--", "stray"], /^unexpected argument: stray$/],
    [["--network-plugins="], /^invalid value for --network-plugins: empty list$/],
  ];
  for (const [args, pattern] of cases) {
    assertUsageError(() => parseAgentFlags(args), pattern, args.join(" "));
  }
});

Deno.test("flags: a value outside the declared choices is refused, naming the choices", () => {
  assertUsageError(
    () => parseAgentFlags(["--tc-driver", "tcx"]),
    /^invalid value "tcx" for --tc-driver: want \w+(, \w+)* or \w+$/,
    "--tc-driver",
  );
  assert.throws(() => parseAgentFlags(["--tc-driver", "tcx"]), (error: Error) => {
    for (const driver of TC_DRIVERS) assert.ok(error.message.includes(driver), driver);
    return true;
  });
  for (const driver of TC_DRIVERS) {
    assert.equal(parseAgentFlags([`--tc-driver=${driver}`]).tcDriver, driver);
  }
  assertUsageError(
    () => parseRenderFlags(["-f", "x", "-o", "yaml"], () => "host"),
    /^invalid value "yaml" for --output: want text, json or tc$/,
    "-o",
  );
});

Deno.test("flags: --help lists every visible flag with its default and choices", () => {
  const help = agentHelp();
  for (const spec of FLAG_SPECS.filter((s) => !s.hidden)) {
    assert.ok(help.includes(flagUsage(spec)), spec.name);
  }
  assert.match(help, /--network-plugins strings\n.*\(default \[accelerated-bridge\]\)/);
  assert.match(help, /--tc-driver string\n.*\(default cmdline\)/);
  for (const driver of TC_DRIVERS) {
    assert.match(help, new RegExp(`--tc-driver string\n.*${driver} \\(`));
  }
  assert.match(help, /--resync-period duration\n.*\(default 5m\)/);
  assert.match(help, /-v, --v int\n.*\(default 0\)/);
});

const NO_OP_FLAGS: [string, string[]][] = [
  ["one_output", ["--one_output", "-one_output=false", "--one_output=true"]],
  ["skip_log_headers", ["--skip_log_headers", "-skip_log_headers=true"]],
  ["log-flush-frequency", ["--log-flush-frequency=2s", "-log-flush-frequency", "250ms"]],
];

Deno.test("flags: each no-op klog flag still parses, and --help says it has no effect", () => {
  const help = agentHelp();
  for (const [name, args] of NO_OP_FLAGS) {
    const entry = new RegExp(
      `--${name}\\b.*\n {8}.*\\(accepted for compatibility; no effect: [^)]+\\)`,
    );
    assert.match(help, entry, name);
    assert.doesNotThrow(() => parseAgentFlags(args), name);
  }
  const options = parseAgentFlags(NO_OP_FLAGS.flatMap(([, args]) => args));
  assert.equal(options.klog.oneOutput, true);
  assert.equal(options.klog.skipLogHeaders, true);
  assert.equal(options.logFlushFrequencyMs, 250);
  const flagged = FLAG_SPECS.filter((f) => f.noEffect !== undefined).map((f) => f.name);
  assert.deepEqual(flagged.sort(), NO_OP_FLAGS.map(([name]) => name).sort());
});

Deno.test("render flags: --network-plugins and --help are the daemon's own declarations", () => {
  assert.equal(RENDER_FLAGS.networkPlugins, AGENT_FLAGS.networkPlugins);
  assert.equal(RENDER_FLAGS.help, AGENT_FLAGS.help);
  const render = parseRenderFlags(["-f", "x"], () => "host");
  assert.deepEqual(render.networkPlugins, parseAgentFlags([]).networkPlugins);
  assert.deepEqual(render.networkPlugins, DEFAULT_NETWORK_PLUGINS);
  const args = ["--network-plugins", "a, b", "--network-plugins=c"];
  assert.deepEqual(
    parseRenderFlags(["-f", "x", ...args], () => "host").networkPlugins,
    parseAgentFlags(args).networkPlugins,
  );
  assertUsageError(
    () => parseRenderFlags(["-f", "x", "--network-plugins=,"], () => "host"),
    /^invalid value for --network-plugins: empty list$/,
    "render --network-plugins=,",
  );
});

Deno.test("render flags: spellings, defaults and mistakes", () => {
  const host = () => "this-host";
  assert.deepEqual(parseRenderFlags(["-f", "a", "--filename=b,c", "-fd"], host), {
    paths: ["a", "b,c", "d"],
    node: "this-host",
    networkPlugins: [...DEFAULT_NETWORK_PLUGINS],
    maxFiltersPerInterface: DEFAULT_MAX_FILTERS,
    output: "text",
    offloadCheck: false,
    help: false,
  });
  assert.equal(parseRenderFlags(["-f", "a", "--offload-check"], host).offloadCheck, true);
  assert.equal(
    parseRenderFlags(["-f", "a", "--max-filters-per-interface=0"], host).maxFiltersPerInterface,
    0,
  );
  assert.equal(parseRenderFlags(["-f", "a", "--node", "n1"], host).node, "n1");
  assert.equal(parseRenderFlags(["-f", "a", "-ojson"], host).output, "json");
  assert.equal(parseRenderFlags(["-f", "a", "--output=tc"], host).output, "tc");
  assert.deepEqual(parseRenderFlags(["-hf", "a"], host).paths, ["a"]);
  assert.equal(parseRenderFlags(["--help"], host).help, true);
  const cases: [string[], RegExp][] = [
    [[], /^render needs at least one -f PATH$/],
    [["-f"], /^flag needs an argument: --filename$/],
    [["-f", "a", "--kubeconfig", "x"], /^unknown flag: --kubeconfig$/],
    [["-f", "a", "x"], /^unexpected argument: x$/],
  ];
  for (const [args, pattern] of cases) {
    assertUsageError(() => parseRenderFlags(args, host), pattern, args.join(" "));
  }
});

Deno.test("render flags: render --help lists every render flag from its declaration", () => {
  const help = renderHelp();
  assert.match(help, /^Usage: multi-networkpolicy-tc render -f PATH/);
  for (const flag of RENDER_SPECS) {
    assert.ok(help.includes(flagUsage(flag)), flag.name);
    const names = flag.short ? `-${flag.short}, --${flag.name}` : `--${flag.name}`;
    assert.ok(help.includes(names), flag.name);
  }
  assert.match(help, /--network-plugins strings\n.*\(default \[accelerated-bridge\]\)/);
  assert.match(help, /-o, --output FORMAT\n.*one of: text \(.*json \(.*tc \(.*\(default text\)/);
  const listed = [...help.matchAll(/^\s+(?:-\w, )?--([\w-]+)/gm)].map((m) => m[1]);
  assert.deepEqual(listed, RENDER_SPECS.map((f) => f.name));
});
