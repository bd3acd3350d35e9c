/**
 * `--help` text for declared flags, in pflag's layout: each flag's names and
 * argument, then its help, choices, and default as printed from its typed value.
 */
import type { Flag, FlagKind } from "./flag_table.ts";

const ARG_WORDS: Record<FlagKind, string> = {
  string: "string",
  bool: "",
  int: "int",
  list: "strings",
  array: "stringArray",
  duration: "duration",
};

/** A flag's description: its help, then choices, no-effect reason and default. */
function description(flag: Flag<unknown>): string {
  let text = flag.help;
  if (flag.choices) {
    const names = flag.choices.map((c) => c.help === undefined ? c.name : `${c.name} (${c.help})`);
    text += `, one of: ${names.join(", ")}.`;
  }
  if (flag.noEffect !== undefined) {
    text += ` (accepted for compatibility; no effect: ${flag.noEffect})`;
  }
  const shown = flag.kind === "bool" ? flag.defaultArg === "true" : flag.defaultArg !== "";
  if (shown) {
    text += ` (default ${flag.kind === "list" ? `[${flag.defaultArg}]` : flag.defaultArg})`;
  }
  return text;
}

/** One flag's entry in `--help`. */
export function flagUsage(flag: Flag<unknown>): string {
  const names = flag.short ? `-${flag.short}, --${flag.name}` : `    --${flag.name}`;
  const arg = flag.argName ?? ARG_WORDS[flag.kind];
  return `  ${names}${arg ? ` ${arg}` : ""}\n        ${description(flag)}`;
}

/** The `--help` entries of `flags`, hidden ones left out. */
export function flagsUsage(flags: readonly Flag<unknown>[]): string {
  return flags.filter((flag) => !flag.hidden).map(flagUsage).join("\n");
}
