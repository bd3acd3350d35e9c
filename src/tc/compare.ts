/**
 * Comparing filters as text (pure): a filter's content apart from where it
 * sits, and whether two filter lists hold the same filters — exactly, or
 * whatever handles an in-place edit (./in_place.ts) gave the allow filters.
 */
import { POLICY_PRIO } from "./layout.ts";
import type { TcFilter } from "./model.ts";

/**
 * A filter's content — everything but where it sits — as one comparable
 * text, match keys in one order (a read-back lists them in the kernel's). A
 * filter that lost its mark or its skip_hw flag differs from one that has it.
 */
export function filterContent(filter: TcFilter): string {
  const match = Object.fromEntries(
    Object.entries(filter.match).sort(([a], [b]) => (a < b ? -1 : 1)),
  );
  return JSON.stringify([
    filter.protocol,
    match,
    filter.actions,
    filter.cookie ?? "",
    filter.skipHw ?? false,
  ]);
}

/** A filter's place (hook, chain, prio, handle) and content as one text. */
export function filterText(filter: TcFilter): string {
  return `${filter.hook}/${filter.chain}/${filter.prio}/${filter.handle} ${filterContent(filter)}`;
}

/** Whether two lists give the same multiset of texts. */
function sameTexts(
  a: readonly TcFilter[],
  b: readonly TcFilter[],
  text: (filter: TcFilter) => string,
): boolean {
  if (a.length !== b.length) return false;
  const left = a.map(text).sort();
  const right = b.map(text).sort();
  return left.every((line, i) => line === right[i]);
}

/** Whether two filter lists hold the same filters, in any order. */
export function sameFilters(a: readonly TcFilter[], b: readonly TcFilter[]): boolean {
  return sameTexts(a, b, filterText);
}

/**
 * Whether two filter lists hold the same program, whatever handles an
 * in-place edit gave their allow filters (a device edited in place and the
 * generator's fresh program differ only there).
 */
export function sameProgram(a: readonly TcFilter[], b: readonly TcFilter[]): boolean {
  return sameTexts(
    a,
    b,
    (f) =>
      f.prio === POLICY_PRIO.allow && f.chain !== 0
        ? `${f.hook}/${f.chain}/${f.prio}/* ${filterContent(f)}`
        : filterText(f),
  );
}
