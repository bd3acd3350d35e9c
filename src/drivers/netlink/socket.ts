/**
 * An rtnetlink socket through Deno's FFI to libc: socket, bind, setsockopt,
 * sendmsg, recvmsg, close, and if_nametoindex. The only file that touches
 * FFI; everything it sends and receives is plain bytes framed by wire.ts.
 * Calls are synchronous: the kernel answers rtnetlink requests during
 * sendmsg, and a receive timeout bounds every wait.
 */
import { errnoText } from "./errno.ts";

const AF_NETLINK = 16;
const SOCK_RAW = 3;
const SOCK_CLOEXEC = 0x80000;
const NETLINK_ROUTE = 0;
const SOL_SOCKET = 1;
const SO_SNDBUF = 7;
const SO_RCVBUF = 8;
const SO_RCVTIMEO = 20;
const SO_SNDBUFFORCE = 32;
const SO_RCVBUFFORCE = 33;
const SOL_NETLINK = 270;
const NETLINK_CAP_ACK = 10;
const NETLINK_EXT_ACK = 11;
const NETLINK_GET_STRICT_CHK = 12;
const MSG_TRUNC = 0x20;
const EINTR = 4;
const EAGAIN = 11;

const SYMBOLS = {
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"], result: "i32" },
  sendmsg: { parameters: ["i32", "buffer", "i32"], result: "isize" },
  recvmsg: { parameters: ["i32", "buffer", "i32"], result: "isize" },
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

function errno(lib: Libc): number {
  const pointer = lib.__errno_location();
  return pointer ? new Deno.UnsafePointerView(pointer).getInt32() : 0;
}

/** A failed socket call, with the errno that explains it. */
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

/**
 * One NETLINK_ROUTE socket with extended ACKs, capped ACKs and strict dump
 * checks. Not safe to share between concurrent exchanges: callers
 * serialise.
 */
export class NetlinkSocket {
  readonly #lib: Libc;
  #fd: number;
  // Buffers the kernel reads or writes through pointers live in ArrayBuffers
  // allocated once, so their memory stays put.
  readonly #send = new Uint8Array(new ArrayBuffer(SEND_BYTES));
  readonly #receive = new Uint8Array(new ArrayBuffer(RECEIVE_BYTES));
  readonly #address = new Uint8Array(new ArrayBuffer(12));
  readonly #iovec = new DataView(new ArrayBuffer(16));
  readonly #msghdr = new DataView(new ArrayBuffer(56));

  /** Opens and binds the socket; `timeoutMs` bounds each receive. */
  constructor(timeoutMs = 10_000) {
    this.#lib = load();
    this.#fd = this.#lib.socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (this.#fd < 0) this.#fail("socket(AF_NETLINK)");
    try {
      new DataView(this.#address.buffer).setUint16(0, AF_NETLINK, true);
      if (this.#lib.bind(this.#fd, this.#address, 12) < 0) this.#fail("bind");
      this.#option(SOL_NETLINK, NETLINK_EXT_ACK, 1);
      this.#option(SOL_NETLINK, NETLINK_CAP_ACK, 1);
      this.#option(SOL_NETLINK, NETLINK_GET_STRICT_CHK, 1, true);
      this.#bufferSize(SO_RCVBUFFORCE, SO_RCVBUF);
      this.#bufferSize(SO_SNDBUFFORCE, SO_SNDBUF);
      const timeval = new Uint8Array(new ArrayBuffer(16));
      const view = new DataView(timeval.buffer);
      view.setBigInt64(0, BigInt(Math.floor(timeoutMs / 1000)), true);
      view.setBigInt64(8, BigInt((timeoutMs % 1000) * 1000), true);
      if (this.#lib.setsockopt(this.#fd, SOL_SOCKET, SO_RCVTIMEO, timeval, 16) < 0) {
        this.#fail("setsockopt(SO_RCVTIMEO)");
      }
    } catch (error) {
      this.close();
      throw error;
    }
    const iovecPointer = Deno.UnsafePointer.value(Deno.UnsafePointer.of(this.#iovec));
    const addressPointer = Deno.UnsafePointer.value(Deno.UnsafePointer.of(this.#address));
    this.#msghdr.setBigUint64(0, BigInt(addressPointer), true);
    this.#msghdr.setUint32(8, 12, true);
    this.#msghdr.setBigUint64(16, BigInt(iovecPointer), true);
    this.#msghdr.setBigUint64(24, 1n, true);
  }

  #fail(call: string): never {
    const code = errno(this.#lib);
    throw new NetlinkSocketError(`netlink ${call}: ${errnoText(code)}`, code);
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

  #point(buffer: Uint8Array, length: number): void {
    const pointer = Deno.UnsafePointer.value(Deno.UnsafePointer.of(buffer));
    this.#iovec.setBigUint64(0, BigInt(pointer), true);
    this.#iovec.setBigUint64(8, BigInt(length), true);
    this.#msghdr.setUint32(48, 0, true);
  }

  /** Sends one datagram (one or more framed requests) with one sendmsg. */
  send(datagram: Uint8Array): void {
    if (this.#fd < 0) throw new NetlinkSocketError("netlink socket is closed", 0);
    if (datagram.length > SEND_BYTES) {
      throw new NetlinkSocketError(`netlink datagram of ${datagram.length} bytes is too large`, 0);
    }
    this.#send.set(datagram);
    this.#point(this.#send, datagram.length);
    for (;;) {
      const sent = Number(this.#lib.sendmsg(this.#fd, new Uint8Array(this.#msghdr.buffer), 0));
      if (sent >= 0) return;
      if (errno(this.#lib) !== EINTR) this.#fail("sendmsg");
    }
  }

  /** Receives one datagram (a copy); throws on timeout or truncation. */
  receive(): Uint8Array {
    if (this.#fd < 0) throw new NetlinkSocketError("netlink socket is closed", 0);
    this.#point(this.#receive, this.#receive.length);
    for (;;) {
      const got = Number(this.#lib.recvmsg(this.#fd, new Uint8Array(this.#msghdr.buffer), 0));
      if (got < 0) {
        const code = errno(this.#lib);
        if (code === EINTR) continue;
        if (code === EAGAIN) {
          throw new NetlinkSocketError("netlink: no answer from the kernel in time", code);
        }
        this.#fail("recvmsg");
      }
      if (this.#msghdr.getInt32(48, true) & MSG_TRUNC) {
        throw new NetlinkSocketError("netlink: answer larger than the receive buffer", 0);
      }
      return this.#receive.slice(0, got);
    }
  }

  /** Closes the socket (idempotent). */
  close(): void {
    if (this.#fd >= 0) this.#lib.close(this.#fd);
    this.#fd = -1;
  }
}
