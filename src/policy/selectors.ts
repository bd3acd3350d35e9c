/** Label selector matching, as Kubernetes defines it. */
import type { Labels, LabelSelector } from "../cluster/types.ts";

/** Whether `labels` satisfy every term of the selector (an empty selector matches all). */
export function selectorMatches(selector: LabelSelector, labels: Labels): boolean {
  const required = selector.matchLabels;
  for (const key in required) {
    if (labels[key] !== required[key]) return false;
  }
  for (const expr of selector.matchExpressions) {
    const has = Object.hasOwn(labels, expr.key);
    switch (expr.operator) {
      case "In":
        if (!has || !expr.values.includes(labels[expr.key])) return false;
        break;
      case "NotIn":
        if (has && expr.values.includes(labels[expr.key])) return false;
        break;
      case "Exists":
        if (!has) return false;
        break;
      case "DoesNotExist":
        if (has) return false;
        break;
    }
  }
  return true;
}
