/**
 * The order in which an interface's checks are first put in place (pure).
 * Its zone must see both directions of every connection from the first
 * packet it commits, and the devices of the node change one at a time. So
 * where a zone is new on a device, its stages go through steps, each
 * applied to every device before the next begins:
 *
 * 1. every new stage tracks connections in the zone (commits nothing);
 * 2. receivers' stages (the uplink, other representors) commit everything;
 * 3. senders' stages enforce (their representors' egress policy);
 * 4. receivers' stages enforce.
 *
 * Steps 3 and 4 are the final programs (applied by the caller in the order
 * given) where a device has no new receivers' stages.
 *
 * A connection committed in any step has every device that sees its replies
 * tracking it already. No step lets through anything its device denied
 * before: a new stage enforced nothing there before (or, on a takeover,
 * the tracking step keeps the Go agent's verdicts: src/tc/transitional.ts).
 */
import type { DeviceRole, StageInterface, StagePhase } from "./generate.ts";
import { isPoliced } from "./generate.ts";
import { STAGE_INDEX } from "./layout.ts";
import { chainGeneration, isMarked, isTransitional, type TcFilter } from "./model.ts";

/** What a device already enforces, and the Go agent's filters it still carries. */
export interface Carried {
  /** Whether it enforces a sender's egress policy (its chain 0 sends traffic through `ct`). */
  sender: boolean;
  /** Addresses whose receivers' ingress policy it enforces (destination-stage entries). */
  receivers: ReadonlySet<string>;
  /** The Go agent's filters still on it. */
  predecessor: TcFilter[];
}

/** The address of a destination-stage entry's match, without its prefix length. */
function entryAddress(f: TcFilter): string | undefined {
  return f.match.dstIp?.split("/")[0];
}

/**
 * What the enforcing filters of ours among `filters` check (transitional
 * ones enforce nothing; an earlier program's egress hook checked what is
 * checked elsewhere now). Zones are not compared: an agent restart may hand
 * an interface another one, and its checks are still in place.
 */
export function enforcedBy(filters: readonly TcFilter[]): Omit<Carried, "predecessor"> {
  let sender = false;
  const receivers = new Set<string>();
  for (const f of filters) {
    if (!isMarked(f) || isTransitional(f) || f.hook !== "ingress") continue;
    if (!f.actions.some((a) => a.kind === "ct")) continue;
    if (f.chain === 0) sender = true;
    else if (chainGeneration(f.chain) > 0 && f.chain % 100_000 === STAGE_INDEX.destination) {
      const address = entryAddress(f);
      if (address) receivers.add(address);
    }
  }
  return { sender, receivers };
}

function withPhase(stage: StageInterface, phase: StagePhase | undefined): StageInterface {
  return phase ? { ...stage, phase } : stage;
}

/** How to bring the node's devices to their programs. */
export interface Transition {
  /** The steps before the final programs, each a list of roles to apply; often none. */
  steps: DeviceRole[][];
  /**
   * Every role with its final program, in the order to apply them: first the
   * representors whose sender's stage is new and took no step 3 (their
   * egress policy enforced before anyone enforces their receivers').
   */
  final: DeviceRole[];
}

/** A role whose device gets stages that are new there. */
interface Pending {
  role: DeviceRole;
  /** Its sender's stage is new. */
  home: boolean;
  /** Zones of its receivers whose stages are new. */
  away: Set<number>;
  predecessor: TcFilter[];
}

/**
 * Plans the steps that bring `roles` to their programs from what their
 * devices carry; no steps when every stage is enforced already where it goes.
 */
export function planTransition(
  roles: readonly DeviceRole[],
  carried: (device: string) => Carried,
): Transition {
  const pending: Pending[] = [];
  for (const role of roles) {
    const now = carried(role.device);
    const home = role.sender !== undefined && isPoliced(role.sender.rules) && !now.sender;
    const away = new Set(
      role.receivers.filter((r) => !r.rules.ips.some((ip) => now.receivers.has(ip)))
        .map((r) => r.zone),
    );
    if (home || away.size > 0) pending.push({ role, home, away, predecessor: now.predecessor });
  }
  const step = (
    which: (p: Pending) => boolean,
    homePhase: (p: Pending) => StagePhase | undefined,
    awayPhase: StagePhase,
  ): DeviceRole[] =>
    pending.filter(which).map((p) => ({
      ...p.role,
      ...(homePhase(p) && p.predecessor.length > 0 ? { predecessor: p.predecessor } : {}),
      sender: p.role.sender && withPhase(p.role.sender, homePhase(p)),
      receivers: p.role.receivers.map((r) =>
        withPhase(r, p.away.has(r.zone) ? awayPhase : undefined)
      ),
    }));
  const track = (p: Pending) => (p.home ? "track" as const : undefined);
  const steps = [
    step(() => true, track, "track"),
    step((p) => p.away.size > 0, track, "open"),
    // Where no receiver is new, this step's program is the final one.
    step((p) => p.home && p.away.size > 0, () => undefined, "open"),
  ].filter((s) => s.length > 0);
  const first = new Set(pending.filter((p) => p.home && p.away.size === 0).map((p) => p.role));
  return {
    steps,
    final: [...roles.filter((r) => first.has(r)), ...roles.filter((r) => !first.has(r))],
  };
}
