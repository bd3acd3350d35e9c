/**
 * An rtnetlink socket through Deno's FFI to libc: socket, bind, setsockopt,
 * sendmsg, recvmsg, poll, close, and if_nametoindex. The only file that
 * touches FFI; everything it sends and receives is plain bytes framed by
 * wire.ts.
 *
 * Nothing here blocks the event loop. The calls that can wait run on Deno's
 * FFI threads (`nonblocking` symbols, which return promises): sendmsg (the
 * kernel handles rtnetlink requests inside it, under its rtnl lock), poll
 * (waiting for an answer or a notification, bounded by the receive timeout)
 * and, on sockets that dump, recvmsg (which continues a dump inside the
 * kernel). errno is per thread, so a call made on an FFI thread cannot report
 * one: when poll flags a socket error, getsockopt(SO_ERROR) reads it on the
 * main thread; on sockets that never dump, recvmsg runs on the main thread,
 * where it cannot wait (MSG_DONTWAIT, after poll said data is queued).
 *
 * While a call is in flight an FFI thread or the kernel uses this socket's
 * buffers, so a socket runs one call at a time (a second one is refused), and
 * close() waits for the call in flight (waking a poll through an eventfd)
 * before the file descriptors are released.
 */
import { errnoText } from "./errno.ts";

const AF_NETLINK = 16;
const SOCK_RAW = 3;
const SOCK_CLOEXEC = 0x80000;
const NETLINK_ROUTE = 0;
const SOL_SOCKET = 1;
const SO_ERROR = 4;
const SO_SNDBUF = 7;
const SO_RCVBUF = 8;
const SO_SNDBUFFORCE = 32;
const SO_RCVBUFFORCE = 33;
const SOL_NETLINK = 270;
const NETLINK_ADD_MEMBERSHIP = 1;
const NETLINK_CAP_ACK = 10;
const NETLINK_EXT_ACK = 11;
const NETLINK_GET_STRICT_CHK = 12;
const MSG_TRUNC = 0x20;
const MSG_DONTWAIT = 0x40;
const EFD_NONBLOCK = 0x800;
const EFD_CLOEXEC = 0x80000;
const POLLIN = 0x1;
const POLLERR = 0x8;
const POLLNVAL = 0x20;
const EINTR = 4;
const EAGAIN = 11;
const EMSGSIZE = 90;
/** sendmsg attempts before a datagram the kernel keeps refusing is an error. */
const SEND_ATTEMPTS = 3;
/** Polls that end with nothing to read (interrupted on the FFI thread) before giving up. */
const POLL_FAILURES = 100;

const SYMBOLS = {
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  getsockname: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"], result: "i32" },
  getsockopt: { parameters: ["i32", "i32", "i32", "buffer", "buffer"], result: "i32" },
  sendmsg: { parameters: ["i32", "buffer", "i32"], result: "isize", nonblocking: true },
  recvmsg: { parameters: ["i32", "buffer", "i32"], result: "isize" },
  recvmsgOffThread: {
    name: "recvmsg",
    parameters: ["i32", "buffer", "i32"],
    result: "isize",
    nonblocking: true,
  },
  poll: { parameters: ["buffer", "u64", "i32"], result: "i32", nonblocking: true },
  eventfd: { parameters: ["u32", "i32"], result: "i32" },
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  close: { parameters: ["i32"], result: "i32" },
  if_nametoindex: { parameters: ["buffer"], result: "u32" },
  __errno_location: { parameters: [], result: "pointer" },
} as const satisfies Deno.ForeignLibraryInterface;

type Libc = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

let libc: Libc | undefined;

function load(): Libc {
  if (!libc) {
    try {
      libc = Deno.dlopen("libc.so.6", SYMBOLS).symbols;
    } catch (error) {
      throw new NetlinkSocketError(
        `cannot load libc for netlink (run with --allow-ffi): ${(error as Error).message}`,
        0,
      );
    }
  }
  return libc;
}

/** errno of the last failed call made on the main thread. */
function errno(lib: Libc): number {
  const pointer = lib.__errno_location();
  return pointer ? new Deno.UnsafePointerView(pointer).getInt32() : 0;
}

/** A failed socket call, with the errno that explains it (0 when unknown). */
export class NetlinkSocketError extends Error {
  override name = "NetlinkSocketError";
  constructor(message: string, readonly errno: number) {
    super(message);
  }
}

/** Size of the receive buffer: the kernel writes dump parts of up to 32 KiB. */
const RECEIVE_BYTES = 64 * 1024;
/** Largest datagram this socket sends (several requests at once). */
export const SEND_BYTES = 64 * 1024;
/** Socket buffers asked for (with the CAP_NET_ADMIN override when the agent has it). */
const SOCKET_BUFFER_BYTES = 4 * 1024 * 1024;

/** Resolves an interface name; 0 when there is no such interface. */
export function interfaceIndex(name: string): number {
  return load().if_nametoindex(new TextEncoder().encode(`${name}\0`));
}

/** How a {@link NetlinkSocket} waits. */
export interface NetlinkSocketOptions {
  /** Bound on each wait in {@link NetlinkSocket.receive}, in ms; null: until data or close(). */
  timeoutMs?: number | null;
  /**
   * Whether the socket runs dumps (default true). recvmsg continues a dump
   * inside the kernel, where it can wait for the rtnl lock, so on such a
   * socket it runs on an FFI thread; on a socket that only listens it runs
   * on the main thread, where its errno can be read.
   */
  dumps?: boolean;
}

/**
 * One NETLINK_ROUTE socket with extended ACKs, capped ACKs and strict dump
 * checks. One call at a time: callers serialise, and a second call while one
 * is in flight is refused.
 */
export class NetlinkSocket {
  /** The port id the kernel bound this socket to (nlmsg_pid of what it sends). */
  readonly portId: number;
  readonly #lib: Libc;
  readonly #timeoutMs: number | null;
  readonly #dumps: boolean;
  #fd = -1;
  /** An eventfd that close() writes to, to end a poll in flight. */
  #wake = -1;
  #inFlight: Promise<void> | null = null;
  #closing = false;
  // Buffers the kernel or an FFI thread reads or writes through pointers live
  // in ArrayBuffers allocated once per socket, so their memory stays put and
  // alive for as long as a call may use it.
  readonly #send = new Uint8Array(new ArrayBuffer(SEND_BYTES));
  readonly #receive = new Uint8Array(new ArrayBuffer(RECEIVE_BYTES));
  readonly #address = new Uint8Array(new ArrayBuffer(12));
  readonly #iovec = new DataView(new ArrayBuffer(16));
  readonly #msghdr = new DataView(new ArrayBuffer(56));
  readonly #msghdrBytes = new Uint8Array(this.#msghdr.buffer);
  /** Two struct pollfd: the socket, then the wake eventfd. */
  readonly #pollfds = new DataView(new ArrayBuffer(16));
  readonly #pollfdBytes = new Uint8Array(this.#pollfds.buffer);
  readonly #one = new Uint8Array(new BigUint64Array([1n]).buffer);

  /** Opens and binds the socket. */
  constructor(options: NetlinkSocketOptions = {}) {
    this.#timeoutMs = options.timeoutMs === undefined ? 10_000 : options.timeoutMs;
    this.#dumps = options.dumps ?? true;
    this.#lib = load();
    this.#fd = this.#lib.socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (this.#fd < 0) this.#fail("socket(AF_NETLINK)");
    try {
      this.#wake = this.#lib.eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
      if (this.#wake < 0) this.#fail("eventfd");
      this.#kernelAddress();
      if (this.#lib.bind(this.#fd, this.#address, 12) < 0) this.#fail("bind");
      this.portId = this.#boundPort();
      this.#option(SOL_NETLINK, NETLINK_EXT_ACK, 1);
      this.#option(SOL_NETLINK, NETLINK_CAP_ACK, 1);
      this.#option(SOL_NETLINK, NETLINK_GET_STRICT_CHK, 1, true);
      this.#bufferSize(SO_RCVBUFFORCE, SO_RCVBUF);
      this.#bufferSize(SO_SNDBUFFORCE, SO_SNDBUF);
    } catch (error) {
      this.#release();
      throw error;
    }
    const iovecPointer = Deno.UnsafePointer.value(Deno.UnsafePointer.of(this.#iovec));
    const addressPointer = Deno.UnsafePointer.value(Deno.UnsafePointer.of(this.#address));
    this.#msghdr.setBigUint64(0, BigInt(addressPointer), true);
    this.#msghdr.setUint32(8, 12, true);
    this.#msghdr.setBigUint64(16, BigInt(iovecPointer), true);
    this.#msghdr.setBigUint64(24, 1n, true);
    this.#pollfds.setInt32(0, this.#fd, true);
    this.#pollfds.setInt16(4, POLLIN, true);
    this.#pollfds.setInt32(8, this.#wake, true);
    this.#pollfds.setInt16(12, POLLIN, true);
  }

  #fail(call: string): never {
    const code = errno(this.#lib);
    throw new NetlinkSocketError(`netlink ${call}: ${errnoText(code)}`, code);
  }

  /** The socket address: the kernel (port 0), no groups; bind() asks for any free port. */
  #kernelAddress(): void {
    this.#address.fill(0);
    new DataView(this.#address.buffer).setUint16(0, AF_NETLINK, true);
  }

  #boundPort(): number {
    const address = new Uint8Array(new ArrayBuffer(12));
    const length = new Uint8Array(new ArrayBuffer(4));
    new DataView(length.buffer).setUint32(0, 12, true);
    if (this.#lib.getsockname(this.#fd, address, length) < 0) this.#fail("getsockname");
    return new DataView(address.buffer).getUint32(4, true);
  }

  /** Sets an int socket option; false when the kernel refused it. */
  #setInt(level: number, name: number, value: number): boolean {
    const bytes = new Uint8Array(new ArrayBuffer(4));
    new DataView(bytes.buffer).setInt32(0, value, true);
    return this.#lib.setsockopt(this.#fd, level, name, bytes, 4) >= 0;
  }

  #option(level: number, name: number, value: number, optional = false): void {
    if (!this.#setInt(level, name, value) && !optional) {
      this.#fail(`setsockopt(${level}, ${name})`);
    }
  }

  #bufferSize(force: number, plain: number): void {
    if (!this.#setInt(SOL_SOCKET, force, SOCKET_BUFFER_BYTES)) {
      this.#setInt(SOL_SOCKET, plain, SOCKET_BUFFER_BYTES);
    }
  }

  /** The pending socket error (and clears it), read on the main thread; 0 when none. */
  #socketError(): number {
    const value = new Uint8Array(new ArrayBuffer(4));
    const length = new Uint8Array(new ArrayBuffer(4));
    new DataView(length.buffer).setUint32(0, 4, true);
    if (this.#lib.getsockopt(this.#fd, SOL_SOCKET, SO_ERROR, value, length) < 0) {
      return errno(this.#lib);
    }
    return new DataView(value.buffer).getInt32(0, true);
  }

  #point(buffer: Uint8Array, length: number): void {
    const pointer = Deno.UnsafePointer.value(Deno.UnsafePointer.of(buffer));
    this.#iovec.setBigUint64(0, BigInt(pointer), true);
    this.#iovec.setBigUint64(8, BigInt(length), true);
    this.#msghdr.setUint32(8, 12, true);
    this.#msghdr.setUint32(48, 0, true);
  }

  #closed(): NetlinkSocketError {
    return new NetlinkSocketError("netlink socket is closed", 0);
  }

  /**
   * Runs one call with the socket to itself: refused when the socket is
   * closed or another call is in flight; the file descriptors go once it
   * settles if close() came meanwhile.
   */
  async #exclusive<T>(call: string, work: () => Promise<T>): Promise<T> {
    if (this.#fd < 0 || this.#closing) throw this.#closed();
    if (this.#inFlight) {
      throw new NetlinkSocketError(`netlink ${call}: another call is in flight on this socket`, 0);
    }
    let settled!: () => void;
    this.#inFlight = new Promise((resolve) => (settled = resolve));
    try {
      return await work();
    } finally {
      this.#inFlight = null;
      if (this.#closing) this.#release();
      settled();
    }
  }

  /** Subscribes to an rtnetlink multicast group (RTNLGRP_*). */
  joinGroup(group: number): void {
    if (this.#fd < 0 || this.#closing) throw this.#closed();
    if (!this.#setInt(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, group)) {
      this.#fail(`setsockopt(NETLINK_ADD_MEMBERSHIP, ${group})`);
    }
  }

  /**
   * Sends one datagram (one or more framed requests) with one sendmsg, on an
   * FFI thread: the kernel handles the requests before it returns. A
   * datagram the kernel refuses was not handled, so it is sent again, up to
   * {@link SEND_ATTEMPTS} times; the errno stays on the FFI thread.
   */
  send(datagram: Uint8Array): Promise<void> {
    return this.#exclusive("sendmsg", async () => {
      if (datagram.length > SEND_BYTES) {
        throw new NetlinkSocketError(
          `netlink datagram of ${datagram.length} bytes is too large`,
          0,
        );
      }
      this.#send.set(datagram);
      this.#kernelAddress();
      this.#point(this.#send, datagram.length);
      for (let attempt = 1;; attempt++) {
        const sent = Number(await this.#lib.sendmsg(this.#fd, this.#msghdrBytes, 0));
        if (sent >= 0) return;
        if (this.#closing) throw this.#closed();
        if (attempt >= SEND_ATTEMPTS) {
          throw new NetlinkSocketError(
            `netlink sendmsg: the kernel refused the datagram ${attempt} times`,
            0,
          );
        }
      }
    });
  }

  /**
   * Receives one datagram (a copy). Throws when none comes within the
   * timeout, on truncation (errno EMSGSIZE), on a socket error such as
   * ENOBUFS (notifications dropped), and once close() is called.
   */
  receive(): Promise<Uint8Array> {
    return this.#exclusive("recvmsg", async () => {
      const deadline = this.#timeoutMs === null ? Infinity : performance.now() + this.#timeoutMs;
      for (let failedPolls = 0;;) {
        const left = deadline - performance.now();
        const waitMs = left === Infinity ? -1 : Math.min(Math.max(0, Math.ceil(left)), 0x7fffffff);
        this.#pollfds.setInt16(6, 0, true);
        this.#pollfds.setInt16(14, 0, true);
        const ready = await this.#lib.poll(this.#pollfdBytes, 2n, waitMs);
        if (this.#closing) throw this.#closed();
        if (ready === 0) {
          throw new NetlinkSocketError("netlink: no answer from the kernel in time", EAGAIN);
        }
        const events = ready > 0 ? this.#pollfds.getInt16(6, true) : 0;
        if (events & POLLNVAL) throw new NetlinkSocketError("netlink poll: invalid socket", 0);
        if (events & POLLERR) {
          const code = this.#socketError();
          if (code !== 0) throw new NetlinkSocketError(`netlink recvmsg: ${errnoText(code)}`, code);
        }
        if (!(events & POLLIN)) {
          // Interrupted on the FFI thread (or woken with nothing to read); the deadline holds.
          if (++failedPolls >= POLL_FAILURES) {
            throw new NetlinkSocketError("netlink poll failed", 0);
          }
          continue;
        }
        this.#point(this.#receive, RECEIVE_BYTES);
        let got: number;
        let code = 0;
        if (this.#dumps) {
          got = Number(await this.#lib.recvmsgOffThread(this.#fd, this.#msghdrBytes, MSG_DONTWAIT));
          // Its errno stayed on the FFI thread; a socket error set meanwhile is still readable.
          if (got < 0) code = this.#socketError();
        } else {
          got = Number(this.#lib.recvmsg(this.#fd, this.#msghdrBytes, MSG_DONTWAIT));
          if (got < 0) code = errno(this.#lib);
        }
        if (got >= 0) {
          if (this.#msghdr.getInt32(48, true) & MSG_TRUNC) {
            throw new NetlinkSocketError(
              "netlink: answer larger than the receive buffer",
              EMSGSIZE,
            );
          }
          return this.#receive.slice(0, got);
        }
        if (this.#closing) throw this.#closed();
        if (code === EAGAIN || code === EINTR) continue;
        throw new NetlinkSocketError(
          code === 0 ? "netlink recvmsg failed" : `netlink recvmsg: ${errnoText(code)}`,
          code,
        );
      }
    });
  }

  /**
   * Closes the socket (idempotent). With a call in flight, a poll is woken
   * (the call then fails as closed) and the descriptors are released once the
   * call settles; the promise resolves then.
   */
  close(): Promise<void> {
    if (this.#fd < 0) return Promise.resolve();
    this.#closing = true;
    if (this.#inFlight) {
      this.#lib.write(this.#wake, this.#one, 8n);
      return this.#inFlight;
    }
    this.#release();
    return Promise.resolve();
  }

  #release(): void {
    if (this.#fd >= 0) this.#lib.close(this.#fd);
    if (this.#wake >= 0) this.#lib.close(this.#wake);
    this.#fd = -1;
    this.#wake = -1;
  }
}
