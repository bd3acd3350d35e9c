/**
 * Shared blocks (VF-LAG uplinks): the tc text and netlink bytes that name a
 * block, the plan for a block with unbound uplinks and for an uplink that
 * left its bond, binding order over a kernel-like fake, drift, and the
 * kernel notifications that concern a block.
 */
import assert from "node:assert/strict";
import { DriftWatch, type Repairer } from "../../src/agent/drift_watch.ts";
import { SharedBlockDriver } from "../../src/drivers/shared_block.ts";
import { decodeMonitorMessage } from "../../src/drivers/netlink/monitor.ts";
import { RTM, TCA } from "../../src/drivers/netlink/tc_constants.ts";
import { decodeFilter, decodeQdisc } from "../../src/drivers/netlink/tc_decode.ts";
import { commandRequest } from "../../src/drivers/netlink/tc_encode.ts";
import { decodeAttrs, NetlinkWriter, NL } from "../../src/drivers/netlink/wire.ts";
import { BLOCK_INDEX_BASE, blockDevice, blockIndexOf, SharedBlocks } from "../../src/tc/blocks.ts";
import { findDrift } from "../../src/tc/drift.ts";
import { DeviceMissing, type TcDriver } from "../../src/tc/driver.ts";
import {
  type FilterCounter,
  OWNER_COOKIE,
  type TcCommand,
  type TcFilter,
  type TcState,
} from "../../src/tc/model.ts";
import { planUpdate } from "../../src/tc/plan.ts";
import { batchText, UnsafeTcInput } from "../../src/tc/serialize.ts";

const BLOCK = BLOCK_INDEX_BASE + 12;
const DEVICE = blockDevice(BLOCK);

function ours(prio: number, chain = 0): TcFilter {
  return {
    hook: "ingress",
    chain,
    prio,
    handle: 1,
    protocol: "ip",
    match: { ipProto: "tcp" },
    actions: [{ kind: "pass" }],
    cookie: OWNER_COOKIE,
  };
}

Deno.test("blocks: block:N names a block, never a netdev; out-of-range indexes are refused", () => {
  assert.equal(blockIndexOf(DEVICE), BLOCK);
  assert.equal(blockIndexOf("p0"), null);
  assert.equal(blockIndexOf("block:0"), null);
  assert.equal(blockIndexOf("block:4294967296"), null);
  assert.equal(blockIndexOf("block:12 "), null);
  assert.throws(() => blockDevice(0), RangeError);
  assert.throws(() => new SharedBlocks().set(BLOCK, ["p0;reboot"]), RangeError);
});

Deno.test("tc text: filters and chains of a block are addressed by its index; qdiscs only on uplinks", () => {
  const text = batchText(DEVICE, [
    { op: "filter-add", filter: ours(5) },
    { op: "filter-del", filter: ours(5) },
    { op: "chain-del", hook: "ingress", chain: 1000001 },
  ]);
  assert.deepEqual(text.trim().split("\n").map((l) => l.split(" ").slice(0, 4).join(" ")), [
    `filter add block ${BLOCK}`,
    `filter del block ${BLOCK}`,
    `chain del block ${BLOCK}`,
  ]);
  assert.equal(
    batchText("p0", [{ op: "qdisc-add", block: BLOCK }]),
    `qdisc add dev p0 ingress_block ${BLOCK} clsact\n`,
  );
  assert.throws(() => batchText(DEVICE, [{ op: "qdisc-add" }]), UnsafeTcInput);
});

Deno.test("netlink: a block's requests carry the magic ifindex and the index as parent", () => {
  const request = commandRequest({ block: BLOCK }, { op: "filter-add", filter: ours(5) });
  const header = new DataView(request.body.buffer, request.body.byteOffset, 20);
  assert.equal(header.getUint32(4, true), 0xffffffff);
  assert.equal(header.getUint32(12, true), BLOCK);
  const bind = commandRequest(7, { op: "qdisc-add", block: BLOCK });
  const attrs = decodeAttrs(bind.body.subarray(20));
  const index = attrs.find((a) => a.type === TCA.INGRESS_BLOCK)!;
  assert.equal(new DataView(index.value.buffer, index.value.byteOffset).getUint32(0, true), BLOCK);
  assert.throws(() => commandRequest({ block: BLOCK }, { op: "qdisc-del" }), UnsafeTcInput);
});

/** A message of `type` whose tcmsg is `ifindex`/`parent`, with the attributes of `request`. */
function echoed(type: number, request: Uint8Array, ifindex: number, parent: number) {
  const w = new NetlinkWriter();
  const at = w.startMessage(type, NL.F_MULTI, 1, 20);
  const view = new DataView(request.buffer, request.byteOffset, 20);
  w.setU32(at + 4, ifindex).setU32(at + 8, view.getUint32(8, true)).setU32(at + 12, parent)
    .setU32(at + 16, view.getUint32(16, true));
  for (const a of decodeAttrs(request.subarray(20))) w.bytes(a.type, a.value);
  w.endMessage();
  const bytes = w.finish();
  return { type, flags: NL.F_MULTI, seq: 1, pid: 0, payload: bytes.subarray(16) };
}

Deno.test("netlink: a dumped qdisc names its block; a block's dumped filter is an ingress filter", () => {
  const bind = commandRequest(7, { op: "qdisc-add", block: BLOCK });
  assert.deepEqual(decodeQdisc(echoed(RTM.NEWQDISC, bind.body, 7, 0xfffffff1)), {
    ifindex: 7,
    kind: "clsact",
    ingressBlock: BLOCK,
  });
  const add = commandRequest({ block: BLOCK }, { op: "filter-add", filter: ours(5) });
  const decoded = decodeFilter(echoed(RTM.NEWTFILTER, add.body, -1, BLOCK));
  assert.ok(decoded && "filter" in decoded);
  assert.deepEqual(decoded.filter, ours(5));
});

Deno.test("monitor: a change to a shared block names the block", () => {
  const add = commandRequest({ block: BLOCK }, { op: "filter-add", filter: ours(5) });
  const event = decodeMonitorMessage(echoed(RTM.NEWTFILTER, add.body, -1, BLOCK));
  assert.deepEqual(event, { kind: "tc", ifindex: -1, type: "newtfilter", portid: 0, block: BLOCK });
});

function program(filters: TcFilter[]) {
  return () => ({ device: DEVICE, enabled: true, zone: 1, generation: 1, filters });
}

Deno.test("plan: a block with an unbound uplink binds it first and changes nothing else", () => {
  const filters = [ours(5)];
  const current: TcState = {
    device: DEVICE,
    clsact: true,
    foreignQdiscs: [],
    filters,
    unbound: ["p1"],
  };
  assert.deepEqual(planUpdate(current, program(filters)).commands, [{ op: "qdisc-add" }]);
  assert.deepEqual(findDrift(current, program(filters)())?.reason, "qdisc_missing");
  assert.equal(findDrift({ ...current, unbound: [] }, program(filters)()), null);
});

Deno.test("plan: an uplink that left its bond gets a clsact of its own; another tool's block is left", () => {
  const filters = [ours(5, 1000001), ours(6)];
  const bound: TcState = {
    device: "p0",
    clsact: true,
    foreignQdiscs: [],
    filters: [],
    ingressBlock: BLOCK,
  };
  const desired = () => ({ device: "p0", enabled: true, zone: 1, generation: 1, filters });
  assert.deepEqual(planUpdate(bound, desired).commands.map((c) => c.op), [
    "qdisc-del",
    "qdisc-add",
    "filter-add",
    "filter-add",
  ]);
  const off = () => ({ device: "p0", enabled: false, zone: 0, generation: 1, filters: [] });
  assert.deepEqual(planUpdate(bound, off).commands, [], "a block's uplink is never cleaned alone");
  assert.throws(
    () => planUpdate({ ...bound, ingressBlock: 22 }, desired),
    /not one of the agent's/,
  );
});

/** Uplinks and blocks as the kernel keeps them, behind the driver interface. */
class BlockKernel implements TcDriver {
  readonly name = "kernel";
  readonly stats = { calls: 0 };
  /** Uplink → its clsact: its own filters, or the block it is bound to (absent: none). */
  readonly uplinks = new Map<string, { own: TcFilter[] } | { block: number } | null>();
  readonly blocks = new Map<number, TcFilter[]>();
  readonly log: string[] = [];

  read(device: string): Promise<TcState> {
    const index = blockIndexOf(device);
    if (index !== null) {
      const filters = this.blocks.get(index) ?? [];
      return Promise.resolve({ device, clsact: true, foreignQdiscs: [], filters });
    }
    if (!this.uplinks.has(device)) return Promise.reject(new DeviceMissing(device, "gone"));
    const q = this.uplinks.get(device);
    const state: TcState = { device, clsact: !!q, foreignQdiscs: [], filters: [] };
    if (q && "block" in q) state.ingressBlock = q.block;
    if (q && "own" in q) state.filters = q.own;
    return Promise.resolve(state);
  }

  counters(): Promise<Map<string, FilterCounter>> {
    return Promise.resolve(new Map<string, FilterCounter>());
  }

  apply(device: string, commands: TcCommand[]): Promise<void> {
    for (const c of commands) {
      this.log.push(`${device} ${c.op}${c.op === "qdisc-add" && c.block ? " block" : ""}`);
      const index = blockIndexOf(device);
      if (c.op === "qdisc-add") {
        if (this.uplinks.get(device)) throw new Error(`${device}: exists`);
        this.uplinks.set(device, c.block ? { block: c.block } : { own: [] });
        if (c.block && !this.blocks.has(c.block)) this.blocks.set(c.block, []);
      } else if (c.op === "qdisc-del") {
        this.uplinks.set(device, null);
        // A block goes with its last binding.
        for (const b of this.blocks.keys()) {
          if (![...this.uplinks.values()].some((q) => q && "block" in q && q.block === b)) {
            this.blocks.delete(b);
          }
        }
      } else if (c.op === "filter-add" && index !== null) {
        if (!this.blocks.has(index)) throw new Error(`block ${index} not found`);
        this.blocks.get(index)!.push(c.filter);
      }
    }
    return Promise.resolve();
  }
}

Deno.test("bind: free uplinks first, the filters, then an uplink with a program of its own", async () => {
  const kernel = new BlockKernel();
  kernel.uplinks.set("p0", { own: [ours(9)] });
  kernel.uplinks.set("p1", null);
  const blocks = new SharedBlocks();
  // p2 is gone (a re-created uplink not back yet): not counted as unbound, nothing to bind.
  blocks.set(BLOCK, ["p1", "p0", "p2"]);
  const driver = new SharedBlockDriver(kernel, blocks);
  const before = await driver.read(DEVICE);
  assert.equal(before.clsact, false);
  assert.deepEqual(before.unbound, ["p0", "p1"]);
  await driver.apply(DEVICE, [{ op: "qdisc-add" }, { op: "filter-add", filter: ours(5) }]);
  assert.deepEqual(kernel.log, [
    "p1 qdisc-add block",
    `${DEVICE} filter-add`,
    "p0 qdisc-del",
    "p0 qdisc-add block",
  ]);
  const after = await driver.read(DEVICE);
  assert.equal(after.clsact, true);
  assert.deepEqual(after.unbound, []);
  assert.deepEqual(after.filters, [ours(5)]);
  // Unbinding deletes every bound uplink's clsact; the block goes with the last.
  await driver.apply(DEVICE, [{ op: "qdisc-del" }]);
  assert.deepEqual([...kernel.uplinks.values()], [null, null]);
  assert.equal(kernel.blocks.size, 0);
});

Deno.test("bind: an uplink carrying another tool's filters is left alone, with an error naming it", async () => {
  const kernel = new BlockKernel();
  kernel.uplinks.set("p0", { own: [{ ...ours(9), cookie: undefined }] });
  kernel.uplinks.set("p1", null);
  const blocks = new SharedBlocks();
  blocks.set(BLOCK, ["p0", "p1"]);
  const driver = new SharedBlockDriver(kernel, blocks);
  await assert.rejects(driver.apply(DEVICE, [{ op: "qdisc-add" }]), /p0: carries filters/);
  assert.deepEqual(kernel.uplinks.get("p0"), { own: [{ ...ours(9), cookie: undefined }] });
});

Deno.test("drift watch: a change to a block, or to the qdisc of an uplink bound to it, repairs the block", async () => {
  const calls: string[][] = [];
  const sink: Repairer = {
    devices: () => new Set([DEVICE, "rep1"]),
    repair(devices) {
      calls.push(devices === "all" ? ["all"] : [...devices]);
      return Promise.resolve();
    },
  };
  const indexes = new Map([["rep1", 11], ["p0", 21], ["p1", 22]]);
  const watch = new DriftWatch(sink, {
    indexOf: (name) => indexes.get(name) ?? 0,
    blockMembers: (index) => index === BLOCK ? ["p0", "p1"] : [],
    settleMs: 5,
  });
  const settle = () => new Promise((resolve) => setTimeout(resolve, 30));
  watch.handle({ kind: "tc", ifindex: -1, portid: 9, block: BLOCK });
  await settle();
  watch.handle({ kind: "tc", ifindex: 22, portid: 9 });
  await settle();
  watch.handle({ kind: "tc", ifindex: -1, portid: 9, block: 77 });
  await settle();
  watch.handle({ kind: "link-new", ifindex: 30, name: "p1" });
  await settle();
  assert.deepEqual(calls, [[DEVICE], [DEVICE], [DEVICE]]);
  await watch.stop();
});
