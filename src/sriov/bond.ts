/**
 * VF-LAG discovery from sysfs: whether a PF's uplink is a port of a bond
 * whose ports are all uplinks of the same e-switch (mlx5 activates LAG
 * only when both PF netdevs, and nothing else, are enslaved to one bond).
 * Then traffic from the wire reaches the VFs through either uplink, and the
 * uplink checks go in a shared block bound to all of them (src/tc/blocks.ts).
 */
import { checkInterfaceName } from "../cluster/validate.ts";
import { log } from "../log/klog.ts";
import { bondBlockIndex } from "../tc/blocks.ts";
import { listDirectory, readAttribute, readLinkBasename, readOptionalAttribute } from "./sysfs.ts";

/** A VF-LAG bond: its name, its ifindex, the uplinks that are its ports and their block. */
export interface UplinkBond {
  bond: string;
  ifindex: number;
  /** The uplinks, sorted (the PF's own among them). */
  members: string[];
  /** The shared block their checks go in. */
  block: number;
}

const UPLINK_PORT = /^p\d+$/;

/**
 * The VF-LAG bond `uplink` is a port of, or null: none, or a bond with
 * other ports than uplinks of e-switch `switchId` (no LAG in the NIC: the
 * uplink is its own port), or fewer than two.
 */
export async function findUplinkBond(
  root: string,
  uplink: string,
  switchId: string,
): Promise<UplinkBond | null> {
  const net = `${root}/class/net`;
  let bond: string;
  try {
    bond = await readLinkBasename(`${net}/${uplink}/master`);
  } catch {
    return null;
  }
  if (checkInterfaceName(bond) !== null) return null;
  const lowers = (await listDirectory(`${net}/${bond}`).catch(() => [] as string[]))
    .filter((name) => name.startsWith("lower_"))
    .map((name) => name.slice("lower_".length));
  const members: string[] = [];
  for (const lower of lowers) {
    const port = await readOptionalAttribute(`${net}/${lower}/phys_port_name`);
    const id = await readOptionalAttribute(`${net}/${lower}/phys_switch_id`);
    if (
      checkInterfaceName(lower) !== null || port === null || !UPLINK_PORT.test(port) ||
      id?.toLowerCase() !== switchId
    ) {
      log.v(2, "uplink's master is not a VF-LAG bond: a port is not an uplink of its e-switch", {
        uplink,
        bond,
        port: lower,
      });
      return null;
    }
    members.push(lower);
  }
  if (members.length < 2 || !members.includes(uplink)) return null;
  const ifindex = Number(await readAttribute(`${net}/${bond}/ifindex`));
  return { bond, ifindex, members: members.sort(), block: bondBlockIndex(ifindex) };
}
