/**
 * The production rules sink: finds each interface's VF representor from its
 * PCI address and brings it to its rules with the TC actuator. Interfaces
 * that went away (pod deleted, moved to another node, network no longer
 * policed) are cleaned; a representor that disappeared needs no cleaning.
 */
import { DeviceMissing } from "../tc/driver.ts";
import { log } from "../log/klog.ts";
import type { InterfaceRules } from "../policy/model.ts";
import type { Actuator } from "../tc/actuator.ts";
import type { RulesChange, RulesResult, RulesSink } from "./sink.ts";

/** Maps a VF's PCI address to its representor netdev (src/sriov/representor.ts). */
export interface RepresentorLookup {
  resolve(pciAddress: string): Promise<string>;
}

interface Programmed {
  device: string;
  uid: string;
}

function reason(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split("\n")[0];
}

/** Applies rule changes to representors through the actuator. */
export class TcSink implements RulesSink {
  #programmed = new Map<string, Programmed>();
  #swept = false;

  /**
   * `allRepresentors` lists the node's VF representors; after the first
   * apply in which every interface succeeded (the first full sync), those not
   * carrying any interface's rules are cleaned: what pods deleted while the
   * agent was down left behind.
   */
  constructor(
    private readonly actuator: Actuator,
    private readonly representors: RepresentorLookup,
    private readonly allRepresentors?: () => Promise<string[]>,
  ) {}

  /** Representors currently carrying rules for some interface. */
  devices(): Set<string> {
    return new Set([...this.#programmed.values()].map((p) => p.device));
  }

  async apply(changes: RulesChange[]): Promise<RulesResult[]> {
    const results: RulesResult[] = [];
    for (const change of changes) {
      try {
        results.push(
          change.rules
            ? await this.#enforce(change.key, change.rules)
            : await this.#remove(change.key, change.previous),
        );
      } catch (error) {
        results.push({ key: change.key, error: reason(error) });
      }
    }
    if (!this.#swept && this.allRepresentors && results.every((r) => !r.error)) {
      this.#swept = true;
      await this.#sweepOrphans(this.allRepresentors);
    }
    return results;
  }

  async #sweepOrphans(list: () => Promise<string[]>): Promise<void> {
    const inUse = this.devices();
    let cleaned = 0;
    try {
      for (const device of await list()) {
        if (inUse.has(device)) continue;
        const result = await this.actuator.clean(device);
        this.actuator.forget(device);
        if (result.commands > 0) cleaned++;
      }
      log.info("swept representors left from pods that went away", { cleaned });
    } catch (error) {
      log.warning("could not sweep left-over representors", { err: reason(error) });
    }
  }

  async #enforce(key: string, rules: InterfaceRules): Promise<RulesResult> {
    const device = await this.representors.resolve(rules.pciAddress);
    const before = this.#programmed.get(key);
    if (before && before.device !== device) {
      await this.#cleanQuietly(before.device, before.uid);
    }
    try {
      const result = await this.actuator.sync(device, rules);
      this.#programmed.set(key, { device, uid: rules.pod.uid });
      return { key, filters: result.filters };
    } catch (error) {
      if (error instanceof DeviceMissing) this.actuator.forget(device);
      throw error;
    }
  }

  async #remove(key: string, previous: InterfaceRules | undefined): Promise<RulesResult> {
    const known = this.#programmed.get(key);
    this.#programmed.delete(key);
    let device = known?.device;
    if (!device && previous) {
      try {
        device = await this.representors.resolve(previous.pciAddress);
      } catch {
        return { key, filters: 0 }; // The VF is gone: nothing left to clean.
      }
    }
    // Another interface may have taken this VF over (its claim moved between pods): its
    // program stays.
    if (device && this.devices().has(device)) return { key, filters: 0 };
    if (device) await this.#cleanQuietly(device, known?.uid ?? previous?.pod.uid);
    return { key, filters: 0 };
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
