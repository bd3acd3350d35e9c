/**
 * `render`'s command line: its own flags and those it shares with the daemon
 * (`shared_flags.ts`), each declared once; parsing and `render --help` derive
 * from the declarations.
 */
import { flagsUsage } from "./flag_help.ts";
import { parseFlags } from "./flag_parse.ts";
import { arrayFlag, boolFlag, type Flag, stringFlag, UsageError } from "./flag_table.ts";
import { HELP_FLAG, MAX_FILTERS_FLAG, NETWORK_PLUGINS_FLAG, outputFlag } from "./shared_flags.ts";

/** Output formats of `render`. */
export const RENDER_FORMATS = ["text", "json", "tc"] as const;

/** `render`'s own options. */
export interface RenderOptions {
  paths: string[];
  node: string;
  networkPlugins: string[];
  maxFiltersPerInterface: number;
  output: typeof RENDER_FORMATS[number];
  offloadCheck: boolean;
  help: boolean;
}

/** Every flag `render` accepts, in `--help` order, by the property it parses to. */
export const RENDER_FLAGS = {
  paths: arrayFlag({
    name: "filename",
    short: "f",
    argName: "PATH",
    default: [],
    group: "render",
    help: "manifest file or directory (repeatable, required)",
  }),
  node: stringFlag({
    name: "node",
    argName: "NAME",
    default: "",
    group: "render",
    help: "node whose pods are rendered; empty: this host's name",
  }),
  networkPlugins: NETWORK_PLUGINS_FLAG,
  maxFiltersPerInterface: MAX_FILTERS_FLAG,
  output: outputFlag("render", RENDER_FORMATS, {
    text: "each direction's state and allow list, for people",
    json: "the rule model",
    tc: "the tc -batch program of every device (representors, uplink), as the agent would " +
      "apply it to a device with nothing of ours, with the offload checker's counts",
  }),
  offloadCheck: boolFlag({
    name: "offload-check",
    default: false,
    group: "render",
    help: "check every device's program against the NIC's offload profile (mlx5); print the " +
      "counts per device and each filter that would break in hardware; exit 1 if any would",
  }),
  help: HELP_FLAG,
} as const;

/** Parses `render`'s arguments; `defaultNode` names this host when `--node` is not given. */
export function parseRenderFlags(args: string[], defaultNode: () => string): RenderOptions {
  const flags = parseFlags(RENDER_FLAGS, args);
  if (!flags.help && flags.paths.length === 0) {
    throw new UsageError("render needs at least one -f PATH");
  }
  return { ...flags, node: flags.node || defaultNode() };
}

/** `render --help`. */
export function renderHelp(): string {
  const flags: readonly Flag<unknown>[] = Object.values(RENDER_FLAGS);
  return `Usage: multi-networkpolicy-tc render -f PATH [-f PATH...] [flags]

Reads Kubernetes manifests (YAML or JSON files, or directories of them;
multi-document and List kinds) and prints, for every pod interface on the
node that the agent would police, each direction's state and allow list.
Problems with objects are printed to stderr, one line each ("error: ..."),
naming the object and the field; the rest is still rendered. Unknown fields
of a MultiNetworkPolicy are printed as "warning: ..." lines and change
nothing. Exit status: 0 when no error was found (warnings aside), 1 when some
were (output is still complete) or, with --offload-check, when a filter would
break on the NIC, 2 on usage errors.

Flags:
${flagsUsage(flags)}
`;
}
