/**
 * Shared blocks on top of either driver: a `block:N` device (src/tc/blocks.ts)
 * is its filters, read and written through the block, plus the uplinks the
 * block is to be bound to. Reading says which of them are not bound; the
 * plan's `qdisc-add` binds them and `qdisc-del` unbinds them all. Other
 * devices pass through unchanged.
 *
 * An uplink's clsact cannot change its block in place (the kernel refuses a
 * change of blocks, `net/sched/sch_api.c` `qdisc_change`), so binding one
 * that has a clsact of its own deletes that first. Uplinks with no clsact
 * are bound first, those to be re-bound only once the block's filters are
 * written, so each moment without checks is one delete and one add long —
 * unless every uplink had a program of its own: the first is then re-bound
 * before the block's filters can be written.
 */
import { log } from "../log/klog.ts";
import { blockIndexOf, isAgentBlock, type SharedBlocks } from "../tc/blocks.ts";
import { DeviceMissing, type DriverStats, type TcDriver, TcError } from "../tc/driver.ts";
import type { FilterCounter, TcCommand, TcState } from "../tc/model.ts";
import { isOurs } from "../tc/plan.ts";

/** What an uplink carries, as far as binding it goes. */
type Binding = "bound" | "free" | "own" | "gone";

/** A driver that also programs shared blocks, binding them to their uplinks. */
export class SharedBlockDriver implements TcDriver {
  constructor(private readonly inner: TcDriver, private readonly blocks: SharedBlocks) {}

  get name(): string {
    return this.inner.name;
  }

  get stats(): DriverStats {
    return this.inner.stats;
  }

  /** The driver this one wraps. */
  get base(): TcDriver {
    return this.inner;
  }

  async read(device: string): Promise<TcState> {
    const index = blockIndexOf(device);
    if (index === null) return await this.inner.read(device);
    const members = this.#members(device, index);
    const bindings = await Promise.all(members.map((m) => this.#binding(m, index)));
    // An uplink that is gone cannot be bound: it is bound again when it comes back.
    const unbound = members.filter((_, i) => ["free", "own"].includes(bindings[i].binding));
    if (bindings.every((b) => b.binding !== "bound")) {
      return { device, clsact: false, foreignQdiscs: [], filters: [], unbound };
    }
    const state = await this.inner.read(device);
    return { ...state, clsact: true, unbound };
  }

  counters(device: string): Promise<Map<string, FilterCounter>> {
    return this.inner.counters(device);
  }

  async apply(device: string, commands: TcCommand[]): Promise<void> {
    const index = blockIndexOf(device);
    if (index === null) return await this.inner.apply(device, commands);
    const later: string[] = [];
    let run: TcCommand[] = [];
    const flush = async () => {
      if (run.length > 0) await this.inner.apply(device, run);
      run = [];
    };
    for (const command of commands) {
      if (command.op === "qdisc-add") {
        await flush();
        later.push(...await this.#bind(device, index));
      } else if (command.op === "qdisc-del") {
        await flush();
        await this.#unbind(index);
      } else run.push(command);
    }
    await flush();
    for (const member of later) await this.#rebind(member, index);
  }

  #members(device: string, index: number): string[] {
    const members = this.blocks.members(index);
    if (members.length === 0) throw new TcError(device, "no uplinks are known for this block");
    return members;
  }

  /** Whether `member` is bound to block `index`, free, carries a clsact of its own, or is gone. */
  async #binding(member: string, index: number): Promise<{ binding: Binding; state?: TcState }> {
    try {
      const state = await this.inner.read(member);
      if (state.ingressBlock === index) return { binding: "bound", state };
      if (!state.clsact && !state.ingressQdisc) return { binding: "free", state };
      return { binding: "own", state };
    } catch (error) {
      if (error instanceof DeviceMissing) return { binding: "gone" };
      throw error;
    }
  }

  /**
   * Binds the free uplinks now; returns those to re-bind once the block's
   * filters are written (all of them but one when none was bound yet).
   */
  async #bind(device: string, index: number): Promise<string[]> {
    const members = this.#members(device, index);
    const found = await Promise.all(members.map((m) => this.#binding(m, index)));
    const own: string[] = [];
    let bound = 0;
    for (const [i, member] of members.entries()) {
      const { binding, state } = found[i];
      if (binding === "bound") bound++;
      if (binding === "free") {
        await this.inner.apply(member, [{ op: "qdisc-add", block: index }]);
        bound++;
      }
      if (binding === "own") {
        this.#checkTakeover(member, state!);
        own.push(member);
      }
    }
    if (bound === 0 && own.length > 0) await this.#rebind(own.shift()!, index);
    if (bound === 0 && own.length === 0) {
      throw new TcError(device, `none of its uplinks (${members.join(", ")}) is there to bind`);
    }
    return own;
  }

  /** An uplink's own clsact goes for the block only if nothing on it is another tool's. */
  #checkTakeover(member: string, state: TcState): void {
    if (state.ingressBlock !== undefined && !isAgentBlock(state.ingressBlock)) {
      throw new TcError(
        member,
        `its clsact is bound to shared block ${state.ingressBlock}, not one of the agent's: ` +
          `left alone (delete it to let the agent bind the bond's block)`,
      );
    }
    const foreign = [
      ...state.filters.filter((f) => !isOurs(f)).map((f) => `chain ${f.chain} prio ${f.prio}`),
      ...(state.foreignFilters ?? []),
    ];
    if (state.ingressQdisc || foreign.length > 0) {
      throw new TcError(
        member,
        `carries filters that are not the agent's (${
          state.ingressQdisc ? "an ingress qdisc" : foreign.slice(0, 3).join(", ")
        }): left alone; the bond's block cannot be bound to it`,
      );
    }
  }

  /** Replaces an uplink's own clsact by one bound to block `index`. */
  async #rebind(member: string, index: number): Promise<void> {
    await this.inner.apply(member, [{ op: "qdisc-del" }, { op: "qdisc-add", block: index }]);
    log.info("uplink's clsact re-bound to its bond's shared block", { device: member, index });
  }

  /** Deletes the clsact of every uplink bound to block `index` (the block goes with the last). */
  async #unbind(index: number): Promise<void> {
    for (const member of this.blocks.members(index)) {
      const { binding } = await this.#binding(member, index);
      if (binding === "bound") await this.inner.apply(member, [{ op: "qdisc-del" }]);
    }
  }
}
