/**
 * Packets and bytes dropped by policy, per policed interface and direction:
 * the counters of the program's drop filters (src/tc/accounting.ts), read
 * through the driver and added up as deltas, so a total survives a program
 * swap (the old generation is read just before it goes) and a filter that
 * was re-created. Reads are serialised and at most one per `maxAgeMs`.
 */
import type { Direction } from "../cluster/types.ts";
import { log } from "../log/klog.ts";
import { interfaceKey, type InterfaceRules } from "../policy/model.ts";
import type { DropSite } from "../tc/accounting.ts";
import type { TcDriver } from "../tc/driver.ts";
import type { FilterCounter } from "../tc/model.ts";

/** One interface's drops in one direction since the agent started. */
export interface DropTotal {
  rules: InterfaceRules;
  direction: Direction;
  packets: number;
  bytes: number;
}

interface TrackedSite {
  total: DropTotal;
  /** The filter's counter at the last read. */
  last: FilterCounter;
}

function reason(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split("\n")[0];
}

/** Keeps the drop totals of every policed interface on the node. */
export class DropCounters {
  /** Device → its drop filters by counter key. */
  readonly #devices = new Map<string, Map<string, TrackedSite>>();
  /** `interface key|direction` → total. */
  readonly #totals = new Map<string, DropTotal>();
  #queue: Promise<void> = Promise.resolve();
  #readAt = -Infinity;

  constructor(
    private readonly driver: TcDriver,
    private readonly maxAgeMs = 2_000,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** The device now carries a program with these drop sites (after a successful sync). */
  track(device: string, sites: DropSite[]): void {
    const before = this.#devices.get(device);
    const tracked = new Map<string, TrackedSite>();
    for (const site of sites) {
      const id = `${interfaceKey(site.rules)}|${site.direction}`;
      let total = this.#totals.get(id);
      if (!total) {
        total = { rules: site.rules, direction: site.direction, packets: 0, bytes: 0 };
        this.#totals.set(id, total);
      }
      total.rules = site.rules;
      // A filter that stays keeps its last reading; a new one starts from zero.
      const last = before?.get(site.key)?.last ?? { packets: 0, bytes: 0 };
      tracked.set(site.key, { total, last });
    }
    if (tracked.size > 0) this.#devices.set(device, tracked);
    else this.#devices.delete(device);
  }

  /** The device carries no program of ours any more. */
  forget(device: string): void {
    this.#devices.delete(device);
  }

  /** Only these interfaces (by key) are still on the node: the totals of others go. */
  retain(keys: Set<string>): void {
    for (const [id, total] of this.#totals) {
      if (!keys.has(interfaceKey(total.rules))) this.#totals.delete(id);
    }
  }

  /** Reads the device now: its filters are about to change. Never throws. */
  settle(device: string): Promise<void> {
    if (!this.#devices.has(device)) return Promise.resolve();
    return this.#serialised(() => this.#read(device));
  }

  /** Reads every device, unless that was done less than `maxAgeMs` ago. Never throws. */
  refresh(): Promise<void> {
    return this.#serialised(async () => {
      if (this.now() - this.#readAt < this.maxAgeMs) return;
      for (const device of [...this.#devices.keys()]) await this.#read(device);
      this.#readAt = this.now();
    });
  }

  /** Every interface's totals, per direction. */
  totals(): DropTotal[] {
    return [...this.#totals.values()];
  }

  #serialised(body: () => Promise<void>): Promise<void> {
    const run = this.#queue.then(body);
    this.#queue = run.catch(() => {});
    return this.#queue;
  }

  async #read(device: string): Promise<void> {
    const tracked = this.#devices.get(device);
    if (!tracked) return;
    let counters: Map<string, FilterCounter>;
    try {
      counters = await this.driver.counters(device);
    } catch (error) {
      log.v(2, "cannot read drop counters", { device, err: reason(error) });
      return;
    }
    for (const [key, site] of tracked) {
      const now = counters.get(key);
      if (!now) continue;
      // A counter that went down belongs to a filter created anew: all of it is new.
      const fresh = now.packets < site.last.packets;
      site.total.packets += fresh ? now.packets : now.packets - site.last.packets;
      site.total.bytes += fresh ? now.bytes : now.bytes - site.last.bytes;
      site.last = now;
    }
  }
}
