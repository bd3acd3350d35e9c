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
): Plan {
  const ours = current.filters.filter(isOurs);
  const foreign = [
    ...current.filters.filter((f) => !isOurs(f)).map((f) =>
      `${f.hook} chain ${f.chain} prio ${f.prio} handle ${f.handle} (${f.protocol})`
    ),
    ...(current.foreignFilters ?? []),
  ];
  const probe = desiredAt(1);
  if (!probe.enabled) {
    if (!current.clsact) return { commands: [], generation: 0, foreign };
    if (foreign.length === 0) return { commands: [{ op: "qdisc-del" }], generation: 0, foreign };
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
    };
  }
  const referenced = referencedGenerations(ours);
  if (referenced.size === 1) {
    const [generation] = referenced;
    if (sameFilters(ours, desiredAt(generation).filters)) {
      return { commands: [], generation, foreign };
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
  commands.push(...chainDeletes(ours, (g) => g === generation));
  return { commands, generation, foreign };
}
