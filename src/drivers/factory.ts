/** Builds the TC driver `--tc-driver` names. */
import { CmdlineDriver } from "./cmdline.ts";
import type { TcDriver } from "./driver.ts";
import { NetlinkDriver } from "./netlink.ts";

/** A driver by its `--tc-driver` name; throws for an unknown name. */
export function createDriver(name: string): TcDriver {
  if (name === "cmdline") return new CmdlineDriver();
  if (name === "netlink") return new NetlinkDriver();
  throw new Error(`unknown TC driver ${JSON.stringify(name)}: want cmdline or netlink`);
}
