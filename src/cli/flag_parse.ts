/**
 * Reads a command line against a table of declared flags, accepting the
 * spellings Go's flag and pflag packages do (`--flag value`, `--flag=value`,
 * `-flag`, `-v=2`, `-v2`, `--bool=false`), into typed values.
 */
import { type Flag, InvalidValue, UsageError } from "./flag_table.ts";

/** Flags by the property their value is returned under. */
export type FlagTable = Readonly<Record<string, Flag<unknown>>>;

/** The typed values of a {@link FlagTable}'s flags. */
export type FlagValues<T extends FlagTable> = {
  [K in keyof T]: T[K] extends Flag<infer V> ? V : never;
};

/**
 * Splits a group of one-letter flags the way pflag does: `-hf PATH` is
 * `-h -f PATH`, `-ojson` is `-o=json`, `-v2` is `-v=2`. Other arguments,
 * Go's `-longname` among them, are returned as they are.
 */
function splitShortGroup(table: FlagTable, arg: string): string[] {
  const flags = Object.values(table);
  const name = /^-([^-=][^=]+)/.exec(arg)?.[1];
  if (name === undefined || flags.some((flag) => flag.name === name)) return [arg];
  const out: string[] = [];
  for (let j = 1; j < arg.length; j++) {
    const letter = arg[j];
    const flag = flags.find((f) => f.short === letter);
    if (!flag) return [arg];
    const rest = arg.slice(j + 1);
    if (rest === "" || rest.startsWith("=")) return [...out, `-${letter}${rest}`];
    if (flag.kind !== "bool") return [...out, `-${letter}=${rest}`];
    out.push(`-${letter}`);
  }
  return out;
}

/** Every argument given to each flag, by table key; throws {@link UsageError} on bad syntax. */
function collect(table: FlagTable, rawArgs: readonly string[]): Map<string, string[]> {
  const args = [...rawArgs];
  const entries = Object.entries(table);
  const given = new Map<string, string[]>();
  for (let i = 0; i < args.length; i++) {
    args.splice(i, 1, ...splitShortGroup(table, args[i]));
    const arg = args[i];
    if (arg === "--") {
      if (i + 1 < args.length) throw new UsageError(`unexpected argument: ${args[i + 1]}`);
      break;
    }
    const match = /^(--?)([^=]*)(?:=(.*))?$/s.exec(arg);
    if (!match || arg === "-") throw new UsageError(`unexpected argument: ${arg}`);
    const [, dashes, name, inline] = match;
    const found = dashes === "-" && name.length === 1
      ? entries.find(([, flag]) => flag.short === name)
      : entries.find(([, flag]) => flag.name === name);
    if (!found) throw new UsageError(`unknown flag: ${dashes}${name}`);
    const [key, flag] = found;
    let text = inline;
    if (flag.kind === "bool") {
      text = inline ?? "true";
      if (text !== "true" && text !== "false") {
        throw new UsageError(`invalid boolean value "${text}" for --${flag.name}`);
      }
    } else if (text === undefined) {
      const next = args[i + 1];
      if (next === undefined || (next.startsWith("-") && next !== "-")) {
        throw new UsageError(`flag needs an argument: --${flag.name}`);
      }
      text = next;
      i++;
    }
    given.set(key, [...(given.get(key) ?? []), text]);
  }
  return given;
}

/** Parses `args` against `table`; throws {@link UsageError}, one line, on any mistake. */
export function parseFlags<T extends FlagTable>(table: T, args: readonly string[]): FlagValues<T> {
  const given = collect(table, args);
  const values: Record<string, unknown> = {};
  for (const [key, flag] of Object.entries(table)) {
    try {
      values[key] = flag.parse(given.get(key) ?? []);
    } catch (error) {
      if (!(error instanceof InvalidValue)) throw error;
      const text = error.text === undefined ? "" : ` "${error.text}"`;
      const reason = error.message === "" ? "" : `: ${error.message}`;
      throw new UsageError(`invalid value${text} for --${flag.name}${reason}`, { cause: error });
    }
  }
  return values as FlagValues<T>;
}
