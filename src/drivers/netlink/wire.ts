/**
 * Netlink message framing (pure): nlmsghdr, nested attributes with 4-byte
 * alignment, and the kernel's answers (ACKs, errors with extended-ACK
 * text, multi-part dumps). Everything is little-endian host order, as on
 * the x86-64 and arm64 nodes this agent runs on.
 */

/** Netlink header and message constants (linux/netlink.h). */
export const NL = {
  headerSize: 16,
  NLMSG_ERROR: 2,
  NLMSG_DONE: 3,
  F_REQUEST: 0x1,
  F_MULTI: 0x2,
  F_ACK: 0x4,
  F_DUMP_INTR: 0x10,
  F_DUMP: 0x300,
  F_REPLACE: 0x100,
  F_EXCL: 0x200,
  F_CREATE: 0x400,
  /** On an error message: the echoed request was cut to its header. */
  F_CAPPED: 0x100,
  /** On an error message: extended-ACK attributes follow. */
  F_ACK_TLVS: 0x200,
  ATTR_NESTED: 0x8000,
  ATTR_TYPE_MASK: 0x3fff,
  ERR_ATTR_MSG: 1,
  ERR_ATTR_OFFS: 2,
} as const;

/** Rounds up to netlink's 4-byte alignment. */
export function align4(n: number): number {
  return (n + 3) & ~3;
}

const encoder = new TextEncoder();
const encodedNames = new Map<string, Uint8Array>();

/** NUL-terminated UTF-8 of a (short, recurring) name such as an action kind. */
function nulTerminated(value: string): Uint8Array {
  let bytes = encodedNames.get(value);
  if (!bytes) {
    bytes = encoder.encode(`${value}\0`);
    if (encodedNames.size < 64) encodedNames.set(value, bytes);
  }
  return bytes;
}

/**
 * Writes netlink messages back to back into one growing buffer, or a bare
 * attribute stream: framed messages (header, fixed part, attributes),
 * scalars, strings, raw bytes, structs and nests, with 4-byte alignment.
 * Lengths of nests and messages are patched when they end. One writer
 * serves a whole batch, so encoding allocates nothing per message.
 */
export class NetlinkWriter {
  #bytes: Uint8Array;
  #view: DataView;
  #length = 0;
  readonly #open: number[] = [];
  #message = -1;
  /** Offsets where each message written so far starts. */
  readonly messageStarts: number[] = [];

  /** `capacity`: bytes to start with (the buffer grows as needed). */
  constructor(capacity = 4096) {
    this.#bytes = new Uint8Array(Math.max(64, capacity));
    this.#view = new DataView(this.#bytes.buffer);
  }

  /** Bytes written so far. */
  get length(): number {
    return this.#length;
  }

  #reserve(n: number): number {
    const at = this.#length;
    const need = at + align4(n);
    if (need > this.#bytes.length) {
      const grown = new Uint8Array(Math.max(need, this.#bytes.length * 2));
      grown.set(this.#bytes.subarray(0, this.#length));
      this.#bytes = grown;
      this.#view = new DataView(grown.buffer);
    }
    // Fresh buffers are zeroed and nothing is written past the end, so padding is zero.
    this.#length = need;
    return at;
  }

  #header(type: number, payload: number): number {
    const at = this.#reserve(4 + payload);
    this.#view.setUint16(at, 4 + payload, true);
    this.#view.setUint16(at + 2, type, true);
    return at + 4;
  }

  /**
   * Starts a message: nlmsghdr (port id 0: the kernel fills it in) and a
   * zeroed fixed part of `fixedSize` bytes, whose offset is returned: fill
   * it with {@link setU32}.
   */
  startMessage(type: number, flags: number, seq: number, fixedSize: number): number {
    if (this.#message >= 0) throw new Error("netlink: message not ended");
    const at = this.#reserve(NL.headerSize + fixedSize);
    this.#view.setUint16(at + 4, type, true);
    this.#view.setUint16(at + 6, flags, true);
    this.#view.setUint32(at + 8, seq >>> 0, true);
    this.#message = at;
    this.messageStarts.push(at);
    return at + NL.headerSize;
  }

  /** Sets a host-order u32 at `at` (in a message's fixed part). */
  setU32(at: number, value: number): this {
    this.#view.setUint32(at, value >>> 0, true);
    return this;
  }

  /** Ends the current message (patches its length). */
  endMessage(): this {
    if (this.#message < 0 || this.#open.length > 0) {
      throw new Error("netlink: endMessage() without a message or with an open nest");
    }
    this.#view.setUint32(this.#message, this.#length - this.#message, true);
    this.#message = -1;
    return this;
  }

  /** Raw bytes (an address). */
  bytes(type: number, value: Uint8Array): this {
    const at = this.#header(type, value.length);
    this.#bytes.set(value, at);
    return this;
  }

  /** A zeroed struct of `size` bytes, filled in by `write`. */
  struct(type: number, size: number, write: (view: DataView, at: number) => void): this {
    const at = this.#header(type, size);
    write(this.#view, at);
    return this;
  }

  /** A NUL-terminated string. */
  string(type: number, value: string): this {
    return this.bytes(type, nulTerminated(value));
  }

  /** u8. */
  u8(type: number, value: number): this {
    const at = this.#header(type, 1);
    this.#view.setUint8(at, value);
    return this;
  }

  /** u16 in host order. */
  u16(type: number, value: number): this {
    const at = this.#header(type, 2);
    this.#view.setUint16(at, value, true);
    return this;
  }

  /** u16 in network order (ports, ethertypes). */
  be16(type: number, value: number): this {
    const at = this.#header(type, 2);
    this.#view.setUint16(at, value, false);
    return this;
  }

  /** u32 in host order. */
  u32(type: number, value: number): this {
    const at = this.#header(type, 4);
    this.#view.setUint32(at, value >>> 0, true);
    return this;
  }

  /** u32 in network order (IPv4 addresses and masks). */
  be32(type: number, value: number): this {
    const at = this.#header(type, 4);
    this.#view.setUint32(at, value >>> 0, false);
    return this;
  }

  /** Opens a nested attribute; close it with {@link end}. */
  begin(type: number): this {
    this.#open.push(this.#header(type, 0) - 4);
    return this;
  }

  /** Closes the innermost nest. */
  end(): this {
    const at = this.#open.pop();
    if (at === undefined) throw new Error("netlink: end() without begin()");
    this.#view.setUint16(at, this.#length - at, true);
    return this;
  }

  /** Adds flags to the message that starts at `start` (an ACK request, say). */
  addFlags(start: number, flags: number): this {
    this.#view.setUint16(start + 6, this.#view.getUint16(start + 6, true) | flags, true);
    return this;
  }

  /** Everything written (a view, not a copy: the writer is done with it). */
  finish(): Uint8Array {
    if (this.#open.length > 0 || this.#message >= 0) {
      throw new Error("netlink: unclosed nested attribute or message");
    }
    return this.#bytes.subarray(0, this.#length);
  }
}

/** One request before framing: type, flags and body (fixed header + attributes). */
export interface NetlinkRequest {
  type: number;
  flags: number;
  body: Uint8Array;
}

/** The one message a writer holds, as a request (its type, flags and body). */
export function onlyRequest(writer: NetlinkWriter): NetlinkRequest {
  const bytes = writer.finish();
  if (writer.messageStarts.length !== 1) throw new Error("netlink: want exactly one message");
  const view = dataView(bytes);
  return {
    type: view.getUint16(4, true),
    flags: view.getUint16(6, true),
    body: bytes.slice(NL.headerSize, view.getUint32(0, true)),
  };
}

/** Frames one request: nlmsghdr with the given sequence number (port id 0: the kernel fills it). */
export function encodeMessage(request: NetlinkRequest, seq: number): Uint8Array {
  const length = NL.headerSize + request.body.length;
  const out = new Uint8Array(align4(length));
  const view = new DataView(out.buffer);
  view.setUint32(0, length, true);
  view.setUint16(4, request.type, true);
  view.setUint16(6, request.flags, true);
  view.setUint32(8, seq >>> 0, true);
  out.set(request.body, NL.headerSize);
  return out;
}

/** A message as read from the socket. */
export interface NetlinkMessage {
  type: number;
  flags: number;
  seq: number;
  pid: number;
  /** Everything after the 16-byte header. */
  payload: Uint8Array;
}

/** A malformed answer from the kernel (a bug or a desynchronised socket). */
export class NetlinkFormatError extends Error {
  override name = "NetlinkFormatError";
}

/** Splits a datagram into its messages. */
export function decodeMessages(data: Uint8Array): NetlinkMessage[] {
  const view = dataView(data);
  const out: NetlinkMessage[] = [];
  let at = 0;
  while (at + NL.headerSize <= data.length) {
    const length = view.getUint32(at, true);
    if (length < NL.headerSize || at + length > data.length) {
      throw new NetlinkFormatError(`netlink: message length ${length} at offset ${at} is invalid`);
    }
    out.push({
      type: view.getUint16(at + 4, true),
      flags: view.getUint16(at + 6, true),
      seq: view.getUint32(at + 8, true),
      pid: view.getUint32(at + 12, true),
      payload: data.subarray(at + NL.headerSize, at + length),
    });
    at += align4(length);
  }
  return out;
}

/** One attribute: its type (without the nested/byte-order flags) and value. */
export interface Attr {
  type: number;
  value: Uint8Array;
}

/** Splits an attribute stream; a truncated attribute is a format error. */
export function decodeAttrs(data: Uint8Array): Attr[] {
  const view = dataView(data);
  const out: Attr[] = [];
  let at = 0;
  while (at + 4 <= data.length) {
    const length = view.getUint16(at, true);
    if (length < 4 || at + length > data.length) {
      throw new NetlinkFormatError(
        `netlink: attribute length ${length} at offset ${at} is invalid`,
      );
    }
    out.push({
      type: view.getUint16(at + 2, true) & NL.ATTR_TYPE_MASK,
      value: data.subarray(at + 4, at + length),
    });
    at += align4(length);
  }
  return out;
}

/** Attribute readers that check the value's size. */
export const attr = {
  u8(a: Attr): number {
    need(a, 1);
    return a.value[0];
  },
  u16(a: Attr): number {
    need(a, 2);
    return dataView(a.value).getUint16(0, true);
  },
  be16(a: Attr): number {
    need(a, 2);
    return dataView(a.value).getUint16(0, false);
  },
  u32(a: Attr): number {
    need(a, 4);
    return dataView(a.value).getUint32(0, true);
  },
  string(a: Attr): string {
    const end = a.value.indexOf(0);
    return new TextDecoder().decode(end < 0 ? a.value : a.value.subarray(0, end));
  },
};

function need(a: Attr, size: number): void {
  if (a.value.length < size) {
    throw new NetlinkFormatError(`netlink: attribute ${a.type} has ${a.value.length} bytes`);
  }
}

/** A DataView over exactly these bytes. */
export function dataView(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** The kernel's answer to one request: 0 for success, else a negative errno and its text. */
export interface NetlinkAck {
  /** 0, or a negative errno. */
  error: number;
  /** Extended-ACK message, when the kernel gave one. */
  message?: string;
}

/**
 * Reads an NLMSG_ERROR (an ACK when `error` is 0) or the NLMSG_DONE that
 * ends a dump (whose payload is an int error, then extended-ACK attributes).
 */
export function decodeAck(message: NetlinkMessage): NetlinkAck {
  const view = dataView(message.payload);
  if (message.type === NL.NLMSG_DONE) {
    if (message.payload.length < 4) return { error: 0 };
    const error = view.getInt32(0, true);
    return { error, message: extAckMessage(message.payload.subarray(4), message.flags) };
  }
  if (message.payload.length < 4 + NL.headerSize) {
    throw new NetlinkFormatError("netlink: error message too short");
  }
  const error = view.getInt32(0, true);
  // The echoed request: its header only when capped, else the whole request.
  const echoed = (message.flags & NL.F_CAPPED) !== 0
    ? NL.headerSize
    : align4(view.getUint32(4, true));
  const tlvs = message.payload.subarray(Math.min(message.payload.length, 4 + echoed));
  return { error, message: extAckMessage(tlvs, message.flags) };
}

function extAckMessage(tlvs: Uint8Array, flags: number): string | undefined {
  if ((flags & NL.F_ACK_TLVS) === 0) return undefined;
  const text = decodeAttrs(tlvs).find((a) => a.type === NL.ERR_ATTR_MSG);
  return text ? attr.string(text) : undefined;
}
