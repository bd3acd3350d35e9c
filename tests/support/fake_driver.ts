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
 * {@link DeviceMissing}. Applying a `qdisc-del` removes a device's program;
 * any other command list replaces it with the filters the list adds.
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
    if (commands.some((c) => c.op === "qdisc-del")) this.programmed.delete(device);
    else {
      this.programmed.set(
        device,
        commands.flatMap((c) => (c.op === "filter-add" ? [c.filter] : [])),
      );
    }
    return Promise.resolve();
  }
}
