/**
 * `simulate` against a live node: the cluster listed once from the API
 * server (read-only), and the programs the node's devices hold now, read
 * back through the TC driver — foreign filters included — keyed as the
 * simulator's endpoint resolver expects.
 */
import type { ClusterState, ObjectError } from "../cluster/types.ts";
import { podKey } from "../cluster/types.ts";
import { createDriver } from "../drivers/factory.ts";
import { computeNodeRules } from "../policy/engine.ts";
import { RepresentorResolver } from "../sriov/representor.ts";
import { bondAwareLookup } from "../agent/uplink_lookup.ts";
import { SharedBlocks } from "../tc/blocks.ts";
import type { TcFilter } from "../tc/model.ts";
import { programKey, wireKey } from "../tc/simulator/endpoints.ts";
import { loadKubeConfig } from "../watching/kubeconfig.ts";
import { listCluster } from "../watching/list.ts";
import type { SimulateOptions } from "./simulate_flags.ts";

/** The live cluster and the node's programs; throws an Error saying what failed. */
export async function livePrograms(options: SimulateOptions): Promise<{
  state: ClusterState;
  errors: ObjectError[];
  programs: Map<string, TcFilter[]>;
}> {
  const kc = loadKubeConfig({ kubeconfig: options.kubeconfig, master: options.master });
  const { state, errors } = await listCluster(kc);
  const rules = computeNodeRules(state, {
    node: options.node,
    networkPlugins: options.networkPlugins,
  });
  const blocks = new SharedBlocks();
  const resolver = bondAwareLookup(new RepresentorResolver(options.sysfsRoot), blocks);
  const driver = createDriver(options.tcDriver, blocks);
  const programs = new Map<string, TcFilter[]>();
  const read = new Map<string, TcFilter[]>();
  const filtersOf = async (device: string) => {
    let filters = read.get(device);
    if (!filters) read.set(device, filters = (await driver.read(device)).filters);
    return filters;
  };
  for (const iface of rules.interfaces) {
    const where = await resolver.lookup(iface.pciAddress);
    programs.set(programKey(podKey(iface.pod), iface.network), await filtersOf(where.representor));
    programs.set(wireKey(iface.network), await filtersOf(where.uplink));
  }
  return { state, errors, programs };
}
