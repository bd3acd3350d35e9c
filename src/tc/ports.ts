/**
 * Destination ports as the NIC can match them. A switchdev NIC offloads a
 * port with a mask (`dst_port 9100/0xfffc`) but not a port range
 * (`dst_port 9100-9199`), so the generator writes every range as the fewest
 * aligned blocks, and the serializer and both drivers write an aligned block
 * as a masked port. Pure.
 */
import type { TcPortRange } from "./model.ts";

/**
 * The mask of a range that is one aligned power-of-two block (a single port
 * included: 0xffff), or null for any other range.
 */
export function blockMask(range: TcPortRange): number | null {
  const size = range.last - range.first + 1;
  if (size < 1 || (size & (size - 1)) !== 0 || range.first % size !== 0) return null;
  return 0xffff & ~(size - 1);
}

/** The range an aligned block `port/mask` covers, or null when the mask is not a prefix. */
export function blockRange(port: number, mask: number): TcPortRange | null {
  const size = (~mask & 0xffff) + 1;
  if ((size & (size - 1)) !== 0) return null;
  const first = port & mask;
  return { first, last: first + size - 1 };
}

/** The fewest aligned blocks that together cover exactly `range`, in port order. */
export function alignedBlocks(range: TcPortRange): TcPortRange[] {
  const blocks: TcPortRange[] = [];
  let first = range.first;
  while (first <= range.last) {
    let size = first === 0 ? 0x10000 : first & -first;
    while (first + size - 1 > range.last) size /= 2;
    blocks.push({ first, last: first + size - 1 });
    first += size;
  }
  return blocks;
}
