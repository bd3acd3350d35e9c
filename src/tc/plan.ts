/**
 * The difference between what a representor carries and what it should
 * carry, as an ordered command list (pure). Make-before-break: a change is
 * written into a fresh generation of chains, the chain-0 dispatch is
 * swapped with `filter replace`, and only then is the old generation
 * removed. Filters that are not ours are never touched.
 */
import {
  chainGeneration,
  type Hook,
  MAX_GENERATION,
  type TcCommand,
  type TcFilter,
  type TcProgram,
  type TcState,
} from "./model.ts";
import { isMarked } from "./model.ts";
import { filterText, sameFilters } from "./compare.ts";
import { planInPlace } from "./in_place.ts";
import { blockIndexOf, isAgentBlock } from "./blocks.ts";

/** The plan for one representor. */
export interface Plan {
  commands: TcCommand[];
  /** The generation enforced after the plan runs (0 when disabled). */
  generation: number;
  /** Descriptions of filters and qdiscs found that are not ours. */
  foreign: string[];
  /**
   * The foreign filters among them that traffic meets before or inside our
   * program (chain 0 ahead of our last dispatch filter, or in a chain of
   * ours): they can change what the program decides.
   */
  ahead: string[];
  /** Filters of ours left on a hook the program no longer uses (see {@link PlanOptions}). */
  deferred: number;
  /**
   * The program the device carries after the plan, when it is not the
   * generator's own (an in-place edit keeps the device's filter handles).
   */
  program?: TcProgram;
}

/** How to plan. */
export interface PlanOptions {
  /**
   * Leave our filters on hooks the desired program does not use (an earlier
   * program's egress hook), to be removed by a later plan: the caller first
   * puts the checks they held in place elsewhere.
   */
  deferStaleHooks?: boolean;
}

/** Deletes a hook's worth of our filters: its chain-0 filters first, then its chains. */
function hookDeletes(filters: TcFilter[], shared: Set<string>): TcCommand[] {
  return [
    ...filters.filter((f) => f.chain === 0).map((filter): TcCommand => ({
      op: "filter-del",
      filter,
    })),
    ...chainDeletes(filters, () => false, shared),
  ];
}

/** `hook/chain` of every chain that holds a filter that is not ours (never flushed). */
function sharedChains(foreign: TcFilter[]): Set<string> {
  return new Set(foreign.map((f) => `${f.hook}/${f.chain}`));
}

/** Whether a filter is one the agent wrote: it carries the agent's mark, nothing else counts. */
export function isOurs(filter: TcFilter): boolean {
  return isMarked(filter);
}

/** Chain-0 prios of the Go agent's filters: drop 100–102, pass 200–202, default drop 300–302. */
const PREDECESSOR_PRIOS = new Set([100, 101, 102, 200, 201, 202, 300, 301, 302]);

/**
 * Whether a filter on an `ingress` qdisc is the Go agent's (the agent this
 * one replaces): unmarked, in chain 0 at one of its prios, one pass or drop.
 * On takeover they are removed once our program stands before them.
 */
export function isPredecessorFilter(filter: TcFilter): boolean {
  return !isMarked(filter) && filter.hook === "ingress" && filter.chain === 0 &&
    PREDECESSOR_PRIOS.has(filter.prio) && filter.actions.length === 1 &&
    (filter.actions[0].kind === "pass" || filter.actions[0].kind === "drop");
}

/** How a foreign filter is named in logs and Events. */
function describe(f: TcFilter): string {
  return `${f.hook} chain ${f.chain} prio ${f.prio} handle ${f.handle} (${f.protocol})`;
}

function identity(filter: TcFilter): string {
  return `${filter.hook}/${filter.chain}/${filter.prio}/${filter.handle}/${filter.protocol}`;
}

/** Generations the chain-0 dispatch currently sends traffic to. */
export function referencedGenerations(filters: TcFilter[]): Set<number> {
  const generations = new Set<number>();
  for (const filter of filters) {
    if (filter.chain !== 0 || !isOurs(filter)) continue;
    for (const action of filter.actions) {
      if (action.kind === "goto" && chainGeneration(action.chain) > 0) {
        generations.add(chainGeneration(action.chain));
      }
    }
  }
  return generations;
}

/**
 * Deletes the chains of generations `keep` rejects: a whole chain at once,
 * or filter by filter where a chain also holds filters that are not ours.
 */
function chainDeletes(
  filters: TcFilter[],
  keep: (generation: number) => boolean,
  shared: Set<string>,
): TcCommand[] {
  const chains = new Map<string, { hook: Hook; chain: number; filters: TcFilter[] }>();
  for (const filter of filters) {
    const generation = chainGeneration(filter.chain);
    if (generation === 0 || keep(generation)) continue;
    const key = `${filter.hook}/${filter.chain}`;
    const entry = chains.get(key) ?? { hook: filter.hook, chain: filter.chain, filters: [] };
    entry.filters.push(filter);
    chains.set(key, entry);
  }
  // Policy chains (index 0 of a variant) before the port chains they jump to.
  return [...chains.entries()]
    .sort(([, a], [, b]) => (a.chain % 100_000) - (b.chain % 100_000) || a.chain - b.chain)
    .flatMap(([key, { hook, chain, filters }]): TcCommand[] =>
      shared.has(key)
        ? filters.map((filter): TcCommand => ({ op: "filter-del", filter }))
        : [{ op: "chain-del", hook, chain }]
    );
}

/** A filter's hook and chain, whatever generation the chain is written in. */
function withinGeneration(f: TcFilter): string {
  return `${f.hook}/${f.chain % 1_000_000}`;
}

/** The foreign filters traffic meets before or inside the program (any generation of it). */
function foreignAhead(foreign: TcFilter[], program: TcProgram): string[] {
  if (!program.enabled) return [];
  const lastDispatch = new Map<Hook, number>();
  const chains = new Set<string>();
  for (const f of program.filters) {
    if (f.chain === 0) lastDispatch.set(f.hook, Math.max(lastDispatch.get(f.hook) ?? 0, f.prio));
    else chains.add(withinGeneration(f));
  }
  return foreign.filter((f) =>
    f.chain === 0
      ? lastDispatch.has(f.hook) && f.prio <= lastDispatch.get(f.hook)!
      : chainGeneration(f.chain) > 0 && chains.has(withinGeneration(f))
  ).map(describe);
}

/**
 * Plans the change from `current` to the program `desiredAt(generation)`
 * describes. The generator is called with the generation to write into.
 */
export function planUpdate(
  current: TcState,
  desiredAt: (generation: number) => TcProgram,
  options: PlanOptions = {},
): Plan {
  const probe = desiredAt(1);
  const hooks = new Set(probe.filters.map((f) => f.hook));
  // Our filters on a hook the program no longer uses go last (or later): what they
  // checked is in place elsewhere first, so traffic meets both, never neither.
  const staleHook = (f: TcFilter) => probe.enabled && !hooks.has(f.hook);
  // On the Go agent's `ingress` qdisc, its filters are taken over (removed last, once ours
  // stand before them); everything else not ours stays.
  const onIngressQdisc = !current.clsact && current.ingressQdisc === true;
  const predecessor = onIngressQdisc ? current.filters.filter(isPredecessorFilter) : [];
  const predecessorDeletes = predecessor.map((filter): TcCommand => ({ op: "filter-del", filter }));
  const others = current.filters.filter((f) => !isOurs(f) && !predecessor.includes(f));
  const shared = sharedChains(others);
  const stale = current.filters.filter((f) => isOurs(f) && staleHook(f));
  const staleDeletes = options.deferStaleHooks ? [] : hookDeletes(stale, shared);
  const deferred = options.deferStaleHooks ? stale.length : 0;
  const ours = current.filters.filter((f) => isOurs(f) && !staleHook(f));
  const foreign = [...others.map(describe), ...(current.foreignFilters ?? [])];
  const ahead = foreignAhead(others, probe);
  if (current.ingressBlock !== undefined && blockIndexOf(current.device) === null) {
    return planOffSharedBlock(current.device, current.ingressBlock, probe, foreign);
  }
  const qdisc = current.clsact || onIngressQdisc;
  if (!probe.enabled) {
    if (!qdisc) return { commands: [], generation: 0, foreign, ahead, deferred };
    if (foreign.length === 0) {
      const kind = current.clsact ? "clsact" : "ingress";
      return { commands: [{ op: "qdisc-del", kind }], generation: 0, foreign, ahead, deferred };
    }
    return {
      commands: [...hookDeletes(ours, shared), ...predecessorDeletes],
      generation: 0,
      foreign,
      ahead,
      deferred,
    };
  }
  if (onIngressQdisc && hooks.has("egress")) {
    throw new Error(
      "an ingress qdisc (the Go agent's layout) has no egress hook for this program: " +
        "delete it (tc qdisc del dev DEVICE ingress) to let the agent program the device",
    );
  }
  if (!qdisc) {
    return {
      commands: freshProgram(probe),
      generation: 1,
      foreign,
      ahead,
      deferred,
    };
  }
  // A shared block some of whose uplinks are not bound to it: they are bound first.
  const bind: TcCommand[] = (current.unbound ?? []).length > 0 ? [{ op: "qdisc-add" }] : [];
  const plan = planOnQdisc(desiredAt, ours, stale, staleDeletes, predecessor, shared);
  return {
    ...plan,
    commands: [...bind, ...plan.commands],
    foreign,
    ahead,
    deferred,
  };
}

/**
 * An uplink whose clsact is bound to a shared block of the agent's (it left
 * its bond): its own clsact replaces it, with the whole program. A block
 * of another tool's is left alone.
 */
function planOffSharedBlock(
  device: string,
  block: number,
  probe: TcProgram,
  foreign: string[],
): Plan {
  if (!probe.enabled) return { commands: [], generation: 0, foreign, ahead: [], deferred: 0 };
  if (!isAgentBlock(block)) {
    throw new Error(
      `${device}'s clsact is bound to shared block ${block}, not one of the agent's: ` +
        `left alone (delete it to let the agent program the device)`,
    );
  }
  return {
    commands: [{ op: "qdisc-del" }, ...freshProgram(probe)],
    generation: 1,
    foreign,
    ahead: [],
    deferred: 0,
  };
}

/** A program written where there is no qdisc: the qdisc, its chains, then its dispatch. */
function freshProgram(program: TcProgram): TcCommand[] {
  return [
    { op: "qdisc-add" },
    ...program.filters.filter((f) => f.chain !== 0).map((filter): TcCommand => ({
      op: "filter-add",
      filter,
    })),
    ...program.filters.filter((f) => f.chain === 0).map((filter): TcCommand => ({
      op: "filter-add",
      filter,
    })),
  ];
}

/** The plan where our qdisc is in place: an edit, a new generation, or nothing. */
function planOnQdisc(
  desiredAt: (generation: number) => TcProgram,
  ours: TcFilter[],
  stale: TcFilter[],
  staleDeletes: TcCommand[],
  predecessor: TcFilter[],
  shared: Set<string>,
): Pick<Plan, "commands" | "generation" | "program"> {
  const predecessorDeletes = predecessor.map((filter): TcCommand => ({ op: "filter-del", filter }));
  const referenced = referencedGenerations(ours);
  if (referenced.size === 1) {
    const [generation] = referenced;
    const program = desiredAt(generation);
    if (sameFilters(ours, program.filters)) {
      return { commands: [...staleDeletes, ...predecessorDeletes], generation };
    }
    // A change of allow filters only is edited in place (./in_place.ts); a takeover or a
    // move off a hook always writes a new generation.
    const edit = stale.length === 0 && predecessor.length === 0
      ? planInPlace(ours, program, shared)
      : null;
    if (edit) {
      return { commands: edit.commands, generation, program: edit.program };
    }
  }
  let generation = 1;
  while (referenced.has(generation) && generation < MAX_GENERATION) generation++;
  const program = desiredAt(generation);
  const commands: TcCommand[] = [...chainDeletes(ours, (g) => g !== generation, shared)];
  for (const filter of program.filters) {
    if (filter.chain !== 0) commands.push({ op: "filter-add", filter });
  }
  const currentDispatch = new Map(
    ours.filter((f) => f.chain === 0).map((f) => [identity(f), f]),
  );
  const wanted = new Set<string>();
  for (const filter of program.filters) {
    if (filter.chain !== 0) continue;
    const key = identity(filter);
    wanted.add(key);
    const existing = currentDispatch.get(key);
    if (!existing) commands.push({ op: "filter-add", filter });
    else if (filterText(existing) !== filterText(filter)) {
      commands.push({ op: "filter-replace", filter });
    }
  }
  for (const [key, filter] of currentDispatch) {
    if (!wanted.has(key)) commands.push({ op: "filter-del", filter });
  }
  commands.push(
    ...chainDeletes(ours, (g) => g === generation, shared),
    ...staleDeletes,
    ...predecessorDeletes,
  );
  return { commands, generation };
}
