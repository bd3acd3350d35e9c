/** Builds the TC driver `--tc-driver` names. */
import { show } from "../log/quote.ts";
import { CmdlineDriver } from "./cmdline/driver.ts";
import type { TcDriver } from "../tc/driver.ts";
import { NetlinkDriver } from "./netlink/driver.ts";
import { SharedBlockDriver } from "./shared_block.ts";
import { SharedBlocks } from "../tc/blocks.ts";

/** The TC drivers the agent can program the kernel with, by `--tc-driver` name. */
export const TC_DRIVERS = ["cmdline", "netlink"] as const;
/** One of {@link TC_DRIVERS}. */
export type TcDriverName = typeof TC_DRIVERS[number];

/**
 * A driver by its `--tc-driver` name, ready to use (the netlink driver has
 * its socket open), that also programs the shared blocks of `blocks`;
 * throws for an unknown name or a driver that cannot run here.
 */
export function createDriver(name: string, blocks = new SharedBlocks()): TcDriver {
  if (name === "cmdline") return new SharedBlockDriver(new CmdlineDriver(), blocks);
  if (name === "netlink") {
    const driver = new NetlinkDriver();
    driver.open();
    return new SharedBlockDriver(driver, blocks);
  }
  throw new Error(`unknown TC driver ${show(name)}: want cmdline or netlink`);
}

/** The driver under the shared-block layer (e.g. to reach the netlink driver's socket). */
export function baseDriver(driver: TcDriver): TcDriver {
  return driver instanceof SharedBlockDriver ? driver.base : driver;
}
