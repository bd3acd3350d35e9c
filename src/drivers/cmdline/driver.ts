/**
 * The `cmdline` TC driver: reads with `tc -s -json` (one process per hook), writes with one
 * `tc -batch` per representor (make-before-break order kept by the
 * actuator's command list).
 */
import {
  type FilterCounter,
  type FilterOffload,
  HOOKS,
  type TcCommand,
  type TcState,
} from "../../tc/model.ts";
import { parseFilterShow, parseQdiscShow } from "./tc_json.ts";
import { batchText, checkedDevice, targetText } from "../../tc/serialize.ts";
import { blockIndexOf } from "../../tc/blocks.ts";
import {
  DeviceMissing,
  type DriverStats,
  isDefaultQdisc,
  type TcDriver,
  TcError,
} from "../../tc/driver.ts";
import { runProcess } from "./process.ts";

/** Drives the `tc` binary. */
export class CmdlineDriver implements TcDriver {
  readonly name = "cmdline";
  readonly stats: DriverStats = { calls: 0 };

  constructor(private readonly tcPath = "tc") {}

  async #tc(device: string, args: string[], stdin?: string): Promise<string> {
    this.stats.calls++;
    const result = await runProcess(this.tcPath, args, stdin);
    const stderr = result.stderr.trim();
    if (result.code !== 0) {
      if (/Cannot find device|No such device/.test(stderr)) {
        throw new DeviceMissing(device, "device not found");
      }
      throw new TcError(
        device,
        `tc ${args.slice(0, 3).join(" ")} failed: ${stderr.split("\n").join("; ")}`,
      );
    }
    return result.stdout;
  }

  async read(device: string): Promise<TcState> {
    checkedDevice(device);
    if (blockIndexOf(device) !== null) return await this.#readBlock(device);
    const qdiscs = parseQdiscShow(
      await this.#tc(device, ["-json", "qdisc", "show", "dev", device]),
    );
    const state: TcState = {
      device,
      clsact: qdiscs.clsact,
      foreignQdiscs: qdiscs.others.filter((kind) => !isDefaultQdisc(kind)),
      filters: [],
    };
    if (qdiscs.ingress && !qdiscs.clsact) state.ingressQdisc = true;
    // Bound to a shared block, its filters are the block's: read there (src/drivers/shared_block.ts).
    if (qdiscs.ingressBlock !== undefined) return { ...state, ingressBlock: qdiscs.ingressBlock };
    if (!qdiscs.clsact && !qdiscs.ingress) return state;
    const foreign: string[] = [];
    const counters = new Map<string, FilterCounter>();
    const offload = new Map<string, FilterOffload>();
    // An ingress qdisc has one block: asked for "egress", the kernel lists it again.
    for (const hook of qdiscs.clsact ? HOOKS : ["ingress" as const]) {
      // Without a chain, tc lists every chain of the hook in one process and names each
      // filter's chain and where it is (in_hw / not_in_hw); `-s` adds the counters.
      const text = await this.#tc(device, ["-s", "-json", "filter", "show", "dev", device, hook]);
      const parsed = parseFilterShow(text, hook);
      // Chains in id order; within a chain, the kernel's order.
      parsed.filters.sort((a, b) => a.chain - b.chain);
      for (const filter of parsed.filters) state.filters.push(filter);
      for (const text of parsed.foreign) foreign.push(text);
      for (const [key, counter] of parsed.counters) counters.set(key, counter);
      for (const [key, where] of parsed.offload) offload.set(key, where);
    }
    state.counters = counters;
    state.offload = offload;
    state.foreignFilters = foreign;
    return state;
  }

  /**
   * A shared block's filters (all on its ingress side); the uplinks it is
   * bound to are read by src/drivers/shared_block.ts. A block no device is
   * bound to does not exist: it has no filters.
   */
  async #readBlock(device: string): Promise<TcState> {
    const text = await this.#ingressShow(device);
    const parsed = parseFilterShow(text, "ingress");
    parsed.filters.sort((a, b) => a.chain - b.chain);
    return {
      device,
      clsact: text !== "",
      foreignQdiscs: [],
      filters: parsed.filters,
      foreignFilters: parsed.foreign,
      counters: parsed.counters,
      offload: parsed.offload,
    };
  }

  /**
   * `tc -s -json filter show dev D ingress` (or `block N`); "" for a block
   * no device is bound to.
   */
  async #ingressShow(device: string): Promise<string> {
    const args = ["-s", "-json", "filter", "show", ...targetText(device, "ingress")];
    try {
      return await this.#tc(device, args);
    } catch (error) {
      if (error instanceof TcError && /Cannot find block/.test(error.message)) return "";
      throw error;
    }
  }

  async counters(device: string): Promise<Map<string, FilterCounter>> {
    checkedDevice(device);
    return parseFilterShow(await this.#ingressShow(device), "ingress").counters;
  }

  async apply(device: string, commands: TcCommand[]): Promise<void> {
    if (commands.length === 0) return;
    await this.#tc(device, ["-batch", "-"], batchText(device, commands));
  }
}
