/** `explain` as users run it: a real subprocess on the bundled examples. */
import assert from "node:assert/strict";
import { runMain } from "../support/main_process.ts";

const EXPLAIN = ["explain", "-f", "examples/"];

Deno.test("explain: a denied packet names the isolating policy; README shows it", async () => {
  const out = await runMain(
    ...EXPLAIN,
    ...["--from", "telco/smf-1", "--to", "telco/upf-1", "--protocol", "TCP", "--port", "9100"],
  );
  assert.equal(out.code, 0, out.stderr);
  assert.equal(out.stderr, "");
  assert.equal(
    out.stdout,
    [
      "TCP telco/smf-1 net1 (10.56.2.10) -> telco/upf-1 net1 (10.56.1.10:9100) on telco/sriov-data: deny",
      "  egress of telco/smf-1 net1: allow",
      "    isolated by telco/smf-egress",
      "    allowed by telco/smf-egress egress rule 0, peer 0, port 2",
      "  ingress of telco/upf-1 net1: deny",
      "    isolated by telco/upf-ingress",
      "    no rule allows it",
      "",
    ].join("\n"),
  );
  const readme = await Deno.readTextFile(new URL("../../README.md", import.meta.url));
  assert.ok(readme.includes(out.stdout.trimEnd()), "README's explain example is the real output");
});

Deno.test("explain: an allowed packet lists the rule of each direction; README shows it", async () => {
  const out = await runMain(
    ...EXPLAIN,
    ...["--from", "monitoring/prom-1", "--to", "telco/upf-1", "--port", "9100"],
  );
  assert.equal(out.code, 0, out.stderr);
  assert.match(out.stdout, /^TCP monitoring\/prom-1 net1 \(10\.56\.9\.10\) -> .*: allow\n/);
  assert.match(
    out.stdout,
    /\n {4}allowed by monitoring\/prometheus-egress egress rule 0, peer 0, port 0\n/,
  );
  assert.match(out.stdout, /\n {4}allowed by telco\/upf-ingress ingress rule 1, peer 0, port 0\n/);
  const readme = await Deno.readTextFile(new URL("../../README.md", import.meta.url));
  assert.ok(readme.includes(out.stdout.trimEnd()), "README's explain example is the real output");
});

Deno.test("explain -o json: one object, verdict end to end and per direction", async () => {
  const out = await runMain(
    ...EXPLAIN,
    ...["--from", "10.56.7.7", "--to", "telco/upf-1", "--network", "telco/sriov-data"],
    ...["--port", "8050", "-o", "json"],
  );
  assert.equal(out.code, 0, out.stderr);
  assert.deepEqual(JSON.parse(out.stdout), {
    verdict: "allow",
    protocol: "TCP",
    port: 8050,
    network: "telco/sriov-data",
    from: { address: "10.56.7.7", ip: "10.56.7.7", policed: false, reason: "an address" },
    to: {
      pod: "telco/upf-1",
      interface: "net1",
      node: "worker-1",
      ip: "10.56.1.10",
      policed: true,
    },
    directions: [{
      direction: "ingress",
      pod: "telco/upf-1",
      interface: "net1",
      node: "worker-1",
      verdict: "allow",
      isolated: true,
      isolatedBy: ["telco/upf-ingress"],
      allowedBy: [{ policy: "telco/upf-ingress", rule: 2, peer: 0, port: 0 }],
    }],
  });
  // The ipBlock's except: the lab /24 is not allowed, and no rule says otherwise.
  const lab = await runMain(
    ...EXPLAIN,
    ...["--from", "10.56.200.7", "--to", "telco/upf-1", "--network", "telco/sriov-data"],
    ...["--port", "8050", "-o", "json"],
  );
  const denied = JSON.parse(lab.stdout);
  assert.equal(denied.verdict, "deny");
  assert.deepEqual(denied.directions[0].allowedBy, []);
});

Deno.test("explain: ICMP, an open direction, and an end that is not policed", async () => {
  const out = await runMain(
    ...EXPLAIN,
    ...["--from", "telco/upf-1", "--to", "telco/smf-1", "--protocol", "ICMP"],
  );
  assert.equal(out.code, 0, out.stderr);
  assert.equal(
    out.stdout,
    [
      "ICMP telco/upf-1 net1 (10.56.1.10) -> telco/smf-1 net1 (10.56.2.10) on telco/sriov-data: allow",
      "  egress of telco/upf-1 net1: allow (not isolated)",
      "  ingress of telco/smf-1 net1: allow (not isolated)",
      "",
    ].join("\n"),
  );
  const oam = await runMain(
    ...EXPLAIN,
    ...["--from", "telco/smf-1", "--to", "192.168.50.1", "--network", "telco/macvlan-oam"],
    ...["--protocol", "UDP", "--port", "161"],
  );
  assert.equal(oam.code, 0, oam.stderr);
  assert.match(
    oam.stdout,
    /: allow\n {2}telco\/smf-1 net2: not policed \(its network's CNI type macvlan is not in --network-plugins\)\n/,
  );
});

Deno.test("explain: bad input exits 1 with one line naming it", async () => {
  const cases: [string[], string][] = [
    [["--from", "telco/nobody", "--to", "telco/upf-1", "--port", "80"], "no pod telco/nobody"],
    [
      ["--from", "telco/smf-1", "--to", "telco/db-1", "--port", "5432"],
      "telco/smf-1 and telco/db-1 share no network",
    ],
    [
      [
        "--from",
        "telco/smf-1",
        "--to",
        "10.57.0.1",
        "--network",
        "telco/sriov-mgmt",
        "--port",
        "1",
      ],
      "telco/smf-1 is not attached to telco/sriov-mgmt",
    ],
    [
      ["--from", "10.56.7.7", "--to", "telco/upf-1", "--port", "8050"],
      "10.56.7.7 -> telco/upf-1: on telco/sriov-data and telco/sriov-mgmt; name the network " +
      "(--network)",
    ],
    [
      ["--from", "telco/smf-1", "--to", "fd00:56::10", "--port", "53"],
      "fd00:56::10 is not an IPv4 address",
    ],
    [
      ["--from", "telco/smf-1", "--to", "telco/upf-1", "--family", "6", "--port", "53"],
      "telco/smf-1 has no IPv6 address on telco/sriov-data",
    ],
  ];
  for (const [args, message] of cases) {
    const out = await runMain(...EXPLAIN, ...args);
    assert.equal(out.code, 1, args.join(" "));
    assert.equal(out.stdout, "");
    assert.equal(out.stderr, `multi-networkpolicy-tc explain: ${message}\n`);
  }
});

Deno.test("explain: usage mistakes exit 2 with one line; --help tells the flags", async () => {
  const flow = ["--from", "telco/smf-1", "--to", "telco/upf-1"];
  const cases: [string[], string][] = [
    [[...EXPLAIN, ...flow], "explain needs --port 1-65535 for TCP"],
    [[...EXPLAIN, ...flow, "--port", "70000"], 'invalid value "70000" for --port: want 1-65535'],
    [
      [...EXPLAIN, ...flow, "--protocol", "ICMP", "--port", "1"],
      "explain takes no --port for ICMP",
    ],
    [[...EXPLAIN, ...flow, "--protocol", "GRE"], 'invalid value "GRE" for --protocol'],
    [
      [...EXPLAIN, "--from", "10.0.0.1", "--to", "10.0.0.2", "--protocol", "ICMP"],
      "explain needs a pod at one end: --from or --to NAMESPACE/POD",
    ],
    [["explain", ...flow, "--port", "1"], "explain needs -f PATH, or --kubeconfig PATH"],
    [
      [...EXPLAIN, "--kubeconfig", "/x", ...flow, "--port", "1"],
      "explain takes -f PATH or --kubeconfig/--master, not both",
    ],
    [[...EXPLAIN, "--to", "telco/upf-1", "--port", "1"], "explain needs --from"],
  ];
  for (const [args, message] of cases) {
    const out = await runMain(...args);
    assert.equal(out.code, 2, args.join(" "));
    assert.equal(out.stderr.split("\n").length, 2, out.stderr);
    assert.ok(out.stderr.includes(message), `${out.stderr} lacks ${message}`);
    assert.match(out.stderr, /\(see explain --help\)\n$/);
  }
  const help = await runMain("explain", "--help");
  assert.equal(help.code, 0);
  for (
    const flag of ["-f, --filename", "--kubeconfig", "--master", "--network-plugins", "--from"]
  ) {
    assert.ok(help.stdout.includes(flag), flag);
  }
  for (const flag of ["--to", "--protocol", "--port", "--family", "--network", "-o, --output"]) {
    assert.ok(help.stdout.includes(flag), flag);
  }
  assert.doesNotMatch(help.stdout, /--node|--mode|--tc-driver/);
});

Deno.test("explain: a live cluster that cannot be reached exits 1 with one line", async () => {
  const out = await runMain(
    "explain",
    ...["--kubeconfig", "/nonexistent", "--from", "telco/smf-1", "--to", "10.0.0.1"],
    ...["--protocol", "ICMP"],
  );
  assert.equal(out.code, 1);
  assert.match(
    out.stderr,
    /^multi-networkpolicy-tc explain: cannot load --kubeconfig \/nonexistent/,
  );
  assert.equal(out.stderr.split("\n").length, 2);
});
