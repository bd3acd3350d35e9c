/**
 * A small logger writing klog's text format, so log tooling built for the
 * original Go agent keeps working:
 * `I1126 04:28:27.123456    4242 file.ts:12] msg key="value"`.
 */
import { escapeControls, quote } from "./quote.ts";

/** Severity letters in klog order. */
export type Severity = "I" | "W" | "E" | "F";

const SEVERITY_RANK: Record<Severity, number> = { I: 0, W: 1, E: 2, F: 3 };

/** klog's severity names, in rank order (INFO is 0, FATAL is 3). */
export const SEVERITY_NAMES: readonly string[] = ["INFO", "WARNING", "ERROR", "FATAL"];

/**
 * Reads a severity threshold as klog's `--stderrthreshold` does: a severity
 * name in any case, or its number 0-3. Undefined when it is neither.
 */
export function parseSeverity(text: string): number | undefined {
  const byName = SEVERITY_NAMES.indexOf(text.toUpperCase());
  if (byName >= 0) return byName;
  return /^\d+$/.test(text) && Number(text) < SEVERITY_NAMES.length ? Number(text) : undefined;
}

/** The klog flags that shape logging (names and defaults as in klog v2). */
export interface KlogOptions {
  v: number;
  vmodule: string;
  logtostderr: boolean;
  alsologtostderr: boolean;
  logDir: string;
  logFile: string;
  logFileMaxSizeMB: number;
  oneOutput: boolean;
  skipHeaders: boolean;
  skipLogHeaders: boolean;
  /** Severity rank (0 INFO to 3 FATAL) from which lines also go to stderr. */
  stderrthreshold: number;
  addDirHeader: boolean;
  logBacktraceAt: string;
}

/** klog's defaults. */
export const DEFAULT_KLOG_OPTIONS: KlogOptions = {
  v: 0,
  vmodule: "",
  logtostderr: true,
  alsologtostderr: false,
  logDir: "",
  logFile: "",
  logFileMaxSizeMB: 1800,
  oneOutput: false,
  skipHeaders: false,
  skipLogHeaders: false,
  stderrthreshold: 2,
  addDirHeader: false,
  logBacktraceAt: "",
};

/** Key/value pairs appended to a message, klog structured style. */
export type LogFields = Record<string, unknown>;

interface VmoduleRule {
  pattern: RegExp;
  level: number;
}

/** A destination for formatted lines; tests swap it to capture output. */
export interface LogSink {
  write(line: string, severity: Severity): void;
}

const encoder = new TextEncoder();

class StderrSink implements LogSink {
  write(line: string): void {
    Deno.stderr.writeSync(encoder.encode(line));
  }
}

class FileSink implements LogSink {
  #file: Deno.FsFile;
  #size = 0;
  constructor(private readonly path: string, private readonly maxBytes: number) {
    this.#file = this.#open(false);
  }
  #open(truncate: boolean): Deno.FsFile {
    const file = Deno.openSync(this.path, {
      create: true,
      write: true,
      append: !truncate,
      truncate,
    });
    this.#size = truncate ? 0 : file.statSync().size;
    return file;
  }
  write(line: string): void {
    const bytes = encoder.encode(line);
    if (this.maxBytes > 0 && this.#size + bytes.length > this.maxBytes) {
      this.#file.close();
      this.#file = this.#open(true);
    }
    this.#file.writeSync(bytes);
    this.#size += bytes.length;
  }
}

function globToRegExp(glob: string): RegExp {
  const escaped = glob.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(
    /\?/g,
    ".",
  );
  return new RegExp(`^${escaped}$`);
}

/** Parses a `--vmodule` value (`pattern=N,...`); throws with the bad entry. */
export function parseVmodule(value: string): VmoduleRule[] {
  if (value.trim() === "") return [];
  return value.split(",").map((entry) => {
    const match = /^([^=]+)=(\d+)$/.exec(entry.trim());
    if (!match) throw new Error(`invalid vmodule entry "${entry}": want pattern=N`);
    return { pattern: globToRegExp(match[1]), level: Number(match[2]) };
  });
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, "0");
}

function formatValue(value: unknown): string {
  if (typeof value === "string") return quote(value);
  if (value instanceof Error) return quote(value.message);
  if (typeof value === "number" || typeof value === "boolean" || value === null) {
    return String(value);
  }
  if (value === undefined) return "<nil>";
  return JSON.stringify(value) ?? String(value);
}

interface CallSite {
  file: string;
  path: string;
  line: number;
}

function callSite(depth: number): CallSite {
  const stack = new Error().stack?.split("\n") ?? [];
  const frame = stack[depth + 1] ?? "";
  const match = /\(?([^()\s]+):(\d+):\d+\)?$/.exec(frame.trim());
  if (!match) return { file: "???", path: "???", line: 0 };
  const path = match[1].replace(/^file:\/\//, "");
  const parts = path.split("/");
  return { file: parts[parts.length - 1], path, line: Number(match[2]) };
}

/** The process-wide klog-style logger. */
export class Klog {
  #options: KlogOptions = { ...DEFAULT_KLOG_OPTIONS };
  #vmodule: VmoduleRule[] = [];
  #stderr: LogSink = new StderrSink();
  #file: LogSink | null = null;
  #pid = Deno.pid;

  /** Applies the klog flags; throws when a value is unusable. */
  configure(options: KlogOptions): void {
    this.#options = { ...options };
    this.#vmodule = parseVmodule(options.vmodule);
    this.#file = null;
    if (!options.logtostderr) {
      const path = options.logFile ||
        (options.logDir ? `${options.logDir}/multi-networkpolicy-tc.log` : "");
      if (path) this.#file = new FileSink(path, options.logFileMaxSizeMB * 1024 * 1024);
    }
  }

  /** Redirects stderr output, for tests that assert on log lines. */
  setStderrSink(sink: LogSink): void {
    this.#stderr = sink;
  }

  /** Whether messages at verbosity `level` from the caller are enabled. */
  enabled(level: number, depth = 1): boolean {
    if (this.#vmodule.length > 0) {
      const site = callSite(depth + 1);
      const base = site.file.replace(/\.[jt]s$/, "");
      for (const rule of this.#vmodule) {
        if (rule.pattern.test(base) || rule.pattern.test(site.path)) return level <= rule.level;
      }
    }
    return level <= this.#options.v;
  }

  /** Logs at info severity. */
  info(msg: string, fields?: LogFields): void {
    this.#emit("I", msg, fields);
  }

  /** Logs at info severity when verbosity `level` is enabled. */
  v(level: number, msg: string, fields?: LogFields): void {
    if (this.enabled(level, 2)) this.#emit("I", msg, fields);
  }

  /** Logs at warning severity. */
  warning(msg: string, fields?: LogFields): void {
    this.#emit("W", msg, fields);
  }

  /** Logs at error severity. */
  error(msg: string, fields?: LogFields): void {
    this.#emit("E", msg, fields);
  }

  /** Formats one line exactly as klog would (without writing it). */
  format(severity: Severity, msg: string, fields: LogFields | undefined, site: CallSite): string {
    let text = msg;
    for (const [key, value] of Object.entries(fields ?? {})) {
      text += ` ${key}=${formatValue(value)}`;
    }
    // One call, one line: nothing in a message or a value can start another.
    text = escapeControls(text);
    if (this.#options.skipHeaders) return `${text}\n`;
    const now = new Date();
    const micros = pad(now.getMilliseconds() * 1000, 6);
    const where = this.#options.addDirHeader ? site.path : site.file;
    const header = `${severity}${pad(now.getMonth() + 1, 2)}${pad(now.getDate(), 2)} ` +
      `${pad(now.getHours(), 2)}:${pad(now.getMinutes(), 2)}:${
        pad(now.getSeconds(), 2)
      }.${micros} ${String(this.#pid).padStart(7, " ")} ${where}:${site.line}]`;
    return `${header} ${text}\n`;
  }

  #emit(severity: Severity, msg: string, fields?: LogFields): void {
    const site = callSite(3);
    let line = this.format(severity, msg, fields, site);
    if (this.#options.logBacktraceAt === `${site.file}:${site.line}`) {
      line += `${new Error("backtrace").stack ?? ""}\n`;
    }
    const rank = SEVERITY_RANK[severity];
    if (this.#options.logtostderr || this.#file === null) {
      this.#stderr.write(line, severity);
      return;
    }
    this.#file.write(line, severity);
    if (this.#options.alsologtostderr || rank >= this.#options.stderrthreshold) {
      this.#stderr.write(line, severity);
    }
  }
}

/** The shared logger instance used throughout the agent. */
export const log: Klog = new Klog();
