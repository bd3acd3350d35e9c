/**
 * A small cluster for stream tests: pod `a` on this node sends; `b`, `c`
 * and `d` elsewhere receive. Policy variants allow `a` to reach `d` always
 * and `b` or `c` alternately.
 */
import { stateFromObjects } from "../../../src/cluster/manifests.ts";
import type { InterfaceRules } from "../../../src/policy/model.ts";
import { objectsOf, rulesFor } from "../../support/cluster.ts";
import { type Manifest, mnp, nad, ns, pod } from "../../support/manifests.ts";

/** Addresses of the stream pods. */
export const ADDRESS = { a: "10.70.0.1", b: "10.70.0.2", c: "10.70.0.3", d: "10.70.0.4" };
/** The port every receiver answers on. */
export const PORT = 80;

function pods(): Manifest[] {
  return (["a", "b", "c", "d"] as const).map((name) =>
    pod("app", name, {
      labels: { role: name },
      node: name === "a" ? "node-a" : "node-b",
      nets: { "app/data": ADDRESS[name] },
    })
  );
}

/** A port a policy may open besides {@link PORT} (nothing answers on it). */
export const SECOND_PORT = 8080;

function policyAllowing(roles: string[], ports: number[]): Manifest {
  return mnp("app", "a-egress", "data", {
    podSelector: { matchLabels: { role: "a" } },
    policyTypes: ["Egress"],
    egress: [{
      to: [{ podSelector: { matchExpressions: [{ key: "role", operator: "In", values: roles }] } }],
      ports: ports.map((port) => ({ protocol: "TCP", port })),
    }],
  });
}

/** The manifests without any policy. */
export function streamManifests(): Manifest[] {
  return [ns("app"), nad("app", "data"), ...pods()];
}

/** Pod a's rules when the policy allows the given roles. */
export function rulesAllowing(roles: string[], ports = [PORT]): InterfaceRules {
  const objects = objectsOf([...streamManifests(), policyAllowing(roles, ports)]);
  const rules = rulesFor(stateFromObjects(objects), "node-a");
  if (rules.interfaces.length !== 1) throw new Error("want exactly pod a's interface");
  return rules.interfaces[0];
}
