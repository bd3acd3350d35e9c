/**
 * Arrays the agent keeps for every object of the cluster, without spare
 * capacity. V8 gives an array that was pushed to room for 17 elements (152
 * bytes) even when it holds one; at 10,000 pods, the few such arrays each
 * pod keeps came to about 12 MiB of a 40 MiB state.
 */

/** `items` itself when it has no spare room to lose (empty), else a copy of exactly its length. */
export function exact<T>(items: T[]): T[] {
  return items.length === 0 ? items : items.slice();
}
