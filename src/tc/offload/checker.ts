/**
 * Which filters of a TC program a NIC enforces, by its offload profile: each
 * filter is `hardware` (the NIC holds it), `software-only` (the NIC refuses
 * it, and that is safe because hardware never hands it a packet it would
 * decide differently) or `breaks` (the program decides differently on the
 * NIC than in software). Software-only is safe only in a chain that hardware
 * reaches after a `ct` action and only for packets that always leave
 * hardware at that action (a `ct` miss hands them to software): there the
 * NIC cannot skip the filter for a packet it should have met.
 */
import type { TcAction, TcFilter } from "../model.ts";
import { parseCtState } from "../simulator/flower.ts";
import { isNeighbourDiscoveryPass, neighbourDiscoveryProblem } from "./neighbour_discovery.ts";
import { offloadRefusals } from "./offloadable.ts";
import { MLX5_PROFILE, type OffloadProfile } from "./profile.ts";

/** What happens to a filter on the NIC. */
export type Classification = "hardware" | "software-only" | "breaks";

/** One filter's classification and why. */
export interface FilterCheck {
  filter: TcFilter;
  classification: Classification;
  reason: string;
}

/** How many filters fall in each class. */
export interface CheckSummary {
  filters: number;
  hardware: number;
  softwareOnly: number;
  breaks: number;
}

/** A program's check: per filter, in the order given, a summary, and program-wide notes. */
export interface ProgramCheck {
  filters: FilterCheck[];
  summary: CheckSummary;
  /** Limits the program as a whole exceeds (e.g. more ct zones than the NIC restores). */
  notes: string[];
}

function describeActions(actions: readonly TcAction[]): string {
  return actions.map((a) =>
    a.kind === "ct"
      ? `ct zone ${a.zone}${a.commit ? " commit" : ""}`
      : a.kind === "goto"
      ? `goto chain ${a.chain}`
      : a.kind
  ).join(", ");
}

/**
 * The chains (never 0) hardware only reaches after a `ct` action: every
 * filter that jumps into one ran `ct` before its `goto`, or sits in such a
 * chain itself. Computed as the greatest such set, so a cycle of chains no
 * packet can enter counts as after `ct`.
 */
export function chainsAfterCt(filters: readonly TcFilter[]): Set<number> {
  const jumps: { from: number; to: number; ctFirst: boolean }[] = [];
  const after = new Set<number>();
  for (const filter of filters) {
    if (filter.hook !== "ingress") continue;
    if (filter.chain !== 0) after.add(filter.chain);
    filter.actions.forEach((action, i) => {
      if (action.kind !== "goto") return;
      const ctFirst = filter.actions.slice(0, i).some((a) => a.kind === "ct");
      jumps.push({ from: filter.chain, to: action.chain, ctFirst });
      if (action.chain !== 0) after.add(action.chain);
    });
  }
  for (let changed = true; changed;) {
    changed = false;
    for (const jump of jumps) {
      if (after.has(jump.to) && !jump.ctFirst && !after.has(jump.from)) {
        after.delete(jump.to);
        changed = true;
      }
    }
  }
  return after;
}

/**
 * What in the filter's match only packets that leave hardware at a `ct`
 * action carry (a protocol the hardware table never holds, or a ct state a
 * hardware hit never gives), or null when established traffic can match it.
 */
function softwareOnlyTraffic(filter: TcFilter, profile: OffloadProfile): string | null {
  const held = Object.keys(profile.conntrack.offload.value);
  if (filter.protocol === "arp") return "ARP";
  if (filter.match.ipProto && !held.includes(filter.match.ipProto)) {
    return filter.match.ipProto.toUpperCase();
  }
  if (filter.match.ctState) {
    const { set, unset } = parseCtState(filter.match.ctState);
    const { flags, replyFlag } = profile.conntrack.hit.value;
    const hits = [new Set(flags), new Set([...flags, replyFlag])];
    const possible = hits.some((hit) =>
      set.every((f) => hit.has(f)) && !unset.some((f) => hit.has(f))
    );
    if (!possible) return `ct_state ${filter.match.ctState}`;
  }
  return null;
}

/** The hardware filter after `filter` in its chain, as text, or null when none follows. */
function nextInHardware(filter: TcFilter, hardware: readonly TcFilter[]): string | null {
  const next = hardware
    .filter((f) =>
      f.hook === filter.hook && f.chain === filter.chain &&
      (f.prio > filter.prio || (f.prio === filter.prio && f.handle > filter.handle))
    )
    .sort((a, b) => a.prio - b.prio || a.handle - b.handle)[0];
  return next ? `prio ${next.prio} handle ${next.handle} (${describeActions(next.actions)})` : null;
}

/** Which traffic stays in hardware past a `ct` action, as people name it. */
function establishedTraffic(filter: TcFilter, profile: OffloadProfile): string {
  const held = Object.keys(profile.conntrack.offload.value);
  const protocols = filter.match.ipProto && held.includes(filter.match.ipProto)
    ? [filter.match.ipProto]
    : held;
  return `established ${protocols.map((p) => p.toUpperCase()).join("/")}`;
}

/** Classifies every filter of `filters` (one representor's program) for `profile`'s NIC. */
export function checkProgram(
  filters: readonly TcFilter[],
  profile: OffloadProfile = MLX5_PROFILE,
): ProgramCheck {
  const refusals = new Map(filters.map((f) => [f, offloadRefusals(f, profile)]));
  const hardware = filters.filter((f) => refusals.get(f)!.length === 0);
  const hardwareSet = new Set(hardware);
  const afterCt = chainsAfterCt(filters);
  const classify = (filter: TcFilter): Omit<FilterCheck, "filter"> => {
    const breaks = (reason: string) => ({ classification: "breaks" as const, reason });
    if (filter.hook === "egress") {
      return breaks(
        "egress hook: not offloaded, and the e-switch forwards traffic towards a VF " +
          "without passing its representor's egress hook",
      );
    }
    const cts = filter.actions.filter((a) => a.kind === "ct").length;
    const perFilter = profile.actions.ct.value.perFilter;
    if (cts > 1) return breaks(`${cts} ct actions in one filter (the NIC takes ${perFilter})`);
    const back = filter.actions.find((a) => a.kind === "goto" && a.chain <= filter.chain);
    if (back?.kind === "goto") {
      return breaks(
        `goto chain ${back.chain} from chain ${filter.chain} jumps backwards (a loop risk: ` +
          `programs only jump forward)`,
      );
    }
    const refused = refusals.get(filter)!;
    if (refused.length === 0) return { classification: "hardware", reason: "offloaded" };
    const notOffloaded = `${refused.join(", ")} ${refused.length > 1 ? "are" : "is"} not offloaded`;
    const next = nextInHardware(filter, hardware);
    const they = next
      ? `meet ${next} after it`
      : `fall off chain ${filter.chain} and are forwarded by the e-switch`;
    if (isNeighbourDiscoveryPass(filter)) {
      const problem = neighbourDiscoveryProblem(
        filter,
        filters,
        hardwareSet,
        profile.conntrack.missResumes.value,
      );
      if (problem !== null) return breaks(`${notOffloaded}: ${problem}`);
      return {
        classification: "software-only",
        reason: `${notOffloaded}: safe, an ND packet skips it in hardware and then either ` +
          `passes or meets a ct action, which hands it to software before an ND pass`,
      };
    }
    if (filter.chain === 0) {
      return breaks(`${notOffloaded}: in chain 0 packets skip it in hardware and ${they}`);
    }
    if (!afterCt.has(filter.chain)) {
      return breaks(
        `${notOffloaded}: chain ${filter.chain} is reached in hardware without a ct action ` +
          `first, so packets skip it and ${they}`,
      );
    }
    const traffic = softwareOnlyTraffic(filter, profile);
    if (traffic === null) {
      const it = next
        ? `meets ${next} after it`
        : `falls off chain ${filter.chain} and is forwarded by the e-switch`;
      const established = establishedTraffic(filter, profile);
      return breaks(`${notOffloaded}: ${established} skips it in hardware and ${it}`);
    }
    return {
      classification: "software-only",
      reason: `${notOffloaded}: safe, chain ${filter.chain} is only reached after a ct action ` +
        `and only ${traffic} packets match it, which always leave hardware at that action`,
    };
  };
  const checks = filters.map((filter) => ({ filter, ...classify(filter) }));
  const count = (c: Classification) => checks.filter((x) => x.classification === c).length;
  const zones = new Set(
    filters.flatMap((f) => f.actions.flatMap((a) => a.kind === "ct" ? [a.zone] : [])),
  );
  const maxZones = profile.conntrack.maxZones.value;
  return {
    filters: checks,
    summary: {
      filters: checks.length,
      hardware: count("hardware"),
      softwareOnly: count("software-only"),
      breaks: count("breaks"),
    },
    notes: zones.size > maxZones
      ? [`${zones.size} ct zones: the NIC restores conntrack state for at most ${maxZones}`]
      : [],
  };
}
