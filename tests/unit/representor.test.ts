import assert from "node:assert/strict";
import {
  listRepresentors,
  RepresentorError,
  RepresentorResolver,
  type RepresentorStep,
} from "../../src/sriov/representor.ts";
import { FakeSysfs } from "../support/fake_sysfs.ts";

const SW_A = "1c34da0300e2a4b8";
const SW_B = "b8cef603000a1b2c";
const PF = "0000:3b:00.0";
const VF0 = "0000:3b:00.2";
const VF1 = "0000:3b:00.3";
const VF2 = "0000:3b:00.4";

/** A test with a fresh fake sysfs tree, removed afterwards. */
function sysfsTest(name: string, fn: (tree: FakeSysfs) => Promise<void>): void {
  Deno.test(`representor: ${name}`, async () => {
    const tree = await FakeSysfs.create();
    try {
      await fn(tree);
    } finally {
      await tree.remove();
    }
  });
}

async function assertFails(
  promise: Promise<unknown>,
  step: RepresentorStep,
  path: string,
  message: string,
): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof RepresentorError, `not a RepresentorError: ${error}`);
    assert.equal(error.message, message);
    assert.equal(error.step, step);
    assert.equal(error.path, path);
    return true;
  });
}

/** One ConnectX-like PF in switchdev mode with three VFs and their representors. */
async function onePf(tree: FakeSysfs, reps = ["pf0vf0", "pf0vf1", "pf0vf2"]): Promise<void> {
  await tree.addPf(PF, [VF0, VF1, VF2]);
  await tree.addNetdevs(
    { name: "lo" },
    { name: "eth0" },
    { name: "ens1f0np0", pci: PF, portName: "p0", switchId: SW_A },
    { name: "ens1f0v0", pci: VF0 },
    ...reps.map((portName, i) => ({
      name: `ens1f0r${i}`,
      pci: PF,
      portName,
      switchId: SW_A,
    })),
  );
}

sysfsTest("one PF: each VF resolves to its pf0vfN representor", async (tree) => {
  await onePf(tree);
  const resolver = new RepresentorResolver(tree.root);
  assert.equal(await resolver.resolve(VF0), "ens1f0r0");
  assert.equal(await resolver.resolve(VF1), "ens1f0r1");
  assert.equal(await resolver.resolve(VF2), "ens1f0r2");
  // Upper-case hex is accepted; concurrent lookups share one walk.
  const [a, b] = await Promise.all([resolver.resolve("0000:3B:00.3"), resolver.resolve(VF1)]);
  assert.equal(a, "ens1f0r1");
  assert.equal(b, "ens1f0r1");
  assert.deepEqual(await resolver.lookup(VF2), {
    vf: VF2,
    pf: PF,
    vfIndex: 2,
    uplink: "ens1f0np0",
    pfNumber: 0,
    switchId: SW_A,
    representor: "ens1f0r2",
    portName: "pf0vf2",
  });
});

sysfsTest("VF index comes from the PF's virtfn link, not the address order", async (tree) => {
  // virtfn0 -> 00.4, virtfn1 -> 00.2: the index follows the links.
  await tree.addPf(PF, [VF2, VF0]);
  await tree.addNetdevs(
    { name: "ens1f0np0", pci: PF, portName: "p0", switchId: SW_A },
    { name: "rep-a", pci: PF, portName: "pf0vf0", switchId: SW_A },
    { name: "rep-b", pci: PF, portName: "pf0vf1", switchId: SW_A },
  );
  const resolver = new RepresentorResolver(`${tree.root}/`);
  assert.equal(await resolver.resolve(VF2), "rep-a");
  assert.equal(await resolver.resolve(VF0), "rep-b");
});

sysfsTest("class/net entries may be plain directories", async (tree) => {
  await tree.addPf(PF, [VF0]);
  await tree.addNetdevs(
    { name: "ens1f0np0", pci: PF, portName: "p0", switchId: SW_A },
    { name: "plainrep", portName: "pf0vf0", switchId: SW_A.toUpperCase(), plainClassDir: true },
  );
  assert.equal(await new RepresentorResolver(tree.root).resolve(VF0), "plainrep");
});

sysfsTest("two PFs on one switch: pf0vfN and pf1vfN are told apart", async (tree) => {
  const pf1 = "0000:3b:00.1";
  const pf1vf0 = "0000:3b:08.2";
  const pf1vf1 = "0000:3b:08.3";
  await tree.addPf(PF, [VF0, VF1]);
  await tree.addPf(pf1, [pf1vf0, pf1vf1]);
  await tree.addNetdevs(
    { name: "ens1f0np0", pci: PF, portName: "p0", switchId: SW_A },
    { name: "ens1f1np1", pci: pf1, portName: "p1", switchId: SW_A },
    // With a shared eswitch all representors hang off the first PF.
    { name: "ens1f0r0", pci: PF, portName: "pf0vf0", switchId: SW_A },
    { name: "ens1f0r1", pci: PF, portName: "pf0vf1", switchId: SW_A },
    { name: "ens1f1r0", pci: PF, portName: "pf1vf0", switchId: SW_A },
    { name: "ens1f1r1", pci: PF, portName: "pf1vf1", switchId: SW_A },
  );
  const resolver = new RepresentorResolver(tree.root);
  assert.equal(await resolver.resolve(VF0), "ens1f0r0");
  assert.equal(await resolver.resolve(VF1), "ens1f0r1");
  assert.equal(await resolver.resolve(pf1vf0), "ens1f1r0");
  assert.equal(await resolver.resolve(pf1vf1), "ens1f1r1");
});

sysfsTest("two NICs: the same pf0vf0 name on each switch, each VF gets its own", async (tree) => {
  const pfB = "0000:af:00.0";
  const vfB = "0000:af:00.2";
  await tree.addPf(PF, [VF0]);
  await tree.addPf(pfB, [vfB]);
  await tree.addNetdevs(
    { name: "enp59s0f0np0", pci: PF, portName: "p0", switchId: SW_A },
    { name: "enp175s0f0np0", pci: pfB, portName: "p0", switchId: SW_B },
    { name: "enp59s0f0r0", pci: PF, portName: "pf0vf0", switchId: SW_A },
    { name: "enp175s0f0r0", pci: pfB, portName: "pf0vf0", switchId: SW_B },
  );
  const resolver = new RepresentorResolver(tree.root);
  assert.equal(await resolver.resolve(VF0), "enp59s0f0r0");
  assert.equal(await resolver.resolve(vfB), "enp175s0f0r0");
});

sysfsTest("legacy vf<N> port names are accepted with one PF on the switch", async (tree) => {
  await onePf(tree, ["vf0", "vf1", "vf2"]);
  const resolver = new RepresentorResolver(tree.root);
  assert.equal(await resolver.resolve(VF0), "ens1f0r0");
  assert.equal(await resolver.resolve(VF2), "ens1f0r2");
  assert.equal((await resolver.lookup(VF1)).portName, "vf1");
});

sysfsTest("legacy vf<N> port names are ambiguous with two PFs on the switch", async (tree) => {
  const pf1 = "0000:3b:00.1";
  await tree.addPf(PF, [VF0]);
  await tree.addPf(pf1, ["0000:3b:08.2"]);
  await tree.addNetdevs(
    { name: "ens1f0np0", pci: PF, portName: "p0", switchId: SW_A },
    { name: "ens1f1np1", pci: pf1, portName: "p1", switchId: SW_A },
    { name: "eth5", portName: "vf0", switchId: SW_A },
  );
  await assertFails(
    new RepresentorResolver(tree.root).resolve(VF0),
    "find representor",
    `${tree.root}/class/net`,
    `0000:3b:00.2: step "find representor": legacy phys_port_name vf0 of eth5 in ` +
      `${tree.root}/class/net is ambiguous: 2 PFs (p0, p1) share phys_switch_id ` +
      `1c34da0300e2a4b8; want pf0vf0`,
  );
});

sysfsTest("missing representor names the switch id and the port names tried", async (tree) => {
  await onePf(tree, ["pf0vf0", "pf0vf1"]);
  await assertFails(
    new RepresentorResolver(tree.root).resolve(VF2),
    "find representor",
    `${tree.root}/class/net`,
    `0000:3b:00.4: step "find representor": no netdev in ${tree.root}/class/net has ` +
      `phys_switch_id 1c34da0300e2a4b8 and phys_port_name pf0vf2 or vf2`,
  );
});

sysfsTest("a representor on another switch does not count", async (tree) => {
  await tree.addPf(PF, [VF0]);
  await tree.addNetdevs(
    { name: "ens1f0np0", pci: PF, portName: "p0", switchId: SW_A },
    { name: "otherrep", portName: "pf0vf0", switchId: SW_B },
  );
  await assertFails(
    new RepresentorResolver(tree.root).resolve(VF0),
    "find representor",
    `${tree.root}/class/net`,
    `0000:3b:00.2: step "find representor": no netdev in ${tree.root}/class/net has ` +
      `phys_switch_id 1c34da0300e2a4b8 and phys_port_name pf0vf0 or vf0`,
  );
});

sysfsTest("VF whose PF is not in switchdev mode (no phys_switch_id)", async (tree) => {
  await tree.addPf(PF, [VF0]);
  await tree.addNetdevs({ name: "ens1f0np0", pci: PF, portName: "p0" });
  const path = `${tree.root}/bus/pci/devices/${PF}/net/ens1f0np0/phys_switch_id`;
  await assertFails(
    new RepresentorResolver(tree.root).resolve(VF0),
    "read switch id",
    path,
    `0000:3b:00.2: step "read switch id": PF 0000:3b:00.0 is not in switchdev mode: ` +
      `cannot read ${path}: No such file or directory ` +
      `(set it with: devlink dev eswitch set pci/0000:3b:00.0 mode switchdev)`,
  );
});

sysfsTest("VF whose PF is not in switchdev mode (empty ids, no port name)", async (tree) => {
  await tree.addPf(PF, [VF0]);
  await tree.addNetdevs({ name: "ens1f0", pci: PF, switchId: "" });
  const path = `${tree.root}/bus/pci/devices/${PF}/net/ens1f0/phys_switch_id`;
  await assertFails(
    new RepresentorResolver(tree.root).resolve(VF0),
    "read switch id",
    path,
    `0000:3b:00.2: step "read switch id": PF 0000:3b:00.0 is not in switchdev mode: ` +
      `${path} is empty ` +
      `(set it with: devlink dev eswitch set pci/0000:3b:00.0 mode switchdev)`,
  );
});

Deno.test("representor: invalid PCI addresses are rejected before touching sysfs", async () => {
  const resolver = new RepresentorResolver("/nonexistent-sysfs");
  await assertFails(
    resolver.resolve("0000:3b:00.8"),
    "validate address",
    "",
    `"0000:3b:00.8": step "validate address": invalid PCI address "0000:3b:00.8": ` +
      `want DDDD:BB:DD.F`,
  );
  await assertFails(
    resolver.resolve("../../../etc"),
    "validate address",
    "",
    `"../../../etc": step "validate address": invalid PCI address "../../../etc": ` +
      `want DDDD:BB:DD.F`,
  );
});

sysfsTest("a PCI device without physfn is not a VF; an absent device says so", async (tree) => {
  await onePf(tree);
  const resolver = new RepresentorResolver(tree.root);
  const physfn = `${tree.root}/bus/pci/devices/${PF}/physfn`;
  await assertFails(
    resolver.resolve(PF),
    "find PF",
    physfn,
    `0000:3b:00.0: step "find PF": cannot read ${physfn}: No such file or directory ` +
      `(not an SR-IOV VF)`,
  );
  const absent = `${tree.root}/bus/pci/devices/0000:3b:01.0`;
  await assertFails(
    resolver.resolve("0000:3b:01.0"),
    "find PF",
    absent,
    `0000:3b:01.0: step "find PF": cannot read ${absent}: No such file or directory ` +
      `(no such PCI device)`,
  );
});

sysfsTest("physfn must point at a PCI device; a virtfn link must point back", async (tree) => {
  await onePf(tree);
  await tree.removePath(`devices/pci0000:00/${PF}/virtfn1`);
  const resolver = new RepresentorResolver(tree.root);
  const pfDir = `${tree.root}/bus/pci/devices/${PF}`;
  await assertFails(
    resolver.resolve(VF1),
    "find VF index",
    pfDir,
    `0000:3b:00.3: step "find VF index": no virtfn<N> link in ${pfDir} points to 0000:3b:00.3`,
  );
  await tree.removePath(`devices/pci0000:00/${VF2}/physfn`);
  await Deno.symlink("../../etc", `${tree.root}/devices/pci0000:00/${VF2}/physfn`);
  const physfn = `${tree.root}/bus/pci/devices/${VF2}/physfn`;
  await assertFails(
    resolver.resolve(VF2),
    "find PF",
    physfn,
    `0000:3b:00.4: step "find PF": ${physfn} points to "etc", not a PCI device`,
  );
});

sysfsTest("PF without netdevs or without a p<P> uplink", async (tree) => {
  await tree.addPf(PF, [VF0]);
  const resolver = new RepresentorResolver(tree.root);
  const net = `${tree.root}/bus/pci/devices/${PF}/net`;
  await assertFails(
    resolver.resolve(VF0),
    "find uplink",
    net,
    `0000:3b:00.2: step "find uplink": cannot read ${net}: No such file or directory`,
  );
  await tree.addNetdevs({ name: "ens1f0", pci: PF, portName: "pf0", switchId: SW_A });
  await assertFails(
    resolver.resolve(VF0),
    "find uplink",
    net,
    `0000:3b:00.2: step "find uplink": no netdev in ${net} has a phys_port_name p<P>`,
  );
});

sysfsTest("a representor name that could not be a netdev is refused", async (tree) => {
  await tree.addPf(PF, [VF0]);
  await tree.addNetdevs(
    { name: "ens1f0np0", pci: PF, portName: "p0", switchId: SW_A },
    { name: "rep$0", portName: "pf0vf0", switchId: SW_A, plainClassDir: true },
  );
  const path = `${tree.root}/class/net/rep$0`;
  await assertFails(
    new RepresentorResolver(tree.root).resolve(VF0),
    "find representor",
    path,
    `0000:3b:00.2: step "find representor": ${path} is not usable: ` +
      `invalid interface name "rep$0"`,
  );
});

sysfsTest("cache: a rename is seen once the PF's netdev listing changes", async (tree) => {
  await onePf(tree);
  const resolver = new RepresentorResolver(tree.root);
  assert.equal(await resolver.resolve(VF0), "ens1f0r0");
  assert.equal(await resolver.resolve(VF1), "ens1f0r1");
  await tree.renameNetdev("ens1f0r1", "pod7rep");
  assert.equal(await resolver.resolve(VF1), "pod7rep");
  assert.equal(await resolver.resolve(VF0), "ens1f0r0");
});

sysfsTest("cache: a rename outside the PF's net/ is seen through class/net", async (tree) => {
  await tree.addPf(PF, [VF0]);
  await tree.addNetdevs(
    { name: "ens1f0np0", pci: PF, portName: "p0", switchId: SW_A },
    { name: "vrep0", portName: "pf0vf0", switchId: SW_A },
  );
  const resolver = new RepresentorResolver(tree.root);
  assert.equal(await resolver.resolve(VF0), "vrep0");
  await tree.renameNetdev("vrep0", "vrep0new");
  assert.equal(await resolver.resolve(VF0), "vrep0new");
});

sysfsTest("cache: answers are reused until invalidate()", async (tree) => {
  await onePf(tree);
  const resolver = new RepresentorResolver(tree.root);
  assert.equal(await resolver.resolve(VF0), "ens1f0r0");
  // Swap port names in place: no listing changes, so the cached answer stays.
  await tree.setAttribute("ens1f0r0", "phys_port_name", "pf0vf1");
  await tree.setAttribute("ens1f0r1", "phys_port_name", "pf0vf0");
  assert.equal(await resolver.resolve(VF0), "ens1f0r0");
  resolver.invalidate();
  assert.equal(await resolver.resolve(VF0), "ens1f0r1");
  assert.equal(await resolver.resolve(VF1), "ens1f0r0");
});

sysfsTest("errors are not cached", async (tree) => {
  await tree.addPf(PF, [VF0]);
  await tree.addNetdevs({ name: "ens1f0np0", pci: PF, portName: "p0", switchId: SW_A });
  const resolver = new RepresentorResolver(tree.root);
  await assert.rejects(resolver.resolve(VF0), RepresentorError);
  await tree.addNetdevs({ name: "ens1f0r0", pci: PF, portName: "pf0vf0", switchId: SW_A });
  assert.equal(await resolver.resolve(VF0), "ens1f0r0");
});

Deno.test("listRepresentors: every VF and uplink representor in class/net, nothing else", async () => {
  const tree = await FakeSysfs.create();
  try {
    await tree.addPf("0000:3b:00.0", ["0000:3b:00.2"]);
    await tree.addNetdevs(
      { name: "ens1f0np0", pci: "0000:3b:00.0", portName: "p0", switchId: "aa" },
      { name: "eth5", portName: "pf0vf0", switchId: "aa" },
      { name: "eth6", portName: "vf1", switchId: "aa" },
      { name: "lo", portName: null, switchId: null },
    );
    assert.deepEqual(await listRepresentors(tree.root), ["ens1f0np0", "eth5", "eth6"]);
  } finally {
    await tree.remove();
  }
});
