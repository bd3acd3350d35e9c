/**
 * In the VM: the rtnetlink monitor against the real kernel. A veth comes
 * and goes (reported by name and index), a clsact qdisc and filters are
 * added and deleted with `tc` (reported with the link's index and tc's port
 * id, not the driver's) and by the netlink driver (reported with the
 * driver's port id), and the veth deleted and re-created under the same
 * name is reported with its new index.
 */
import assert from "node:assert/strict";
import {
  type LinkEvent,
  type MonitorEvent,
  RtnetlinkMonitor,
  type TcChange,
  type TcEvent,
} from "../../../src/drivers/netlink/monitor.ts";
import { NetlinkDriver } from "../../../src/drivers/netlink/driver.ts";
import { interfaceIndex } from "../../../src/drivers/netlink/socket.ts";
import type { TcFilter } from "../../../src/tc/model.ts";
import { run, tryRun } from "../scenario/shell.ts";

const DEVICE = "mon0";
const PEER = "mon1";
/** How long to wait for one notification before failing (a guard against a hang). */
const PATIENCE_MS = 20_000;

/** Records everything the monitor reports, and waits for what a step should bring. */
class Recorder {
  readonly events: MonitorEvent[] = [];
  readonly done: Promise<void>;
  #arrived: (() => void) | null = null;

  constructor(monitor: RtnetlinkMonitor) {
    this.done = (async () => {
      for await (const event of monitor) {
        this.events.push(event);
        this.#arrived?.();
      }
    })();
  }

  /** Where the events of the next step start. */
  mark(): number {
    return this.events.length;
  }

  /** The first event since `mark` that matches, waiting for it to come. */
  async find<T extends MonitorEvent>(
    mark: number,
    what: string,
    match: (event: MonitorEvent) => event is T,
  ): Promise<T> {
    const deadline = Date.now() + PATIENCE_MS;
    for (;;) {
      const found = this.events.slice(mark).find(match);
      if (found) return found;
      const left = deadline - Date.now();
      if (left <= 0) {
        const seen = this.events.slice(mark).map((e) => JSON.stringify(e)).join("\n  ");
        throw new Error(`no ${what} reported; since the step began:\n  ${seen || "nothing"}`);
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.#arrived = resolve;
        timer = setTimeout(resolve, left);
      });
      clearTimeout(timer);
      this.#arrived = null;
    }
  }
}

const isLink =
  (kind: LinkEvent["kind"], name: string) => (event: MonitorEvent): event is LinkEvent =>
    event.kind === kind && event.name === name;

const isTc = (type: TcChange, ifindex: number) => (event: MonitorEvent): event is TcEvent =>
  event.kind === "tc" && event.type === type && event.ifindex === ifindex;

const driverFilter: TcFilter = {
  hook: "ingress",
  chain: 0,
  prio: 9,
  handle: 9,
  protocol: "ip",
  match: {},
  actions: [{ kind: "drop" }],
};

Deno.test("monitor: links and TC changes are reported, with the port id of who made them", async () => {
  const monitor = new RtnetlinkMonitor();
  const driver = new NetlinkDriver();
  driver.open();
  const recorder = new Recorder(monitor);
  /** A change by `tc`: the link's index, a port id that is neither 0 nor the driver's. */
  const byTc = (event: TcEvent, ifindex: number) => {
    assert.equal(event.ifindex, ifindex);
    assert.notEqual(event.portid, 0, JSON.stringify(event));
    assert.notEqual(event.portid, driver.portId, JSON.stringify(event));
    assert.ok(!driver.ownsPort(event.portid), JSON.stringify(event));
  };
  try {
    let mark = recorder.mark();
    await run(["ip", "link", "add", DEVICE, "type", "veth", "peer", "name", PEER]);
    const ifindex = interfaceIndex(DEVICE);
    const created = await recorder.find(mark, `link-new ${DEVICE}`, isLink("link-new", DEVICE));
    assert.equal(created.ifindex, ifindex);
    const peer = await recorder.find(mark, `link-new ${PEER}`, isLink("link-new", PEER));
    assert.equal(peer.ifindex, interfaceIndex(PEER));

    mark = recorder.mark();
    await run(["tc", "qdisc", "add", "dev", DEVICE, "clsact"]);
    byTc(await recorder.find(mark, "newqdisc by tc", isTc("newqdisc", ifindex)), ifindex);

    mark = recorder.mark();
    await run([
      "tc",
      "filter",
      "add",
      "dev",
      DEVICE,
      "ingress",
      "protocol",
      "ip",
      "prio",
      "1",
      "handle",
      "1",
      "flower",
      "action",
      "drop",
    ]);
    byTc(await recorder.find(mark, "newtfilter by tc", isTc("newtfilter", ifindex)), ifindex);

    // The driver's own change carries its socket's port id.
    mark = recorder.mark();
    await driver.apply(DEVICE, [{ op: "filter-add", filter: driverFilter }]);
    const own = await recorder.find(mark, "newtfilter by the driver", isTc("newtfilter", ifindex));
    assert.equal(own.portid, driver.portId);
    assert.ok(driver.ownsPort(own.portid));

    mark = recorder.mark();
    await run(["tc", "filter", "del", "dev", DEVICE, "ingress", "prio", "1"]);
    byTc(await recorder.find(mark, "deltfilter by tc", isTc("deltfilter", ifindex)), ifindex);

    mark = recorder.mark();
    await run(["tc", "qdisc", "del", "dev", DEVICE, "clsact"]);
    byTc(await recorder.find(mark, "delqdisc by tc", isTc("delqdisc", ifindex)), ifindex);

    mark = recorder.mark();
    await run(["ip", "link", "del", DEVICE]);
    const deleted = await recorder.find(mark, `link-del ${DEVICE}`, isLink("link-del", DEVICE));
    assert.equal(deleted.ifindex, ifindex);
    await recorder.find(mark, `link-del ${PEER}`, isLink("link-del", PEER));

    // The same name again: a new link, with a new index.
    mark = recorder.mark();
    await run(["ip", "link", "add", DEVICE, "type", "veth", "peer", "name", PEER]);
    const again = await recorder.find(mark, `link-new ${DEVICE}`, isLink("link-new", DEVICE));
    assert.equal(again.ifindex, interfaceIndex(DEVICE));
    assert.notEqual(again.ifindex, ifindex, "a re-created link has a new index");

    assert.deepEqual(recorder.events.filter((e) => e.kind === "overflow"), []);
    const senders = new Set(
      recorder.events.filter((e): e is TcEvent => e.kind === "tc").map((e) => e.portid),
    );
    console.log(
      `monitor: ${recorder.events.length} events; driver port ${driver.portId}; ` +
        `TC changes from ports ${[...senders].join(", ")}`,
    );
  } finally {
    await tryRun(["ip", "link", "del", DEVICE]);
    driver.close();
    await monitor.close();
    await recorder.done;
  }
});
