/** Shared setup for tests that run inside the kernel VM (see ../kernel.test.ts). */
import { loadManifests } from "../../../src/cluster/manifests.ts";
import type { ParsedObject } from "../../../src/cluster/parse.ts";
import type { ClusterState } from "../../../src/cluster/types.ts";
import { CmdlineDriver } from "../../../src/drivers/cmdline/driver.ts";
import { NetlinkDriver } from "../../../src/drivers/netlink/driver.ts";
import type { TcState } from "../../../src/tc/model.ts";

/** The bundled example cluster as objects and state. */
export async function exampleCluster(): Promise<{ objects: ParsedObject[]; state: ClusterState }> {
  const loaded = await loadManifests([new URL("../../../examples/", import.meta.url).pathname]);
  if (loaded.errors.length > 0) throw new Error(JSON.stringify(loaded.errors));
  const objects: ParsedObject[] = [
    ...loaded.state.pods.map((value) => ({ kind: "Pod" as const, value })),
  ];
  return { objects, state: loaded.state };
}

/** A device's state as each driver reads it. */
export async function readBoth(
  device: string,
): Promise<{ viaTc: TcState; viaNetlink: TcState }> {
  const viaTc = await new CmdlineDriver().read(device);
  const viaNetlink = await new NetlinkDriver().read(device);
  return { viaTc, viaNetlink };
}
