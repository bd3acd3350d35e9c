/**
 * Conntrack zones, one per policed interface, handed out per e-switch. A
 * switchdev NIC restores a packet's zone from an 8-bit id (mlx5
 * `en/tc_ct.c`), so an e-switch knows at most {@link MAX_ZONES} zones; an
 * interface beyond that gets none and is reported, never given a zone in use.
 */

/** Zones one e-switch can restore (1-255; 0 is the host's default zone). */
export const MAX_ZONES = 255;

/** Keeps each interface's zone stable while it exists. */
export class ZoneAllocator {
  /** Per e-switch: interface key → zone. */
  readonly #bySwitch = new Map<string, Map<string, number>>();

  /** The zone of `key` on `switchId`, allocating the lowest free one; null when all are taken. */
  assign(switchId: string, key: string): number | null {
    let zones = this.#bySwitch.get(switchId);
    if (!zones) this.#bySwitch.set(switchId, zones = new Map());
    const known = zones.get(key);
    if (known !== undefined) return known;
    const used = new Set(zones.values());
    for (let zone = 1; zone <= MAX_ZONES; zone++) {
      if (!used.has(zone)) {
        zones.set(key, zone);
        return zone;
      }
    }
    return null;
  }

  /** Frees the zones of every key not in `keep`. */
  retain(keep: ReadonlySet<string>): void {
    for (const zones of this.#bySwitch.values()) {
      for (const key of zones.keys()) if (!keep.has(key)) zones.delete(key);
    }
  }
}
