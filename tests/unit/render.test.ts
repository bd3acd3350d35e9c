/** `render` as users run it: a real subprocess on real files. */
import assert from "node:assert/strict";
import { runMain as run } from "../support/main_process.ts";

Deno.test("render: the bundled examples render cleanly for worker-1", async () => {
  const result = await run("render", "-f", "examples/", "--node", "worker-1");
  assert.equal(result.stderr, "");
  assert.equal(result.code, 0);
  assert.match(result.stdout, /^node worker-1: 5 interfaces on policed networks/);
  assert.match(result.stdout, /telco\/smf-1 net1 .*\n {2}ingress: open/);
  assert.match(result.stdout, /allow TCP 9100 to 10\.56\.1\.10\/32, fd00:56::10\/128/);
  assert.match(result.stdout, /allow TCP 9102 to 10\.56\.1\.11\/32, fd00:56::11\/128/);
  assert.match(
    result.stdout,
    /telco\/db-1 net1[^\n]*\n(.*\n){2} {2}egress: isolated by telco\/db-lockdown\n {4}deny all/,
  );
  assert.doesNotMatch(result.stdout, /macvlan-oam|upf-2/);
});

Deno.test("render: -o json is the rule model", async () => {
  const result = await run("render", "-f", "examples/", "--node", "worker-1", "-o", "json");
  assert.equal(result.code, 0);
  const parsed = JSON.parse(result.stdout);
  assert.equal(parsed.node, "worker-1");
  assert.equal(parsed.interfaces.length, 5);
  const upf = parsed.interfaces.find((i: { pod: { name: string } }) => i.pod.name === "upf-1");
  assert.equal(upf.pciAddress, "0000:3b:02.1");
  assert.equal(upf.ingress.isolated, true);
  assert.deepEqual(upf.ingress.policies, ["telco/upf-ingress"]);
});

Deno.test("render: bad input gives one error line per problem and still renders the rest", async () => {
  const result = await run("render", "-f", "tests/fixtures/bad", "--node", "node-a");
  assert.equal(result.code, 1);
  const errors = result.stderr.trimEnd().split("\n");
  const expected = [
    /01-invalid\.yaml document 1: \(yaml\): invalid YAML/,
    /Deployment not-ours .*: kind: unsupported kind "Deployment"/,
    /NetworkAttachmentDefinition app\/net-bad: spec\.config: invalid JSON/,
    /Pod app\/bad-json: metadata\.annotations\[k8s\.v1\.cni\.cncf\.io\/networks\]\[0\]\.name/,
    /Pod app\/bad-json: metadata\.annotations\[k8s\.v1\.cni\.cncf\.io\/network-status\]: invalid JSON/,
    /Pod app\/wrong-types: .*network-status\]: want a JSON list, got an object/,
    /Pod app\/injected: .*\[0\]\.interface: invalid interface name "net1;reboot"; interface rejected/,
    /Pod app\/injected: .*\[1\]\.ips\[0\]: invalid IP address "10\.0\.0\.300"/,
    /Pod app\/injected: .*\[1\]\.device-info\.pci\.pci-address: invalid PCI address "0000:3b:00\.5\\nx"/,
    /MultiNetworkPolicy app\/bad-rules: spec\.ingress\[0\]\.from\[0\]\.ipBlock\.cidr: invalid CIDR/,
    /MultiNetworkPolicy app\/bad-rules: spec\.ingress\[1\]\.ports\[0\]\.protocol: unsupported protocol "ICMP"/,
    /MultiNetworkPolicy app\/bad-rules: spec\.ingress\[2\]\.ports\[0\]\.port: invalid port 0/,
    /MultiNetworkPolicy app\/bad-rules: spec\.ingress\[3\]\.from\[0\]\.podSelector\.matchExpressions\[0\]\.operator: unknown operator "Matches"/,
  ];
  assert.equal(errors.length, expected.length, result.stderr);
  expected.forEach((pattern, i) => assert.match(errors[i], pattern));
  assert.match(
    result.stdout,
    /app\/good net1 .*\n {2}ingress: isolated by app\/bad-rules\n {4}allow TCP 443 from 10\.9\.0\.0\/16\n/,
  );
  assert.doesNotMatch(result.stdout, /injected/);
});

Deno.test("cli: usage errors exit 2 with one line; --help and --version exit 0", async () => {
  const bad = await run("--tc-driver=bogus");
  assert.equal(bad.code, 2);
  assert.equal(bad.stderr.trimEnd().split("\n").length, 1);
  assert.match(bad.stderr, /invalid value "bogus" for --tc-driver/);
  const noFile = await run("render");
  assert.equal(noFile.code, 2);
  assert.match(noFile.stderr, /render needs at least one -f PATH/);
  const help = await run("--help");
  assert.equal(help.code, 0);
  assert.match(help.stdout, /--hostname-override string/);
  const version = await run("--version");
  assert.equal(version.code, 0);
  assert.match(version.stdout, /^multi-networkpolicy-tc \d+\.\d+\.\d+\n$/);
});

Deno.test("agent: --tc-driver netlink without FFI permission stops at start with one error", async () => {
  // run() grants no --allow-ffi: the driver cannot load libc, and the agent says so and exits 1
  // before it talks to any API server.
  const out = await run("--tc-driver", "netlink", "--kubeconfig", "/nonexistent");
  assert.equal(out.code, 1);
  const lines = out.stderr.trimEnd().split("\n");
  assert.match(
    lines.at(-1)!,
    /^E\d{4} .* cannot start the TC driver driver="netlink" err=".*--allow-ffi/,
  );
  assert.doesNotMatch(out.stderr, /kubeconfig/);
});

Deno.test("render: -o tc prints the tc -batch program the agent would apply", async () => {
  const result = await run("render", "-f", "examples/", "--node", "worker-1", "-o", "tc");
  assert.equal(result.code, 0);
  const lines = result.stdout.split("\n");
  const headers = lines.filter((l) => /^# \S+\/\S+ net\d \(network /.test(l));
  assert.equal(headers.length, 5);
  assert.ok(lines.includes("# both directions open: no qdisc, no filters"));
  const counts = headers.map((h) => Number(/: (\d+) filters$/.exec(h)![1]));
  const filterLines = lines.filter((l) => l.startsWith("filter add dev REPRESENTOR "));
  assert.equal(filterLines.length, counts.reduce((a, b) => a + b, 0));
  assert.equal(lines.filter((l) => l === "qdisc add dev REPRESENTOR clsact").length, 4);
  assert.ok(
    filterLines.some((l) => / src_ip 10\.57\.1\.10\/32 ct_state \+trk action goto chain /.test(l)),
  );
});

Deno.test("render: --help exits 0 and lists render's flags", async () => {
  const result = await run("render", "--help");
  assert.equal(result.code, 0);
  assert.equal(result.stderr, "");
  assert.match(result.stdout, /^Usage: multi-networkpolicy-tc render -f PATH/);
  for (
    const flag of [
      "-f, --filename PATH",
      "--node NAME",
      "--network-plugins strings",
      "-o, --output FORMAT",
      "-h, --help",
    ]
  ) {
    assert.ok(result.stdout.includes(flag), flag);
  }
  const bad = await run("render", "-f", "examples/", "-o", "yaml");
  assert.equal(bad.code, 2);
  assert.equal(
    bad.stderr,
    'multi-networkpolicy-tc: invalid value "yaml" for --output: want text, json or tc (see render --help)\n',
  );
});
