/**
 * The `--pod-rules-path` tree, in the original Go agent's layout:
 * `<root>/<pod uid>/<namespace>-<network>-<representor>.rules`, plus this
 * agent's `<root>/uplinks/<uplink>.rules`. Pod UIDs come from the API server:
 * one becomes a directory name only once checked. The sweep removes what no
 * current rules file lives in, without following a symbolic link and without
 * ever leaving the root.
 */
import { checkUid } from "../cluster/validate.ts";
import { log } from "../log/klog.ts";

/** The directory under the root that holds the uplink representors' rules files. */
export const UPLINKS_DIR = "uplinks";

/**
 * The directory of a pod's rules files: its UID, when that is safe as a
 * directory name and not {@link UPLINKS_DIR}; "" otherwise (nothing is written).
 */
export function podRulesDir(uid: string): string {
  return uid !== UPLINKS_DIR && checkUid(uid) === null ? uid : "";
}

/** The rules file name of a representor: `<namespace>-<network>-<representor>.rules`. */
export function interfaceRulesName(network: string, device: string): string {
  return `${network.replaceAll("/", "-")}-${device}.rules`;
}

/** A name the actuator writes: `*.rules`, or `*.rules.tmp` left by an interrupted write. */
function isRulesFileName(name: string): boolean {
  return name.endsWith(".rules") || name.endsWith(".rules.tmp");
}

function reason(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The entries of a directory; none when it does not exist. */
async function entries(dir: string): Promise<Deno.DirEntry[]> {
  const out: Deno.DirEntry[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) out.push(entry);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  return out;
}

/**
 * Removes from `root` every directory that is not in `keep` (nor
 * {@link UPLINKS_DIR}): pods without rules now, also those gone while the
 * agent was down. In each directory kept, rules files not listed in `keep`
 * go too (older layouts, devices no longer used). Only directories are
 * removed at the top level; symbolic links are removed as links, never
 * followed. Returns the paths removed, relative to the root; failures are
 * logged, never thrown.
 */
export async function sweepRulesDir(
  root: string,
  keep: ReadonlyMap<string, ReadonlySet<string>>,
): Promise<string[]> {
  const removed: string[] = [];
  const remove = async (relative: string, recursive: boolean) => {
    try {
      await Deno.remove(`${root}/${relative}`, { recursive });
      removed.push(relative);
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return;
      log.warning("cannot remove a stale rules file or directory", {
        path: `${root}/${relative}`,
        err: reason(error),
      });
    }
  };
  let top: Deno.DirEntry[];
  try {
    top = await entries(root);
  } catch (error) {
    log.warning("cannot read --pod-rules-path", { path: root, err: reason(error) });
    return removed;
  }
  for (const entry of top) {
    // A symbolic link or a file at the top level is not ours: left as it is.
    if (!entry.isDirectory || entry.isSymlink) continue;
    const files = keep.get(entry.name);
    if (!files && entry.name !== UPLINKS_DIR) {
      // Deno.remove does not follow the links inside: it removes them as links.
      await remove(entry.name, true);
      continue;
    }
    let inside: Deno.DirEntry[];
    try {
      inside = await entries(`${root}/${entry.name}`);
    } catch (error) {
      log.warning("cannot read a rules directory", {
        path: `${root}/${entry.name}`,
        err: reason(error),
      });
      continue;
    }
    for (const file of inside) {
      if (!file.isFile || !isRulesFileName(file.name) || files?.has(file.name)) continue;
      await remove(`${entry.name}/${file.name}`, false);
    }
  }
  if (removed.length > 0) {
    log.info("removed rules files of pods and devices that have no rules now", {
      path: root,
      removed: removed.length,
    });
  }
  return removed;
}
