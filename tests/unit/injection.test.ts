/**
 * Injection: interface names and representor names that could smuggle a
 * second tc command (newline, `;`, spaces) are rejected before any tc runs.
 */
import assert from "node:assert/strict";
import { Actuator } from "../../src/tc/actuator.ts";
import { generateProgram } from "../../src/tc/generate.ts";
import type { InterfaceRules } from "../../src/policy/model.ts";
import { UnsafeTcInput } from "../../src/tc/serialize.ts";
import { iface, render } from "../support/cluster.ts";
import { RecordingDriver } from "../support/fake_driver.ts";
import { mnp, nad, ns, pod } from "../support/manifests.ts";

function withInterfaceName(name: string) {
  const manifest = pod("app", "evil", { nets: { "app/data": "10.0.0.1" } });
  const annotations = (manifest.metadata as { annotations: Record<string, string> }).annotations;
  const status = JSON.parse(annotations["k8s.v1.cni.cncf.io/network-status"]);
  status[1].interface = name;
  annotations["k8s.v1.cni.cncf.io/network-status"] = JSON.stringify(status);
  return manifest;
}

Deno.test("a network-status interface with a newline or ';' is rejected: no interface, no tc", async () => {
  for (const name of ["net1\nqdisc del dev eth0 root", "net1;reboot", "net 1", "net1`id`"]) {
    const result = render([
      ns("app"),
      nad("app", "data"),
      withInterfaceName(name),
      mnp("app", "deny", "data", { policyTypes: ["Ingress", "Egress"] }),
    ]);
    assert.deepEqual(result.interfaces, [], JSON.stringify(name));
    assert.ok(
      result.parseErrors.some((e) =>
        e.object === "Pod app/evil" && /\.interface$/.test(e.field) &&
        /interface rejected/.test(e.message)
      ),
      JSON.stringify(result.parseErrors),
    );
    const driver = new RecordingDriver();
    const actuator = new Actuator(driver);
    for (const rules of result.interfaces) await actuator.sync("rep0", programOf(rules));
    assert.equal(driver.stats.calls, 0);
  }
});

/** The program of an interface's representor when it is alone on the node. */
function programOf(rules: InterfaceRules) {
  return (generation: number) => generateProgram(rules, { device: "rep0", zone: 1, generation });
}

Deno.test("an unsafe representor name fails before the driver is called", async () => {
  const result = render([
    ns("app"),
    nad("app", "data"),
    pod("app", "web", { nets: { "app/data": "10.0.0.1" } }),
    mnp("app", "deny", "data", { policyTypes: ["Ingress"] }),
  ]);
  const rules = iface(result, "app/web", "app/data");
  const driver = new RecordingDriver(["rep0"]);
  const actuator = new Actuator(driver);
  for (const device of ["rep0\nqdisc del dev eth0 root", "rep0;reboot", "rep 0", "../eth0"]) {
    await assert.rejects(
      () => actuator.sync(device, programOf(rules)),
      UnsafeTcInput,
      JSON.stringify(device),
    );
  }
  assert.equal(driver.stats.calls, 0);
  await actuator.sync("rep0", programOf(rules));
  assert.equal(driver.applied.length, 1);
});
