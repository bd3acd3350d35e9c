/** `render` as users run it: a real subprocess on real files. */
import assert from "node:assert/strict";
import { runMain as run } from "../support/main_process.ts";
import { loadManifests } from "../../src/cluster/manifests.ts";
import { computeNodeRules } from "../../src/policy/engine.ts";
import { formatOffloadCheck } from "../../src/cli/render.ts";
import { MLX5_PROFILE } from "../../src/tc/offload/profile.ts";

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

Deno.test("render: -o tc prints every device's program, all on ingress hooks", async () => {
  const result = await run("render", "-f", "examples/", "--node", "worker-1", "-o", "tc");
  assert.equal(result.code, 0);
  const lines = result.stdout.split("\n");
  const headers = lines.filter((l) => /^# (REP\d+|UPLINK): /.test(l));
  // Five interfaces' representors (every one takes part: one sends to a policed pod) and the uplink.
  assert.equal(headers.length, 6);
  for (const header of headers) {
    const [, device, count, hardware, software, breaks] =
      /^# (\S+): .*: (\d+) filters: (\d+) hardware, (\d+) software-only, (\d+) breaks$/
        .exec(header)!;
    const filterLines = lines.filter((l) => l.startsWith(`filter add dev ${device} `));
    assert.equal(filterLines.length, Number(count), device);
    assert.equal(Number(hardware) + Number(software), Number(count), device);
    assert.equal(breaks, "0", device);
    assert.ok(filterLines.every((l) => l.startsWith(`filter add dev ${device} ingress `)));
    assert.ok(lines.includes(`qdisc add dev ${device} clsact`));
  }
  // db-1 accepts TCP 5432 from upf-1 (10.57.1.10): where traffic from the wire enters.
  assert.ok(
    lines.some((l) =>
      /^filter add dev UPLINK .* src_ip 10\.57\.1\.10\/32 ct_state \+trk action goto chain /.test(l)
    ),
  );
});

Deno.test("render --offload-check: counts per device; a filter that would break exits 1", async () => {
  const ok = await run("render", "-f", "examples/", "--node", "worker-1", "--offload-check");
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /^offload profile: mlx5-cx6dx\n/);
  assert.match(
    ok.stdout,
    /^UPLINK \(uplink of the PF\): \d+ filters: \d+ hardware, \d+ software-only, 0 breaks$/m,
  );
  assert.doesNotMatch(ok.stdout, /breaks:/);
  // A NIC that cannot match conntrack state at all: every stateful filter would break.
  const rules = computeNodeRules((await loadManifests(["examples/"])).state, {
    node: "worker-1",
    networkPlugins: ["accelerated-bridge"],
  });
  const strict = {
    ...MLX5_PROFILE,
    keys: {
      ...MLX5_PROFILE.keys,
      ctState: { ...MLX5_PROFILE.keys.ctState, value: { set: [], unset: [] } },
    },
  };
  const check = formatOffloadCheck(rules, strict);
  assert.ok(check.breaks > 0);
  assert.match(check.text, /\n {2}breaks: ingress chain \d+ prio 1 handle 1: ct_state \+trk/);
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
