/**
 * IPv4/IPv6 addresses, prefixes and address sets: strict parsing of
 * untrusted text, canonical formatting, and exact set arithmetic (union,
 * difference) so policy peers and `except` carve-outs stay exact.
 */

/** Address family. */
export type Family = 4 | 6;

/** A parsed, canonical prefix (host bits cleared). */
export interface Cidr {
  family: Family;
  base: bigint;
  prefix: number;
}

/** An inclusive address range: numbers for IPv4 (exact below 2^53), bigints for IPv6. */
export type Interval<T extends number | bigint> = readonly [T, T];

/** A set of addresses, as sorted, disjoint, non-adjacent intervals per family. */
export interface AddressSet {
  v4: Interval<number>[];
  v6: Interval<bigint>[];
}

const BITS: Record<Family, number> = { 4: 32, 6: 128 };

function parseIpv4(text: string): bigint | null {
  const parts = text.split(".");
  if (parts.length !== 4) return null;
  let value = 0n;
  for (const part of parts) {
    if (!/^(0|[1-9]\d{0,2})$/.test(part)) return null;
    const n = Number(part);
    if (n > 255) return null;
    value = (value << 8n) | BigInt(n);
  }
  return value;
}

function parseIpv6(text: string): bigint | null {
  if (!/^[0-9a-fA-F:.]+$/.test(text)) return null;
  let head = text;
  let tailV4: bigint | null = null;
  const lastColon = text.lastIndexOf(":");
  if (text.includes(".")) {
    tailV4 = parseIpv4(text.slice(lastColon + 1));
    if (tailV4 === null) return null;
    head = text.slice(0, lastColon + 1) + "0:0";
  }
  const halves = head.split("::");
  if (halves.length > 2) return null;
  const toGroups = (part: string): string[] => (part === "" ? [] : part.split(":"));
  const left = toGroups(halves[0]);
  const right = halves.length === 2 ? toGroups(halves[1]) : [];
  const missing = 8 - left.length - right.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return null;
  const groups = [...left, ...Array(halves.length === 2 ? missing : 0).fill("0"), ...right];
  let value = 0n;
  for (const group of groups) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(group)) return null;
    value = (value << 16n) | BigInt(parseInt(group, 16));
  }
  if (tailV4 !== null) value = (value & ~0xffffffffn) | tailV4;
  return value;
}

/** Parses one IP address; null when it is not a valid IPv4 or IPv6 address. */
export function parseIp(text: string): { family: Family; value: bigint } | null {
  if (typeof text !== "string" || text.length > 64) return null;
  if (text.includes(":")) {
    const value = parseIpv6(text);
    return value === null ? null : { family: 6, value };
  }
  const value = parseIpv4(text);
  return value === null ? null : { family: 4, value };
}

/**
 * Parses `addr/len` (host bits are cleared, as Kubernetes does); null when
 * malformed.
 */
export function parseCidr(text: string): Cidr | null {
  if (typeof text !== "string") return null;
  const slash = text.indexOf("/");
  if (slash < 0) return null;
  const ip = parseIp(text.slice(0, slash));
  const lengthText = text.slice(slash + 1);
  if (!ip || !/^(0|[1-9]\d{0,2})$/.test(lengthText)) return null;
  const prefix = Number(lengthText);
  const bits = BITS[ip.family];
  if (prefix > bits) return null;
  const hostMask = (1n << BigInt(bits - prefix)) - 1n;
  return { family: ip.family, base: ip.value & ~hostMask, prefix };
}

/** Whether the prefix `cidr` (text) contains the address `ip` (text); false when either is malformed. */
export function cidrContains(cidr: string, ip: string): boolean {
  const prefix = parseCidr(cidr);
  const address = parseIp(ip);
  if (!prefix || !address || prefix.family !== address.family) return false;
  const hostBits = BigInt(BITS[prefix.family] - prefix.prefix);
  return (address.value >> hostBits) === (prefix.base >> hostBits);
}

function formatV4Number(value: number): string {
  return `${Math.floor(value / 16777216)}.${Math.floor(value / 65536) % 256}.${
    Math.floor(value / 256) % 256
  }.${value % 256}`;
}

/** Formats an address canonically (RFC 5952 for IPv6). */
export function formatIp(family: Family, value: bigint): string {
  if (family === 4) return formatV4Number(Number(value));
  const digits = value.toString(16).padStart(32, "0");
  const groups: number[] = [];
  for (let i = 0; i < 32; i += 4) groups.push(parseInt(digits.slice(i, i + 4), 16));
  let bestStart = -1;
  let bestLength = 0;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength && j - i >= 2) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(":");
  return `${hex.slice(0, bestStart).join(":")}::${hex.slice(bestStart + bestLength).join(":")}`;
}

/** Formats a prefix as `addr/len`. */
export function formatCidr(cidr: Cidr): string {
  return `${formatIp(cidr.family, cidr.base)}/${cidr.prefix}`;
}

const V4_MAX = 2 ** 32 - 1;
const V6_MAX = (1n << 128n) - 1n;

/** The set of every address of both families. */
export function everything(): AddressSet {
  return { v4: [[0, V4_MAX]], v6: [[0n, V6_MAX]] };
}

function succ<T extends number | bigint>(x: T): T {
  return (typeof x === "number" ? x + 1 : (x as bigint) + 1n) as T;
}

function pred<T extends number | bigint>(x: T): T {
  return (typeof x === "number" ? x - 1 : (x as bigint) - 1n) as T;
}

function normalise<T extends number | bigint>(intervals: Interval<T>[]): Interval<T>[] {
  if (intervals.length <= 1) return intervals;
  const sorted = intervals.slice().sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const out: [T, T][] = [[sorted[0][0], sorted[0][1]]];
  for (let i = 1; i < sorted.length; i++) {
    const last = out[out.length - 1];
    const [start, end] = sorted[i];
    if (start <= succ(last[1])) {
      if (end > last[1]) last[1] = end;
    } else {
      out.push([start, end]);
    }
  }
  return out;
}

/** The first and last address a prefix covers. */
export function cidrRange(cidr: Cidr): [bigint, bigint] {
  return [cidr.base, cidr.base + (1n << BigInt(BITS[cidr.family] - cidr.prefix)) - 1n];
}

/** Builds a set from prefixes (any mix of families). */
export function setFromCidrs(cidrs: Iterable<Cidr>): AddressSet {
  const v4: Interval<number>[] = [];
  const v6: Interval<bigint>[] = [];
  for (const cidr of cidrs) {
    const [, last] = cidrRange(cidr);
    if (cidr.family === 4) v4.push([Number(cidr.base), Number(last)]);
    else v6.push([cidr.base, last]);
  }
  return { v4: normalise(v4), v6: normalise(v6) };
}

function fromSortedHosts<T extends number | bigint>(values: T[]): Interval<T>[] {
  const out: [T, T][] = [];
  for (const value of values) {
    const last = out[out.length - 1];
    if (last && value <= succ(last[1])) {
      if (value > last[1]) last[1] = value;
    } else {
      out.push([value, value]);
    }
  }
  return out;
}

/** Builds a set from single addresses already in ascending order (no sorting needed). */
export function setFromSortedHosts(v4: number[], v6: bigint[]): AddressSet {
  return { v4: fromSortedHosts(v4), v6: fromSortedHosts(v6) };
}

/** Merges two normalised lists; intervals are shared, never mutated. */
function mergeSorted<T extends number | bigint>(a: Interval<T>[], b: Interval<T>[]) {
  if (a.length === 0) return b;
  if (b.length === 0) return a;
  const out: Interval<T>[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    const next = j >= b.length || (i < a.length && a[i][0] <= b[j][0]) ? a[i++] : b[j++];
    const last = out[out.length - 1];
    if (last && next[0] <= succ(last[1])) {
      if (next[1] > last[1]) out[out.length - 1] = [last[0], next[1]];
    } else {
      out.push(next);
    }
  }
  return out;
}

/** Merges normalised lists pairwise, in a balanced tree. */
function mergeAll<T extends number | bigint>(input: Interval<T>[][]): Interval<T>[] {
  let lists = input.filter((list) => list.length > 0);
  if (lists.length === 0) return [];
  while (lists.length > 1) {
    const next: Interval<T>[][] = [];
    for (let i = 0; i < lists.length; i += 2) {
      next.push(i + 1 < lists.length ? mergeSorted(lists[i], lists[i + 1]) : lists[i]);
    }
    lists = next;
  }
  return lists[0];
}

/**
 * Union of IPv4 lists. When every interval is a single address (pod
 * addresses, the common case) a native typed-array sort beats merging.
 */
function unionV4(lists: Interval<number>[][]): Interval<number>[] {
  let total = 0;
  for (const list of lists) {
    for (const [start, end] of list) {
      if (start !== end) return mergeAll(lists);
    }
    total += list.length;
  }
  const hosts = new Float64Array(total);
  let i = 0;
  for (const list of lists) for (const [start] of list) hosts[i++] = start;
  hosts.sort();
  const out: Interval<number>[] = [];
  for (let j = 0; j < hosts.length;) {
    const start = hosts[j];
    let end = start;
    while (++j < hosts.length && hosts[j] <= end + 1) end = hosts[j];
    out.push([start, end]);
  }
  return out;
}

/** The union of a list of sets, however long (no argument spread). */
export function unionAll(sets: readonly AddressSet[]): AddressSet {
  if (sets.length === 1) return sets[0];
  return { v4: unionV4(sets.map((s) => s.v4)), v6: mergeAll(sets.map((s) => s.v6)) };
}

function subtractIntervals<T extends number | bigint>(
  from: Interval<T>[],
  remove: Interval<T>[],
): Interval<T>[] {
  if (remove.length === 0) return from;
  const out: Interval<T>[] = [];
  let j = 0;
  for (const [start0, end] of from) {
    let start = start0;
    while (j < remove.length && remove[j][1] < start) j++;
    let k = j;
    while (k < remove.length && remove[k][0] <= end && start <= end) {
      const [rs, re] = remove[k];
      if (rs > start) out.push([start, pred(rs)]);
      start = succ(re);
      k++;
    }
    if (start <= end) out.push([start, end]);
  }
  return out;
}

/** Addresses in `from` and not in `remove`. */
export function difference(from: AddressSet, remove: AddressSet): AddressSet {
  if (isEmptySet(remove)) return from;
  return { v4: subtractIntervals(from.v4, remove.v4), v6: subtractIntervals(from.v6, remove.v6) };
}

/** Whether the set holds no address. */
export function isEmptySet(set: AddressSet): boolean {
  return set.v4.length === 0 && set.v6.length === 0;
}

/** Whether one of the sorted, disjoint `intervals` holds `value` (binary search). */
function holds<T extends number | bigint>(intervals: Interval<T>[], value: T): boolean {
  let low = 0;
  let high = intervals.length - 1;
  while (low <= high) {
    const mid = (low + high) >> 1;
    const [start, end] = intervals[mid];
    if (value < start) high = mid - 1;
    else if (value > end) low = mid + 1;
    else return true;
  }
  return false;
}

/** Whether the set holds the address `ip` (parsed with {@link parseIp}). */
export function setHas(set: AddressSet, ip: { family: Family; value: bigint }): boolean {
  return ip.family === 4 ? holds(set.v4, Number(ip.value)) : holds(set.v6, ip.value);
}

function intervalToCidrs(family: Family, first: bigint, end: bigint, out: Cidr[]): void {
  const bits = BITS[family];
  let start = first;
  while (start <= end) {
    let size = 0;
    while (size < bits) {
      const next = 1n << BigInt(size + 1);
      if ((start & (next - 1n)) !== 0n || start + next - 1n > end) break;
      size++;
    }
    out.push({ family, base: start, prefix: bits - size });
    start += 1n << BigInt(size);
  }
}

/** The fewest prefixes covering exactly the set, IPv4 first, in address order. */
export function setToCidrs(set: AddressSet): Cidr[] {
  const out: Cidr[] = [];
  for (const [s, e] of set.v4) {
    if (s === e) out.push({ family: 4, base: BigInt(s), prefix: 32 });
    else intervalToCidrs(4, BigInt(s), BigInt(e), out);
  }
  for (const [s, e] of set.v6) {
    if (s === e) out.push({ family: 6, base: s, prefix: 128 });
    else intervalToCidrs(6, s, e, out);
  }
  return out;
}

const formattedText = new WeakMap<AddressSet, string[]>();

const V6_HOST_CACHE_LIMIT = 100_000;
const v6HostText = new Map<bigint, string>();

/** `addr/128` for an IPv6 host, remembered (bounded) since pod addresses recur across renders. */
function formatV6Host(value: bigint): string {
  let text = v6HostText.get(value);
  if (text === undefined) {
    if (v6HostText.size >= V6_HOST_CACHE_LIMIT) v6HostText.clear();
    text = `${formatIp(6, value)}/128`;
    v6HostText.set(value, text);
  }
  return text;
}

/** {@link setToCidrs} as canonical `addr/len` strings (remembered per set). */
export function formatSet(set: AddressSet): string[] {
  const known = formattedText.get(set);
  if (known) return known;
  const out: string[] = [];
  for (const [s, e] of set.v4) {
    if (s === e) out.push(`${formatV4Number(s)}/32`);
    else out.push(...setToCidrs({ v4: [[s, e]], v6: [] }).map(formatCidr));
  }
  for (const [s, e] of set.v6) {
    if (s === e) out.push(formatV6Host(s));
    else out.push(...setToCidrs({ v4: [], v6: [[s, e]] }).map(formatCidr));
  }
  formattedText.set(set, out);
  return out;
}

/** Whether two sets hold the same addresses. */
export function setsEqual(a: AddressSet, b: AddressSet): boolean {
  const same = <T extends number | bigint>(x: Interval<T>[], y: Interval<T>[]) =>
    x.length === y.length && x.every((iv, i) => iv[0] === y[i][0] && iv[1] === y[i][1]);
  return same(a.v4, b.v4) && same(a.v6, b.v6);
}
