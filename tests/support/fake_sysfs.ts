/**
 * Builds fake sysfs trees in a temporary directory, laid out like the
 * kernel's, with real relative symlinks:
 *
 * - `devices/pci0000:00/<addr>/` is a PCI device; `bus/pci/devices/<addr>`
 *   links to it (`../../../devices/pci0000:00/<addr>`).
 * - A VF's `physfn` links to `../<pf>`; the PF's `virtfn<N>` links to `../<vf>`.
 * - A netdev with a PCI parent lives in `devices/pci0000:00/<pci>/net/<name>/`,
 *   one without in `devices/virtual/net/<name>/`; `class/net/<name>` links to
 *   it, or is a plain directory when asked (`plainClassDir`).
 * - `phys_switch_id` and `phys_port_name` are files; `null` leaves one out,
 *   `""` writes it empty (both stand for the kernel's EOPNOTSUPP).
 */

/** One netdev to create in the fake tree. */
export interface FakeNetdev {
  /** Interface name. */
  name: string;
  /** PCI device the netdev belongs to (appears in its `net/`); none = virtual. */
  pci?: string;
  /** `phys_port_name` content; `null`/absent leaves the file out. */
  portName?: string | null;
  /** `phys_switch_id` content; `null`/absent leaves the file out. */
  switchId?: string | null;
  /** Make `class/net/<name>` a plain directory instead of a symlink. */
  plainClassDir?: boolean;
}

/** A fake sysfs tree under a temporary directory; call `remove()` when done. */
export class FakeSysfs {
  /** The tree's root, to pass as the sysfs root. */
  readonly root: string;
  readonly #netdevDirs = new Map<string, string>();

  private constructor(root: string) {
    this.root = root;
  }

  /** Creates an empty tree (with `class/net` and `bus/pci/devices`). */
  static async create(): Promise<FakeSysfs> {
    const root = await Deno.makeTempDir({ prefix: "fake-sysfs-" });
    const tree = new FakeSysfs(root);
    await Deno.mkdir(`${root}/class/net`, { recursive: true });
    await Deno.mkdir(`${root}/bus/pci/devices`, { recursive: true });
    await Deno.mkdir(`${root}/devices/pci0000:00`, { recursive: true });
    await Deno.mkdir(`${root}/devices/virtual/net`, { recursive: true });
    return tree;
  }

  /** Deletes the tree. */
  async remove(): Promise<void> {
    await Deno.remove(this.root, { recursive: true });
  }

  #deviceDir(address: string): string {
    return `${this.root}/devices/pci0000:00/${address}`;
  }

  /** Adds a PCI device (PF or plain device). */
  async addPciDevice(address: string): Promise<void> {
    await Deno.mkdir(this.#deviceDir(address), { recursive: true });
    await Deno.symlink(
      `../../../devices/pci0000:00/${address}`,
      `${this.root}/bus/pci/devices/${address}`,
    );
  }

  /** Adds a PF and its VFs: `vfs[i]` is the VF behind `virtfn<i>`. */
  async addPf(pf: string, vfs: string[]): Promise<void> {
    await this.addPciDevice(pf);
    for (const [index, vf] of vfs.entries()) {
      await this.addPciDevice(vf);
      await Deno.symlink(`../${pf}`, `${this.#deviceDir(vf)}/physfn`);
      await Deno.symlink(`../${vf}`, `${this.#deviceDir(pf)}/virtfn${index}`);
    }
  }

  /** Removes a path relative to the root (e.g. a `virtfn` link). */
  async removePath(relative: string): Promise<void> {
    await Deno.remove(`${this.root}/${relative}`, { recursive: true });
  }

  /** Adds netdevs. */
  async addNetdevs(...netdevs: FakeNetdev[]): Promise<void> {
    for (const netdev of netdevs) await this.#addNetdev(netdev);
  }

  async #addNetdev(netdev: FakeNetdev): Promise<void> {
    const classPath = `${this.root}/class/net/${netdev.name}`;
    let dir: string;
    let link: string | null;
    if (netdev.plainClassDir) {
      dir = classPath;
      link = null;
    } else if (netdev.pci !== undefined) {
      dir = `${this.#deviceDir(netdev.pci)}/net/${netdev.name}`;
      link = `../../devices/pci0000:00/${netdev.pci}/net/${netdev.name}`;
    } else {
      dir = `${this.root}/devices/virtual/net/${netdev.name}`;
      link = `../../devices/virtual/net/${netdev.name}`;
    }
    await Deno.mkdir(dir, { recursive: true });
    if (link !== null) await Deno.symlink(link, classPath);
    this.#netdevDirs.set(netdev.name, dir);
    await this.setAttribute(netdev.name, "phys_port_name", netdev.portName ?? null);
    await this.setAttribute(netdev.name, "phys_switch_id", netdev.switchId ?? null);
  }

  /** Writes (or, with `null`, deletes) a netdev attribute in place. */
  async setAttribute(name: string, attribute: string, value: string | null): Promise<void> {
    const dir = this.#netdevDirs.get(name);
    if (dir === undefined) throw new Error(`fake sysfs: no netdev ${name}`);
    const path = `${dir}/${attribute}`;
    if (value === null) {
      await Deno.remove(path).catch(() => {});
    } else {
      await Deno.writeTextFile(path, value === "" ? "" : `${value}\n`);
    }
  }

  /**
   * Adds a bond (a virtual netdev with `ifindex` and `bonding/`) and
   * enslaves `ports` to it: each port's `master` links to the bond, and the
   * bond's `lower_<port>` to each port.
   */
  async addBond(name: string, ifindex: number, ports: string[]): Promise<void> {
    await this.#addNetdev({ name });
    const dir = this.#netdevDirs.get(name)!;
    await Deno.writeTextFile(`${dir}/ifindex`, `${ifindex}\n`);
    await Deno.mkdir(`${dir}/bonding`);
    for (const port of ports) await this.enslave(name, port);
  }

  /** Makes `port` a port of `bond` (its `master` and the bond's `lower_<port>`). */
  async enslave(bond: string, port: string): Promise<void> {
    const portDir = this.#netdevDirs.get(port);
    if (portDir === undefined) throw new Error(`fake sysfs: no netdev ${port}`);
    await Deno.symlink(`${this.root}/class/net/${bond}`, `${portDir}/master`);
    await Deno.symlink(
      `${this.root}/class/net/${port}`,
      `${this.#netdevDirs.get(bond)}/lower_${port}`,
    );
  }

  /** Takes `port` out of its bond. */
  async release(bond: string, port: string): Promise<void> {
    await Deno.remove(`${this.#netdevDirs.get(port)}/master`);
    await Deno.remove(`${this.#netdevDirs.get(bond)}/lower_${port}`);
  }

  /** Renames a netdev the way the kernel does: its directory and class/net entry. */
  async renameNetdev(from: string, to: string): Promise<void> {
    const dir = this.#netdevDirs.get(from);
    if (dir === undefined) throw new Error(`fake sysfs: no netdev ${from}`);
    const classFrom = `${this.root}/class/net/${from}`;
    const classTo = `${this.root}/class/net/${to}`;
    const target = (await Deno.lstat(classFrom)).isSymlink ? await Deno.readLink(classFrom) : null;
    const newDir = `${dir.slice(0, dir.lastIndexOf("/"))}/${to}`;
    if (target === null) {
      await Deno.rename(classFrom, classTo);
    } else {
      await Deno.rename(dir, newDir);
      await Deno.remove(classFrom);
      await Deno.symlink(`${target.slice(0, target.lastIndexOf("/"))}/${to}`, classTo);
    }
    this.#netdevDirs.delete(from);
    this.#netdevDirs.set(to, target === null ? classTo : newDir);
  }
}
