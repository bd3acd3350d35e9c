/**
 * The programs of a whole node: N policed pods on one network (8 and 64),
 * every device's program generated (each pod's representor and the
 * uplink). Prints the filters per device and per node; the Deno.bench below
 * measures generating them (pure, on the host).
 */
import { deviceProgram } from "../src/tc/generate.ts";
import { nodeRoles, placeholderPlacement } from "../src/tc/placement.ts";
import { nodeWithPods } from "./node_fixture.ts";

/** Every device's program for N pods: filters per representor (min-max), uplink, node. */
function figures(count: number) {
  const roles = nodeRoles(placeholderPlacement(nodeWithPods(count)));
  const sizes = roles.map((role) => ({
    device: role.device,
    filters: deviceProgram(role, 1).filters.length,
  }));
  const representors = sizes.filter((s) => s.device !== "UPLINK").map((s) => s.filters);
  return {
    pods: count,
    representor: `${Math.min(...representors)}-${Math.max(...representors)}`,
    uplink: sizes.find((s) => s.device === "UPLINK")!.filters,
    node: sizes.reduce((sum, s) => sum + s.filters, 0),
  };
}

for (const count of [8, 64]) {
  const f = figures(count);
  console.log(
    `node program, ${f.pods} policed pods on one network: ${f.representor} filters per ` +
      `representor, ${f.uplink} on the uplink, ${f.node} on the node`,
  );
}

const rules64 = nodeWithPods(64);
Deno.bench("generate every device's program of a node with 64 policed pods", () => {
  for (const role of nodeRoles(placeholderPlacement(rules64))) deviceProgram(role, 1);
});
