/**
 * The difference between what a representor carries and what it should
 * carry, as an ordered command list (pure). Make-before-break: a change is
 * written into a fresh generation of chains, the chain-0 dispatch is
 * swapped with `filter replace`, and only then is the old generation
 * removed. Filters that are not ours are never touched.
 */
import { DISPATCH_PRIO } from "./generate.ts";
import {
  chainGeneration,
  type Hook,
  MAX_GENERATION,
  type TcCommand,
  type TcFilter,
  type TcProgram,
  type TcState,
} from "./model.ts";

/** The plan for one representor. */
export interface Plan {
  commands: TcCommand[];
  /** The generation enforced after the plan runs (0 when disabled). */
  generation: number;
  /** Descriptions of filters and qdiscs found that are not ours. */
  foreign: string[];
  /** Filters of ours left on a hook the program no longer uses (see {@link PlanOptions}). */
  deferred: number;
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
function hookDeletes(filters: TcFilter[]): TcCommand[] {
  return [
    ...filters.filter((f) => f.chain === 0).map((filter): TcCommand => ({
      op: "filter-del",
      filter,
    })),
    ...chainDeletes(filters, () => false),
  ];
}

const OUR_DISPATCH_PRIOS = new Set<number>([
  ...[0, 1, 2].map((o) => DISPATCH_PRIO.arp + o),
  ...[0, 1, 2].map((o) => DISPATCH_PRIO.neighbourDiscovery + o),
  ...[0, 1, 2, 3, 4, 5].map((v) => DISPATCH_PRIO.ip + v),
  DISPATCH_PRIO.taggedDrop,
  DISPATCH_PRIO.taggedDrop + 1,
  DISPATCH_PRIO.otherPass,
]);

/** Whether a filter is one the agent programs (by chain and prio layout). */
export function isOurs(filter: TcFilter): boolean {
  if (filter.chain === 0) return OUR_DISPATCH_PRIOS.has(filter.prio);
  return chainGeneration(filter.chain) > 0;
}

function canonical(filter: TcFilter): string {
  const match = Object.fromEntries(
    Object.entries(filter.match).sort(([a], [b]) => (a < b ? -1 : 1)),
  );
  return JSON.stringify([
    filter.hook,
    filter.chain,
    filter.prio,
    filter.handle,
    filter.protocol,
    match,
    filter.actions,
  ]);
}

function identity(filter: TcFilter): string {
  return `${filter.hook}/${filter.chain}/${filter.prio}/${filter.handle}/${filter.protocol}`;
}

/** Whether two filter lists hold the same filters, in any order. */
export function sameFilters(a: TcFilter[], b: TcFilter[]): boolean {
  if (a.length !== b.length) return false;
  const left = a.map(canonical).sort();
  const right = b.map(canonical).sort();
  return left.every((text, i) => text === right[i]);
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

function chainDeletes(filters: TcFilter[], keep: (generation: number) => boolean): TcCommand[] {
  const chains = new Map<string, { hook: Hook; chain: number }>();
  for (const filter of filters) {
    const generation = chainGeneration(filter.chain);
    if (generation === 0 || keep(generation)) continue;
    chains.set(`${filter.hook}/${filter.chain}`, { hook: filter.hook, chain: filter.chain });
  }
  // Policy chains (index 0 of a variant) before the port chains they jump to.
  return [...chains.values()]
    .sort((a, b) => (a.chain % 100_000) - (b.chain % 100_000) || a.chain - b.chain)
    .map(({ hook, chain }) => ({ op: "chain-del", hook, chain }));
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
  const stale = current.filters.filter((f) => isOurs(f) && staleHook(f));
  const staleDeletes = options.deferStaleHooks ? [] : hookDeletes(stale);
  const deferred = options.deferStaleHooks ? stale.length : 0;
  const ours = current.filters.filter((f) => isOurs(f) && !staleHook(f));
  const foreign = [
    ...current.filters.filter((f) => !isOurs(f)).map((f) =>
      `${f.hook} chain ${f.chain} prio ${f.prio} handle ${f.handle} (${f.protocol})`
    ),
    ...(current.foreignFilters ?? []),
  ];
  if (!probe.enabled) {
    if (!current.clsact) return { commands: [], generation: 0, foreign, deferred };
    if (foreign.length === 0) {
      return { commands: [{ op: "qdisc-del" }], generation: 0, foreign, deferred };
    }
    return {
      commands: [
        ...ours.filter((f) => f.chain === 0).map((filter): TcCommand => ({
          op: "filter-del",
          filter,
        })),
        ...chainDeletes(ours, () => false),
      ],
      generation: 0,
      foreign,
      deferred,
    };
  }
  if (!current.clsact) {
    const program = probe;
    return {
      commands: [
        { op: "qdisc-add" },
        ...program.filters.filter((f) => f.chain !== 0).map((filter): TcCommand => ({
          op: "filter-add",
          filter,
        })),
        ...program.filters.filter((f) => f.chain === 0).map((filter): TcCommand => ({
          op: "filter-add",
          filter,
        })),
      ],
      generation: 1,
      foreign,
      deferred,
    };
  }
  const referenced = referencedGenerations(ours);
  if (referenced.size === 1) {
    const [generation] = referenced;
    if (sameFilters(ours, desiredAt(generation).filters)) {
      return { commands: staleDeletes, generation, foreign, deferred };
    }
  }
  let generation = 1;
  while (referenced.has(generation) && generation < MAX_GENERATION) generation++;
  const program = desiredAt(generation);
  const commands: TcCommand[] = [...chainDeletes(ours, (g) => g !== generation)];
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
    else if (canonical(existing) !== canonical(filter)) {
      commands.push({ op: "filter-replace", filter });
    }
  }
  for (const [key, filter] of currentDispatch) {
    if (!wanted.has(key)) commands.push({ op: "filter-del", filter });
  }
  commands.push(...chainDeletes(ours, (g) => g === generation), ...staleDeletes);
  return { commands, generation, foreign, deferred };
}
