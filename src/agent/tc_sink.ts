/**
 * The production rules sink: places every local interface on the node's
 * e-switches (its representor, its PF's uplink and its conntrack zone, from
 * the VF's PCI address), works out what each device must check
 * (src/tc/placement.ts) and brings every device to its program with the TC
 * actuator. Devices that no longer need a program are cleaned; a
 * representor that disappeared needs no cleaning.
 */
import { DeviceMissing } from "../tc/driver.ts";
import { log } from "../log/klog.ts";
import type { InterfaceRules } from "../policy/model.ts";
import { dropSites } from "../tc/accounting.ts";
import {
  type Actuator,
  type DesiredProgram,
  interfaceRulesFile,
  type RulesFile,
  type SyncResult,
} from "../tc/actuator.ts";
import type { Drift } from "../tc/drift.ts";
import { deviceProgram, type DeviceRole, isPoliced } from "../tc/generate.ts";
import { nodeRoles, type PlacedInterface } from "../tc/placement.ts";
import { isPredecessorFilter } from "../tc/plan.ts";
import { type Carried, enforcedBy, planTransition } from "../tc/transition.ts";
import { MAX_ZONES, ZoneAllocator } from "../tc/zones.ts";
import type { DropCounters } from "./drop_counters.ts";
import type { PodNotices } from "./enforcement_reports.ts";
import type { AgentMetrics } from "./metrics.ts";
import type { ApplyOptions, RulesChange, RulesResult, RulesSink } from "./sink.ts";

/**
 * Where a VF sits: its representor, where its PF's uplink checks go (the
 * uplink representor, or a VF-LAG bond's shared block, `block:N`) and its
 * e-switch.
 */
export interface VfPlacement {
  representor: string;
  uplink: string;
  switchId: string;
  /** For a shared block: the uplinks bound to it. */
  uplinkMembers?: string[];
}

/** Maps a VF's PCI address to where it sits (src/sriov/representor.ts). */
export interface RepresentorLookup {
  lookup(pciAddress: string): Promise<VfPlacement>;
}

function reason(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split("\n")[0];
}

function rulesFileOf(role: DeviceRole): RulesFile {
  if (role.sender) return interfaceRulesFile(role.sender.rules, role.device);
  return {
    dir: "uplinks",
    name: `${role.device}.rules`,
    header: [
      `uplink ${role.device}: ingress policy of ` +
      role.receivers.map(({ rules }) => `${rules.pod.namespace}/${rules.pod.name}`).join(", "),
    ],
  };
}

/** A pod whose checks a device carries. */
export interface PodRef {
  namespace: string;
  name: string;
  uid: string;
}

/** What the sink asks and tells besides its per-interface results. */
export interface SinkHooks {
  /** The program a device is to carry (default: its full program, `deviceProgram`). */
  program?(role: DeviceRole): DesiredProgram;
  /** The interfaces (by key) the sink enforces now; others are gone. */
  retain?(keys: ReadonlySet<string>): void;
  /** The daemon's metrics and Event recorder, once it has them. */
  attach?(metrics: AgentMetrics, events: PodNotices | null): void;
  /** The kernel no longer held what was applied (someone changed the device); it was repaired. */
  repaired?(device: string, drift: Drift, cause: string): void;
  /**
   * The foreign filters a device carries ahead of or inside our program
   * changed (empty: none any more); `pods` are those whose checks it holds.
   */
  foreignAhead?(device: string, pods: PodRef[], ahead: string[]): void;
  /** A device was synced: its role and what the sync did (e.g. to check offload status). */
  synced?(role: DeviceRole, result: SyncResult): Promise<void> | void;
  /** A device no longer carries a program of ours (cleaned, or gone with its pod). */
  released?(device: string): void;
}

/** The pods whose checks a device carries. */
export function podsOf(role: DeviceRole): PodRef[] {
  const rules = [role.sender?.rules, ...role.receivers.map((r) => r.rules)];
  const pods = new Map<string, PodRef>();
  for (const r of rules) if (r) pods.set(r.pod.uid, r.pod);
  return [...pods.values()];
}

/** Applies rule changes to the node's devices through the actuator. */
export class TcSink implements RulesSink {
  /** The rules of every interface to enforce, by interface key. */
  readonly #rules = new Map<string, InterfaceRules>();
  /** Devices carrying a program of ours, and the pod UID whose rules file they have. */
  #programmed = new Map<string, string | undefined>();
  readonly #zones = new ZoneAllocator();
  /** Where each interface's VF was last found. */
  readonly #known = new Map<string, VfPlacement>();
  #swept = false;
  /** Whether the sync loop has handed over rules yet. */
  #started = false;
  /** Every call runs after the one before it: applies and repairs never interleave. */
  #queue: Promise<unknown> = Promise.resolve();
  /** Per device, the foreign filters ahead of ours last reported. */
  readonly #ahead = new Map<string, string>();
  /** Per device, what its program enforces, as last applied (src/tc/transition.ts). */
  readonly #enforced = new Map<string, Omit<Carried, "predecessor">>();
  /** Per shared block (as a device), the uplinks it was last placed on. */
  readonly #blockMembers = new Map<string, string[]>();

  /**
   * `allRepresentors` lists the node's representors (VFs and uplinks); after
   * the first apply in which every interface succeeded (the first full
   * sync), those not carrying any program are cleaned: what pods deleted
   * while the agent was down left behind. `drops` learns the drop filters
   * of every program applied.
   */
  constructor(
    private readonly actuator: Actuator,
    private readonly representors: RepresentorLookup,
    private readonly allRepresentors?: () => Promise<string[]>,
    readonly drops?: DropCounters,
    private readonly hooks: SinkHooks = {},
  ) {}

  attach(metrics: AgentMetrics, events: PodNotices | null): void {
    this.hooks.attach?.(metrics, events);
  }

  /** Filters per device, as last synced. */
  #filters = new Map<string, number>();

  /** Devices currently carrying a program. */
  devices(): Set<string> {
    return new Set(this.#programmed.keys());
  }

  filtersInPlace(): number {
    let total = 0;
    for (const [device, count] of this.#filters) if (this.#programmed.has(device)) total += count;
    return total;
  }

  apply(changes: RulesChange[], options: ApplyOptions = {}): Promise<RulesResult[]> {
    return this.#serial(() => {
      this.#started = true;
      return this.#apply(changes, options.verify ?? new Set(), "resync");
    });
  }

  /**
   * Reads the given devices (or all) back from the kernel and repairs any
   * difference from what was applied; `cause` is logged with each repair.
   */
  repair(devices: ReadonlySet<string> | "all", cause: string): Promise<void> {
    return this.#serial(async () => {
      // Before the sync loop's first apply the sink knows no rules: nothing to repair yet.
      if (!this.#started) return;
      await this.#apply([], devices, cause);
    });
  }

  #serial<T>(work: () => Promise<T>): Promise<T> {
    const next = this.#queue.then(work, work);
    this.#queue = next.catch(() => {});
    return next;
  }

  async #apply(
    changes: RulesChange[],
    verify: ReadonlySet<string> | "all",
    cause: string,
  ): Promise<RulesResult[]> {
    for (const change of changes) {
      if (change.rules) this.#rules.set(change.key, change.rules);
      else this.#rules.delete(change.key);
    }
    const { placed, errors, held } = await this.#place();
    const roles = await this.#transition(nodeRoles([...placed.values()]), cause);
    const deviceErrors = new Map<string, string>();
    const sync = async (role: DeviceRole, deferStaleHooks: boolean) => {
      try {
        const result = await this.actuator.sync(
          role.device,
          this.hooks.program?.(role) ?? ((generation) => deviceProgram(role, generation)),
          {
            rulesFile: rulesFileOf(role),
            deferStaleHooks,
            verify: !deferStaleHooks || verify === "all" || verify.has(role.device),
          },
        );
        this.#filters.set(role.device, result.filters);
        if (result.commands > 0 || !this.#enforced.has(role.device)) {
          this.#enforced.set(role.device, enforcedBy(result.program.filters));
        }
        this.drops?.track(role.device, dropSites(role, result.program));
        this.#report(role, result, cause);
        if (result.read || result.commands > 0) await this.hooks.synced?.(role, result);
        return result.deferred;
      } catch (error) {
        if (error instanceof DeviceMissing) this.actuator.forget(role.device);
        deviceErrors.set(role.device, reason(error));
        return 0;
      }
    };
    // Every device gets its program first; only then do the checks an earlier program kept
    // on egress hooks go, so traffic meets the old checks or the new ones, never neither.
    const leftovers: DeviceRole[] = [];
    for (const role of roles) if (await sync(role, true) > 0) leftovers.push(role);
    for (const role of leftovers) if (!deviceErrors.has(role.device)) await sync(role, false);
    if (changes.length === 0) {
      // A repair has no interface results to carry its failures: they are logged here.
      for (const [device, err] of deviceErrors) {
        log.warning("cannot repair a device; the next resync retries", { device, cause, err });
      }
    }
    const wanted = new Map(roles.map((role) => [role.device, role.sender?.rules.pod.uid]));
    for (const [device, uid] of this.#programmed) {
      if (wanted.has(device) || held.has(device)) continue;
      try {
        await this.#cleanQuietly(device, uid);
        this.#filters.delete(device);
        this.#enforced.delete(device);
        this.#ahead.delete(device);
        this.drops?.forget(device);
        this.hooks.released?.(device);
      } catch (error) {
        log.warning("cannot clean a device that needs no program any more; will retry", {
          device,
          err: reason(error),
        });
        wanted.set(device, uid);
      }
    }
    for (const device of held) if (this.#programmed.has(device)) wanted.set(device, undefined);
    this.#programmed = wanted;
    this.drops?.retain(new Set(this.#rules.keys()));
    this.hooks.retain?.(new Set(this.#rules.keys()));
    const results = changes.map((change): RulesResult => {
      if (!change.rules) return { key: change.key, filters: 0 };
      const error = errors.get(change.key);
      const where = placed.get(change.key);
      if (error !== undefined || !where) return { key: change.key, error: error ?? "not placed" };
      const failed = deviceErrors.get(where.representor) ??
        (isPoliced(change.rules) ? deviceErrors.get(where.uplink) : undefined);
      if (failed !== undefined) return { key: change.key, error: failed };
      return { key: change.key, filters: this.#filters.get(where.representor) ?? 0 };
    });
    // Only an apply of the sync loop's (the first full sync) sweeps: a repair may come first.
    if (
      changes.length > 0 && !this.#swept && this.allRepresentors &&
      results.every((r) => !r.error)
    ) {
      this.#swept = true;
      await this.#sweepOrphans(this.allRepresentors);
      await this.actuator.sweepRulesFiles();
    }
    return results;
  }

  /**
   * Puts in place the checks that are new on their devices in steps
   * (src/tc/transition.ts), so that conntrack sees both directions of every
   * connection they commit; returns the roles in the order their final
   * programs are to be applied.
   */
  async #transition(roles: DeviceRole[], cause: string): Promise<DeviceRole[]> {
    const carried = new Map<string, Carried>();
    for (const role of roles) {
      const known = this.#enforced.get(role.device) ?? this.#inherited(role.device);
      if (known) carried.set(role.device, { ...known, predecessor: [] });
      else carried.set(role.device, await this.#read(role.device));
    }
    const { steps, final } = planTransition(roles, (device) => carried.get(device)!);
    for (const [i, step] of steps.entries()) {
      for (const role of step) {
        try {
          await this.actuator.sync(
            role.device,
            this.hooks.program?.(role) ?? ((generation) => deviceProgram(role, generation)),
            { deferStaleHooks: true },
          );
        } catch (error) {
          // The final program is what matters; it is tried next, and its failure reported.
          log.v(1, "a step towards a device's first program failed", {
            device: role.device,
            step: i + 1,
            err: reason(error),
          });
        }
      }
    }
    if (steps.length > 0) {
      log.v(2, "checks new on their devices put in place in steps", {
        steps: steps.length,
        devices: new Set(steps.flat().map((r) => r.device)).size,
        cause,
      });
    }
    return final;
  }

  /**
   * What an uplink enforced before it became a port of a VF-LAG bond, for
   * the bond's block; or the block's, for an uplink leaving it. Conntrack
   * zones are the node's, not a device's: the zones seen there were seen.
   */
  #inherited(device: string): Omit<Carried, "predecessor"> | undefined {
    const sources = this.#blockMembers.get(device) ??
      [...this.#blockMembers].filter(([, members]) => members.includes(device)).map(([b]) => b);
    const known = sources.map((d) => this.#enforced.get(d)).filter((e) => e !== undefined);
    if (known.length === 0) return undefined;
    return {
      sender: known.some((e) => e.sender),
      receivers: new Set(known.flatMap((e) => [...e.receivers])),
    };
  }

  /** What a device not yet synced here carries, read from the kernel (nothing when absent). */
  async #read(device: string): Promise<Carried> {
    try {
      const state = await this.actuator.read(device);
      const predecessor = !state.clsact && state.ingressQdisc
        ? state.filters.filter(isPredecessorFilter)
        : [];
      return { ...enforcedBy(state.filters), predecessor };
    } catch {
      // Unreadable (e.g. not there yet): treated as carrying nothing; its sync reports why.
      return { sender: false, receivers: new Set(), predecessor: [] };
    }
  }

  #report(role: DeviceRole, result: SyncResult, cause: string): void {
    if (result.drift) {
      log.info("repaired a device someone else changed", {
        device: role.device,
        reason: result.drift.reason,
        found: result.drift.detail,
        noticed: cause,
      });
      this.hooks.repaired?.(role.device, result.drift, cause);
    }
    // A sync that did not read the kernel knows nothing new about foreign filters.
    if (!result.read) return;
    const text = result.ahead.join("; ");
    if ((this.#ahead.get(role.device) ?? "") === text) return;
    if (text) this.#ahead.set(role.device, text);
    else this.#ahead.delete(role.device);
    this.hooks.foreignAhead?.(role.device, podsOf(role), result.ahead);
  }

  /** Every interface placed on its devices, with a zone when policed; the failures by key. */
  async #place(): Promise<{
    placed: Map<string, PlacedInterface>;
    errors: Map<string, string>;
    /** Representors of interfaces left as they are (no zone could be given). */
    held: Set<string>;
  }> {
    const placed = new Map<string, PlacedInterface>();
    const errors = new Map<string, string>();
    const held = new Set<string>();
    this.#zones.retain(new Set(this.#rules.keys()));
    for (const key of this.#known.keys()) if (!this.#rules.has(key)) this.#known.delete(key);
    for (const [key, rules] of this.#rules) {
      let where: VfPlacement;
      try {
        where = await this.representors.lookup(rules.pciAddress);
        this.#known.set(key, where);
      } catch (error) {
        errors.set(key, reason(error));
        // Where it was last seen: its checks stay there (on its representor, the uplink and
        // its peers' representors) until it is found again or goes; never dropped on a failure.
        const known = this.#known.get(key);
        if (!known) continue;
        where = known;
      }
      const zone = isPoliced(rules) ? this.#zones.assign(where.switchId, key) : 0;
      if (zone === null) {
        errors.set(
          key,
          `no conntrack zone left on e-switch ${where.switchId} (all ${MAX_ZONES} in use): ` +
            `interface not enforced`,
        );
        held.add(where.representor);
        continue;
      }
      if (where.uplinkMembers) this.#blockMembers.set(where.uplink, where.uplinkMembers);
      placed.set(key, { rules, ...where, zone });
    }
    return { placed, errors, held };
  }

  async #sweepOrphans(list: () => Promise<string[]>): Promise<void> {
    let cleaned = 0;
    try {
      for (const device of await list()) {
        if (this.#programmed.has(device)) continue;
        const result = await this.actuator.clean(device);
        this.actuator.forget(device);
        if (result.commands > 0) cleaned++;
      }
      log.info("swept representors left from pods that went away", { cleaned });
    } catch (error) {
      log.warning("could not sweep left-over representors", { err: reason(error) });
    }
  }

  async #cleanQuietly(device: string, uid?: string): Promise<void> {
    try {
      await this.actuator.clean(device, uid);
    } catch (error) {
      if (!(error instanceof DeviceMissing)) throw error;
      log.v(2, "representor already gone; nothing to clean", { device });
    }
    this.actuator.forget(device);
  }
}
