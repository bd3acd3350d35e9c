/**
 * The two ends of a packet `explain` is asked about, named the way people
 * name them (`namespace/pod` or an address, a network, a family), resolved
 * to their addresses on one network and, for a pod end, to the interface the
 * agent on the pod's node polices there, if it does. It follows `simulate`'s
 * resolver (src/tc/simulator/endpoints.ts, a layer above) and its messages,
 * with either end an address and the network chosen among policed ones.
 */
import {
  type ClusterState,
  type NetworkStatus,
  type ObjectError,
  type Pod,
  podKey,
} from "../cluster/types.ts";
import { type Family, parseIp } from "../net/ip.ts";
import { isActivePod, type LocalInterface, localInterfaces } from "../interfaces/local.ts";

/** A question `explain` cannot answer as asked: one line saying what is wrong. */
export class ExplainInputError extends Error {
  override name = "ExplainInputError";
}

/** The ends of a packet as a person names them. */
export interface EndsQuestion {
  /** `namespace/pod` or an address. */
  from: string;
  /** `namespace/pod` or an address. */
  to: string;
  /** `namespace/name`; default: the one (policed) network the pod ends share. */
  network?: string;
  family: Family;
}

/** One end resolved on the packet's network. */
export interface ResolvedEnd {
  /** The end as named. */
  name: string;
  /** Set when the end is a pod. */
  pod?: Pod;
  /** The pod's network-status entry on the network. */
  status?: NetworkStatus;
  /** The end's address on the network. */
  ip: string;
  /** The interface the agent on the pod's node polices, when it polices this one. */
  policed?: LocalInterface;
  /** Why a pod end is not policed. */
  unpoliced?: string;
  /** For an address end: the pod that has this address on the network, if one does. */
  owner?: string;
}

/** Both ends and the network the packet is on. */
export interface ResolvedEnds {
  from: ResolvedEnd;
  to: ResolvedEnd;
  network: string;
}

/** Whether an end names a pod (`namespace/pod`) rather than an address, as `simulate` tells. */
export function namesPod(end: string): boolean {
  return end.includes("/") && parseIp(end) === null;
}

/** The interfaces each node's agent polices, computed once per node asked about. */
class PolicedInterfaces {
  readonly #byNode = new Map<string, { interfaces: LocalInterface[]; errors: ObjectError[] }>();

  constructor(readonly state: ClusterState, readonly networkPlugins: string[]) {}

  #ofNode(node: string) {
    let found = this.#byNode.get(node);
    if (!found) {
      found = localInterfaces(this.state, { node, networkPlugins: this.networkPlugins });
      this.#byNode.set(node, found);
    }
    return found;
  }

  /**
   * The pod's policed interface on the network, as the agent on its node sees
   * it; a VF the pod claims that is enforced as deny-all (claimed twice) counts
   * as the pod's too, since that is what its packets meet.
   */
  find(pod: Pod, network: string): LocalInterface | undefined {
    const interfaces = this.#ofNode(pod.nodeName).interfaces;
    const own = interfaces.find((iface) => iface.pod === pod && iface.network === network);
    if (own) return own;
    const status = pod.networkStatus.find((s) => s.network === network && !s.isDefault);
    const denied = status?.pciAddress === undefined
      ? undefined
      : interfaces.find((iface) =>
        iface.denyAll !== undefined && iface.pciAddress === status.pciAddress
      );
    return denied && status
      ? { ...denied, pod, network, interfaceName: status.interfaceName, ips: status.ips }
      : undefined;
  }

  /** Why the agent on the pod's node does not police its interface on the network. */
  why(pod: Pod, network: string): string {
    if (pod.hostNetwork) return "a hostNetwork pod";
    if (!isActivePod(pod)) return `a finished pod (phase ${pod.phase})`;
    const nad = this.state.networks.find((n) => `${n.namespace}/${n.name}` === network);
    if (!nad) return `no NetworkAttachmentDefinition ${network}`;
    if (!this.networkPlugins.includes(nad.pluginType)) {
      return `its network's CNI type ${nad.pluginType} is not in --network-plugins`;
    }
    const status = pod.networkStatus.find((s) => s.network === network && !s.isDefault);
    if (!status?.pciAddress) return "its network-status entry has no PCI address (no VF)";
    const error = this.#ofNode(pod.nodeName).errors.find((e) =>
      e.ref?.kind === "Pod" && e.ref.namespace === pod.namespace && e.ref.name === pod.name &&
      e.field.startsWith(`network-status[${network}]`)
    );
    return error ? error.message : `not enforced on node ${pod.nodeName}`;
  }
}

const attachments = (pod: Pod) => pod.networkStatus.filter((s) => !s.isDefault);

const pick = (ips: string[], family: Family) => ips.find((ip) => parseIp(ip)?.family === family);

/**
 * The network a question is about: the one named, else the one the pod ends
 * share (a lone pod end: its one network); among several, the one where a
 * pod end is policed.
 */
function chooseNetwork(pods: Pod[], question: EndsQuestion, policed: PolicedInterfaces): string {
  if (question.network) return question.network;
  const [first, ...others] = pods.map((pod) => new Set(attachments(pod).map((s) => s.network)));
  let candidates = [...first].filter((network) => others.every((set) => set.has(network)));
  if (candidates.length === 0) {
    throw new ExplainInputError(
      pods.length === 2
        ? `${question.from} and ${question.to} share no network`
        : `${podKey(pods[0])} is on no secondary network`,
    );
  }
  if (candidates.length > 1) {
    const enforced = candidates.filter((network) =>
      pods.some((pod) => policed.find(pod, network) !== undefined)
    );
    if (enforced.length === 1) candidates = enforced;
  }
  if (candidates.length > 1) {
    throw new ExplainInputError(
      `${question.from} -> ${question.to}: on ${candidates.join(" and ")}; ` +
        "name the network (--network)",
    );
  }
  return candidates[0];
}

/** Resolves a packet's ends; throws {@link ExplainInputError} saying what is wrong. */
export function resolvePacketEnds(
  state: ClusterState,
  question: EndsQuestion,
  networkPlugins: string[],
): ResolvedEnds {
  if (!namesPod(question.from) && !namesPod(question.to)) {
    throw new ExplainInputError("explain needs a pod at one end at least");
  }
  const podOf = (name: string) => {
    if (!namesPod(name)) return undefined;
    const pod = state.pods.find((p) => podKey(p) === name);
    if (!pod) throw new ExplainInputError(`no pod ${name}`);
    return pod;
  };
  const fromPod = podOf(question.from);
  const toPod = podOf(question.to);
  const policed = new PolicedInterfaces(state, networkPlugins);
  const pods = [fromPod, toPod].filter((pod): pod is Pod => pod !== undefined);
  const network = chooseNetwork(pods, question, policed);
  const resolve = (name: string, pod: Pod | undefined): ResolvedEnd => {
    if (!pod) {
      if (parseIp(name)?.family !== question.family) {
        throw new ExplainInputError(`${name} is not an IPv${question.family} address`);
      }
      const owner = state.pods.find((p) =>
        isActivePod(p) && attachments(p).some((s) => s.network === network && s.ips.includes(name))
      );
      return owner ? { name, ip: name, owner: podKey(owner) } : { name, ip: name };
    }
    const status = attachments(pod).find((s) => s.network === network);
    if (!status) throw new ExplainInputError(`${name} is not attached to ${network}`);
    const ip = pick(status.ips, question.family);
    if (!ip) {
      throw new ExplainInputError(`${name} has no IPv${question.family} address on ${network}`);
    }
    const iface = policed.find(pod, network);
    return iface
      ? { name, pod, status, ip, policed: iface }
      : { name, pod, status, ip, unpoliced: policed.why(pod, network) };
  };
  return { from: resolve(question.from, fromPod), to: resolve(question.to, toPod), network };
}
