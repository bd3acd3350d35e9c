/** `simulate` as users run it: a real subprocess on the bundled examples. */
import assert from "node:assert/strict";
import { runMain } from "../support/main_process.ts";

const FLOW = ["simulate", "-f", "examples/", "--node", "worker-1", "--from", "telco/smf-1"];

Deno.test("simulate: an allowed flow passes every packet through both representors", async () => {
  const out = await runMain(
    ...FLOW,
    "--to",
    "telco/upf-1",
    "--protocol",
    "UDP",
    "--port",
    "2152",
    "-o",
    "json",
  );
  assert.equal(out.code, 0, out.stderr);
  const result = JSON.parse(out.stdout);
  assert.equal(result.verdict, "allow");
  assert.deepEqual(result.packets.map((p: { name: string }) => p.name), ["request", "reply"]);
  const ends = new Set(result.packets[0].steps.map((s: { end: string }) => s.end));
  assert.deepEqual([...ends], ["telco/smf-1 net1", "telco/upf-1 net1"]);
});

Deno.test("simulate: a denied flow names the filter that dropped it; README shows it", async () => {
  const out = await runMain(...FLOW, "--to", "telco/upf-1", "--protocol", "TCP", "--port", "9100");
  assert.equal(out.code, 0, out.stderr);
  assert.match(out.stdout, /: deny\n {2}SYN \(forward\): dropped\n/);
  assert.match(out.stdout.trimEnd(), /telco\/upf-1 net1: egress chain \d+ prio 9 handle 1: drop$/);
  const readme = await Deno.readTextFile(new URL("../../README.md", import.meta.url));
  assert.ok(readme.includes(out.stdout.trimEnd()), "README's simulate example is the real output");
});

Deno.test("simulate: bad input exits 1 with one line; usage mistakes exit 2", async () => {
  const unknown = await runMain(...FLOW, "--to", "telco/nobody", "--port", "80");
  assert.equal(unknown.code, 1);
  assert.equal(unknown.stderr, "multi-networkpolicy-tc simulate: no pod telco/nobody\n");
  const noPort = await runMain(...FLOW, "--to", "telco/upf-1");
  assert.equal(noPort.code, 2);
  assert.match(noPort.stderr, /simulate needs --port 1-65535 for TCP \(see simulate --help\)/);
});
