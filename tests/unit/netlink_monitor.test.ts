/**
 * The rtnetlink monitor's decoding (notifications built as bytes), and,
 * where this machine lets a process open a NETLINK_ROUTE socket (no root
 * needed, nothing is changed), the socket's waiting: it happens off the
 * event loop, one call at a time, bounded by the timeout, and close() ends
 * a wait without leaving an operation pending.
 */
import assert from "node:assert/strict";
import {
  decodeMonitorDatagram,
  decodeMonitorMessage,
  type MonitorEvent,
  RtnetlinkMonitor,
  RTNL,
} from "../../src/drivers/netlink/monitor.ts";
import { NetlinkSocket } from "../../src/drivers/netlink/socket.ts";
import { NetlinkDriver } from "../../src/drivers/netlink/driver.ts";
import { RTM } from "../../src/drivers/netlink/tc_constants.ts";
import { decodeMessages, NetlinkWriter, NL } from "../../src/drivers/netlink/wire.ts";
import type { TcState } from "../../src/tc/model.ts";

const IFLA_MTU = 4;
const RTM_NEWADDR = 20;

/** A link notification: ifinfomsg with the index, then MTU and name attributes. */
function writeLink(writer: NetlinkWriter, type: number, ifindex: number, name?: string): void {
  const at = writer.startMessage(type, 0, 0, RTNL.IFINFOMSG_SIZE);
  writer.setU32(at + 4, ifindex).u32(IFLA_MTU, 1500);
  if (name !== undefined) writer.string(RTNL.IFLA_IFNAME, name);
  writer.endMessage();
}

/** A TC notification: tcmsg with the index, a kind attribute, and the sender's port id. */
function writeTc(writer: NetlinkWriter, type: number, ifindex: number): void {
  const at = writer.startMessage(type, 0, 0, RTNL.TCMSG_SIZE);
  writer.setU32(at + 4, ifindex).string(1, "clsact").endMessage();
}

/** The writer's bytes with `portid` as nlmsg_pid of every message (the kernel's job). */
function withPortId(writer: NetlinkWriter, portid: number): Uint8Array {
  const bytes = writer.finish();
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (const start of writer.messageStarts) view.setUint32(start + 12, portid >>> 0, true);
  return bytes;
}

Deno.test("monitor: link notifications give the index and the name", () => {
  const writer = new NetlinkWriter();
  writeLink(writer, RTNL.RTM_NEWLINK, 7, "rep0");
  writeLink(writer, RTNL.RTM_DELLINK, 7, "rep0");
  writeLink(writer, RTNL.RTM_NEWLINK, 0x7fffffff);
  assert.deepEqual(decodeMonitorDatagram(writer.finish()), [
    { kind: "link-new", ifindex: 7, name: "rep0" },
    { kind: "link-del", ifindex: 7, name: "rep0" },
    { kind: "link-new", ifindex: 0x7fffffff, name: "" },
  ]);
});

Deno.test("monitor: TC notifications give the index, the change and the sender's port id", () => {
  const writer = new NetlinkWriter();
  const types = [
    RTM.NEWQDISC,
    RTM.DELQDISC,
    RTM.NEWTFILTER,
    RTM.DELTFILTER,
    RTM.NEWCHAIN,
    RTM.DELCHAIN,
  ];
  for (const type of types) writeTc(writer, type, 12);
  // An autobound port id is above 2^31: it stays an unsigned number.
  const events = decodeMonitorDatagram(withPortId(writer, 0x9a9b9c9d));
  assert.deepEqual(events, [
    { kind: "tc", ifindex: 12, type: "newqdisc", portid: 0x9a9b9c9d },
    { kind: "tc", ifindex: 12, type: "delqdisc", portid: 0x9a9b9c9d },
    { kind: "tc", ifindex: 12, type: "newtfilter", portid: 0x9a9b9c9d },
    { kind: "tc", ifindex: 12, type: "deltfilter", portid: 0x9a9b9c9d },
    { kind: "tc", ifindex: 12, type: "newchain", portid: 0x9a9b9c9d },
    { kind: "tc", ifindex: 12, type: "delchain", portid: 0x9a9b9c9d },
  ]);
});

Deno.test("monitor: other messages are skipped, in a datagram with events around them", () => {
  const writer = new NetlinkWriter();
  writeLink(writer, RTNL.RTM_NEWLINK, 3, "a");
  writer.startMessage(RTM_NEWADDR, 0, 0, 8);
  writer.endMessage();
  writer.startMessage(NL.NLMSG_DONE, 0, 0, 4);
  writer.endMessage();
  writeTc(writer, RTM.NEWTFILTER, 3);
  const bytes = withPortId(writer, 42);
  const messages = decodeMessages(bytes);
  assert.equal(decodeMonitorMessage(messages[1]), null);
  assert.equal(decodeMonitorMessage(messages[2]), null);
  assert.deepEqual(decodeMonitorDatagram(bytes), [
    { kind: "link-new", ifindex: 3, name: "a" },
    { kind: "tc", ifindex: 3, type: "newtfilter", portid: 42 },
  ]);
});

Deno.test("monitor: a datagram that does not parse is an overflow (its events are lost)", () => {
  const writer = new NetlinkWriter();
  writeLink(writer, RTNL.RTM_NEWLINK, 3, "a");
  writeTc(writer, RTM.NEWQDISC, 3);
  const bytes = writer.finish();
  const overflow: MonitorEvent[] = [{ kind: "overflow" }];
  // Cut inside the second message.
  assert.deepEqual(decodeMonitorDatagram(bytes.subarray(0, bytes.length - 4)), overflow);
  // A TC message too short for its tcmsg.
  const short = new NetlinkWriter();
  short.startMessage(RTM.DELTFILTER, 0, 0, 8);
  short.endMessage();
  assert.deepEqual(decodeMonitorDatagram(short.finish()), overflow);
  // A link attribute whose length runs past the message.
  const broken = new NetlinkWriter();
  writeLink(broken, RTNL.RTM_DELLINK, 3, "abc");
  const brokenBytes = broken.finish();
  brokenBytes[NL.headerSize + RTNL.IFINFOMSG_SIZE] = 0xff;
  assert.deepEqual(decodeMonitorDatagram(brokenBytes), overflow);
});

/** Why netlink sockets cannot be used here, or null when they can. */
function netlinkUnavailable(): string | null {
  try {
    void new NetlinkSocket().close();
    return null;
  } catch (error) {
    return (error as Error).message;
  }
}

const unavailable = netlinkUnavailable();
if (unavailable) console.log(`skipping live netlink socket tests: ${unavailable}`);

Deno.test({
  name: "netlink socket: a wait runs off the event loop and ends at the timeout",
  ignore: unavailable !== null,
  async fn() {
    const socket = new NetlinkSocket({ timeoutMs: 200 });
    let ticks = 0;
    const timer = setInterval(() => ticks++, 10);
    try {
      // Nothing was asked, so nothing comes: the receive timeout ends the wait.
      await assert.rejects(() => socket.receive(), /no answer from the kernel in time/);
    } finally {
      clearInterval(timer);
      await socket.close();
    }
    assert.ok(ticks > 0, "the event loop did not turn during the wait");
  },
});

Deno.test({
  name: "netlink socket: one call at a time; close() ends a wait in flight",
  ignore: unavailable !== null,
  async fn() {
    const socket = new NetlinkSocket({ timeoutMs: null, dumps: false });
    assert.ok(socket.portId > 0);
    const waiting = socket.receive();
    await assert.rejects(() => socket.receive(), /another call is in flight/);
    const closed = socket.close();
    await assert.rejects(() => waiting, /netlink socket is closed/);
    await closed;
    await socket.close();
    await assert.rejects(() => socket.receive(), /netlink socket is closed/);
  },
});

Deno.test({
  name: "monitor: close() ends the iteration; ports are the sockets' own",
  ignore: unavailable !== null,
  async fn() {
    const monitor = new RtnetlinkMonitor();
    const driver = new NetlinkDriver();
    driver.open();
    try {
      assert.ok(monitor.portId > 0);
      assert.notEqual(monitor.portId, driver.portId);
      assert.ok(driver.ownsPort(driver.portId));
      assert.ok(!driver.ownsPort(monitor.portId));
      assert.ok(!driver.ownsPort(0));
      const seen: MonitorEvent[] = [];
      const iteration = (async () => {
        for await (const event of monitor) seen.push(event);
      })();
      // Let the iteration start waiting before it is closed.
      await new Promise((resolve) => setTimeout(resolve, 20));
      await monitor.close();
      await iteration;
      assert.ok(seen.every((e) => e.kind !== "overflow"));
    } finally {
      driver.close();
      await monitor.close();
    }
  },
});

Deno.test({
  name: "netlink driver: exchanges queue on the lock and each gets its own answers",
  ignore: unavailable !== null,
  async fn() {
    const driver = new NetlinkDriver();
    try {
      const reads = await Promise.all([
        driver.read("lo"),
        driver.counters("lo"),
        driver.read("lo"),
        driver.read("nosuchdev0").catch((error: Error) => error.message),
        driver.apply("lo", []),
        driver.read("lo"),
      ]);
      assert.equal(reads[3], "nosuchdev0: device not found");
      for (const i of [0, 2, 5]) assert.deepEqual(reads[i], reads[0]);
      const state = reads[0] as TcState;
      assert.equal(state.device, "lo");
      // Per read a qdisc dump (and a filter dump per hook with clsact); one for the counters.
      assert.equal(driver.stats.calls, 3 * (state.clsact ? 3 : 1) + 1);
    } finally {
      driver.close();
    }
  },
});
