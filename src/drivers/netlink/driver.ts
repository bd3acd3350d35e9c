/**
 * The `netlink` TC driver: talks rtnetlink to the kernel directly (no `tc`
 * binary, no helper process). Reads are three dumps (qdiscs, then every
 * chain of each hook); writes keep the actuator's make-before-break order
 * by sending each step's requests together and waiting for the kernel's
 * answers before the next step starts.
 */
import {
  counterKey,
  type FilterCounter,
  type Hook,
  HOOKS,
  type TcCommand,
  type TcFilter,
  type TcState,
} from "../../tc/model.ts";
import { batchText, checkedDevice } from "../../tc/serialize.ts";
import {
  DeviceMissing,
  type DriverStats,
  isDefaultQdisc,
  type TcDriver,
  TcError,
} from "../../tc/driver.ts";
import { errnoText, isNoDevice } from "./errno.ts";
import { interfaceIndex, NetlinkSocket, NetlinkSocketError, SEND_BYTES } from "./socket.ts";
import { filterDumpRequest, qdiscDumpRequest, writeCommand } from "./tc_encode.ts";
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

/** Drives TC through an rtnetlink socket. */
export class NetlinkDriver implements TcDriver {
  readonly name = "netlink";
  readonly stats: DriverStats = { calls: 0 };
  #socket?: NetlinkSocket;
  #seq = Math.floor(Math.random() * 0x3fffffff) + 1;

  constructor(private readonly timeoutMs = 10_000) {}

  /** Opens the socket now, so a node that cannot use netlink fails at start, not per sync. */
  open(): void {
    this.#open();
  }

  /** Closes the socket; the next call opens a new one. */
  close(): void {
    this.#socket?.close();
    this.#socket = undefined;
  }

  #open(): NetlinkSocket {
    this.#socket ??= new NetlinkSocket(this.timeoutMs);
    return this.#socket;
  }

  #nextSeq(): number {
    this.#seq = this.#seq >= 0x7fffffff ? 1 : this.#seq + 1;
    return this.#seq;
  }

  #index(device: string): number {
    checkedDevice(device);
    const index = this.#guarded(device, () => interfaceIndex(device));
    if (index === 0) throw new DeviceMissing(device, "device not found");
    return index;
  }

  /**
   * Runs `exchange` on the socket. A socket failure or an answer that does
   * not parse closes the socket (it may be out of step) and becomes an
   * error naming the device.
   */
  #guarded<T>(device: string, exchange: (socket: NetlinkSocket) => T): T {
    try {
      return exchange(this.#open());
    } catch (error) {
      if (error instanceof NetlinkSocketError || error instanceof NetlinkFormatError) {
        this.close();
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
  ): T[] {
    return this.#guarded(device, (socket) => {
      for (let attempt = 1;; attempt++) {
        const seq = this.#nextSeq();
        this.stats.calls++;
        socket.send(encodeMessage(request, seq));
        const out: NetlinkMessage[] = [];
        let interrupted = false;
        for (;;) {
          const messages = decodeMessages(socket.receive()).filter((m) => m.seq === seq);
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
        if (!interrupted || attempt >= DUMP_ATTEMPTS) return out.map(decode);
      }
    });
  }

  /** Writes a step's requests back to back, each with its own sequence number. */
  #encode(ifindex: number, step: TcCommand[]): EncodedStep {
    // About 250 bytes per filter: one buffer for the whole step, rarely regrown.
    const writer = new NetlinkWriter(step.length * 256);
    const seqs = step.map(() => this.#nextSeq());
    step.forEach((command, i) => writeCommand(writer, ifindex, command, seqs[i]));
    return { commands: step, writer, bytes: writer.finish(), seqs };
  }

  /**
   * Sends an encoded step in as few datagrams as fit, asking for an ACK on
   * the last request of each (errors are always answered), and throws the
   * first error, with the number of others, once the whole step is answered.
   */
  #send(device: string, step: EncodedStep): void {
    this.#guarded(device, (socket) => {
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
        socket.send(bytes.subarray(starts[first], endOf(end - 1)));
        const lastSeq = seqs[end - 1];
        for (let answered = false; !answered;) {
          for (const message of decodeMessages(socket.receive())) {
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
  #filterDump(device: string, ifindex: number, hook: Hook): DecodedFilter[] {
    return this.#dump(
      device,
      filterDumpRequest(ifindex, hook),
      `filter show dev ${device} ${hook}`,
      decodeFilter,
    );
  }

  read(device: string): Promise<TcState> {
    return Promise.resolve().then(() => this.#read(device));
  }

  #read(device: string): TcState {
    const ifindex = this.#index(device);
    const kinds = this.#dump(
      device,
      qdiscDumpRequest(ifindex),
      `qdisc show dev ${device}`,
      decodeQdisc,
    )
      .filter((q) => q.ifindex === ifindex)
      .map((q) => q.kind);
    const state: TcState = {
      device,
      clsact: kinds.includes("clsact"),
      foreignQdiscs: kinds.filter((kind) => kind !== "clsact" && !isDefaultQdisc(kind)),
      filters: [],
    };
    if (!state.clsact) return state;
    const foreign: string[] = [];
    const counters = new Map<string, FilterCounter>();
    for (const hook of HOOKS) {
      const filters: TcFilter[] = [];
      for (const decoded of this.#filterDump(device, ifindex, hook)) {
        if (!decoded) continue;
        if (!("filter" in decoded)) {
          foreign.push(decoded.foreign);
          continue;
        }
        filters.push(decoded.filter);
        if (decoded.counter) counters.set(counterKey(decoded.filter), decoded.counter);
      }
      // Chains in id order, as `tc` lists them; within a chain, the kernel's order.
      filters.sort((a, b) => a.chain - b.chain);
      for (const filter of filters) state.filters.push(filter);
    }
    state.foreignFilters = foreign;
    state.counters = counters;
    return state;
  }

  counters(device: string): Promise<Map<string, FilterCounter>> {
    return Promise.resolve().then(() => {
      const counters = new Map<string, FilterCounter>();
      for (const entry of this.#filterDump(device, this.#index(device), "ingress")) {
        if (entry && "filter" in entry && entry.counter) {
          counters.set(counterKey(entry.filter), entry.counter);
        }
      }
      return counters;
    });
  }

  apply(device: string, commands: TcCommand[]): Promise<void> {
    return Promise.resolve().then(() => this.#apply(device, commands));
  }

  #apply(device: string, commands: TcCommand[]): void {
    if (commands.length === 0) return;
    const ifindex = this.#index(device);
    // Everything is encoded (and so validated) before the first request goes out.
    const steps = commandSteps(commands).map((step) => this.#encode(ifindex, step));
    for (const step of steps) this.#send(device, step);
  }
}
