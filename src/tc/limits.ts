/**
 * The per-interface filter budget (`--max-filters-per-interface`): a policy
 * whose TC program would be too large for one representor (huge `except`
 * lists, tens of thousands of ports) must neither exhaust the agent nor be
 * half-applied. Such an interface is enforced as deny-all both ways instead
 * (ARP and neighbour discovery still pass): never open, and small.
 */
import type { DirectionRules, InterfaceRules } from "../policy/model.ts";
import { countFilters } from "./generate.ts";

/** Default of `--max-filters-per-interface`. */
export const DEFAULT_MAX_FILTERS = 10_000;

function denyAll(rules: DirectionRules): DirectionRules {
  return { isolated: true, policies: rules.policies, allow: [] };
}

/**
 * The rules an interface is enforced with under a budget of `max` filters
 * (0: no budget): its own when its program fits, else deny-all both ways with
 * `overLimit` saying why.
 */
export function withinFilterLimit(rules: InterfaceRules, max: number): InterfaceRules {
  if (max <= 0) return rules;
  if (countFilters(rules, max) <= max) return rules;
  return {
    ...rules,
    ingress: denyAll(rules.ingress),
    egress: denyAll(rules.egress),
    overLimit: { filters: countFilters(rules), max },
  };
}
