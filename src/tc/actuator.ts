/**
 * Brings representors to the TC program their interface's rules call for:
 * reads what the kernel has, plans the difference, applies it in one
 * driver call, and keeps the troubleshooting copy under --pod-rules-path.
 * It adopts what is already programmed and never flushes first.
 */
import type { TcDriver } from "./driver.ts";
import { log } from "../log/klog.ts";
import type { InterfaceRules } from "../policy/model.ts";
import type { TcCommand, TcProgram, TcState } from "./model.ts";
import { type Drift, findDrift } from "./drift.ts";
import { planUpdate } from "./plan.ts";
import { sameProgram } from "./compare.ts";
import { batchText, checkedDevice } from "./serialize.ts";
import { interfaceRulesName, podRulesDir, sweepRulesDir } from "./rules_dir.ts";

/** What one sync of one representor did. */
export interface SyncResult {
  device: string;
  /** Commands applied (0 when already right). */
  commands: number;
  /** Filters the representor carries afterwards. */
  filters: number;
  generation: number;
  foreign: string[];
  /** The foreign filters among them that traffic meets before or inside our program. */
  ahead: string[];
  /** Whether this sync read the device from the kernel (else `foreign` and `ahead` are unknown). */
  read: boolean;
  /**
   * Set when the kernel no longer held what was last applied although the
   * program had not changed (someone else changed the device): what was
   * wrong. The sync repaired it.
   */
  drift?: Drift;
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

/**
 * The rules file of a pod interface's representor, in the Go agent's layout:
 * `<pod uid>/<namespace>-<network>-<representor>.rules` (no file when the UID
 * is not safe as a directory name).
 */
export function interfaceRulesFile(rules: InterfaceRules, device: string): RulesFile {
  return {
    dir: podRulesDir(rules.pod.uid),
    name: interfaceRulesName(rules.network, device),
    header: [
      `${rules.pod.namespace}/${rules.pod.name} ${rules.interfaceName} network ${rules.network} ` +
      `PCI ${rules.pciAddress} representor ${device}`,
    ],
  };
}

/** What a device carries when it is what was last applied to it. */
function appliedState(program: TcProgram): TcState {
  return {
    device: program.device,
    clsact: program.enabled,
    foreignQdiscs: [],
    filters: program.filters,
  };
}

/** Applies TC programs through a driver. */
export class Actuator {
  /** Last program applied per device, to skip the kernel read when nothing changed. */
  #applied = new Map<string, TcProgram>();
  #files = new Map<string, string>();
  /** Per device, the foreign objects last warned about (warned again only when they change). */
  #warned = new Map<string, string>();
  /** States read by {@link Actuator.read} that the device's next sync plans from. */
  #fresh = new Map<string, TcState>();

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
    const again = last && desiredAt(last.generation);
    // The handles of allow filters do not count: an in-place edit kept the device's.
    const unchanged = last !== undefined && again !== undefined &&
      again.enabled === last.enabled && sameProgram(again.filters, last.filters);
    if (last && unchanged && !options.verify) {
      return {
        device,
        commands: 0,
        filters: last.filters.length,
        generation: last.generation,
        foreign: [],
        ahead: [],
        read: false,
        deferred: 0,
        program: last,
      };
    }
    // What we applied last is what the kernel has (apply failures drop it), so a
    // change costs one driver call. The first sync of a device, `verify`, and
    // every removal read the kernel: removing the qdisc must not take filters
    // that are not ours with it.
    const read = !(last && !options.verify && enforced);
    const fresh = this.#fresh.get(device);
    this.#fresh.delete(device);
    const current = read ? fresh ?? await this.driver.read(device) : appliedState(last!);
    const plan = planUpdate(current, desiredAt, { deferStaleHooks: options.deferStaleHooks });
    const drift = last && unchanged && plan.commands.length > 0
      ? findDrift(current, last) ?? undefined
      : undefined;
    this.#warnForeign(device, plan.foreign);
    if (plan.commands.length > 0) await this.options.beforeChange?.(device);
    try {
      await this.driver.apply(device, plan.commands);
    } catch (error) {
      this.#applied.delete(device);
      throw error;
    }
    const program = plan.program ?? desiredAt(plan.generation || 1);
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
      ahead: plan.ahead,
      read,
      drift,
      deferred: plan.deferred,
      program,
    };
  }

  /**
   * What `device` carries: as last applied, or read from the kernel (the
   * device's next sync then plans from that read instead of reading again).
   */
  async read(device: string): Promise<TcState> {
    const last = this.#applied.get(device);
    if (last) return appliedState(last);
    const state = await this.driver.read(checkedDevice(device));
    this.#fresh.set(device, state);
    return state;
  }

  /** Warns about objects that are not ours, once per device until they change. */
  #warnForeign(device: string, foreign: string[]): void {
    const text = foreign.join("; ");
    if (this.#warned.get(device) === text) return;
    if (text) this.#warned.set(device, text);
    else this.#warned.delete(device);
    for (const item of foreign) {
      log.warning("found a TC object that is not ours; leaving it", { device, object: item });
    }
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
    this.#fresh.delete(device);
    this.#warned.delete(device);
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
    const podDir = podUid ? podRulesDir(podUid) : "";
    if (podDir) {
      const dir = `${root}/${podDir}`;
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

  /**
   * Removes from --pod-rules-path every pod directory and rules file this
   * actuator has not written (pods gone, also while the agent was down).
   * Call it once every current program has been synced; never throws.
   */
  async sweepRulesFiles(): Promise<void> {
    const root = this.options.podRulesPath;
    if (!root) return;
    const keep = new Map<string, Set<string>>();
    for (const path of this.#files.values()) {
      const [dir, name] = path.slice(root.length + 1).split("/");
      keep.set(dir, (keep.get(dir) ?? new Set()).add(name));
    }
    await sweepRulesDir(root, keep);
  }
}
