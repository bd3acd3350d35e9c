/**
 * Reading primitives for sysfs, used by representor discovery. Each failure
 * is a {@link SysfsError} naming the path and the operating system's reason
 * (e.g. `No such file or directory`), without Deno's `(os error N)` suffix,
 * so callers can put it in a message that is stable across Deno versions.
 */

/** A failed sysfs read: which path, and why (OS text, or a short reason). */
export class SysfsError extends Error {
  /** The path that could not be read. */
  readonly path: string;
  /** Why: the OS error text (`No such file or directory`) or e.g. `empty`. */
  readonly reason: string;
  /** The errno name when the OS gave one (`ENOENT`, `EOPNOTSUPP`), else "". */
  readonly code: string;

  constructor(path: string, reason: string, code = "", options?: ErrorOptions) {
    super(reason === "empty" ? `${path} is empty` : `cannot read ${path}: ${reason}`, options);
    this.name = "SysfsError";
    this.path = path;
    this.reason = reason;
    this.code = code;
  }
}

/** Turns a Deno file-system error into a SysfsError for `path`. */
function wrap(path: string, error: unknown): SysfsError {
  if (error instanceof SysfsError) return error;
  if (error instanceof Error) {
    const reason = error.message.replace(/ \(os error \d+\)[\s\S]*$/, "");
    const code = (error as { code?: unknown }).code;
    return new SysfsError(path, reason, typeof code === "string" ? code : "", { cause: error });
  }
  return new SysfsError(path, String(error), "", { cause: error });
}

/** Runs one file-system read of `path`, turning its failure into a {@link SysfsError}. */
async function reading<T>(path: string, read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (error) {
    throw wrap(path, error);
  }
}

/**
 * Reads a sysfs attribute and returns it trimmed. An empty attribute is an
 * error (`empty`): sysfs attributes that matter here are never legitimately
 * empty, and fake trees use an empty file to stand for "unsupported".
 */
export async function readAttribute(path: string): Promise<string> {
  const value = (await reading(path, () => Deno.readTextFile(path))).trim();
  if (value === "") throw new SysfsError(path, "empty");
  return value;
}

/** Reads an attribute, or returns null when it cannot be read or is empty. */
export async function readOptionalAttribute(path: string): Promise<string | null> {
  try {
    return await readAttribute(path);
  } catch {
    return null;
  }
}

/**
 * Returns the last component of a symlink's target, without following it:
 * for `physfn -> ../0000:3b:00.0` this is `0000:3b:00.0`. Only the basename
 * is used by callers, so a link can never steer a later read outside the
 * sysfs root.
 */
export async function readLinkBasename(path: string): Promise<string> {
  const target = await reading(path, () => Deno.readLink(path));
  const parts = target.split("/").filter((part) => part !== "");
  return parts.length === 0 ? "" : parts[parts.length - 1];
}

/** Lists a directory's entry names, sorted. */
export async function listDirectory(path: string): Promise<string[]> {
  const names: string[] = [];
  await reading(path, async () => {
    for await (const entry of Deno.readDir(path)) names.push(entry.name);
  });
  return names.sort();
}

/** Whether `path` exists (following symlinks). */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}
