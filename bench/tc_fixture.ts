/** Rules whose TC program has about 1,000 filters on one representor (benchmarks). */
import type { InterfaceRules } from "../src/policy/model.ts";

/** 296 peer addresses on one port: 112 fixed filters + 3 variants × 296 = 1,000. */
export function thousandFilterRules(): InterfaceRules {
  const cidrs = Array.from({ length: 296 }, (_, i) => `10.${100 + (i >> 8)}.${i & 0xff}.1/32`);
  return {
    pod: { namespace: "bench", name: "server", uid: "bench" },
    network: "bench/data",
    pluginType: "accelerated-bridge",
    interfaceName: "net1",
    pciAddress: "0000:3b:00.1",
    ips: ["10.99.0.1"],
    ingress: {
      isolated: true,
      policies: ["bench/p"],
      allow: [{ cidrs, protocol: "TCP", ports: [{ first: 443, last: 443 }] }],
    },
    egress: { isolated: false, policies: [], allow: [] },
  };
}
