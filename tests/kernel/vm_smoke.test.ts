/**
 * Boots the test VM once and runs `vm/smoke.sh` in it: real packets through a clsact/flower/
 * act_ct program on veth "representors", proving the facts docs/tc-rule-pipeline.md rests on.
 *
 * Skipped (with a one-line reason) when the VM prerequisites are missing, unless `CI` is set:
 * then it fails.
 *
 * @module
 */

import assert from "node:assert/strict";
import { runInVm, vmPrerequisites } from "./vm/vm.ts";

const REPO_ROOT = new URL("../../", import.meta.url).pathname;

/** Outcome each probe of smoke.sh must report ("OUTCOME <probe> <value>"). */
const EXPECTED: ReadonlyArray<readonly [probe: string, value: string, why: string]> = [
  ["ping-allowed", "reachable", "new connection to an allowed destination, committed"],
  ["ping-denied", "blocked", "destination matched by no allow: the chain's last filter drops"],
  ["tcp-allowed", "reachable", "TCP handshake and data to an allowed destination"],
  ["tcp-denied", "blocked", "TCP to a denied destination"],
  ["ping-into-isolated", "blocked", "isolated ingress (clsact egress hook) admits nothing new"],
  ["tcp-into-isolated", "blocked", "isolated ingress, TCP"],
  ["tcp-without-commit", "blocked", "without ct commit the replies are not +est"],
  ["without-commit-syn-passed", "yes", "the SYN itself did pass the uncommitted allow"],
  ["arp-resolved", "yes", "ARP passes in chain 0"],
  ["batch-swap", "applied", "tc -batch builds a new chain and swaps the dispatch"],
  ["old-chain-deleted", "yes", "the old chain is gone after the swap"],
  ["swapped-ping-old-allowed", "blocked", "after the swap the old allow no longer applies"],
  ["final-drop-request-delivered", "no", "the explicit final drop stops the request"],
  ["swapped-ping-new-allowed", "reachable", "after the swap the new allow applies"],
  ["swapped-tcp-new-allowed", "reachable", "after the swap, TCP to the new destination"],
  ["swapped-tcp-7000-committed", "reachable", "the port-7000 server works once committed"],
  ["no-final-drop-request-delivered", "yes", "a chain without a final verdict fails open"],
  ["syntax-port-range", "accepted", "flower dst_port ranges"],
  ["syntax-sctp", "accepted", "flower ip_proto sctp"],
  ["syntax-ipv6-prefix", "accepted", "flower IPv6 prefixes"],
  ["syntax-vlan", "accepted", "flower 802.1Q vlan_ethtype"],
  ["syntax-qinq", "accepted", "flower 802.1ad + cvlan_ethtype"],
];

async function hasIproute2(): Promise<boolean> {
  for (const p of ["/usr/sbin/tc", "/sbin/tc", "/usr/bin/tc"]) {
    try {
      await Deno.stat(p);
      return true;
    } catch {
      // try the next one
    }
  }
  return false;
}

Deno.test("kernel VM: clsact + flower + act_ct pipeline with real packets", async () => {
  let reason = await vmPrerequisites();
  if (!reason && !(await hasIproute2())) {
    reason = "VM prerequisites missing: tc (apt-get install iproute2)";
  }
  if (reason) {
    if (Deno.env.get("CI")) assert.fail(`kernel VM smoke test cannot run in CI: ${reason}`);
    console.log(`skipped: ${reason}`);
    return;
  }

  const result = await runInVm({
    command: ["bash", "tests/kernel/vm/smoke.sh"],
    cwd: REPO_ROOT,
    timeoutSeconds: 240,
  });
  const context = `exit ${result.code}; output:\n${result.output}`;
  assert.equal(result.timedOut, false, `VM run timed out; ${context}`);
  assert.equal(result.code, 0, `smoke.sh failed; ${context}`);
  assert.match(result.output, /^SMOKE DONE$/m, context);

  const outcomes = new Map<string, string>();
  for (const m of result.output.matchAll(/^OUTCOME (\S+) (\S+)$/gm)) outcomes.set(m[1], m[2]);
  for (const [probe, value, why] of EXPECTED) {
    assert.equal(outcomes.get(probe), value, `${probe} (${why}); ${context}`);
  }
  console.log(
    `VM boot ${result.bootSeconds.toFixed(1)} s, whole run ${result.totalSeconds.toFixed(1)} s`,
  );
});
