/**
 * Brings representors to the TC program their interface's rules call for:
 * reads what the kernel has, plans the difference, applies it in one
 * driver call, and keeps the troubleshooting copy under --pod-rules-path.
 * It adopts what is already programmed and never flushes first.
 */
import type { TcDriver } from "./driver.ts";
import { log } from "../log/klog.ts";
import type { InterfaceRules } from "../policy/model.ts";
import { generateProgram } from "./generate.ts";
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
}

/** How the actuator finds a representor's conntrack zone and where it keeps rule files. */
export interface ActuatorOptions {
  podRulesPath?: string;
  /** The ct zone for a device; default: derived from its ifindex. */
  zoneFor?: (device: string) => Promise<number>;
}

/** The ct zone for a device: from its ifindex, never 0 (the host's default zone). */
export async function zoneFromIfindex(device: string, sysfs = "/sys"): Promise<number> {
  const text = await Deno.readTextFile(`${sysfs}/class/net/${checkedDevice(device)}/ifindex`);
  const ifindex = Number(text.trim());
  return ((ifindex - 1) % 65_534) + 1;
}

function rulesFileName(rules: InterfaceRules, device: string): string {
  return `${rules.network.replace("/", "_")}-${device}.rules`;
}

/** Applies TC programs through a driver. */
export class Actuator {
  /** Last program applied per device, to skip the kernel read when nothing changed. */
  #applied = new Map<string, TcProgram>();
  #files = new Map<string, string>();

  constructor(readonly driver: TcDriver, private readonly options: ActuatorOptions = {}) {}

  /** Makes `device` enforce `rules` (or carry nothing of ours when `rules` is null). */
  async sync(
    device: string,
    rules: InterfaceRules | null,
    options: { verify?: boolean } = {},
  ): Promise<SyncResult> {
    checkedDevice(device);
    const enforced = rules !== null && (rules.ingress.isolated || rules.egress.isolated);
    const zone = enforced ? await (this.options.zoneFor ?? zoneFromIfindex)(device) : 0;
    const desiredAt = (generation: number): TcProgram =>
      rules
        ? generateProgram(rules, { device, zone, generation })
        : { device, enabled: false, zone: 0, generation, filters: [] };
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
    const plan = planUpdate(current, desiredAt);
    for (const item of plan.foreign) {
      log.warning("found a TC object that is not ours; leaving it", { device, object: item });
    }
    try {
      await this.driver.apply(device, plan.commands);
    } catch (error) {
      this.#applied.delete(device);
      throw error;
    }
    const program = desiredAt(plan.generation || 1);
    this.#applied.set(device, program);
    if (rules) await this.#writeRulesFile(rules, device, program);
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

  async #writeRulesFile(rules: InterfaceRules, device: string, program: TcProgram) {
    const root = this.options.podRulesPath;
    if (!root || !rules.pod.uid) return;
    const dir = `${root}/${rules.pod.uid}`;
    const path = `${dir}/${rulesFileName(rules, device)}`;
    const commands: TcCommand[] = program.enabled
      ? [
        { op: "qdisc-add" },
        ...program.filters.map((filter): TcCommand => ({ op: "filter-add", filter })),
      ]
      : [];
    const header = `# ${rules.pod.namespace}/${rules.pod.name} ${rules.interfaceName} ` +
      `network ${rules.network} PCI ${rules.pciAddress} representor ${device}\n` +
      `# generation ${program.generation}, ${program.filters.length} filters\n`;
    await Deno.mkdir(dir, { recursive: true });
    await Deno.writeTextFile(`${path}.tmp`, header + batchText(device, commands));
    await Deno.rename(`${path}.tmp`, path);
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
