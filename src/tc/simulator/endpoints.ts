/**
 * The two ends of a flow named the way people name them (`namespace/pod` or
 * an address, a network, a family), resolved to addresses and to the
 * filters each end's representor carries. A pod's address is its address on
 * the flow's network; pods of other nodes and plain addresses are on the
 * wire, behind the uplink.
 */
import { type Pod, podKey } from "../../cluster/types.ts";
import { parseIp } from "../../net/ip.ts";
import type { InterfaceRules } from "../../policy/model.ts";
import { deviceProgram } from "../generate.ts";
import { nodeRoles, placeholderPlacement } from "../placement.ts";
import type { TcFilter } from "../model.ts";
import type { FlowEnd } from "./flow.ts";

/**
 * Filters by {@link programKey} for the node's own pod interfaces (an empty
 * list when a representor carries nothing), and by {@link wireKey} for what
 * comes from the wire: pods of other nodes and plain addresses.
 */
export type ProgramsByInterface = ReadonlyMap<string, readonly TcFilter[]>;

/** The key of one pod interface's program: `namespace/pod|namespace/network`. */
export function programKey(pod: string, network: string): string {
  return `${pod}|${network}`;
}

/** The key of the program where a network's traffic from the wire enters (the uplink). */
export function wireKey(network: string): string {
  return `wire|${network}`;
}

/**
 * The programs a node's devices get, as the agent would write them, each
 * interface with a zone of its own (zone i + 1 for the i-th), every VF on one
 * PF: each local interface's representor, and the uplink for every network.
 */
export function nodePrograms(interfaces: readonly InterfaceRules[]): Map<string, TcFilter[]> {
  const placed = placeholderPlacement(interfaces);
  const byDevice = new Map(
    nodeRoles(placed).map((role) => [role.device, deviceProgram(role, 1).filters]),
  );
  const programs = new Map<string, TcFilter[]>();
  for (const p of placed) {
    programs.set(
      programKey(podKey(p.rules.pod), p.rules.network),
      byDevice.get(p.representor) ?? [],
    );
    programs.set(wireKey(p.rules.network), byDevice.get(p.uplink) ?? []);
  }
  return programs;
}

/** The filters where an end's packets enter the e-switch: its representor's, or the uplink's. */
function entryFilters(
  programs: ProgramsByInterface,
  pod: string | null,
  network: string,
): readonly TcFilter[] | undefined {
  const own = pod === null ? undefined : programs.get(programKey(pod, network));
  return own ?? programs.get(wireKey(network));
}

/** A flow as a person asks about it. */
export interface FlowQuery {
  /** `namespace/pod`. */
  from: string;
  /** `namespace/pod` or an address. */
  to: string;
  /** `namespace/name`; default: the network both pods share (or the sender's only one). */
  network?: string;
  family: 4 | 6;
}

/** Both ends resolved, and the network the flow is on. */
export interface ResolvedEnds {
  from: FlowEnd;
  to: FlowEnd;
  network: string;
}

function attachments(pods: readonly Pod[], ref: string) {
  const pod = pods.find((p) => `${p.namespace}/${p.name}` === ref);
  return pod ? pod.networkStatus.filter((s) => !s.isDefault) : null;
}

const pick = (ips: string[], family: 4 | 6) => ips.find((ip) => parseIp(ip)?.family === family);

/** Resolves a flow's ends; throws an Error saying what is missing. */
export function resolveEnds(
  pods: readonly Pod[],
  programs: ProgramsByInterface,
  query: FlowQuery,
): ResolvedEnds {
  const sources = attachments(pods, query.from);
  if (!sources) throw new Error(`no pod ${query.from}`);
  const toPod = query.to.includes("/") && parseIp(query.to) === null;
  const dests = toPod ? attachments(pods, query.to) : [];
  if (!dests) throw new Error(`no pod ${query.to}`);
  const network = query.network ??
    (toPod
      ? sources.find((s) => dests.some((d) => d.network === s.network))?.network
      : sources.length === 1
      ? sources[0].network
      : undefined);
  if (!network) throw new Error(`${query.from} -> ${query.to}: name the network (--network)`);
  const source = sources.find((s) => s.network === network);
  const sourceAddress = source && pick(source.ips, query.family);
  if (!sourceAddress) {
    throw new Error(`${query.from} has no IPv${query.family} address on ${network}`);
  }
  const from: FlowEnd = {
    address: sourceAddress,
    label: `${query.from} ${source!.interfaceName}`,
    filters: entryFilters(programs, query.from, network),
  };
  if (!toPod) {
    if (parseIp(query.to)?.family !== query.family) {
      throw new Error(`${query.to} is not an IPv${query.family} address`);
    }
    return {
      from,
      to: { address: query.to, label: query.to, filters: entryFilters(programs, null, network) },
      network,
    };
  }
  const dest = dests.find((d) => d.network === network);
  const destAddress = dest && pick(dest.ips, query.family);
  if (!destAddress) throw new Error(`${query.to} has no IPv${query.family} address on ${network}`);
  const to: FlowEnd = {
    address: destAddress,
    label: `${query.to} ${dest!.interfaceName}`,
    filters: entryFilters(programs, query.to, network),
  };
  return { from, to, network };
}
