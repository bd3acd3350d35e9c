/**
 * Which node this host is, and which pods are on it, the way the original
 * Go agent decides: the host name (or `--hostname-override`) is trimmed and
 * lower-cased, and a pod is on this node when the first DNS label of its
 * `spec.nodeName` equals the first label of that name, compared in lower
 * case. So a short host name matches a node named by its FQDN, and an FQDN
 * host name matches a node with a short name. Pure.
 */
import { show } from "../log/quote.ts";

/** Where the node name came from. */
export type NodeNameSource = "hostname-override" | "hostname";

/** The node name this host acts as, and where it came from. */
export interface NodeIdentity {
  /** Trimmed and lower-cased. */
  name: string;
  source: NodeNameSource;
}

/**
 * The node name this host acts as: `override` when non-empty, else the host
 * name, trimmed and lower-cased. Throws when it is empty or starts with a dot
 * (no first label to compare).
 */
export function hostIdentity(override: string, hostname: () => string): NodeIdentity {
  const source: NodeNameSource = override === "" ? "hostname" : "hostname-override";
  const name = (override === "" ? hostname() : override).trim().toLowerCase();
  if (name === "") throw new Error(`empty ${source} is invalid`);
  if (nodeKey(name) === "") {
    throw new Error(`invalid ${source} ${show(name)}: its first DNS label is empty`);
  }
  return { name, source };
}

/** The part of a node name that identifies it: its first DNS label, in lower case. */
export function nodeKey(name: string): string {
  return name.split(".", 1)[0].toLowerCase();
}

/** Whether two node names point at the same node (equal first DNS labels, any case). */
export function sameNode(a: string, b: string): boolean {
  const key = nodeKey(a);
  return key !== "" && key === nodeKey(b);
}

/** How pods are matched to `node`, in words, for the start-up log: `spec.nodeName w1 or w1.*, any case`. */
export function nodeMatchRule(node: string): string {
  const key = nodeKey(node);
  return `spec.nodeName ${key} or ${key}.*, any case`;
}
