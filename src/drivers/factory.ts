/** Builds the TC driver `--tc-driver` names. */
import { show } from "../log/quote.ts";
import { CmdlineDriver } from "./cmdline/driver.ts";
import type { TcDriver } from "../tc/driver.ts";
import { NetlinkDriver } from "./netlink/driver.ts";

/** The TC drivers the agent can program the kernel with, by `--tc-driver` name. */
export const TC_DRIVERS = ["cmdline", "netlink"] as const;
/** One of {@link TC_DRIVERS}. */
export type TcDriverName = typeof TC_DRIVERS[number];

/**
 * A driver by its `--tc-driver` name, ready to use (the netlink driver has
 * its socket open); throws for an unknown name or a driver that cannot run here.
 */
export function createDriver(name: string): TcDriver {
  if (name === "cmdline") return new CmdlineDriver();
  if (name === "netlink") {
    const driver = new NetlinkDriver();
    driver.open();
    return driver;
  }
  throw new Error(`unknown TC driver ${show(name)}: want cmdline or netlink`);
}
