/**
 * Notices, from the kernel's own notifications, when what the agent
 * programmed may no longer be there — a representor re-created under the
 * same name (VF reset, driver reload, switchdev toggled), a new
 * representor, or TC objects changed by another process — and asks the
 * sink to read those devices back and repair them, within a moment.
 */
import { log } from "../log/klog.ts";
import { blockIndexOf } from "../tc/blocks.ts";

/** What the kernel told, reduced to what the watch needs. */
export type KernelEvent =
  | { kind: "link-new" | "link-del"; ifindex: number; name: string }
  | { kind: "tc"; ifindex: number; portid: number; block?: number }
  | { kind: "overflow" };

/** The sink side: which devices carry a program, and how to repair some. */
export interface Repairer {
  devices(): Set<string>;
  repair(devices: ReadonlySet<string> | "all", cause: string): Promise<void>;
}

/** How the watch is wired to the system. */
export interface DriftWatchOptions {
  /** The interface index of a name (0: no such device). */
  indexOf: (name: string) => number;
  /** The uplinks a shared block (a `block:N` device) is bound to (default: none). */
  blockMembers?: (index: number) => string[];
  /** Whether a netlink port id is the agent's own (its netlink driver's sockets). */
  isOwnPort?: (portid: number) => boolean;
  /** How long events gather before one repair runs (ms). */
  settleMs?: number;
}

/** Turns kernel events into repairs of the devices they concern. */
export class DriftWatch {
  /** Interface index of each device we program, as last resolved. */
  #indexes = new Map<string, number>();
  /** Programmed devices deleted since (a link-new of the name is a re-creation). */
  #gone = new Set<string>();
  /** Names of links the kernel told about. */
  #seen = new Set<string>();
  #pending = new Map<string, string>();
  #all: string | null = null;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #running: Promise<void> = Promise.resolve();
  #stopped = false;

  constructor(private readonly sink: Repairer, private readonly options: DriftWatchOptions) {}

  /** Takes one kernel event. */
  handle(event: KernelEvent): void {
    if (this.#stopped) return;
    switch (event.kind) {
      case "overflow":
        this.#schedule(null, "the kernel dropped notifications");
        return;
      case "link-del":
        if (this.#indexesNow().get(event.name) === event.ifindex) {
          this.#gone.add(event.name);
          this.#indexes.delete(event.name);
          // Its qdisc went with it: nothing to read until it is back.
          this.#pending.delete(event.name);
          log.v(1, "a representor carrying our program went away", { device: event.name });
        }
        return;
      case "link-new": {
        const indexes = this.#indexesNow();
        const known = indexes.get(event.name);
        const block = this.#blockOf(event.name);
        if (this.#gone.delete(event.name) || (known !== undefined && known !== event.ifindex)) {
          indexes.set(event.name, event.ifindex);
          this.#schedule(event.name, "device re-created");
        } else if (block !== null) {
          // An uplink of a bond's block that was re-created is bound again.
          this.#schedule(block, "uplink re-created");
        } else if (known === undefined && !this.#seen.has(event.name)) {
          // A new device may be a representor the agent could not find before.
          this.#schedule(event.name, "device appeared");
        }
        this.#seen.add(event.name);
        return;
      }
      case "tc": {
        if (event.portid !== 0 && this.options.isOwnPort?.(event.portid)) return;
        for (const [name, index] of this.#indexesNow()) {
          if (index === event.ifindex) this.#schedule(name, "TC changed by another process");
        }
        for (const { device, index, members } of this.#programmedBlocks()) {
          if (
            event.block === index ||
            members.some((m) => event.ifindex > 0 && this.options.indexOf(m) === event.ifindex)
          ) {
            this.#schedule(device, "TC changed by another process");
          }
        }
        return;
      }
    }
  }

  /** Each programmed shared block: its device name, its index and the uplinks bound to it. */
  #programmedBlocks(): { device: string; index: number; members: string[] }[] {
    const out = [];
    for (const device of this.sink.devices()) {
      const index = blockIndexOf(device);
      if (index !== null) {
        out.push({ device, index, members: this.options.blockMembers?.(index) ?? [] });
      }
    }
    return out;
  }

  /** The programmed shared block (as a device) an uplink is bound to, or null. */
  #blockOf(member: string): string | null {
    return this.#programmedBlocks().find((b) => b.members.includes(member))?.device ?? null;
  }

  /** Resolves the index of every programmed device not resolved yet; forgets the rest. */
  #indexesNow(): Map<string, number> {
    const devices = this.sink.devices();
    for (const name of this.#indexes.keys()) if (!devices.has(name)) this.#indexes.delete(name);
    for (const name of this.#gone) if (!devices.has(name)) this.#gone.delete(name);
    for (const name of devices) {
      if (blockIndexOf(name) !== null) continue;
      if (!this.#indexes.has(name)) {
        const index = this.options.indexOf(name);
        if (index > 0) this.#indexes.set(name, index);
      }
    }
    return this.#indexes;
  }

  #schedule(device: string | null, cause: string): void {
    if (device === null) this.#all = cause;
    else if (!this.#pending.has(device)) this.#pending.set(device, cause);
    if (this.#timer !== undefined) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#running = this.#running.then(() => this.#flush());
    }, this.options.settleMs ?? 50);
  }

  async #flush(): Promise<void> {
    if (this.#stopped) return;
    const all = this.#all;
    const pending = this.#pending;
    this.#all = null;
    this.#pending = new Map();
    try {
      if (all !== null) {
        await this.sink.repair("all", all);
        return;
      }
      const causes = new Map<string, string[]>();
      for (const [device, cause] of pending) {
        causes.set(cause, [...causes.get(cause) ?? [], device]);
      }
      for (const [cause, devices] of causes) {
        log.v(2, "checking devices the kernel reported changed", { cause, devices });
        await this.sink.repair(new Set(devices), cause);
      }
    } catch (error) {
      log.warning("repair after a kernel event failed; the next resync retries", {
        err: error instanceof Error ? error.message : String(error),
      });
    }
  }

  /** Stops scheduling repairs and waits for one in progress. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#running;
  }
}
