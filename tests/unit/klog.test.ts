import assert from "node:assert/strict";
import { DEFAULT_KLOG_OPTIONS, Klog, type Severity } from "../../src/log/klog.ts";

function capture(options: Partial<typeof DEFAULT_KLOG_OPTIONS>) {
  const lines: string[] = [];
  const logger = new Klog();
  logger.configure({ ...DEFAULT_KLOG_OPTIONS, ...options });
  logger.setStderrSink({ write: (line: string, _s: Severity) => lines.push(line) });
  return { logger, lines };
}

Deno.test("klog: header format, severity letters and key/value pairs", () => {
  const { logger, lines } = capture({});
  logger.info("synced", { interfaces: 3, node: "worker-1" });
  logger.warning("slow");
  logger.error("failed", { err: new Error("boom") });
  assert.equal(lines.length, 3);
  assert.match(
    lines[0],
    /^I\d{4} \d{2}:\d{2}:\d{2}\.\d{6} {1,7}\d+ klog\.test\.ts:\d+\] synced interfaces=3 node="worker-1"\n$/,
  );
  assert.match(lines[1], /^W\d{4} .*\] slow\n$/);
  assert.match(lines[2], /^E\d{4} .*\] failed err="boom"\n$/);
  const pidField = lines[0].slice(22, 30);
  assert.equal(pidField.length, 8);
  assert.equal(pidField.trim(), String(Deno.pid));
});

Deno.test("klog: verbosity, vmodule and skip_headers are honoured", () => {
  const { logger, lines } = capture({ v: 2 });
  logger.v(2, "shown");
  logger.v(3, "hidden");
  assert.deepEqual(lines.map((l) => l.split("] ")[1]), ["shown\n"]);
  const mod = capture({ v: 0, vmodule: "klog.test=4" });
  mod.logger.v(4, "by vmodule");
  mod.logger.v(5, "too verbose");
  assert.equal(mod.lines.length, 1);
  const bare = capture({ skipHeaders: true });
  bare.logger.info("plain", { a: "b" });
  assert.deepEqual(bare.lines, ['plain a="b"\n']);
});

Deno.test("klog: logtostderr=false writes to --log_file, errors also to stderr", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const { logger, lines } = capture({ logtostderr: false, logFile: `${dir}/agent.log` });
    logger.info("to file only");
    logger.error("to both");
    const text = await Deno.readTextFile(`${dir}/agent.log`);
    assert.match(text, /to file only/);
    assert.match(text, /to both/);
    assert.equal(lines.length, 1);
    assert.match(lines[0], /to both/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
