/**
 * The scale harness's sink: takes every change the agent hands over, notes
 * when it arrived, and keeps of each only what recognising the churn's
 * changes needs (./churn.ts, tokens): the interface key, whether it was
 * removed, which IPv4 addresses entered and which left the allow entries on
 * anchor ports, and which anchor ports became allowed. The rules themselves are not
 * kept, so the harness's own memory stays small next to the agent's.
 */
import type { ApplyOptions, RulesChange, RulesResult, RulesSink } from "../../src/agent/sink.ts";
import type { InterfaceRules } from "../../src/policy/model.ts";
import { ANCHOR_PORT_MIN } from "./cluster.ts";

/** Sorted, merged, inclusive integer ranges. */
export type Ranges = [number, number][];

/** What of an interface's rules the tokens look at. */
export interface AnchorView {
  /** IPv4 addresses allowed on some anchor port, either direction. */
  ips: Ranges;
  /** Anchor ports allowed, either direction. */
  ports: Ranges;
}

/** One change as recorded. */
export interface ChangeRecord {
  key: string;
  removed: boolean;
  /** Addresses that entered the anchor view. */
  ipsIn: Ranges;
  /** Addresses that left it. */
  ipsOut: Ranges;
  /** Anchor ports allowed now and not before. */
  newPorts: Ranges;
}

/** One `apply` call. */
export interface SinkCall {
  /** `performance.now()` when the call arrived. */
  at: number;
  /** Whether the sync asked for every device to be verified (a full sync). */
  full: boolean;
  changes: ChangeRecord[];
  /** Index of the sync it belongs to, once that sync has reported. */
  sync?: number;
}

/** Sorts and merges ranges. */
export function mergeRanges(ranges: Ranges): Ranges {
  const sorted = ranges.slice().sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const out: Ranges = [];
  for (const [first, last] of sorted) {
    const prev = out[out.length - 1];
    if (prev && first <= prev[1] + 1) prev[1] = Math.max(prev[1], last);
    else out.push([first, last]);
  }
  return out;
}

/** `a` without `b`. */
export function subtractRanges(a: Ranges, b: Ranges): Ranges {
  const out: Ranges = [];
  let j = 0;
  for (const [first, last] of a) {
    let from = first;
    while (j < b.length && b[j][1] < from) j++;
    let k = j;
    while (k < b.length && b[k][0] <= last && from <= last) {
      if (b[k][0] > from) out.push([from, b[k][0] - 1]);
      from = Math.max(from, b[k][1] + 1);
      k++;
    }
    if (from <= last) out.push([from, last]);
  }
  return out;
}

/** Whether `value` is in `ranges`. */
export function rangesContain(ranges: Ranges, value: number): boolean {
  let lo = 0;
  let hi = ranges.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (ranges[mid][1] < value) lo = mid + 1;
    else if (ranges[mid][0] > value) hi = mid - 1;
    else return true;
  }
  return false;
}

/** An IPv4 address as a number, or null for anything else. */
export function ipv4(text: string): number | null {
  const parts = text.split(".");
  if (parts.length !== 4) return null;
  let value = 0;
  for (const part of parts) {
    const n = Number(part);
    if (!/^\d{1,3}$/.test(part) || n > 255) return null;
    value = value * 256 + n;
  }
  return value;
}

/** An IPv4 prefix as a range, or null for anything else. */
function ipv4Range(cidr: string): [number, number] | null {
  const [address, bits = "32"] = cidr.split("/");
  const base = ipv4(address);
  const len = Number(bits);
  if (base === null || !(len >= 0 && len <= 32)) return null;
  const size = 2 ** (32 - len);
  const first = Math.floor(base / size) * size;
  return [first, first + size - 1];
}

/** The anchor view of an interface's rules (empty for none). */
export function anchorView(rules: InterfaceRules | null | undefined): AnchorView {
  const ips: Ranges = [];
  const ports: Ranges = [];
  for (const direction of rules ? [rules.ingress, rules.egress] : []) {
    for (const entry of direction.allow) {
      if (entry.protocol === "any") continue;
      const anchorPorts = entry.ports
        .filter((range) => range.last >= ANCHOR_PORT_MIN)
        .map((range): [number, number] => [Math.max(range.first, ANCHOR_PORT_MIN), range.last]);
      if (anchorPorts.length === 0) continue;
      ports.push(...anchorPorts);
      for (const cidr of entry.cidrs) {
        const range = ipv4Range(cidr);
        if (range) ips.push(range);
      }
    }
  }
  return { ips: mergeRanges(ips), ports: mergeRanges(ports) };
}

/** A {@link RulesSink} that records what it receives (see the module comment). */
export class ScaleSink implements RulesSink {
  readonly calls: SinkCall[] = [];
  readonly #views = new Map<string, AnchorView>();
  #interfaces = 0;

  constructor(private readonly now: () => number = () => performance.now()) {}

  /** Interfaces currently programmed. */
  get interfaces(): number {
    return this.#interfaces;
  }

  apply(changes: RulesChange[], options?: ApplyOptions): Promise<RulesResult[]> {
    const at = this.now();
    const records: ChangeRecord[] = [];
    for (const change of changes) {
      const before = this.#views.get(change.key) ?? { ips: [], ports: [] };
      const after = anchorView(change.rules);
      if (change.rules) this.#views.set(change.key, after);
      else this.#views.delete(change.key);
      records.push({
        key: change.key,
        removed: change.rules === null,
        ipsIn: subtractRanges(after.ips, before.ips),
        ipsOut: subtractRanges(before.ips, after.ips),
        newPorts: subtractRanges(after.ports, before.ports),
      });
    }
    this.#interfaces = this.#views.size;
    this.calls.push({ at, full: options?.verify === "all", changes: records });
    return Promise.resolve(changes.map((change) => ({ key: change.key })));
  }
}
