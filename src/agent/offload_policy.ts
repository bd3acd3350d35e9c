/**
 * What `--offload=auto|require|off` does with each device's program: which
 * program a device gets (its own; with `skip_hw` under `off`; the deny-all
 * fallback under `require` when the NIC cannot hold it), and, after a sync,
 * what the kernel says reached the NIC, for metrics and Events. Devices
 * without `hw-tc-offload` (a veth) are simply software-only: no warnings
 * under `auto`.
 */
import { log } from "../log/klog.ts";
import { interfaceKey } from "../policy/model.ts";
import type { DesiredProgram, SyncResult } from "../tc/actuator.ts";
import { fallbackProgram } from "../tc/fallback.ts";
import { deviceProgram, type DeviceRole, isPoliced } from "../tc/generate.ts";
import { counterKey, type TcFilter, type TcState } from "../tc/model.ts";
import { checkProgram } from "../tc/offload/checker.ts";
import { type PodRef, podsOf } from "./tc_sink.ts";

/** The `--offload` modes. */
export const OFFLOAD_MODES = ["auto", "require", "off"] as const;
/** One `--offload` mode. */
export type OffloadMode = (typeof OFFLOAD_MODES)[number];

/** Where the policy reports. */
export interface OffloadReports {
  /** Filters of a device in the NIC and in software only, after its last sync. */
  status(device: string, inHardware: number, softwareOnly: number): void;
  /** A Warning Event on each pod (`reason`, one line). */
  warn(pods: PodRef[], reason: string, message: string): void;
}

/** What the policy needs from the system. */
export interface OffloadDeps {
  /** Whether a device has `hw-tc-offload` on (null: cannot tell). */
  hwTcOffload(device: string): boolean | null;
  /**
   * How many hardware copies a filter of the device has when all is well
   * (`in_hw_count`: one per uplink bound to a shared block; default 1).
   */
  copies?(device: string): number;
  /** Reads a device back (for its filters' `in_hw` flags). */
  read(device: string): Promise<TcState>;
  /** Asks for every device to be synced again (some programs changed). */
  resync(cause: string): void;
  reports: OffloadReports;
}

/** The Event reason for a filter that should be in the NIC and is not. */
export const NOT_OFFLOADED = "FilterNotOffloaded";

function describe(filter: TcFilter): string {
  return `chain ${filter.chain} prio ${filter.prio} handle ${filter.handle} (${filter.protocol})`;
}

/** Decides each device's program by `--offload` and checks what reached the NIC. */
export class OffloadPolicy {
  /**
   * Interfaces (by key) enforced by the fallback under `require`: why, and
   * their rules then (new rules get a new try at the full program).
   */
  readonly #fallback = new Map<string, { why: string; rules: string }>();
  /** Per device, the warning last given (one Event per distinct finding). */
  readonly #warned = new Map<string, string>();

  constructor(readonly mode: OffloadMode, private readonly deps: OffloadDeps) {}

  /** The program `role`'s device is to carry. */
  program(role: DeviceRole): DesiredProgram {
    const sender = role.sender;
    if (this.mode === "require" && sender && isPoliced(sender.rules)) {
      const key = interfaceKey(sender.rules);
      const rules = JSON.stringify(sender.rules);
      if (this.#fallback.get(key)?.rules !== rules) this.#fallback.delete(key);
      if (!this.#fallback.has(key) && this.deps.hwTcOffload(role.device) !== true) {
        this.#fallBack(
          role,
          key,
          `${role.device} has no hw-tc-offload: no filter can be in the NIC`,
        );
      }
      if (this.#fallback.has(key)) {
        return (generation) => fallbackProgram(role.device, sender.zone, generation);
      }
    }
    if (this.mode === "off") {
      return (generation) => {
        const program = deviceProgram(role, generation);
        return { ...program, filters: program.filters.map((f) => ({ ...f, skipHw: true })) };
      };
    }
    return (generation) => deviceProgram(role, generation);
  }

  /** Forgets interfaces that are gone (their fallback ends with them). */
  retain(keys: ReadonlySet<string>): void {
    for (const key of this.#fallback.keys()) if (!keys.has(key)) this.#fallback.delete(key);
  }

  /** After a sync of `role`'s device: what reached the NIC, reported; `require` enforced. */
  async check(role: DeviceRole, result: SyncResult): Promise<void> {
    const program = result.program;
    const filters = program.enabled ? program.filters : [];
    if (this.mode === "off" || filters.length === 0) {
      this.deps.reports.status(role.device, 0, filters.length);
      return;
    }
    if (this.deps.hwTcOffload(role.device) !== true) {
      this.deps.reports.status(role.device, 0, filters.length);
      return;
    }
    const state = await this.deps.read(role.device);
    const offload = state.offload ?? new Map();
    const copies = this.deps.copies?.(role.device) ?? 1;
    // In hardware: held by every device that should hold it (each uplink of a shared block).
    const held = (f: TcFilter) => {
      const where = offload.get(counterKey(f));
      return where?.inHw === true && (copies === 1 || where.inHwCount >= copies);
    };
    const inHardware = filters.filter(held).length;
    this.deps.reports.status(role.device, inHardware, filters.length - inHardware);
    const refused = checkProgram(filters).filters.filter((check) =>
      check.classification === "hardware" && !held(check.filter)
    );
    if (refused.length === 0) {
      this.#warned.delete(role.device);
      return;
    }
    const first = refused[0].filter;
    const finding = `${refused.length} of ${filters.length} filters on ${role.device} that the ` +
      `NIC should hold are in software only (the kernel reports not_in_hw), first ` +
      describe(first);
    if (this.mode === "auto") {
      if (this.#warned.get(role.device) === finding) return;
      this.#warned.set(role.device, finding);
      log.warning("filters the NIC should hold are in software only", {
        device: role.device,
        refused: refused.length,
        first: describe(first),
      });
      this.deps.reports.warn(podsOf(role), NOT_OFFLOADED, finding);
      return;
    }
    // require: every interface whose checks this device holds is enforced by the fallback.
    const affected = new Set<string>();
    for (const stage of [role.sender, ...role.receivers]) {
      if (!stage || !isPoliced(stage.rules)) continue;
      const key = interfaceKey(stage.rules);
      if (this.#fallback.has(key)) continue;
      this.#fallback.set(key, { why: finding, rules: JSON.stringify(stage.rules) });
      affected.add(key);
      this.#warnFallback(stage.rules.pod, stage.rules.interfaceName, finding);
    }
    if (affected.size > 0) this.deps.resync("offload refused");
  }

  #fallBack(role: DeviceRole, key: string, why: string): void {
    this.#fallback.set(key, { why, rules: JSON.stringify(role.sender!.rules) });
    this.#warnFallback(role.sender!.rules.pod, role.sender!.rules.interfaceName, why);
  }

  #warnFallback(pod: PodRef, interfaceName: string, why: string): void {
    const message = `--offload=require: ${why}; interface ${interfaceName} is enforced as ` +
      `deny-all (ARP and neighbour discovery pass) until its program can be offloaded`;
    log.warning("offload required and not possible: interface enforced as deny-all", {
      pod: `${pod.namespace}/${pod.name}`,
      interface: interfaceName,
      why,
    });
    this.deps.reports.warn([pod], NOT_OFFLOADED, message);
  }
}
