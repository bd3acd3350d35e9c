import assert from "node:assert/strict";
import { bondAwareLookup } from "../../src/agent/uplink_lookup.ts";
import { findUplinkBond } from "../../src/sriov/bond.ts";
import { RepresentorResolver } from "../../src/sriov/representor.ts";
import { BLOCK_INDEX_BASE, blockDevice, SharedBlocks } from "../../src/tc/blocks.ts";
import { FakeSysfs } from "../support/fake_sysfs.ts";

/** Two PFs of one e-switch (uplinks p0 and p1), a VF on the first, and a plain NIC. */
async function twoPorts(): Promise<FakeSysfs> {
  const sysfs = await FakeSysfs.create();
  await sysfs.addPf("0000:3b:00.0", ["0000:3b:00.2"]);
  await sysfs.addPf("0000:3b:00.1", []);
  await sysfs.addNetdevs(
    { name: "enp59s0f0", pci: "0000:3b:00.0", portName: "p0", switchId: "5a5a" },
    { name: "enp59s0f1", pci: "0000:3b:00.1", portName: "p1", switchId: "5a5a" },
    { name: "eth0_0", portName: "pf0vf0", switchId: "5a5a" },
    { name: "eno1" },
    { name: "other0", portName: "p0", switchId: "7b7b" },
  );
  return sysfs;
}

Deno.test("bond: both uplinks of one e-switch in a bond share its block", async () => {
  const sysfs = await twoPorts();
  try {
    await sysfs.addBond("bond0", 12, ["enp59s0f1", "enp59s0f0"]);
    const bond = await findUplinkBond(sysfs.root, "enp59s0f0", "5a5a");
    assert.deepEqual(bond, {
      bond: "bond0",
      ifindex: 12,
      members: ["enp59s0f0", "enp59s0f1"],
      block: BLOCK_INDEX_BASE + 12,
    });
    assert.deepEqual(await findUplinkBond(sysfs.root, "enp59s0f1", "5a5a"), bond);
  } finally {
    await sysfs.remove();
  }
});

Deno.test("bond: no master, a single port, or a port that is no uplink of the e-switch: none", async () => {
  const sysfs = await twoPorts();
  try {
    assert.equal(await findUplinkBond(sysfs.root, "enp59s0f0", "5a5a"), null, "no master");
    await sysfs.addBond("bond0", 12, ["enp59s0f0"]);
    assert.equal(await findUplinkBond(sysfs.root, "enp59s0f0", "5a5a"), null, "one port");
    await sysfs.enslave("bond0", "eno1");
    assert.equal(await findUplinkBond(sysfs.root, "enp59s0f0", "5a5a"), null, "a plain NIC");
    await sysfs.release("bond0", "eno1");
    await sysfs.enslave("bond0", "other0");
    assert.equal(await findUplinkBond(sysfs.root, "enp59s0f0", "5a5a"), null, "another switch");
    await sysfs.release("bond0", "other0");
    await sysfs.enslave("bond0", "enp59s0f1");
    assert.ok(await findUplinkBond(sysfs.root, "enp59s0f0", "5a5a"), "both uplinks again");
  } finally {
    await sysfs.remove();
  }
});

Deno.test("bond: a VF behind a VF-LAG bond has its uplink checks on the bond's block", async () => {
  const sysfs = await twoPorts();
  try {
    const blocks = new SharedBlocks();
    const lookup = bondAwareLookup(new RepresentorResolver(sysfs.root), blocks);
    assert.deepEqual(await lookup.lookup("0000:3b:00.2"), {
      representor: "eth0_0",
      uplink: "enp59s0f0",
      switchId: "5a5a",
    });
    await sysfs.addBond("bond0", 12, ["enp59s0f0", "enp59s0f1"]);
    // Enslaving changes no listing the resolver caches by: the bond is looked at every time.
    assert.deepEqual(await lookup.lookup("0000:3b:00.2"), {
      representor: "eth0_0",
      uplink: blockDevice(BLOCK_INDEX_BASE + 12),
      switchId: "5a5a",
      uplinkMembers: ["enp59s0f0", "enp59s0f1"],
    });
    assert.deepEqual(blocks.members(BLOCK_INDEX_BASE + 12), ["enp59s0f0", "enp59s0f1"]);
  } finally {
    await sysfs.remove();
  }
});
