/**
 * What differs between the program the agent last applied to a device and
 * what the kernel holds there now, when nobody asked for a change: someone
 * deleted the qdisc or some of our filters, changed them, or the device was
 * re-created. Pure; the actuator repairs, this names what was wrong.
 */
import { isMarked, type TcFilter, type TcProgram, type TcState } from "./model.ts";
import { filterContent } from "./compare.ts";

/** Why a repair was needed (the `reason` label of the repairs metric). */
export type DriftReason = "qdisc_missing" | "filters_missing" | "filters_changed";

/** A difference found, for the log line and the metric. */
export interface Drift {
  reason: DriftReason;
  /** One line: what was wrong. */
  detail: string;
}

function key(filter: TcFilter): string {
  return `${filter.hook}/${filter.chain}/${filter.prio}/${filter.handle}`;
}

/** The difference between what was applied and what the kernel has; null when none. */
export function findDrift(current: TcState, applied: TcProgram): Drift | null {
  if (!applied.enabled) {
    const left = current.filters.filter(isMarked).length;
    return left === 0 ? null : {
      reason: "filters_changed",
      detail: `${left} filters of ours found where none should be`,
    };
  }
  if (!current.clsact) {
    return { reason: "qdisc_missing", detail: "the clsact qdisc is gone, and our filters with it" };
  }
  if ((current.unbound ?? []).length > 0) {
    return {
      reason: "qdisc_missing",
      detail: `uplinks not bound to the shared block: ${current.unbound!.join(", ")}`,
    };
  }
  const have = new Map(current.filters.filter(isMarked).map((f) => [key(f), f]));
  const missing: string[] = [];
  const changed: string[] = [];
  for (const filter of applied.filters) {
    const found = have.get(key(filter));
    have.delete(key(filter));
    if (!found) missing.push(key(filter));
    else if (filterContent(found) !== filterContent(filter)) changed.push(key(filter));
  }
  const extra = [...have.keys()];
  if (missing.length === 0 && changed.length === 0 && extra.length === 0) return null;
  /** A count and the first few filters, as hook/chain/prio/handle. */
  const some = (keys: string[]) =>
    `(${keys.slice(0, 3).join(", ")}${keys.length > 3 ? ", ..." : ""})`;
  const parts = [
    missing.length > 0
      ? `${missing.length} of our ${applied.filters.length} filters missing ${some(missing)}`
      : "",
    changed.length > 0 ? `${changed.length} changed ${some(changed)}` : "",
    extra.length > 0 ? `${extra.length} marked filters we did not write ${some(extra)}` : "",
  ].filter(Boolean);
  return {
    reason: missing.length > 0 && changed.length === 0 && extra.length === 0
      ? "filters_missing"
      : "filters_changed",
    detail: parts.join(", "),
  };
}
