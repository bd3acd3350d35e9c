/** `simulate` as users run it: a real subprocess on the bundled examples. */
import assert from "node:assert/strict";
import { runMain } from "../support/main_process.ts";

const FLOW = ["simulate", "-f", "examples/", "--node", "worker-1", "--from", "telco/smf-1"];

Deno.test("simulate: an allowed flow is checked where each packet enters the e-switch", async () => {
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
  // The request on the sender's representor, the reply on the receiver's; ingress hooks only.
  const ends = (i: number) => [
    ...new Set(
      result.packets[i].steps.map((s: { end: string; hook: string }) => `${s.end} ${s.hook}`),
    ),
  ];
  assert.deepEqual(ends(0), ["telco/smf-1 net1 ingress"]);
  assert.deepEqual(ends(1), ["telco/upf-1 net1 ingress"]);
});

Deno.test("simulate: a denied flow names the filter that dropped it; README shows it", async () => {
  const out = await runMain(...FLOW, "--to", "telco/upf-1", "--protocol", "TCP", "--port", "9100");
  assert.equal(out.code, 0, out.stderr);
  assert.match(out.stdout, /: deny\n {2}SYN \(forward\): dropped\n/);
  assert.match(out.stdout.trimEnd(), /telco\/smf-1 net1: ingress chain \d+ prio 9 handle 1: drop$/);
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

Deno.test("simulate --mode hardware: each filter met says where it ran, and JSON names the mode", async () => {
  const args = [...FLOW, "--to", "telco/upf-1", "--protocol", "UDP", "--port", "2152"];
  const json = await runMain(...args, "--mode", "hardware", "-o", "json");
  assert.equal(json.code, 0, json.stderr);
  const result = JSON.parse(json.stdout);
  assert.equal(result.mode, "hardware");
  const request = result.packets[0];
  // Nothing is tracked yet: the first ct action misses in hardware and software takes over.
  assert.equal(request.inHardware, false);
  assert.equal(request.steps[0].where, "hardware");
  assert.match(request.steps[0].did.join(), /\(miss: to software\)/);
  assert.equal(request.steps.at(-1).where, "software");
  const text = await runMain(...args, "--mode", "hardware");
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /, hardware: (allow|deny)\n {2}request \(forward\): \w+ in software\n/);
  assert.match(text.stdout, /\n {4}telco\/smf-1 net1: hardware ingress chain 0 /);
  assert.match(text.stdout, /\n {4}telco\/smf-1 net1: software ingress chain 0 /);
  const software = JSON.parse((await runMain(...args, "-o", "json")).stdout);
  assert.equal(software.mode, "software");
  assert.equal(software.packets[0].inHardware, undefined);
  const bad = await runMain(...args, "--mode", "nic");
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /invalid value "nic" for --mode: want software or hardware/);
});

Deno.test("simulate: -f or --kubeconfig, not both; a live node that cannot be reached exits 1", async () => {
  const flow = ["--from", "telco/smf-1", "--to", "telco/upf-1", "--port", "80"];
  const neither = await runMain("simulate", ...flow);
  assert.equal(neither.code, 2);
  assert.match(neither.stderr, /simulate needs -f PATH, or --kubeconfig PATH for a live node/);
  const both = await runMain("simulate", "-f", "examples/", "--kubeconfig", "/x", ...flow);
  assert.equal(both.code, 2);
  assert.match(both.stderr, /simulate takes -f PATH or --kubeconfig, not both/);
  const missing = await runMain("simulate", "--kubeconfig", "/nonexistent", ...flow);
  assert.equal(missing.code, 1);
  assert.match(
    missing.stderr,
    /^multi-networkpolicy-tc simulate: cannot load --kubeconfig \/nonexistent/,
  );
});
