import assert from "node:assert/strict";
import { agentHelp, FLAG_SPECS, parseAgentFlags, UsageError } from "../../src/cli/flags.ts";

Deno.test("flags: defaults match the original agent and klog", () => {
  const options = parseAgentFlags([]);
  assert.equal(options.kubeconfig, "");
  assert.equal(options.master, "");
  assert.equal(options.hostnameOverride, "");
  assert.deepEqual(options.networkPlugins, ["accelerated-bridge"]);
  assert.equal(options.podRulesPath, "");
  assert.equal(options.tcDriver, "cmdline");
  assert.equal(options.klog.v, 0);
  assert.equal(options.klog.logtostderr, true);
  assert.equal(options.klog.stderrthreshold, 2);
  assert.equal(options.klog.logFileMaxSizeMB, 1800);
  assert.equal(options.logFlushFrequencyMs, 5000);
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
});

Deno.test("flags: unknown flags and bad values are usage errors with one-line reasons", () => {
  const cases: [string[], RegExp][] = [
    [["--kubeconfg=x"], /unknown flag: --kubeconfg/],
    [["--tc-driver=tcx"], /invalid value "tcx" for --tc-driver/],
    [["-v=high"], /invalid value "high" for --v/],
    [["--logtostderr=maybe"], /invalid boolean value "maybe" for --logtostderr/],
    [["--log-flush-frequency=5 s"], /invalid duration/],
    [["--vmodule=engine"], /invalid value for --vmodule/],
    [["--kubeconfig"], /flag needs an argument: --kubeconfig/],
    [["stray"], /unexpected argument: stray/],
    [["--network-plugins="], /empty list/],
  ];
  for (const [args, pattern] of cases) {
    assert.throws(() => parseAgentFlags(args), (error: unknown) => {
      assert.ok(error instanceof UsageError, `${args.join(" ")}: ${error}`);
      assert.match(error.message, pattern);
      assert.ok(!error.message.includes("\n"));
      return true;
    });
  }
});

Deno.test("flags: --help lists every visible flag with its default", () => {
  const help = agentHelp();
  for (const spec of FLAG_SPECS.filter((s) => !s.hidden)) {
    assert.match(help, new RegExp(`--${spec.name}\\b`), spec.name);
  }
  assert.match(help, /--network-plugins strings\n.*\(default \[accelerated-bridge\]\)/);
  assert.match(help, /--tc-driver string\n.*\(default cmdline\)/);
});
