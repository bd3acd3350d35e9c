/**
 * Brings representors to the TC program their interface's rules call for:
 * reads what the kernel has, plans the difference, applies it in one
 * driver call, and keeps the troubleshooting copy under --pod-rules-path.
 * It adopts what is already programmed and never flushes first.
 */
import type { TcDriver } from "./driver.ts";
import { log } from "../log/klog.ts";
import type { InterfaceRules } from "../policy/model.ts";
import type { TcCommand, TcProgram } from "./model.ts";
import { planUpdate, sameFilters } from "./plan.ts";
import { batchText, checkedDevice } from "./serialize.ts";

/** What one sync of one representor did. */
export interface SyncResult {
  device: string;
  /** Commands applied (0 when already right). */
  commands: number;
  /** Filters the representor carries afterwards. */
  filters: number;
  generation: number;
  foreign: string[];
  /** Filters of ours left on a hook the program no longer uses (`deferStaleHooks`). */
  deferred: number;
  /** The program the device now carries. */
  program: TcProgram;
}

/** Where the actuator keeps rule files (`--pod-rules-path`). */
export interface ActuatorOptions {
  podRulesPath?: string;
  /** Called before a device's filters change (e.g. to read their counters first). */
  beforeChange?: (device: string) => Promise<void>;
}

/** Where a device's program is written under --pod-rules-path, and the header it gets. */
export interface RulesFile {
  /** The directory under the root: a pod's UID, or `uplinks`. */
  dir: string;
  /** The file name (without directory). */
  name: string;
  /** Comment lines (without `# `) put before the commands. */
  header: string[];
}

/** The program a device should carry, written into the given generation. */
export type DesiredProgram = (generation: number) => TcProgram;

/** The rules file of a pod interface's representor. */
export function interfaceRulesFile(rules: InterfaceRules, device: string): RulesFile {
  return {
    dir: rules.pod.uid,
    name: `${rules.network.replace("/", "_")}-${device}.rules`,
    header: [
      `${rules.pod.namespace}/${rules.pod.name} ${rules.interfaceName} network ${rules.network} ` +
      `PCI ${rules.pciAddress} representor ${device}`,
    ],
  };
}

/** Applies TC programs through a driver. */
export class Actuator {
  /** Last program applied per device, to skip the kernel read when nothing changed. */
  #applied = new Map<string, TcProgram>();
  #files = new Map<string, string>();

  constructor(readonly driver: TcDriver, private readonly options: ActuatorOptions = {}) {}

  /** Makes `device` carry the program `desiredAt` describes (nothing of ours when null). */
  async sync(
    device: string,
    desired: DesiredProgram | null,
    options: { verify?: boolean; rulesFile?: RulesFile; deferStaleHooks?: boolean } = {},
  ): Promise<SyncResult> {
    checkedDevice(device);
    // Each generation's program is built once per sync, however often the plan asks for it.
    const built = new Map<number, TcProgram>();
    const desiredAt = (generation: number): TcProgram => {
      let program = built.get(generation);
      if (!program) {
        program = desired
          ? desired(generation)
          : { device, enabled: false, zone: 0, generation, filters: [] };
        built.set(generation, program);
      }
      return program;
    };
    const enforced = desiredAt(1).enabled;
    const last = this.#applied.get(device);
    if (last && !options.verify) {
      const again = desiredAt(last.generation);
      if (again.enabled === last.enabled && sameFilters(again.filters, last.filters)) {
        return {
          device,
          commands: 0,
          filters: last.filters.length,
          generation: last.generation,
          foreign: [],
          deferred: 0,
          program: last,
        };
      }
    }
    // What we applied last is what the kernel has (apply failures drop it), so a
    // change costs one driver call. The first sync of a device, `verify`, and
    // every removal read the kernel: removing the qdisc must not take filters
    // that are not ours with it.
    const current = last && !options.verify && enforced
      ? { device, clsact: last.enabled, foreignQdiscs: [], filters: last.filters }
      : await this.driver.read(device);
    const plan = planUpdate(current, desiredAt, { deferStaleHooks: options.deferStaleHooks });
    for (const item of plan.foreign) {
      log.warning("found a TC object that is not ours; leaving it", { device, object: item });
    }
    if (plan.commands.length > 0) await this.options.beforeChange?.(device);
    try {
      await this.driver.apply(device, plan.commands);
    } catch (error) {
      this.#applied.delete(device);
      throw error;
    }
    const program = desiredAt(plan.generation || 1);
    // With filters left behind, the kernel is not yet what was applied: read it next time.
    if (plan.deferred === 0) this.#applied.set(device, program);
    else this.#applied.delete(device);
    if (options.rulesFile && program.enabled) {
      await this.#writeRulesFile(options.rulesFile, device, program);
    }
    log.v(2, "representor synced", {
      device,
      commands: plan.commands.length,
      generation: plan.generation,
    });
    return {
      device,
      commands: plan.commands.length,
      filters: program.enabled ? program.filters.length : 0,
      generation: plan.generation,
      foreign: plan.foreign,
      deferred: plan.deferred,
      program,
    };
  }

  /** Removes every filter of ours from `device` and forgets its rules file. */
  async clean(device: string, podUid?: string): Promise<SyncResult> {
    const result = await this.sync(device, null);
    await this.removeRulesFiles(device, podUid);
    return result;
  }

  /** Forgets what was applied (e.g. after the device disappeared). */
  forget(device: string): void {
    this.#applied.delete(device);
  }

  async #writeRulesFile(file: RulesFile, device: string, program: TcProgram) {
    const root = this.options.podRulesPath;
    if (!root || !file.dir) return;
    const dir = `${root}/${file.dir}`;
    const path = `${dir}/${file.name}`;
    const commands: TcCommand[] = [
      { op: "qdisc-add" },
      ...program.filters.map((filter): TcCommand => ({ op: "filter-add", filter })),
    ];
    const header = [
      ...file.header,
      `generation ${program.generation}, ${program.filters.length} filters`,
    ].map((line) => `# ${line}\n`).join("");
    await Deno.mkdir(dir, { recursive: true });
    await Deno.writeTextFile(`${path}.tmp`, header + batchText(device, commands));
    await Deno.rename(`${path}.tmp`, path);
    const before = this.#files.get(device);
    if (before && before !== path) await Deno.remove(before).catch(() => {});
    this.#files.set(device, path);
  }

  /** Removes the rules file of a device (and its pod directory when empty). */
  async removeRulesFiles(device: string, podUid?: string): Promise<void> {
    const path = this.#files.get(device);
    this.#files.delete(device);
    const root = this.options.podRulesPath;
    if (!root) return;
    if (path) await Deno.remove(path).catch(() => {});
    if (podUid) {
      const dir = `${root}/${podUid}`;
      try {
        for await (const entry of Deno.readDir(dir)) {
          if (entry.name.endsWith(`-${device}.rules`)) await Deno.remove(`${dir}/${entry.name}`);
        }
        await Deno.remove(dir);
      } catch {
        // Not empty or already gone: both fine.
      }
    }
  }
}
