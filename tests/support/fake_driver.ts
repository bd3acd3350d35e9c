/**
 * A TC driver for unit tests: keeps per-device state like the kernel would
 * (devices can be absent or vanish) and records every call.
 *
 * @module
 */
import { DeviceMissing, type TcDriver } from "../../src/tc/driver.ts";
import type { TcCommand, TcFilter, TcState } from "../../src/tc/model.ts";

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

  constructor(devices: Iterable<string> = []) {
    this.present = new Set(devices);
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
}
