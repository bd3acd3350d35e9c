/**
 * The `cmdline` TC driver: reads with `tc -json`, writes with one
 * `tc -batch` per representor (make-before-break order kept by the
 * actuator's command list).
 */
import { HOOKS, type TcCommand, type TcState } from "../../tc/model.ts";
import { parseChainShow, parseFilterShow, parseQdiscShow } from "./tc_json.ts";
import { batchText, checkedDevice } from "../../tc/serialize.ts";
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
    const qdiscs = parseQdiscShow(
      await this.#tc(device, ["-json", "qdisc", "show", "dev", device]),
    );
    const state: TcState = {
      device,
      clsact: qdiscs.clsact,
      foreignQdiscs: qdiscs.others.filter((kind) => !isDefaultQdisc(kind)),
      filters: [],
    };
    if (!qdiscs.clsact) return state;
    const foreign: string[] = [];
    for (const hook of HOOKS) {
      const chains = parseChainShow(
        await this.#tc(device, ["-json", "chain", "show", "dev", device, hook]),
      );
      if (!chains.includes(0)) chains.unshift(0);
      for (const chain of chains) {
        const text = await this.#tc(device, [
          "-json",
          "filter",
          "show",
          "dev",
          device,
          hook,
          "chain",
          String(chain),
        ]);
        const parsed = parseFilterShow(text, hook, chain);
        for (const filter of parsed.filters) state.filters.push(filter);
        for (const text of parsed.foreign) foreign.push(text);
      }
    }
    state.foreignFilters = foreign;
    return state;
  }

  async apply(device: string, commands: TcCommand[]): Promise<void> {
    if (commands.length === 0) return;
    await this.#tc(device, ["-batch", "-"], batchText(device, commands));
  }
}
