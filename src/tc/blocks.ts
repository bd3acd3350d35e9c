/**
 * Shared TC blocks: where a PF's uplink is one of a VF-LAG bond's ports,
 * the uplink checks go in one clsact ingress block bound to every uplink
 * of the bond (each PF's e-switch offloads its own copy; the bond itself
 * has no offload path). The pipeline names such a block as a device,
 * `block:N` — no netdev name can hold a colon — and this registry says
 * which uplinks each block is to be bound to.
 */
import { checkInterfaceName } from "../cluster/validate.ts";

const BLOCK_DEVICE = /^block:([1-9]\d{0,9})$/;
/** Block indexes the agent gives out: this base ("mn" in its top bytes) plus the bond's ifindex. */
export const BLOCK_INDEX_BASE = 0x6d6e0000;
const MAX_BOND_IFINDEX = 0x0fffffff;
const MAX_BLOCK_INDEX = 0xffffffff;

/** The device name standing for shared block `index`. */
export function blockDevice(index: number): string {
  if (!Number.isInteger(index) || index < 1 || index > MAX_BLOCK_INDEX) {
    throw new RangeError(`block index ${index} is out of range 1-${MAX_BLOCK_INDEX}`);
  }
  return `block:${index}`;
}

/** The block index a device name stands for, or null for a netdev. */
export function blockIndexOf(device: string): number | null {
  const match = BLOCK_DEVICE.exec(device);
  if (!match) return null;
  const index = Number(match[1]);
  return index <= MAX_BLOCK_INDEX ? index : null;
}

/** Whether a block index is one the agent gives out ({@link bondBlockIndex}). */
export function isAgentBlock(index: number): boolean {
  return index > BLOCK_INDEX_BASE && index <= BLOCK_INDEX_BASE + MAX_BOND_IFINDEX;
}

/** The block the agent uses for the uplinks of the bond with ifindex `bondIfindex`. */
export function bondBlockIndex(bondIfindex: number): number {
  if (!Number.isInteger(bondIfindex) || bondIfindex < 1 || bondIfindex > MAX_BOND_IFINDEX) {
    throw new RangeError(`bond ifindex ${bondIfindex} is out of range 1-${MAX_BOND_IFINDEX}`);
  }
  return BLOCK_INDEX_BASE + bondIfindex;
}

/** The uplinks each shared block is to be bound to, as last placed. */
export class SharedBlocks {
  readonly #members = new Map<number, string[]>();

  /** Records the uplinks block `index` is to be bound to (netdev names, checked). */
  set(index: number, members: readonly string[]): void {
    blockDevice(index);
    for (const name of members) {
      const problem = checkInterfaceName(name);
      if (problem) throw new RangeError(`block ${index} member: ${problem}`);
    }
    this.#members.set(index, [...new Set(members)].sort());
  }

  /** Forgets block `index` (it carries no program any more). */
  delete(index: number): void {
    this.#members.delete(index);
  }

  /** The uplinks block `index` is to be bound to (empty when unknown). */
  members(index: number): string[] {
    return [...(this.#members.get(index) ?? [])];
  }
}
