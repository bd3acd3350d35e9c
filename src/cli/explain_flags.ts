/**
 * `explain`'s command line, declared once like `render`'s and `simulate`'s:
 * where the cluster comes from (manifests or a live API server), the packet
 * (ends, network, family, protocol, port), and the output format.
 */
import { PACKET_PROTOCOLS, type PacketProtocol } from "../policy/explain.ts";
import { namesPod } from "../policy/explain_ends.ts";
import { flagsUsage } from "./flag_help.ts";
import { parseFlags } from "./flag_parse.ts";
import {
  arrayFlag,
  choiceFlag,
  type Flag,
  optionalIntFlag,
  stringFlag,
  UsageError,
} from "./flag_table.ts";
import { AGENT_FLAGS } from "./flags.ts";
import { HELP_FLAG, NETWORK_PLUGINS_FLAG, outputFlag } from "./shared_flags.ts";

/** `explain`'s options. */
export interface ExplainOptions {
  paths: string[];
  kubeconfig: string;
  master: string;
  networkPlugins: string[];
  from: string;
  to: string;
  protocol: PacketProtocol;
  port: number | undefined;
  family: 4 | 6;
  network: string;
  output: "text" | "json";
  help: boolean;
}

/** Every flag `explain` accepts, in `--help` order. */
export const EXPLAIN_FLAGS = {
  paths: arrayFlag({
    name: "filename",
    short: "f",
    argName: "PATH",
    default: [],
    group: "explain",
    help: "manifest file or directory (repeatable); or --kubeconfig for a live cluster",
  }),
  kubeconfig: stringFlag({
    name: "kubeconfig",
    argName: "PATH",
    default: "",
    group: "explain",
    help: "live cluster: list it once from this kubeconfig's API server (read-only)",
  }),
  master: AGENT_FLAGS.master,
  networkPlugins: NETWORK_PLUGINS_FLAG,
  from: stringFlag({
    name: "from",
    argName: "NAMESPACE/POD|ADDRESS",
    default: "",
    group: "explain",
    help: "the pod or address that sends the packet (required)",
  }),
  to: stringFlag({
    name: "to",
    argName: "NAMESPACE/POD|ADDRESS",
    default: "",
    group: "explain",
    help: "the pod or address it goes to (required; one end at least is a pod)",
  }),
  protocol: choiceFlag({
    name: "protocol",
    argName: "PROTOCOL",
    choices: PACKET_PROTOCOLS,
    default: "TCP",
    group: "explain",
    help: "the packet's protocol",
  }),
  port: optionalIntFlag({
    name: "port",
    argName: "N",
    min: 1,
    max: 65535,
    group: "explain",
    help: "destination port (required for TCP, UDP and SCTP; none for ICMP)",
  }),
  family: choiceFlag({
    name: "family",
    argName: "4|6",
    choices: ["4", "6"] as const,
    default: "4",
    group: "explain",
    help: "IP family",
  }),
  network: stringFlag({
    name: "network",
    argName: "NAMESPACE/NAME",
    default: "",
    group: "explain",
    help: "the network the packet is on; empty: the one the pod ends share (a lone pod end: " +
      "its one network), or among several the one where a pod end is policed",
  }),
  output: outputFlag("explain", ["text", "json"] as const, {
    text: "the verdict and, per direction, the isolating policies and the rules that allow it",
    json: "one object",
  }),
  help: HELP_FLAG,
} as const;

/** Parses `explain`'s arguments; throws {@link UsageError} on any mistake. */
export function parseExplainFlags(args: string[]): ExplainOptions {
  const flags = parseFlags(EXPLAIN_FLAGS, args);
  if (!flags.help) {
    const live = flags.kubeconfig !== "" || flags.master !== "";
    if (flags.paths.length === 0 && !live) {
      throw new UsageError("explain needs -f PATH, or --kubeconfig PATH for a live cluster");
    }
    if (flags.paths.length > 0 && live) {
      throw new UsageError("explain takes -f PATH or --kubeconfig/--master, not both");
    }
    if (flags.from === "") throw new UsageError("explain needs --from NAMESPACE/POD or an address");
    if (flags.to === "") throw new UsageError("explain needs --to NAMESPACE/POD or an address");
    if (!namesPod(flags.from) && !namesPod(flags.to)) {
      throw new UsageError("explain needs a pod at one end: --from or --to NAMESPACE/POD");
    }
    if (flags.protocol === "ICMP" && flags.port !== undefined) {
      throw new UsageError("explain takes no --port for ICMP");
    }
    if (flags.protocol !== "ICMP" && flags.port === undefined) {
      throw new UsageError(`explain needs --port 1-65535 for ${flags.protocol}`);
    }
  }
  return { ...flags, family: flags.family === "6" ? 6 : 4 };
}

/** `explain --help`. */
export function explainHelp(): string {
  const flags: readonly Flag<unknown>[] = Object.values(EXPLAIN_FLAGS);
  return `Usage: multi-networkpolicy-tc explain -f PATH|--kubeconfig PATH --from NS/POD|ADDRESS --to NS/POD|ADDRESS [flags]

Says why a new packet (a connection's first packet, an echo request) is
allowed or dropped, at the policy level. For each direction that applies —
the sender's egress when the sender is a policed pod interface, the
receiver's ingress when the receiver is one, each as the agent on that
pod's node polices it (a PCI address in its network-status, a network whose
CNI type is in --network-plugins) — it prints the verdict, the policies that
isolate it, and every rule that allows the packet: policy, direction, rule
index, peer index (or "all peers" for a rule without from/to) and port entry
index (or "all ports" for a rule without ports), counted from 0 in the
policy's spec; or "no rule allows it"; or "not isolated" when no policy
isolates that direction. The packet is denied when either direction denies
it. ICMP is allowed only by rules without ports. An address end, or a pod
interface the agent does not police, has no direction of its own. It reads
the policies only: neither TC programs nor the filter budget
(--max-filters-per-interface) are consulted; see simulate for the filters.
With --kubeconfig (and/or --master) instead of -f, the cluster is listed
once from the API server (read-only). -o json prints one object:
{verdict, protocol, port (absent for ICMP), network, from, to, directions:
[{direction, pod, interface, node, verdict, isolated, isolatedBy, allowedBy:
[{policy, rule, peer, port}], denyAll (when the VF is enforced as deny-all)}]},
with peer and port null for "all"; each end is {pod, interface, node, ip,
policed} or {address, ip, policed: false}, with a reason when not policed.
Problems with objects are printed to stderr and the rest is used. Exit status: 0 when it could decide,
1 on bad input (unknown pod, pod not on the network, ambiguous network,
address of the wrong family, an API server that cannot be listed), 2 on
usage errors.

Flags:
${flagsUsage(flags)}
`;
}
