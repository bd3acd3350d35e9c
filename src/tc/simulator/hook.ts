/**
 * Runs one packet through the filters of one clsact hook in software, as the
 * kernel does: chain 0 first; in a chain, filters by priority (then handle),
 * each only for packets of its protocol; a matching filter's actions in order
 * (`ct` then continues with the next action, `goto` jumps to another chain,
 * `pass` and `drop` end). A packet that matches no filter of the chain it is
 * in is accepted. Returns the verdict and every filter the packet met. A run
 * can also resume where hardware handed a packet to software: at the start of
 * a chain, or at one action of one filter.
 */
import type { Hook, TcAction, TcFilter } from "../model.ts";
import type { CtResult } from "./conntrack.ts";
import { type CtFlag, flowerMatches } from "./flower.ts";
import type { Packet } from "./packet.ts";

/** A filter a packet matched, and what it did. */
export interface TraceStep {
  hook: Hook;
  chain: number;
  prio: number;
  handle: number;
  /** The actions run, as text (`ct zone 3 commit`, `goto chain 1000000`, `drop`). */
  did: string[];
  /** The conntrack flags after this filter's actions. */
  ct: CtFlag[];
  /** Whether the NIC's tables or the kernel ran the filter. */
  where: "hardware" | "software";
}

/** What happened to a packet on one hook. */
export interface HookResult {
  verdict: "pass" | "drop";
  trace: TraceStep[];
  /** True when no filter of the last chain matched (the kernel accepts it). */
  fellThrough: boolean;
}

/** What runs a `ct` action in software: the conntrack model, or a wrapper around it. */
export interface CtProcessor {
  process(zone: number, packet: Packet, commit: boolean): CtResult;
}

/** Where a software run starts: a chain from its first filter, or one filter's action. */
export type Resume = { chain: number } | { filter: TcFilter; action: number };

/** What a filter's last action does: jump to a chain, or decide. */
export function ending(
  action: Exclude<TcAction, { kind: "ct" }>,
): { next: number | null; verdict: "pass" | "drop" | null } {
  return action.kind === "goto"
    ? { next: action.chain, verdict: null }
    : { next: null, verdict: action.kind };
}

/** A non-ct action as text (`goto chain 1000000`, `pass`, `drop`). */
export function actionText(action: Exclude<TcAction, { kind: "ct" }>): string {
  return action.kind === "goto" ? `goto chain ${action.chain}` : action.kind;
}

/** A loop guard: no program of ours chains further than this. */
const MAX_JUMPS = 32;

/** `filters` of `hook` by chain, each chain in the order the kernel tries them. */
export function chainsOf(filters: readonly TcFilter[], hook: Hook): Map<number, TcFilter[]> {
  const byChain = new Map<number, TcFilter[]>();
  for (const filter of filters) {
    if (filter.hook !== hook) continue;
    const list = byChain.get(filter.chain) ?? [];
    list.push(filter);
    byChain.set(filter.chain, list);
  }
  for (const list of byChain.values()) list.sort((a, b) => a.prio - b.prio || a.handle - b.handle);
  return byChain;
}

/**
 * Runs `packet` through `filters` of `hook`; conntrack state lives in
 * `conntrack`. `ctIn` is the state the packet arrives with (a `ct` action on
 * an earlier hook leaves it on the packet). `resume` starts the run elsewhere
 * than at chain 0.
 */
export function runHook(
  filters: readonly TcFilter[],
  hook: Hook,
  packet: Packet,
  conntrack: CtProcessor,
  ctIn: ReadonlySet<CtFlag> = new Set(),
  resume: Resume = { chain: 0 },
): HookResult {
  const byChain = chainsOf(filters, hook);
  const trace: TraceStep[] = [];
  let ct = new Set<CtFlag>(ctIn);
  let chain = "filter" in resume ? resume.filter.chain : resume.chain;
  let start = "filter" in resume ? resume : null;
  for (let jumps = 0; jumps < MAX_JUMPS; jumps++) {
    const filter = start?.filter ??
      (byChain.get(chain) ?? []).find((f) => flowerMatches(f.protocol, f.match, packet, ct));
    if (!filter) return { verdict: "pass", trace, fellThrough: true };
    const did: string[] = [];
    let next: number | null = null;
    let verdict: "pass" | "drop" | null = null;
    for (const action of filter.actions.slice(start?.action ?? 0)) {
      if (action.kind === "ct") {
        ct = conntrack.process(action.zone, packet, action.commit);
        did.push(`ct zone ${action.zone}${action.commit ? " commit" : ""}`);
        continue;
      }
      ({ next, verdict } = ending(action));
      did.push(actionText(action));
      break;
    }
    start = null;
    const { prio, handle } = filter;
    trace.push({ hook, chain, prio, handle, did, ct: [...ct], where: "software" });
    if (verdict) return { verdict, trace, fellThrough: false };
    if (next === null) return { verdict: "pass", trace, fellThrough: false };
    chain = next;
  }
  throw new Error(`more than ${MAX_JUMPS} chain jumps on ${hook}: a loop in the program`);
}
