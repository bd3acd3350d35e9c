/** Rules whose TC program has about 1,000 filters on one representor (benchmarks). */
import type { InterfaceRules } from "../src/policy/model.ts";
import { interfaceRules } from "../tests/support/cluster.ts";

/** 296 peer addresses on one port: 112 fixed filters + 3 variants × 296 = 1,000. */
export function thousandFilterRules(): InterfaceRules {
  const cidrs = Array.from({ length: 296 }, (_, i) => `10.${100 + (i >> 8)}.${i & 0xff}.1/32`);
  return interfaceRules(
    {
      isolated: true,
      policies: ["bench/p"],
      allow: [{ cidrs, protocol: "TCP", ports: [{ first: 443, last: 443 }] }],
    },
    { isolated: false, policies: [], allow: [] },
  );
}
