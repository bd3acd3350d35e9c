/**
 * The two ends of a flow named the way people name them (`namespace/pod` or
 * an address, a network, a family), resolved to addresses and to the
 * filters each end's representor carries. A pod's address is its address on
 * the flow's network; a plain address is a host on the bridge, with no
 * representor of its own.
 */
import { type Pod, podKey } from "../../cluster/types.ts";
import { parseIp } from "../../net/ip.ts";
import type { InterfaceRules } from "../../policy/model.ts";
import { generateProgram } from "../generate.ts";
import type { TcFilter } from "../model.ts";
import type { FlowEnd } from "./flow.ts";

/** Filters by {@link programKey}; interfaces without a program are absent. */
export type ProgramsByInterface = ReadonlyMap<string, readonly TcFilter[]>;

/** The key of one pod interface's program: `namespace/pod|namespace/network`. */
export function programKey(pod: string, network: string): string {
  return `${pod}|${network}`;
}

/**
 * The programs a node's interfaces get, as the agent would write them, each
 * with a zone of its own (zone i + 1 for the i-th interface).
 */
export function nodePrograms(interfaces: readonly InterfaceRules[]): Map<string, TcFilter[]> {
  const programs = new Map<string, TcFilter[]>();
  interfaces.forEach((rules, i) => {
    const program = generateProgram(rules, { device: `rep${i}`, zone: i + 1, generation: 1 });
    if (program.enabled) {
      programs.set(programKey(podKey(rules.pod), rules.network), program.filters);
    }
  });
  return programs;
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
    filters: programs.get(programKey(query.from, network)),
  };
  if (!toPod) {
    if (parseIp(query.to)?.family !== query.family) {
      throw new Error(`${query.to} is not an IPv${query.family} address`);
    }
    return { from, to: { address: query.to, label: query.to }, network };
  }
  const dest = dests.find((d) => d.network === network);
  const destAddress = dest && pick(dest.ips, query.family);
  if (!destAddress) throw new Error(`${query.to} has no IPv${query.family} address on ${network}`);
  const to: FlowEnd = {
    address: destAddress,
    label: `${query.to} ${dest!.interfaceName}`,
    filters: programs.get(programKey(query.to, network)),
  };
  return { from, to, network };
}
