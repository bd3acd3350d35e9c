/**
 * The flags the daemon and `render` share, declared once so both parse them
 * alike and print the same help and default.
 */
import { boolFlag, listFlag } from "./flag_table.ts";

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

/** `-h`, `--help`. */
export const HELP_FLAG = boolFlag({
  name: "help",
  short: "h",
  default: false,
  group: "general",
  help: "help",
});
