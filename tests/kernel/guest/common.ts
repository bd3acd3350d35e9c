/** Shared setup for tests that run inside the kernel VM (see ../kernel.test.ts). */
import { loadManifests } from "../../../src/cluster/manifests.ts";
import type { ParsedObject } from "../../../src/cluster/parse.ts";
import type { ClusterState } from "../../../src/cluster/types.ts";
import { CmdlineDriver } from "../../../src/drivers/cmdline/driver.ts";
import { NetlinkDriver } from "../../../src/drivers/netlink/driver.ts";
import assert from "node:assert/strict";
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

/**
 * A device's state as each driver reads it: cmdline first, then netlink.
 * Counters are live (a stray IPv6 packet may pass between the two reads),
 * so {@link assertSameRead} compares them as "never behind", not equal.
 */
export async function readBoth(
  device: string,
): Promise<{ viaTc: TcState; viaNetlink: TcState }> {
  const viaTc = await new CmdlineDriver().read(device);
  const viaNetlink = await new NetlinkDriver().read(device);
  return { viaTc, viaNetlink };
}

/**
 * The two reads of {@link readBoth} agree: the same objects exactly, the same
 * counted filters, and no counter in the later netlink read behind the
 * earlier cmdline one.
 */
export function assertSameRead(viaNetlink: TcState, viaTc: TcState, message = viaTc.device): void {
  const { counters: later, ...netlinkObjects } = viaNetlink;
  const { counters: earlier, ...tcObjects } = viaTc;
  assert.deepEqual(netlinkObjects, tcObjects, message);
  assert.deepEqual([...(later ?? new Map()).keys()], [...(earlier ?? new Map()).keys()], message);
  for (const [key, before] of earlier ?? []) {
    const after = later!.get(key)!;
    assert.ok(
      after.packets >= before.packets && after.bytes >= before.bytes,
      `${message}: counter ${key} went back from ${JSON.stringify(before)} to ${
        JSON.stringify(after)
      }`,
    );
  }
}
