/**
 * An rtnetlink monitor: a NETLINK_ROUTE socket of its own, subscribed to
 * link and TC notifications, read as an async iterator of events. Links
 * coming and going (a representor deleted and re-created under the same
 * name gets a new ifindex) and TC objects changed by anyone: the port id on
 * a TC event tells the agent's own changes (`NetlinkDriver.ownsPort` in
 * driver.ts) from other tools'. When the kernel drops notifications (the socket's
 * buffer overflowed) the iterator says so, and the caller reads everything
 * again.
 */
import { NetlinkSocket, NetlinkSocketError } from "./socket.ts";
import { RTM, TCM_IFINDEX_MAGIC_BLOCK } from "./tc_constants.ts";
import { attr, dataView, decodeAttrs, decodeMessages, NetlinkFormatError } from "./wire.ts";
import type { NetlinkMessage } from "./wire.ts";

/**
 * Link notification numbers and groups the monitor uses (linux/rtnetlink.h,
 * linux/if_link.h); the TC message types are tc_constants.ts's RTM.
 */
export const RTNL = {
  RTM_NEWLINK: 16,
  RTM_DELLINK: 17,
  RTNLGRP_LINK: 1,
  RTNLGRP_TC: 4,
  IFLA_IFNAME: 3,
  /** struct ifinfomsg: family, pad, type, index, flags, change. */
  IFINFOMSG_SIZE: 16,
  /** struct tcmsg: family, pads, ifindex, handle, parent, info. */
  TCMSG_SIZE: 20,
} as const;

const ENOBUFS = 105;
const EMSGSIZE = 90;

/** What happened to a TC object, by the notification's message type. */
export type TcChange =
  | "newqdisc"
  | "delqdisc"
  | "newtfilter"
  | "deltfilter"
  | "newchain"
  | "delchain";

const TC_CHANGES: ReadonlyMap<number, TcChange> = new Map([
  [RTM.NEWQDISC, "newqdisc"],
  [RTM.DELQDISC, "delqdisc"],
  [RTM.NEWTFILTER, "newtfilter"],
  [RTM.DELTFILTER, "deltfilter"],
  [RTM.NEWCHAIN, "newchain"],
  [RTM.DELCHAIN, "delchain"],
]);

/**
 * A link was added or changed (`link-new`, RTM_NEWLINK: also sent when an
 * existing link changes state) or deleted (`link-del`).
 */
export interface LinkEvent {
  kind: "link-new" | "link-del";
  ifindex: number;
  /** The link's name; "" when the notification has none. */
  name: string;
}

/** A qdisc, filter or chain changed on the link `ifindex`. */
export interface TcEvent {
  kind: "tc";
  ifindex: number;
  type: TcChange;
  /** Port id of the netlink socket that made the change (0: the kernel itself). */
  portid: number;
  /** A filter or chain of a shared block (ifindex -1): the block's index. */
  block?: number;
}

/** Notifications were lost (or could not be read): read everything again. */
export interface OverflowEvent {
  kind: "overflow";
}

/** One thing the monitor reports. */
export type MonitorEvent = LinkEvent | TcEvent | OverflowEvent;

/** The event one notification stands for; null for messages the monitor does not report. */
export function decodeMonitorMessage(message: NetlinkMessage): MonitorEvent | null {
  const { type, payload } = message;
  if (type === RTNL.RTM_NEWLINK || type === RTNL.RTM_DELLINK) {
    if (payload.length < RTNL.IFINFOMSG_SIZE) {
      throw new NetlinkFormatError(`netlink: link message of ${payload.length} bytes`);
    }
    const ifindex = dataView(payload).getInt32(4, true);
    const name = decodeAttrs(payload.subarray(RTNL.IFINFOMSG_SIZE))
      .find((a) => a.type === RTNL.IFLA_IFNAME);
    return {
      kind: type === RTNL.RTM_NEWLINK ? "link-new" : "link-del",
      ifindex,
      name: name ? attr.string(name) : "",
    };
  }
  const change = TC_CHANGES.get(type);
  if (change === undefined) return null;
  if (payload.length < RTNL.TCMSG_SIZE) {
    throw new NetlinkFormatError(`netlink: TC message of ${payload.length} bytes`);
  }
  const ifindex = dataView(payload).getInt32(4, true);
  // A change to a shared block: the magic ifindex, and the block's index as the parent.
  const block = ifindex >>> 0 === TCM_IFINDEX_MAGIC_BLOCK
    ? dataView(payload).getUint32(12, true)
    : undefined;
  return {
    kind: "tc",
    ifindex,
    type: change,
    portid: message.pid,
    ...(block === undefined ? {} : { block }),
  };
}

/**
 * The events of one received datagram, in order. A datagram that does not
 * parse is reported as an overflow: what it said is lost.
 */
export function decodeMonitorDatagram(datagram: Uint8Array): MonitorEvent[] {
  try {
    const events: MonitorEvent[] = [];
    for (const message of decodeMessages(datagram)) {
      const event = decodeMonitorMessage(message);
      if (event) events.push(event);
    }
    return events;
  } catch (error) {
    if (error instanceof NetlinkFormatError) return [{ kind: "overflow" }];
    throw error;
  }
}

/**
 * Listens to link and TC notifications. Iterate it once (one consumer);
 * {@link close} ends the iteration. Leaving a `for await` loop early does
 * not close the socket.
 */
export class RtnetlinkMonitor implements AsyncIterable<MonitorEvent> {
  readonly #socket: NetlinkSocket;
  #closing = false;

  /** Opens the socket and subscribes; throws a NetlinkSocketError when netlink cannot be used. */
  constructor() {
    // No dumps on this socket, and no timeout: it waits for notifications until closed.
    this.#socket = new NetlinkSocket({ timeoutMs: null, dumps: false });
    try {
      this.#socket.joinGroup(RTNL.RTNLGRP_LINK);
      this.#socket.joinGroup(RTNL.RTNLGRP_TC);
    } catch (error) {
      void this.#socket.close();
      throw error;
    }
  }

  /** Port id of the monitor's own socket. */
  get portId(): number {
    return this.#socket.portId;
  }

  /**
   * The events as they come: link and TC events, and an overflow event
   * whenever notifications were lost. Ends after {@link close}; throws on a
   * socket failure the monitor cannot recover from.
   */
  async *[Symbol.asyncIterator](): AsyncGenerator<MonitorEvent, void, undefined> {
    while (!this.#closing) {
      let datagram: Uint8Array;
      try {
        datagram = await this.#socket.receive();
      } catch (error) {
        if (this.#closing) return;
        if (
          error instanceof NetlinkSocketError &&
          (error.errno === ENOBUFS || error.errno === EMSGSIZE)
        ) {
          yield { kind: "overflow" };
          continue;
        }
        throw error;
      }
      for (const event of decodeMonitorDatagram(datagram)) yield event;
    }
  }

  /** Stops the monitor: a pending wait ends, the iteration finishes, the socket is closed. */
  close(): Promise<void> {
    this.#closing = true;
    return this.#socket.close();
  }
}
