/**
 * The flags the daemon and `render` share, declared once so both parse them
 * alike and print the same help and default.
 */
import { DEFAULT_MAX_FILTERS } from "../tc/limits.ts";
import {
  boolFlag,
  choiceFlag,
  type Flag,
  type FlagGroup,
  intFlag,
  listFlag,
} from "./flag_table.ts";

/** The CNI plugin types whose networks are policed when `--network-plugins` is not given. */
export const DEFAULT_NETWORK_PLUGINS: readonly string[] = ["accelerated-bridge"];

/** `--network-plugins`: which CNI plugin types' networks are policed. */
export const NETWORK_PLUGINS_FLAG = listFlag({
  name: "network-plugins",
  default: DEFAULT_NETWORK_PLUGINS,
  group: "agent",
  help:
    "Comma-separated list of CNI plugin types whose networks are considered for network policies.",
});

/** `--max-filters-per-interface`: the TC filter budget of one interface. */
export const MAX_FILTERS_FLAG = intFlag({
  name: "max-filters-per-interface",
  default: DEFAULT_MAX_FILTERS,
  min: 0,
  group: "agent",
  help:
    "Most TC filters one interface's program may have; an interface whose policies need more is enforced as deny-all both ways (ARP and neighbour discovery still pass), with a Warning Event saying why. 0: no limit.",
});

/** `-o`, `--output`: one of a subcommand's formats, `text` by default. */
export function outputFlag<C extends string>(
  group: FlagGroup,
  formats: readonly C[],
  describe: Record<C, string>,
): Flag<C> {
  return choiceFlag<C>({
    name: "output",
    short: "o",
    argName: "FORMAT",
    choices: formats,
    describe,
    default: "text" as C,
    group,
    help: "output format",
  });
}

/** `-h`, `--help`. */
export const HELP_FLAG = boolFlag({
  name: "help",
  short: "h",
  default: false,
  group: "general",
  help: "help",
});
