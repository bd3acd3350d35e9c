/** `--stderrthreshold` takes klog's severity names (any case) or their numbers 0-3. */
import assert from "node:assert/strict";
import { agentHelp, parseAgentFlags, UsageError } from "../../src/cli/flags.ts";
import { DEFAULT_KLOG_OPTIONS, Klog, parseSeverity, type Severity } from "../../src/log/klog.ts";
import { runMain } from "../support/main_process.ts";

const threshold = (arg: string) =>
  parseAgentFlags([`--stderrthreshold=${arg}`]).klog.stderrthreshold;

Deno.test("stderrthreshold: severity names in any case, and numbers 0-3", () => {
  assert.equal(parseAgentFlags([]).klog.stderrthreshold, 2, "klog's default, ERROR");
  const cases: [string, number][] = [
    ["INFO", 0],
    ["info", 0],
    ["Warning", 1],
    ["WARNING", 1],
    ["error", 2],
    ["FATAL", 3],
    ["fAtAl", 3],
    ["0", 0],
    ["1", 1],
    ["2", 2],
    ["3", 3],
  ];
  for (const [arg, rank] of cases) {
    assert.equal(threshold(arg), rank, arg);
    assert.equal(parseSeverity(arg), rank, arg);
  }
  assert.equal(parseAgentFlags(["--stderrthreshold", "warning"]).klog.stderrthreshold, 1);
  assert.equal(parseAgentFlags(["-stderrthreshold=INFO"]).klog.stderrthreshold, 0);
});

Deno.test("stderrthreshold: anything else is a one-line usage error", () => {
  for (const arg of ["", "4", "-1", "WARN", "E", "2.0", " ERROR", "INFO,ERROR", "1e0"]) {
    assert.equal(parseSeverity(arg), undefined, arg);
    assert.throws(() => threshold(arg), (error: unknown) => {
      assert.ok(error instanceof UsageError, `${arg}: ${error}`);
      assert.equal(
        error.message,
        `invalid value ${
          JSON.stringify(arg)
        } for --stderrthreshold: want INFO, WARNING, ERROR, FATAL (any case) or 0-3`,
      );
      return true;
    });
  }
});

Deno.test("stderrthreshold: --help names the severities and the default", () => {
  const entry = agentHelp().split("\n").findIndex((line) =>
    line.includes("--stderrthreshold severity")
  );
  assert.ok(entry >= 0, "listed as --stderrthreshold severity");
  const text = agentHelp().split("\n")[entry + 1];
  assert.match(text, /INFO, WARNING, ERROR or FATAL \(any case\), or its number 0-3/);
  assert.match(text, /\(default 2\)$/);
});

Deno.test("stderrthreshold: a name routes lines as its number does", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const stderr: string[] = [];
    const logger = new Klog();
    logger.configure({
      ...DEFAULT_KLOG_OPTIONS,
      logtostderr: false,
      logFile: `${dir}/agent.log`,
      stderrthreshold: parseAgentFlags(["--stderrthreshold=warning"]).klog.stderrthreshold,
    });
    logger.setStderrSink({ write: (line: string, _s: Severity) => stderr.push(line) });
    logger.info("quiet");
    logger.warning("loud");
    assert.deepEqual(stderr.map((line) => line.split("] ")[1]), ["loud\n"]);
    const file = await Deno.readTextFile(`${dir}/agent.log`);
    assert.equal(file.trim().split("\n").length, 2);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("stderrthreshold: the daemon refuses a bad value with exit status 2 and one line", async () => {
  const out = await runMain("--stderrthreshold=LOUD");
  assert.equal(out.code, 2);
  assert.equal(out.stdout, "");
  assert.equal(out.stderr.trimEnd().split("\n").length, 1, out.stderr);
  assert.match(out.stderr, /invalid value "LOUD" for --stderrthreshold: want INFO, WARNING/);
});
