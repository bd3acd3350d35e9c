/**
 * Injection: interface names and representor names that could smuggle a
 * second tc command (newline, `;`, spaces) are rejected before any tc runs.
 */
import assert from "node:assert/strict";
import type { TcDriver } from "../../src/tc/driver.ts";
import { Actuator } from "../../src/tc/actuator.ts";
import type { TcCommand, TcState } from "../../src/tc/model.ts";
import { UnsafeTcInput } from "../../src/tc/serialize.ts";
import { iface, mnp, nad, ns, pod, render } from "../support/cluster.ts";

/** Records every call; programs nothing. */
class RecordingDriver implements TcDriver {
  readonly name = "recording";
  readonly stats = { calls: 0 };
  readonly applied: TcCommand[][] = [];
  read(device: string): Promise<TcState> {
    this.stats.calls++;
    return Promise.resolve({ device, clsact: false, foreignQdiscs: [], filters: [] });
  }
  apply(_device: string, commands: TcCommand[]): Promise<void> {
    this.stats.calls++;
    this.applied.push(commands);
    return Promise.resolve();
  }
}

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
    const actuator = new Actuator(driver, { zoneFor: () => Promise.resolve(1) });
    for (const rules of result.interfaces) await actuator.sync("rep0", rules);
    assert.equal(driver.stats.calls, 0);
  }
});

Deno.test("an unsafe representor name fails before the driver is called", async () => {
  const result = render([
    ns("app"),
    nad("app", "data"),
    pod("app", "web", { nets: { "app/data": "10.0.0.1" } }),
    mnp("app", "deny", "data", { policyTypes: ["Ingress"] }),
  ]);
  const rules = iface(result, "app/web", "app/data");
  const driver = new RecordingDriver();
  const actuator = new Actuator(driver, { zoneFor: () => Promise.resolve(1) });
  for (const device of ["rep0\nqdisc del dev eth0 root", "rep0;reboot", "rep 0", "../eth0"]) {
    await assert.rejects(() => actuator.sync(device, rules), UnsafeTcInput, JSON.stringify(device));
  }
  assert.equal(driver.stats.calls, 0);
  await actuator.sync("rep0", rules);
  assert.equal(driver.applied.length, 1);
});
