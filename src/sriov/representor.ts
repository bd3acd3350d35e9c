/**
 * Representor discovery (switchdev model): from an SR-IOV VF's PCI address
 * to the host netdev that represents it on the NIC's embedded switch, which
 * is where the agent programs TC.
 *
 * The walk, each step named in errors:
 * 1. "find PF": `<root>/bus/pci/devices/<vf>/physfn` links to the PF.
 * 2. "find VF index": the PF's `virtfn<N>` link that points back at the VF.
 * 3. "find uplink": the PF netdev in `<root>/bus/pci/devices/<pf>/net/`
 *    whose `phys_port_name` is `p<P>`.
 * 4. "read switch id": the uplink's `phys_switch_id` (unreadable or empty
 *    when the PF's eswitch is not in switchdev mode).
 * 5. "find representor": the netdev in `<root>/class/net/` with the same
 *    `phys_switch_id` and `phys_port_name` `pf<P>vf<N>`, or the legacy
 *    `vf<N>` when only one PF is on that switch.
 *
 * Only validated names (PCI addresses, interface names) and the basenames of
 * link targets are ever joined to the sysfs root, so nothing read from sysfs
 * can steer a read outside it.
 */

import { show } from "../log/quote.ts";
import { checkInterfaceName, checkPciAddress } from "../cluster/validate.ts";
import { log } from "../log/klog.ts";
import {
  exists,
  listDirectory,
  readAttribute,
  readLinkBasename,
  readOptionalAttribute,
  SysfsError,
} from "./sysfs.ts";

/** Where sysfs is mounted on a real host. */
export const DEFAULT_SYSFS_ROOT = "/sys";

/** The steps of representor discovery, as named in {@link RepresentorError}. */
export type RepresentorStep =
  | "validate address"
  | "find PF"
  | "find VF index"
  | "find uplink"
  | "read switch id"
  | "find representor";

/**
 * Why a VF's representor could not be found: the VF, the step that failed
 * and the sysfs path it was reading. The message is
 * `<vf>: step "<step>": <detail>`, and the detail names the path.
 */
export class RepresentorError extends Error {
  /** The VF's PCI address as given (JSON-quoted in the message when invalid). */
  readonly pciAddress: string;
  /** The discovery step that failed. */
  readonly step: RepresentorStep;
  /** The sysfs path that failed ("" when no path was involved). */
  readonly path: string;

  constructor(
    pciAddress: string,
    step: RepresentorStep,
    path: string,
    detail: string,
    options?: ErrorOptions,
  ) {
    const shown = checkPciAddress(pciAddress) === null ? pciAddress : show(pciAddress);
    super(`${shown}: step "${step}": ${detail}`, options);
    this.name = "RepresentorError";
    this.pciAddress = pciAddress;
    this.step = step;
    this.path = path;
  }
}

/** Everything learned while resolving one VF; useful for troubleshooting output. */
export interface RepresentorInfo {
  /** The VF's PCI address (lower case, as in sysfs). */
  vf: string;
  /** The PF's PCI address. */
  pf: string;
  /** N in the PF's `virtfn<N>` link to the VF. */
  vfIndex: number;
  /** The PF's uplink netdev (phys_port_name `p<P>`). */
  uplink: string;
  /** P from the uplink's `p<P>`. */
  pfNumber: number;
  /** The eswitch's `phys_switch_id`, lower case. */
  switchId: string;
  /** The representor netdev's name. */
  representor: string;
  /** The representor's `phys_port_name` (`pf<P>vf<N>` or legacy `vf<N>`). */
  portName: string;
}

interface CacheEntry {
  info: RepresentorInfo;
  /** Sorted listing of the PF's net/ directory when resolved. */
  pfNetdevs: string;
  /** Sorted listing of class/net when resolved. */
  classNet: string;
}

const UPLINK_PORT = /^p(\d+)$/;
const VF_PORT = /^pf(\d+)vf(\d+)$/;
const VIRTFN = /^virtfn(\d+)$/;

/** Errno names meaning "this attribute is not provided" (i.e. not switchdev). */
const UNSUPPORTED_CODES = new Set(["ENOENT", "EOPNOTSUPP", "ENOTSUP"]);

function isUnsupported(error: SysfsError): boolean {
  return error.reason === "empty" || UNSUPPORTED_CODES.has(error.code) ||
    error.reason === "Operation not supported";
}

function asSysfsError(error: unknown): SysfsError {
  if (error instanceof SysfsError) return error;
  throw error;
}

/**
 * Maps VF PCI addresses to representor netdev names by walking sysfs, and
 * caches the answers. A cached answer is dropped when the listing of the
 * PF's `net/` directory or of `class/net` changes (a netdev was added,
 * removed or renamed), and all of them by {@link invalidate}.
 */
export class RepresentorResolver {
  readonly #root: string;
  readonly #cache = new Map<string, CacheEntry>();
  readonly #inflight = new Map<string, Promise<RepresentorInfo>>();
  #generation = 0;

  /** `sysfsRoot` is where sysfs is mounted; tests point it at a fake tree. */
  constructor(sysfsRoot: string = DEFAULT_SYSFS_ROOT) {
    if (sysfsRoot === "") throw new Error("sysfs root must not be empty");
    this.#root = sysfsRoot === "/" ? "" : sysfsRoot.replace(/\/+$/, "");
  }

  /** The sysfs root in use, as given (without trailing slashes). */
  get sysfsRoot(): string {
    return this.#root === "" ? "/" : this.#root;
  }

  /**
   * The representor netdev name for the VF at `pciAddress`
   * (e.g. `0000:3b:00.2`). Throws {@link RepresentorError}.
   */
  async resolve(pciAddress: string): Promise<string> {
    return (await this.lookup(pciAddress)).representor;
  }

  /** Like {@link resolve}, but returns every fact found on the way. */
  async lookup(pciAddress: string): Promise<RepresentorInfo> {
    const invalid = checkPciAddress(pciAddress);
    if (invalid !== null) throw new RepresentorError(pciAddress, "validate address", "", invalid);
    const vf = pciAddress.toLowerCase();

    const cached = this.#cache.get(vf);
    if (cached !== undefined) {
      if (await this.#stillValid(cached)) return { ...cached.info };
      this.#dropPf(cached.info.pf);
    }

    const pending = this.#inflight.get(vf);
    if (pending !== undefined) return { ...(await pending) };
    const generation = this.#generation;
    const discovery = this.#discover(vf).then((entry) => {
      if (generation === this.#generation) this.#cache.set(vf, entry);
      return entry.info;
    }).finally(() => {
      if (this.#inflight.get(vf) === discovery) this.#inflight.delete(vf);
    });
    this.#inflight.set(vf, discovery);
    return { ...(await discovery) };
  }

  /** Forgets every cached answer; the next lookups walk sysfs again. */
  invalidate(): void {
    this.#generation++;
    this.#cache.clear();
    this.#inflight.clear();
    log.v(4, "representor cache invalidated");
  }

  async #stillValid(entry: CacheEntry): Promise<boolean> {
    try {
      const [pfNetdevs, classNet] = await Promise.all([
        listDirectory(this.#pfNetPath(entry.info.pf)),
        listDirectory(`${this.#root}/class/net`),
      ]);
      return pfNetdevs.join("/") === entry.pfNetdevs && classNet.join("/") === entry.classNet;
    } catch {
      return false;
    }
  }

  #dropPf(pf: string): void {
    for (const [vf, entry] of this.#cache) {
      if (entry.info.pf === pf) this.#cache.delete(vf);
    }
    log.v(4, "representor cache dropped: netdevs changed", { pf });
  }

  #pfNetPath(pf: string): string {
    return `${this.#root}/bus/pci/devices/${pf}/net`;
  }

  async #discover(vf: string): Promise<CacheEntry> {
    const fail = (step: RepresentorStep, path: string, detail: string, cause?: unknown) =>
      new RepresentorError(vf, step, path, detail, cause === undefined ? undefined : { cause });

    // 1. find PF
    const vfDir = `${this.#root}/bus/pci/devices/${vf}`;
    const physfn = `${vfDir}/physfn`;
    let pf: string;
    try {
      pf = await readLinkBasename(physfn);
    } catch (error) {
      const e = asSysfsError(error);
      if (e.code === "ENOENT" && !(await exists(vfDir))) {
        throw fail("find PF", vfDir, `cannot read ${vfDir}: ${e.reason} (no such PCI device)`, e);
      }
      const why = e.code === "ENOENT" ? " (not an SR-IOV VF)" : "";
      throw fail("find PF", physfn, `cannot read ${physfn}: ${e.reason}${why}`, e);
    }
    if (checkPciAddress(pf) !== null) {
      throw fail("find PF", physfn, `${physfn} points to ${show(pf)}, not a PCI device`);
    }

    // 2. find VF index
    const pfDir = `${this.#root}/bus/pci/devices/${pf}`;
    let pfEntries: string[];
    try {
      pfEntries = await listDirectory(pfDir);
    } catch (error) {
      throw fail("find VF index", pfDir, asSysfsError(error).message, error);
    }
    const links = await Promise.all(
      pfEntries.filter((name) => VIRTFN.test(name)).map(async (name) => ({
        name,
        target: await readLinkBasename(`${pfDir}/${name}`).catch(() => ""),
      })),
    );
    const back = links.filter((link) => link.target === vf);
    if (back.length === 0) {
      throw fail("find VF index", pfDir, `no virtfn<N> link in ${pfDir} points to ${vf}`);
    }
    if (back.length > 1) {
      const names = back.map((link) => link.name).join(", ");
      throw fail("find VF index", pfDir, `several links in ${pfDir} point to ${vf}: ${names}`);
    }
    const vfIndex = Number(VIRTFN.exec(back[0].name)![1]);

    // 3. find uplink
    const pfNet = this.#pfNetPath(pf);
    let pfNetdevs: string[];
    try {
      pfNetdevs = await listDirectory(pfNet);
    } catch (error) {
      throw fail("find uplink", pfNet, asSysfsError(error).message, error);
    }
    if (pfNetdevs.length === 0) {
      throw fail("find uplink", pfNet, `${pfNet} is empty: PF ${pf} has no netdev`);
    }
    const pfPorts = await Promise.all(
      pfNetdevs.map(async (name) => ({
        name,
        port: await readOptionalAttribute(`${pfNet}/${name}/phys_port_name`),
      })),
    );
    const uplinks = pfPorts.filter((netdev) => UPLINK_PORT.test(netdev.port ?? ""));
    if (uplinks.length > 1) {
      const names = uplinks.map((netdev) => `${netdev.name} (${netdev.port})`).join(", ");
      throw fail(
        "find uplink",
        pfNet,
        `several netdevs in ${pfNet} have a phys_port_name p<P>: ${names}`,
      );
    }
    if (uplinks.length === 0) {
      // Without a p<P> port name the eswitch is usually in legacy mode: say
      // so when the switch id is missing too.
      await this.#readSwitchId(vf, pf, `${pfNet}/${pfNetdevs[0]}/phys_switch_id`);
      throw fail("find uplink", pfNet, `no netdev in ${pfNet} has a phys_port_name p<P>`);
    }
    const uplink = uplinks[0].name;
    const badUplink = checkInterfaceName(uplink);
    if (badUplink !== null) throw fail("find uplink", `${pfNet}/${uplink}`, badUplink);
    const pfNumber = Number(UPLINK_PORT.exec(uplinks[0].port!)![1]);

    // 4. read switch id
    const switchId = await this.#readSwitchId(vf, pf, `${pfNet}/${uplink}/phys_switch_id`);

    // 5. find representor
    const classNetPath = `${this.#root}/class/net`;
    let classNet: string[];
    try {
      classNet = await listDirectory(classNetPath);
    } catch (error) {
      throw fail("find representor", classNetPath, asSysfsError(error).message);
    }
    const candidates = await Promise.all(classNet.map(async (name) => {
      const id = await readOptionalAttribute(`${classNetPath}/${name}/phys_switch_id`);
      if (id === null || id.toLowerCase() !== switchId) return null;
      return { name, port: await readOptionalAttribute(`${classNetPath}/${name}/phys_port_name`) };
    }));
    const onSwitch = candidates.filter((c): c is { name: string; port: string } =>
      c !== null && c.port !== null
    );
    const pfsOnSwitch = new Set<number>([pfNumber]);
    for (const { port } of onSwitch) {
      const match = UPLINK_PORT.exec(port) ?? VF_PORT.exec(port);
      if (match) pfsOnSwitch.add(Number(match[1]));
    }
    const want = `pf${pfNumber}vf${vfIndex}`;
    const legacy = `vf${vfIndex}`;
    let found = onSwitch.filter((c) => c.port === want);
    if (found.length === 0) {
      found = onSwitch.filter((c) => c.port === legacy);
      if (found.length > 0 && pfsOnSwitch.size > 1) {
        const pfs = [...pfsOnSwitch].sort((a, b) => a - b).map((p) => `p${p}`).join(", ");
        const names = found.map((c) => c.name).join(", ");
        throw fail(
          "find representor",
          classNetPath,
          `legacy phys_port_name ${legacy} of ${names} in ${classNetPath} is ambiguous: ` +
            `${pfsOnSwitch.size} PFs (${pfs}) share phys_switch_id ${switchId}; want ${want}`,
        );
      }
    }
    if (found.length === 0) {
      const forms = pfsOnSwitch.size > 1 ? want : `${want} or ${legacy}`;
      throw fail(
        "find representor",
        classNetPath,
        `no netdev in ${classNetPath} has phys_switch_id ${switchId} and phys_port_name ${forms}`,
      );
    }
    if (found.length > 1) {
      const names = found.map((c) => c.name).join(", ");
      throw fail(
        "find representor",
        classNetPath,
        `several netdevs in ${classNetPath} have phys_switch_id ${switchId} and ` +
          `phys_port_name ${found[0].port}: ${names}`,
      );
    }
    const representor = found[0].name;
    const badName = checkInterfaceName(representor);
    if (badName !== null) {
      const path = `${classNetPath}/${representor}`;
      throw fail("find representor", path, `${path} is not usable: ${badName}`);
    }

    const info: RepresentorInfo = {
      vf,
      pf,
      vfIndex,
      uplink,
      pfNumber,
      switchId,
      representor,
      portName: found[0].port,
    };
    log.v(4, "resolved VF representor", { ...info });
    return { info, pfNetdevs: pfNetdevs.join("/"), classNet: classNet.join("/") };
  }

  /** Reads a phys_switch_id, reporting a missing one as "not in switchdev mode". */
  async #readSwitchId(vf: string, pf: string, path: string): Promise<string> {
    try {
      return (await readAttribute(path)).toLowerCase();
    } catch (error) {
      const e = asSysfsError(error);
      if (!isUnsupported(e)) {
        throw new RepresentorError(vf, "read switch id", path, e.message, { cause: e });
      }
      throw new RepresentorError(
        vf,
        "read switch id",
        path,
        `PF ${pf} is not in switchdev mode: ${e.message} ` +
          `(set it with: devlink dev eswitch set pci/${pf} mode switchdev)`,
        { cause: e },
      );
    }
  }
}

/**
 * Every representor netdev in sysfs: VF representors (`phys_port_name`
 * `pf<P>vf<N>` or `vf<N>`) and uplinks (`p<P>`), whatever they stand for:
 * where the agent looks for rules left behind by pods that went away while
 * it was not running.
 */
export async function listRepresentors(sysfsRoot = DEFAULT_SYSFS_ROOT): Promise<string[]> {
  const root = sysfsRoot.replace(/\/+$/, "");
  const names = await listDirectory(`${root}/class/net`);
  const out: string[] = [];
  for (const name of names) {
    if (checkInterfaceName(name)) continue;
    const portName = await readOptionalAttribute(`${root}/class/net/${name}/phys_port_name`)
      .catch(() => null);
    if (portName && /^(p\d+|(pf\d+)?vf\d+)$/.test(portName.trim())) out.push(name);
  }
  return out.sort();
}
