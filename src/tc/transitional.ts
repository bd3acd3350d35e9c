/**
 * The filters of stages that are on their way to being enforced (pure):
 * while an interface's checks are first put in place, the devices that
 * will check its traffic first only track its connections in its zone,
 * then commit them, before any of them enforces (src/tc/transition.ts says
 * in which order). None of them changes a verdict; each carries
 * {@link TRANSITION_COOKIE}.
 */
import { parseIp } from "../net/ip.ts";
import { filter, POLICY_PRIO } from "./layout.ts";
import {
  type EthProtocol,
  type FlowerMatch,
  type TcAction,
  type TcFilter,
  TRANSITION_COOKIE,
} from "./model.ts";
import type { StageInterface } from "./generate.ts";

/** The prio of a tracking source stage's last filter: after every copied predecessor filter. */
const TRACKING_FINAL_PRIO = 1000;

/** A filter marked as transitional. */
export function transitional(f: TcFilter): TcFilter {
  return { ...f, cookie: TRANSITION_COOKIE };
}

/** A chain that passes everything (where transitional receivers' traffic goes after `ct`). */
export function passThrough(chain: number): TcFilter {
  return transitional(
    filter("ingress", chain, POLICY_PRIO.final, 1, "all", {}, [{ kind: "pass" }]),
  );
}

/**
 * A receiver's entries in a destination stage `main` while it is not yet
 * enforced: each of its addresses through `ct` in its zone — committed when
 * `open`, only tracked when `track` — and on to `passChain`. Returns the
 * next free handle.
 */
export function* transitionalEntries(
  receiver: StageInterface,
  family: 4 | 6,
  match: FlowerMatch,
  protocol: EthProtocol,
  main: number,
  passChain: number,
  handle: number,
): Generator<TcFilter, number> {
  for (const ip of receiver.rules.ips) {
    const parsed = parseIp(ip);
    if (!parsed || parsed.family !== family) continue;
    const dstIp = `${ip}/${parsed.family === 4 ? 32 : 128}`;
    const actions: TcAction[] = [
      { kind: "ct", zone: receiver.zone, commit: receiver.phase === "open" },
      { kind: "goto", chain: passChain },
    ];
    yield transitional(
      filter("ingress", main, POLICY_PRIO.allow, handle++, protocol, { ...match, dstIp }, actions),
    );
  }
  return handle;
}

/**
 * A sender's source stage `main` while it only tracks: the verdicts its
 * device had before (the Go agent's filters, copied with their prios; a
 * pass goes on to the destination stage) and otherwise on to `next`. No
 * connection is committed here.
 */
export function* trackingSource(
  predecessor: readonly TcFilter[],
  main: number,
  next: number,
): Generator<TcFilter> {
  const goNext: TcAction = { kind: "goto", chain: next };
  const ordered = [...predecessor].sort((a, b) => a.prio - b.prio || a.handle - b.handle);
  for (const p of ordered) {
    yield transitional({
      hook: "ingress",
      chain: main,
      prio: p.prio,
      handle: p.handle,
      protocol: p.protocol,
      match: { ...p.match },
      actions: p.actions.map((a) => (a.kind === "pass" ? goNext : a)),
    });
  }
  yield transitional(filter("ingress", main, TRACKING_FINAL_PRIO, 1, "all", {}, [goNext]));
}
