/**
 * Where each VF sits, for the sink: its representor and e-switch from
 * sysfs, and where its PF's uplink checks go — the uplink itself, or,
 * where the uplink is a port of a VF-LAG bond, the bond's shared block
 * (recorded with its uplinks for the driver to bind).
 */
import { findUplinkBond } from "../sriov/bond.ts";
import type { RepresentorResolver } from "../sriov/representor.ts";
import { blockDevice, type SharedBlocks } from "../tc/blocks.ts";
import type { RepresentorLookup, VfPlacement } from "./tc_sink.ts";

/** A lookup that places uplink checks on a bond's shared block where there is one. */
export function bondAwareLookup(
  resolver: RepresentorResolver,
  blocks: SharedBlocks,
): RepresentorLookup {
  return {
    async lookup(pciAddress: string): Promise<VfPlacement> {
      const info = await resolver.lookup(pciAddress);
      const root = resolver.sysfsRoot === "/" ? "" : resolver.sysfsRoot;
      const bond = await findUplinkBond(root, info.uplink, info.switchId);
      if (!bond) {
        return { representor: info.representor, uplink: info.uplink, switchId: info.switchId };
      }
      blocks.set(bond.block, bond.members);
      return {
        representor: info.representor,
        uplink: blockDevice(bond.block),
        switchId: info.switchId,
        uplinkMembers: bond.members,
      };
    },
  };
}
