/**
 * `--drop-events`: a Warning Event on a pod when policy drops its traffic,
 * naming the direction, how much and the policies isolating it; at most one
 * per interface per `intervalMs`. What is dropped meanwhile is reported in
 * the next one.
 */
import { interfaceKey } from "../policy/model.ts";
import type { DropTotal } from "./drop_counters.ts";

/** The Event reason of a drop warning. */
export const DROP_REASON = "PolicyDroppedTraffic";

/** Where drop warnings go. */
export interface DropNotices {
  podNotice(
    pod: { namespace: string; name: string; uid: string },
    reason: string,
    message: string,
  ): void;
}

/** What a drop warning says: how many packets, which direction, which policies. */
export function dropMessage(total: DropTotal, packets: number): string {
  const { rules, direction } = total;
  const way = direction === "ingress" ? "to" : "from";
  const policies = rules[direction].policies;
  const by = rules.overLimit
    ? `denied both ways: its program would need ${rules.overLimit.filters} filters ` +
      `(limit ${rules.overLimit.max})`
    : rules.denyAll !== undefined
    ? `denied both ways: ${rules.denyAll}`
    : `${direction} is isolated by ${policies.join(", ")}`;
  return `policy dropped ${packets} ${direction} packet${packets === 1 ? "" : "s"} ${way} ` +
    `${rules.interfaceName} (network ${rules.network}); ${by}; ` +
    `see "multi-networkpolicy-tc explain"`;
}

/** Turns rising drop totals into rate-limited Warning Events. */
export class DropWarnings {
  /** Packets already reported, per interface and direction. */
  readonly #reported = new Map<string, number>();
  /** When each interface last got a warning. */
  readonly #lastWarned = new Map<string, number>();

  constructor(
    private readonly notices: DropNotices,
    private readonly intervalMs = 60_000,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Looks at the current totals and records the warnings that are due. */
  check(totals: readonly DropTotal[]): void {
    const now = this.now();
    for (const total of totals) {
      const iface = interfaceKey(total.rules);
      const id = `${iface}|${total.direction}`;
      const packets = total.packets - (this.#reported.get(id) ?? 0);
      if (packets <= 0) continue;
      const last = this.#lastWarned.get(iface);
      if (last !== undefined && now - last < this.intervalMs) continue;
      this.#lastWarned.set(iface, now);
      this.#reported.set(id, total.packets);
      this.notices.podNotice(total.rules.pod, DROP_REASON, dropMessage(total, packets));
    }
  }
}
