/**
 * The `netlink` TC driver: talks rtnetlink to the kernel directly (no `tc`
 * binary, no helper process). Reads are three dumps (qdiscs, then every
 * chain of each hook); writes keep the actuator's make-before-break order
 * by sending each step's requests together and waiting for the kernel's
 * answers before the next step starts.
 *
 * The event loop keeps turning throughout: the socket waits on FFI threads
 * (socket.ts), encoding and decoding give the loop a turn every few
 * milliseconds, and a lock runs one exchange (read, counters, apply) at a
 * time on the one socket.
 */
import {
  counterKey,
  type FilterCounter,
  type FilterOffload,
  type Hook,
  HOOKS,
  type TcCommand,
  type TcFilter,
  type TcState,
} from "../../tc/model.ts";
import { batchText, checkedDevice, checkedNetdev, targetText } from "../../tc/serialize.ts";
import { blockIndexOf } from "../../tc/blocks.ts";
import {
  DeviceMissing,
  type DriverStats,
  isDefaultQdisc,
  type TcDriver,
  TcError,
} from "../../tc/driver.ts";
import { errnoText, isNoDevice } from "./errno.ts";
import { interfaceIndex, NetlinkSocket, NetlinkSocketError, SEND_BYTES } from "./socket.ts";
import { filterDumpRequest, qdiscDumpRequest, type TcTarget, writeCommand } from "./tc_encode.ts";
import { type DecodedFilter, decodeFilter, decodeQdisc } from "./tc_decode.ts";
import {
  decodeAck,
  decodeMessages,
  encodeMessage,
  NetlinkFormatError,
  type NetlinkMessage,
  type NetlinkRequest,
  NetlinkWriter,
  NL,
} from "./wire.ts";

/** A step's commands, written back to back with their sequence numbers. */
interface EncodedStep {
  commands: TcCommand[];
  writer: NetlinkWriter;
  bytes: Uint8Array;
  seqs: number[];
}
const DUMP_ATTEMPTS = 5;
/** Longest run of encoding or decoding before the event loop gets a turn. */
const SLICE_MS = 8;
/** Items encoded or decoded between two looks at the clock. */
const CHECK_EVERY = 32;
/** Port ids of earlier sockets still recognised as the driver's own. */
const REMEMBERED_PORTS = 8;

/**
 * Gives the event loop a turn (a macrotask, so I/O and timers run) once the
 * current one has run for {@link SLICE_MS}: long encoding and decoding runs
 * call {@link pace} as they go.
 */
class Pacer {
  #since = performance.now();

  /** Yields when the slice is used up. */
  async pace(): Promise<void> {
    if (performance.now() - this.#since < SLICE_MS) return;
    await new Promise((resolve) => setTimeout(resolve, 0));
    this.#since = performance.now();
  }
}

/** `items.map(map)`, giving the event loop a turn now and then. */
async function mapPaced<T, U>(items: T[], map: (item: T) => U): Promise<U[]> {
  const pacer = new Pacer();
  const out: U[] = [];
  for (let i = 0; i < items.length; i++) {
    if (i % CHECK_EVERY === 0) await pacer.pace();
    out.push(map(items[i]));
  }
  return out;
}

/**
 * Splits commands into steps that must finish before the next starts: a
 * run of the same operation, with filters for chain 0 (the dispatch) never
 * in the same step as those for the policy chains they send traffic to.
 */
export function commandSteps(commands: TcCommand[]): TcCommand[][] {
  const steps: TcCommand[][] = [];
  let lastKey = "";
  for (const command of commands) {
    const key = "filter" in command
      ? `${command.op}/${command.filter.chain === 0 ? "dispatch" : "policy"}`
      : command.op;
    if (key !== lastKey || steps.length === 0) steps.push([]);
    steps[steps.length - 1].push(command);
    lastKey = key;
  }
  return steps;
}

/** `what: Errno text (NAME): extended-ACK text`. */
function kernelErrorText(what: string, code: number, extack?: string): string {
  return `${what}: ${errnoText(code)}${extack ? `: ${extack}` : ""}`;
}

/** The error a driver call throws for a kernel error: a gone device is {@link DeviceMissing}. */
function deviceError(device: string, code: number, text: string): TcError {
  return isNoDevice(code) ? new DeviceMissing(device, text) : new TcError(device, text);
}

/**
 * Drives TC through an rtnetlink socket. One exchange at a time: read,
 * counters and apply queue on a lock, so their requests and answers never
 * interleave on the socket.
 */
export class NetlinkDriver implements TcDriver {
  readonly name = "netlink";
  readonly stats: DriverStats = { calls: 0 };
  #socket?: NetlinkSocket;
  #seq = Math.floor(Math.random() * 0x3fffffff) + 1;
  /** Settles when the last exchange queued has finished (never rejects). */
  #lastExchange: Promise<void> = Promise.resolve();
  /** Port ids of this driver's sockets, newest last. */
  readonly #ports: number[] = [];

  constructor(private readonly timeoutMs = 10_000) {}

  /** Opens the socket now, so a node that cannot use netlink fails at start, not per sync. */
  open(): void {
    this.#open();
  }

  /**
   * Closes the socket; the next call opens a new one. An exchange in flight
   * fails (its wait is woken) and the socket goes once it has settled.
   */
  close(): void {
    void this.#socket?.close();
    this.#socket = undefined;
  }

  /**
   * The port id of the driver's socket (the nlmsg_pid of the kernel's
   * notifications about changes it made), opening the socket if needed.
   */
  get portId(): number {
    return this.#open().portId;
  }

  /**
   * Whether a notification's port id is one of this driver's sockets (the
   * current one or one of the last few it replaced after an error): the
   * change was the agent's own.
   */
  ownsPort(portid: number): boolean {
    return portid !== 0 && this.#ports.includes(portid);
  }

  #open(): NetlinkSocket {
    if (!this.#socket) {
      this.#socket = new NetlinkSocket({ timeoutMs: this.timeoutMs });
      this.#ports.push(this.#socket.portId);
      if (this.#ports.length > REMEMBERED_PORTS) this.#ports.shift();
    }
    return this.#socket;
  }

  /** Runs `exchange` once every exchange queued before it has finished. */
  #exclusive<T>(exchange: () => Promise<T>): Promise<T> {
    const result = this.#lastExchange.then(exchange);
    this.#lastExchange = result.then(() => {}, () => {});
    return result;
  }

  #nextSeq(): number {
    this.#seq = this.#seq >= 0x7fffffff ? 1 : this.#seq + 1;
    return this.#seq;
  }

  async #index(device: string): Promise<number> {
    checkedNetdev(device);
    const index = await this.#guarded(device, () => Promise.resolve(interfaceIndex(device)));
    if (index === 0) throw new DeviceMissing(device, "device not found");
    return index;
  }

  /** Where requests for `device` point: its ifindex, or the shared block it names. */
  async #target(device: string): Promise<TcTarget> {
    const block = blockIndexOf(checkedDevice(device));
    return block !== null ? { block } : await this.#index(device);
  }

  /**
   * Runs `exchange` on the socket. A socket failure or an answer that does
   * not parse closes the socket (it may be out of step) and becomes an
   * error naming the device.
   */
  async #guarded<T>(device: string, exchange: (socket: NetlinkSocket) => Promise<T>): Promise<T> {
    let socket: NetlinkSocket | undefined;
    try {
      socket = this.#open();
      return await exchange(socket);
    } catch (error) {
      if (error instanceof NetlinkSocketError || error instanceof NetlinkFormatError) {
        if (socket === undefined || socket === this.#socket) this.close();
        throw new TcError(device, error.message, { cause: error });
      }
      throw error;
    }
  }

  /**
   * One dump: every message answering `request`, decoded; retried when the
   * kernel says it changed meanwhile.
   */
  #dump<T>(
    device: string,
    request: NetlinkRequest,
    describe: string,
    decode: (message: NetlinkMessage) => T,
  ): Promise<T[]> {
    return this.#guarded(device, async (socket) => {
      for (let attempt = 1;; attempt++) {
        const seq = this.#nextSeq();
        this.stats.calls++;
        await socket.send(encodeMessage(request, seq));
        const out: NetlinkMessage[] = [];
        let interrupted = false;
        for (;;) {
          const messages = decodeMessages(await socket.receive()).filter((m) => m.seq === seq);
          const end = messages.find((m) => m.type === NL.NLMSG_DONE || m.type === NL.NLMSG_ERROR);
          for (const m of messages) {
            if (m.flags & NL.F_DUMP_INTR) interrupted = true;
            if (m !== end && m.type !== NL.NLMSG_DONE && m.type !== NL.NLMSG_ERROR) out.push(m);
          }
          if (!end) continue;
          const ack = decodeAck(end);
          if (ack.error !== 0) {
            throw deviceError(device, ack.error, kernelErrorText(describe, ack.error, ack.message));
          }
          break;
        }
        if (!interrupted || attempt >= DUMP_ATTEMPTS) return await mapPaced(out, decode);
      }
    });
  }

  /**
   * Writes a step's requests back to back, each with its own sequence
   * number, giving the event loop a turn now and then.
   */
  async #encode(ifindex: TcTarget, step: TcCommand[], pacer: Pacer): Promise<EncodedStep> {
    // About 250 bytes per filter: one buffer for the whole step, rarely regrown.
    const writer = new NetlinkWriter(step.length * 256);
    const seqs = step.map(() => this.#nextSeq());
    for (let i = 0; i < step.length; i++) {
      if (i % CHECK_EVERY === 0) await pacer.pace();
      writeCommand(writer, ifindex, step[i], seqs[i]);
    }
    return { commands: step, writer, bytes: writer.finish(), seqs };
  }

  /**
   * Sends an encoded step in as few datagrams as fit, asking for an ACK on
   * the last request of each (errors are always answered), and throws the
   * first error, with the number of others, once the whole step is answered.
   */
  #send(device: string, step: EncodedStep): Promise<void> {
    return this.#guarded(device, async (socket) => {
      const { commands, writer, bytes, seqs } = step;
      const starts = writer.messageStarts;
      const endOf = (i: number) => (i + 1 < starts.length ? starts[i + 1] : bytes.length);
      const indexOf = new Map(seqs.map((seq, i) => [seq, i]));
      const failures: { code: number; text: string }[] = [];
      for (let first = 0; first < commands.length;) {
        let end = first + 1;
        while (end < commands.length && endOf(end) - starts[first] <= SEND_BYTES) end++;
        writer.addFlags(starts[end - 1], NL.F_ACK);
        this.stats.calls++;
        await socket.send(bytes.subarray(starts[first], endOf(end - 1)));
        const lastSeq = seqs[end - 1];
        for (let answered = false; !answered;) {
          for (const message of decodeMessages(await socket.receive())) {
            const index = indexOf.get(message.seq);
            if (index === undefined || message.type !== NL.NLMSG_ERROR) continue;
            const ack = decodeAck(message);
            if (ack.error !== 0) {
              const command = batchText(device, [commands[index]]).trim();
              failures.push({
                code: ack.error,
                text: kernelErrorText(command, ack.error, ack.message),
              });
            }
            if (message.seq === lastSeq) answered = true;
          }
        }
        first = end;
      }
      if (failures.length === 0) return;
      const [first] = failures;
      const others = failures.length > 1
        ? ` (and ${failures.length - 1} more failed requests in this step)`
        : "";
      throw deviceError(device, first.code, first.text + others);
    });
  }

  /** Every filter of one hook, every chain at once, decoded with its counter. */
  #filterDump(device: string, target: TcTarget, hook: Hook): Promise<DecodedFilter[]> {
    return this.#dump(
      device,
      filterDumpRequest(target, hook),
      `filter show ${targetText(device, hook).join(" ")}`,
      decodeFilter,
    );
  }

  read(device: string): Promise<TcState> {
    return this.#exclusive(() => this.#read(device));
  }

  async #read(device: string): Promise<TcState> {
    const target = await this.#target(device);
    const state: TcState = { device, clsact: true, foreignQdiscs: [], filters: [] };
    // A shared block has no qdisc of its own: its filters are read, its bindings are read by
    // src/drivers/shared_block.ts. A block no device is bound to dumps nothing.
    let hooks: readonly Hook[] = ["ingress"];
    if (typeof target === "number") {
      const qdiscs = (await this.#dump(
        device,
        qdiscDumpRequest(target),
        `qdisc show dev ${device}`,
        decodeQdisc,
      )).filter((q) => q.ifindex === target);
      const kinds = qdiscs.map((q) => q.kind);
      state.clsact = kinds.includes("clsact");
      state.foreignQdiscs = kinds.filter((kind) =>
        kind !== "clsact" && kind !== "ingress" && !isDefaultQdisc(kind)
      );
      const ingressQdisc = !state.clsact && kinds.includes("ingress");
      if (ingressQdisc) state.ingressQdisc = true;
      const ingressBlock = qdiscs.find((q) => q.ingressBlock !== undefined)?.ingressBlock;
      if (ingressBlock !== undefined) return { ...state, ingressBlock };
      if (!state.clsact && !ingressQdisc) return state;
      // An ingress qdisc has one block: asked for "egress", the kernel dumps it again.
      if (state.clsact) hooks = HOOKS;
    }
    const foreign: string[] = [];
    const counters = new Map<string, FilterCounter>();
    const offload = new Map<string, FilterOffload>();
    const pacer = new Pacer();
    for (const hook of hooks) {
      const filters: TcFilter[] = [];
      const dumped = await this.#filterDump(device, target, hook);
      for (let i = 0; i < dumped.length; i++) {
        if (i % CHECK_EVERY === 0) await pacer.pace();
        const decoded = dumped[i];
        if (!decoded) continue;
        if (!("filter" in decoded)) {
          foreign.push(decoded.foreign);
          continue;
        }
        filters.push(decoded.filter);
        if (decoded.counter) counters.set(counterKey(decoded.filter), decoded.counter);
        if (decoded.offload) offload.set(counterKey(decoded.filter), decoded.offload);
      }
      // Chains in id order, as `tc` lists them; within a chain, the kernel's order.
      filters.sort((a, b) => a.chain - b.chain);
      for (const filter of filters) state.filters.push(filter);
    }
    state.foreignFilters = foreign;
    state.counters = counters;
    state.offload = offload;
    return state;
  }

  counters(device: string): Promise<Map<string, FilterCounter>> {
    return this.#exclusive(async () => {
      const counters = new Map<string, FilterCounter>();
      const target = await this.#target(device);
      for (const entry of await this.#filterDump(device, target, "ingress")) {
        if (entry && "filter" in entry && entry.counter) {
          counters.set(counterKey(entry.filter), entry.counter);
        }
      }
      return counters;
    });
  }

  apply(device: string, commands: TcCommand[]): Promise<void> {
    return this.#exclusive(() => this.#apply(device, commands));
  }

  async #apply(device: string, commands: TcCommand[]): Promise<void> {
    if (commands.length === 0) return;
    const ifindex = await this.#target(device);
    // Everything is encoded (and so validated) before the first request goes out.
    const pacer = new Pacer();
    const steps: EncodedStep[] = [];
    for (const step of commandSteps(commands)) steps.push(await this.#encode(ifindex, step, pacer));
    for (const step of steps) await this.#send(device, step);
  }
}
