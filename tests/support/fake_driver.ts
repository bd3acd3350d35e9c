/**
 * A TC driver for unit tests: keeps per-device state like the kernel would
 * (devices can be absent or vanish) and records every call.
 *
 * @module
 */
import { DeviceMissing, type TcDriver } from "../../src/tc/driver.ts";
import {
  counterKey,
  type FilterCounter,
  type TcCommand,
  type TcFilter,
  type TcState,
} from "../../src/tc/model.ts";

/**
 * A fake kernel behind the {@link TcDriver} interface. A device exists when
 * it is in {@link present}; reading or applying on another fails with
 * {@link DeviceMissing}. Commands act as the kernel's would: filters are
 * added, replaced and deleted by identity (hook, chain, prio, handle), a
 * chain delete removes the chain's filters, a qdisc delete all of them.
 */
export class RecordingDriver implements TcDriver {
  readonly name = "recording";
  readonly stats = { calls: 0 };
  /** Devices that exist. */
  readonly present: Set<string>;
  /** Device → the filters programmed there (absent: no clsact qdisc). */
  readonly programmed = new Map<string, TcFilter[]>();
  /** The command lists applied, in order. */
  readonly applied: TcCommand[][] = [];
  /** The command lists applied, in order, with their device. */
  readonly log: { device: string; commands: TcCommand[] }[] = [];

  /** Device → what each filter has counted; a filter deleted loses its count, as in the kernel. */
  readonly counts = new Map<string, Map<string, FilterCounter>>();

  constructor(devices: Iterable<string> = []) {
    this.present = new Set(devices);
  }

  /** `packets` packets of `bytes` bytes each meet the filter (which must be programmed). */
  hit(device: string, filter: TcFilter, packets: number, bytes: number): void {
    const key = counterKey(filter);
    if (!(this.programmed.get(device) ?? []).some((f) => counterKey(f) === key)) {
      throw new Error(`${device}: no filter ${key}`);
    }
    const counts = this.counts.get(device) ?? new Map<string, FilterCounter>();
    const now = counts.get(key) ?? { packets: 0, bytes: 0 };
    counts.set(key, { packets: now.packets + packets, bytes: now.bytes + packets * bytes });
    this.counts.set(device, counts);
  }

  counters(device: string): Promise<Map<string, FilterCounter>> {
    this.stats.calls++;
    if (!this.present.has(device)) {
      return Promise.reject(new DeviceMissing(device, "device not found"));
    }
    const counts = this.counts.get(device) ?? new Map<string, FilterCounter>();
    const out = new Map<string, FilterCounter>();
    for (const filter of this.programmed.get(device) ?? []) {
      if (filter.hook !== "ingress") continue;
      out.set(counterKey(filter), counts.get(counterKey(filter)) ?? { packets: 0, bytes: 0 });
    }
    return Promise.resolve(out);
  }

  read(device: string): Promise<TcState> {
    this.stats.calls++;
    if (!this.present.has(device)) {
      return Promise.reject(new DeviceMissing(device, "device not found"));
    }
    const filters = this.programmed.get(device);
    return Promise.resolve({
      device,
      clsact: !!filters,
      foreignQdiscs: [],
      filters: filters ?? [],
    });
  }

  apply(device: string, commands: TcCommand[]): Promise<void> {
    this.stats.calls++;
    if (!this.present.has(device)) {
      return Promise.reject(new DeviceMissing(device, "device not found"));
    }
    this.applied.push(commands);
    this.log.push({ device, commands });
    const same = (a: TcFilter, b: TcFilter) =>
      a.hook === b.hook && a.chain === b.chain && a.prio === b.prio && a.handle === b.handle;
    for (const command of commands) {
      let filters = this.programmed.get(device);
      this.#forgetCounts(device, command);
      switch (command.op) {
        case "qdisc-add":
          if (!filters) this.programmed.set(device, []);
          break;
        case "qdisc-del":
          this.programmed.delete(device);
          break;
        case "filter-add":
        case "filter-replace":
          filters ??= [];
          this.programmed.set(device, [
            ...filters.filter((f) => !same(f, command.filter)),
            command.filter,
          ]);
          break;
        case "filter-del":
          this.programmed.set(device, (filters ?? []).filter((f) => !same(f, command.filter)));
          break;
        case "chain-del":
          this.programmed.set(
            device,
            (filters ?? []).filter((f) => !(f.hook === command.hook && f.chain === command.chain)),
          );
          break;
      }
    }
    return Promise.resolve();
  }

  #forgetCounts(device: string, command: TcCommand): void {
    const counts = this.counts.get(device);
    if (!counts) return;
    if (command.op === "qdisc-del") counts.clear();
    else if (command.op === "filter-del" || command.op === "filter-replace") {
      counts.delete(counterKey(command.filter));
    } else if (command.op === "chain-del") {
      for (const key of counts.keys()) {
        if (key.startsWith(`${command.hook} ${command.chain} `)) counts.delete(key);
      }
    }
  }
}
