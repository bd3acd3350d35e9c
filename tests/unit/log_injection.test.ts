/**
 * Log injection: untrusted text (names, label keys, annotation snippets,
 * error text) never starts a second log line, and is quoted with its control
 * characters escaped wherever it is printed.
 */
import assert from "node:assert/strict";
import { formatObjectError } from "../../src/cluster/types.ts";
import { DEFAULT_KLOG_OPTIONS, Klog, type Severity } from "../../src/log/klog.ts";
import { escapeControls, quote } from "../../src/log/quote.ts";
import { render } from "../support/cluster.ts";
import { mnp, nad, ns, pod } from "../support/manifests.ts";

const FORGED = "\nE1129 00:00:00.000000       1 daemon.ts:1] forged";

/** Whether text holds any character that could break or disguise a line. */
// deno-lint-ignore no-control-regex -- control characters are what it looks for
const hasControl = (text: string) => /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202e]/.test(text);

function capture() {
  const lines: string[] = [];
  const logger = new Klog();
  logger.configure({ ...DEFAULT_KLOG_OPTIONS });
  logger.setStderrSink({ write: (line: string, _s: Severity) => lines.push(line) });
  return { logger, lines };
}

Deno.test("quote: control characters, separators and bidi overrides are escaped", () => {
  assert.equal(quote("a\nb"), '"a\\nb"');
  assert.equal(quote('say "hi"\\'), '"say \\"hi\\"\\\\"');
  assert.equal(quote("x\u2028y\u202ez\u0085"), '"x\\u2028y\\u202ez\\u0085"');
  assert.equal(escapeControls("plain text: ok"), "plain text: ok");
  assert.equal(escapeControls("\r\t\u0000\u007f"), "\\r\\t\\u0000\\u007f");
});

Deno.test("klog: a newline in a message or a value cannot start another line", () => {
  const { logger, lines } = capture();
  logger.warning(`object problem${FORGED}`, { name: `web${FORGED}`, err: new Error(FORGED) });
  assert.equal(lines.length, 1);
  assert.equal(lines[0].indexOf("\n"), lines[0].length - 1, lines[0]);
  assert.ok(!hasControl(lines[0].slice(0, -1)), lines[0]);
  assert.match(lines[0], /object problem\\nE1129 .* name="web\\nE1129 .*forged" err="\\nE1129/);
});

Deno.test("object errors: bad names, label keys and JSON snippets are quoted and escaped", () => {
  const evilPod = pod("app", "web", { nets: { "app/data": "10.0.0.1" } });
  const meta = evilPod.metadata as Record<string, unknown>;
  meta.name = `web${FORGED}`;
  const badLabels = pod("app", "labels", { nets: { "app/data": "10.0.0.2" } });
  (badLabels.metadata as Record<string, unknown>).labels = { [`k${FORGED}`]: 7 };
  const badJson = pod("app", "json", { nets: { "app/data": "10.0.0.3" } });
  (badJson.metadata as { annotations: Record<string, string> }).annotations[
    "k8s.v1.cni.cncf.io/network-status"
  ] = `[{"name":\n"x${FORGED}`;
  const result = render([
    ns("app"),
    nad("app", "data"),
    evilPod,
    badLabels,
    badJson,
    mnp("app", "p", "data", {
      podSelector: { matchLabels: { [`tier${FORGED}`]: "web" } },
    }),
  ]);
  const lines = result.parseErrors.map(formatObjectError);
  assert.ok(lines.length >= 4, lines.join("\n"));
  for (const line of lines) assert.ok(!hasControl(line), line);
  assert.ok(lines.some((l) => l.startsWith(`Pod ${quote(`app/web${FORGED}`)}: metadata.name`)));
  assert.ok(lines.some((l) => l.includes(`metadata.labels[${quote(`k${FORGED}`)}]`)), lines[1]);
  assert.ok(lines.some((l) => l.startsWith("Pod app/json: ") && l.includes("invalid JSON")));
  assert.ok(
    lines.some((l) => l.includes(`invalid label key ${quote(`tier${FORGED}`)}`)),
    lines.join("\n"),
  );
});
