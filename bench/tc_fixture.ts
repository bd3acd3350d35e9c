/** Rules whose TC program has about 1,000 filters on one representor (benchmarks). */
import type { InterfaceRules } from "../src/policy/model.ts";
import { interfaceRules } from "../tests/support/cluster.ts";

/** 296 peer addresses on one port: 61 fixed filters + 3 IPv4 variants × 296 = 949. */
export function thousandFilterRules(): InterfaceRules {
  return peerFilterRules(296);
}

/**
 * `peers` peer addresses on one port: 61 fixed filters + 3 IPv4 variants ×
 * `peers` (3,313 peers: about 10,000 filters).
 */
export function peerFilterRules(peers: number): InterfaceRules {
  const cidrs = Array.from({ length: peers }, (_, i) => `10.${100 + (i >> 8)}.${i & 0xff}.1/32`);
  // Egress (what a pod's own representor checks), on a trunk network (all six variants).
  const rules = interfaceRules(
    { isolated: false, policies: [], allow: [] },
    {
      isolated: true,
      policies: ["bench/p"],
      allow: [{ cidrs, protocol: "TCP", ports: [{ first: 443, last: 443 }] }],
    },
  );
  return { ...rules, trunk: true };
}
