/**
 * `simulate`'s command line, declared once like the daemon's and `render`'s:
 * which manifests and node, which flow, and the output format.
 */
import { flagsUsage } from "./flag_help.ts";
import { parseFlags } from "./flag_parse.ts";
import { arrayFlag, choiceFlag, type Flag, intFlag, stringFlag, UsageError } from "./flag_table.ts";
import { HELP_FLAG, MAX_FILTERS_FLAG, NETWORK_PLUGINS_FLAG, outputFlag } from "./shared_flags.ts";

/** Protocols a simulated flow can use. */
export const SIMULATE_PROTOCOLS = ["TCP", "UDP", "SCTP", "ICMP"] as const;

/** `simulate`'s options. */
export interface SimulateOptions {
  paths: string[];
  node: string;
  networkPlugins: string[];
  maxFiltersPerInterface: number;
  from: string;
  to: string;
  protocol: typeof SIMULATE_PROTOCOLS[number];
  port: number;
  family: 4 | 6;
  network: string;
  output: "text" | "json";
  help: boolean;
}

/** Every flag `simulate` accepts, in `--help` order. */
export const SIMULATE_FLAGS = {
  paths: arrayFlag({
    name: "filename",
    short: "f",
    argName: "PATH",
    default: [],
    group: "simulate",
    help: "manifest file or directory (repeatable, required)",
  }),
  node: stringFlag({
    name: "node",
    argName: "NAME",
    default: "",
    group: "simulate",
    help: "node whose programs the flow meets; empty: this host's name",
  }),
  networkPlugins: NETWORK_PLUGINS_FLAG,
  maxFiltersPerInterface: MAX_FILTERS_FLAG,
  from: stringFlag({
    name: "from",
    argName: "NAMESPACE/POD",
    default: "",
    group: "simulate",
    help: "the pod that opens the flow (required)",
  }),
  to: stringFlag({
    name: "to",
    argName: "NAMESPACE/POD|ADDRESS",
    default: "",
    group: "simulate",
    help: "the pod or address it goes to (required)",
  }),
  protocol: choiceFlag({
    name: "protocol",
    argName: "PROTOCOL",
    choices: SIMULATE_PROTOCOLS,
    default: "TCP",
    group: "simulate",
    help: "the flow's protocol",
  }),
  port: intFlag({
    name: "port",
    default: 0,
    min: 0,
    group: "simulate",
    help: "destination port (required unless ICMP)",
  }),
  family: choiceFlag({
    name: "family",
    argName: "4|6",
    choices: ["4", "6"] as const,
    default: "4",
    group: "simulate",
    help: "IP family",
  }),
  network: stringFlag({
    name: "network",
    argName: "NAMESPACE/NAME",
    default: "",
    group: "simulate",
    help: "the network the flow is on; empty: the one both pods share",
  }),
  output: outputFlag("simulate", ["text", "json"] as const, {
    text: "the verdict and each packet's filters, for people",
    json: "one object",
  }),
  help: HELP_FLAG,
} as const;

/** Parses `simulate`'s arguments; `defaultNode` names this host when `--node` is not given. */
export function parseSimulateFlags(args: string[], defaultNode: () => string): SimulateOptions {
  const flags = parseFlags(SIMULATE_FLAGS, args);
  if (!flags.help) {
    if (flags.paths.length === 0) throw new UsageError("simulate needs at least one -f PATH");
    if (!flags.from.includes("/")) throw new UsageError("simulate needs --from NAMESPACE/POD");
    if (flags.to === "") throw new UsageError("simulate needs --to NAMESPACE/POD or an address");
    if (flags.protocol !== "ICMP" && (flags.port < 1 || flags.port > 65535)) {
      throw new UsageError(`simulate needs --port 1-65535 for ${flags.protocol}`);
    }
  }
  return {
    ...flags,
    node: flags.node || defaultNode(),
    family: flags.family === "6" ? 6 : 4,
  };
}

/** `simulate --help`. */
export function simulateHelp(): string {
  const flags: readonly Flag<unknown>[] = Object.values(SIMULATE_FLAGS);
  return `Usage: multi-networkpolicy-tc simulate -f PATH --from NS/POD --to NS/POD|ADDRESS [flags]

Runs one flow (a TCP connection and its answer, a UDP request and reply, an
ICMP echo, or an SCTP association) through the TC programs the agent would
write on the node for the manifests given, in software (the kernel's
semantics), and prints the verdict and, for each packet, the filters it met
on each representor (hook, chain, priority, handle, actions): the answer to
"which filter dropped my packet". Exit status: 0 when it could decide, 1 on
bad input (unknown pod, no address on the network), 2 on usage errors.

Flags:
${flagsUsage(flags)}
`;
}
