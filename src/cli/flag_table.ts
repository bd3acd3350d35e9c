/**
 * How a command-line flag is declared: once, with its name, kind, typed
 * default, choices and help. Parsing (`flag_parse.ts`), validation and
 * `--help` (`flag_help.ts`) all derive from that one declaration.
 */
import { formatGoDuration, parseGoDuration } from "./duration.ts";

/** A command-line mistake; the CLI prints it on one line and exits 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** A flag's argument was rejected: why, and the text when it is worth quoting. */
export class InvalidValue extends Error {
  override name = "InvalidValue";
  /** Builds the rejection; `text` is quoted in the usage error when given. */
  constructor(reason: string, readonly text?: string) {
    super(reason);
  }
}

/** What a flag takes: `list` splits on commas, `array` keeps each argument whole. */
export type FlagKind = "string" | "bool" | "int" | "list" | "array" | "duration";

/** The `--help` section a flag is listed in. */
export type FlagGroup = "agent" | "klog" | "general" | "render" | "simulate" | "explain";

/** One accepted value of a flag with choices, and what it means. */
export interface FlagChoice {
  readonly name: string;
  readonly help?: string;
}

/** A declared flag whose value parses to `V`. */
export interface Flag<V> {
  /** Long name: `--name`, and Go's `-name`. */
  readonly name: string;
  /** One-letter alias: `-x`. */
  readonly short?: string;
  readonly kind: FlagKind;
  /** The value when the flag is not given. */
  readonly default: V;
  /** The argument text that means {@link default} (what `--help` shows). */
  readonly defaultArg: string;
  /** The only values accepted, when the flag has a fixed set. */
  readonly choices?: readonly FlagChoice[];
  readonly help: string;
  readonly group: FlagGroup;
  /** Accepted but left out of `--help` (test hooks). */
  readonly hidden?: boolean;
  /** Why this flag, accepted for compatibility, does nothing here. */
  readonly noEffect?: string;
  /** The argument's placeholder in `--help`, instead of its kind. */
  readonly argName?: string;
  /** The value from every argument given, in order (none: the default); throws {@link InvalidValue}. */
  readonly parse: (texts: readonly string[]) => V;
}

/** What every declaration states; `check` returns why a parsed value is refused. */
interface FlagDecl<V> {
  name: string;
  short?: string;
  default: V;
  help: string;
  group: FlagGroup;
  hidden?: boolean;
  noEffect?: string;
  argName?: string;
  check?: (value: V) => string | undefined;
}

/** A flag that keeps its last argument, converted by `convert`. */
function scalarFlag<V>(
  kind: FlagKind,
  decl: FlagDecl<V>,
  convert: (text: string) => V,
  defaultArg: string,
): Flag<V> {
  const { check, ...rest } = decl;
  return {
    ...rest,
    kind,
    defaultArg,
    parse: (texts) => {
      const text = texts.at(-1);
      if (text === undefined) return decl.default;
      const value = convert(text);
      const reason = check?.(value);
      if (reason !== undefined) throw new InvalidValue(reason, text);
      return value;
    },
  };
}

/** A flag with a string argument. */
export function stringFlag(decl: FlagDecl<string>): Flag<string> {
  return scalarFlag("string", decl, (text) => text, decl.default);
}

/** A boolean flag: `--x`, `--x=true`, `--x=false`. */
export function boolFlag(decl: FlagDecl<boolean>): Flag<boolean> {
  return scalarFlag("bool", decl, (text) => text === "true", String(decl.default));
}

/** An integer flag, refused below `min` when one is given. */
export function intFlag(decl: FlagDecl<number> & { min?: number }): Flag<number> {
  return scalarFlag("int", decl, (text) => {
    if (!/^-?\d+$/.test(text)) throw new InvalidValue("", text);
    const value = Number(text);
    if (decl.min !== undefined && value < decl.min) {
      throw new InvalidValue(`below ${decl.min}`, text);
    }
    return value;
  }, String(decl.default));
}

/** An integer flag without a default (undefined when not given), refused outside `min`-`max`. */
export function optionalIntFlag(
  decl: Omit<FlagDecl<number | undefined>, "default" | "check"> & { min: number; max: number },
): Flag<number | undefined> {
  const { min, max, ...rest } = decl;
  return scalarFlag("int", { ...rest, default: undefined }, (text) => {
    const value = /^\d+$/.test(text) ? Number(text) : NaN;
    if (!(value >= min && value <= max)) throw new InvalidValue(`want ${min}-${max}`, text);
    return value;
  }, "");
}

/**
 * A flag whose argument `convert` reads (throwing {@link InvalidValue} when it
 * cannot), shown in `--help` as `argName` with `defaultArg` as its default.
 */
export function convertedFlag<V>(
  decl: FlagDecl<V> & { argName: string; defaultArg: string },
  convert: (text: string) => V,
): Flag<V> {
  const { defaultArg, ...rest } = decl;
  return scalarFlag("string", rest, convert, defaultArg);
}

/** A Go duration flag (`5s`, `1m30s`); its value is in milliseconds. */
export function durationFlag(decl: FlagDecl<number>): Flag<number> {
  return scalarFlag("duration", decl, (text) => {
    const ms = parseGoDuration(text);
    if (ms === undefined) {
      throw new InvalidValue("want a duration such as 5s, 1m30s or 250ms", text);
    }
    return ms;
  }, formatGoDuration(decl.default));
}

/** Lists `choices` the way usage errors do: `a, b or c`. */
function orList(names: readonly string[]): string {
  return names.length < 2 ? names.join("") : `${names.slice(0, -1).join(", ")} or ${names.at(-1)}`;
}

/** A flag taking one of `choices`, each described by `describe` in `--help`. */
export function choiceFlag<C extends string>(
  decl: FlagDecl<NoInfer<C>> & { choices: readonly C[]; describe?: Record<C, string> },
): Flag<C> {
  const { choices, describe, ...rest } = decl;
  const want = `want ${orList(choices)}`;
  return {
    ...scalarFlag("string", rest, (text) => {
      if (!(choices as readonly string[]).includes(text)) throw new InvalidValue(want, text);
      return text as C;
    }, decl.default),
    choices: choices.map((name) => ({ name, help: describe?.[name] })),
  };
}

/** A repeatable flag: every argument given is kept, `split` into items. */
function repeatedFlag(
  kind: FlagKind,
  decl: Omit<FlagDecl<readonly string[]>, "check">,
  split: (text: string) => string[],
): Flag<string[]> {
  return {
    ...decl,
    kind,
    default: [...decl.default],
    defaultArg: decl.default.join(","),
    parse: (texts) => {
      if (texts.length === 0) return [...decl.default];
      const items = texts.flatMap(split);
      if (items.length === 0) throw new InvalidValue("empty list");
      return items;
    },
  };
}

/** A repeatable, comma-separated list flag (`--x a,b --x c`); an empty list is refused. */
export function listFlag(decl: Omit<FlagDecl<readonly string[]>, "check">): Flag<string[]> {
  return repeatedFlag(
    "list",
    decl,
    (text) => text.split(",").map((item) => item.trim()).filter(Boolean),
  );
}

/** A repeatable flag whose arguments are kept whole (paths may hold commas). */
export function arrayFlag(decl: Omit<FlagDecl<readonly string[]>, "check">): Flag<string[]> {
  return repeatedFlag("array", decl, (text) => [text]);
}
