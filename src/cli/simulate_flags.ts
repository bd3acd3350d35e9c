/**
 * `simulate`'s command line, declared once like the daemon's and `render`'s:
 * which manifests and node, which flow, software or hardware forwarding, and
 * the output format.
 */
import { SIMULATION_MODES, type SimulationMode } from "../tc/simulator/flow.ts";
import { flagsUsage } from "./flag_help.ts";
import { parseFlags } from "./flag_parse.ts";
import { arrayFlag, choiceFlag, type Flag, intFlag, stringFlag, UsageError } from "./flag_table.ts";
import { HELP_FLAG, MAX_FILTERS_FLAG, NETWORK_PLUGINS_FLAG, outputFlag } from "./shared_flags.ts";
import { AGENT_FLAGS } from "./flags.ts";

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
  mode: SimulationMode;
  output: "text" | "json";
  kubeconfig: string;
  master: string;
  tcDriver: string;
  sysfsRoot: string;
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
    help: "manifest file or directory (repeatable); or --kubeconfig for a live node",
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
  mode: choiceFlag({
    name: "mode",
    argName: "MODE",
    choices: SIMULATION_MODES,
    describe: {
      software: "the kernel forwards every packet, as in the test VM",
      hardware: "a ConnectX-6 Dx e-switch forwards, as its offload profile models it",
    },
    default: "software",
    group: "simulate",
    help: "who forwards the packets",
  }),
  output: outputFlag("simulate", ["text", "json"] as const, {
    text: "the verdict and each packet's filters, for people",
    json: "one object",
  }),
  kubeconfig: stringFlag({
    name: "kubeconfig",
    argName: "PATH",
    default: "",
    group: "simulate",
    help: "live node: list the cluster from this kubeconfig's API server (read-only) and read " +
      "the programs the node's devices hold through the TC driver (run on the node, as root)",
  }),
  master: AGENT_FLAGS.master,
  tcDriver: AGENT_FLAGS.tcDriver,
  sysfsRoot: AGENT_FLAGS.sysfsRoot,
  help: HELP_FLAG,
} as const;

/** Parses `simulate`'s arguments; `defaultNode` names this host when `--node` is not given. */
export function parseSimulateFlags(args: string[], defaultNode: () => string): SimulateOptions {
  const flags = parseFlags(SIMULATE_FLAGS, args);
  if (!flags.help) {
    if (flags.paths.length === 0 && flags.kubeconfig === "") {
      throw new UsageError("simulate needs -f PATH, or --kubeconfig PATH for a live node");
    }
    if (flags.paths.length > 0 && flags.kubeconfig !== "") {
      throw new UsageError("simulate takes -f PATH or --kubeconfig, not both");
    }
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
  return `Usage: multi-networkpolicy-tc simulate -f PATH|--kubeconfig PATH --from NS/POD --to NS/POD|ADDRESS [flags]

Runs one flow (a TCP connection and its answer, a UDP request and reply, an
ICMP echo, or an SCTP association) through the TC programs the agent would
write on the node for the manifests given, and prints the verdict and, for
each packet, the filters it met on each device where it entered the
e-switch (hook, chain, priority, handle, actions): the answer to "which
filter dropped my packet". With --kubeconfig instead of -f, the cluster is
listed from the API server and the programs are the ones the node's
representors and uplinks hold now, read through --tc-driver (foreign
filters included): run it on the node, as root. In
software mode (the default) the kernel forwards every packet, with its
semantics. In hardware mode an SR-IOV e-switch (mlx5, ConnectX-6 Dx, as
modelled from the Linux sources) forwards: only the ingress filters the NIC
offloads run in hardware, a ct action there hits only established
connections, a miss continues in software, and each filter met is marked
hardware or software. Exit status: 0 when it could decide, 1 on bad input
(unknown pod, no address on the network), 2 on usage errors.

Flags:
${flagsUsage(flags)}
`;
}
