/**
 * A throw-away qemu VM that runs one command against a stock Debian kernel.
 *
 * The host kernel of the development machines lacks `cls_flower`, `act_gact` and `act_ct`, so
 * kernel tests boot the installed Debian kernel (`linux-image-amd64`) under qemu. The guest sees
 * the host's root file system read-only over 9p (same binaries, same repository, same Deno
 * cache), gets tmpfs on `/tmp`, `/run`, `/var/tmp` and `/dev/shm`, loads the TC modules and runs
 * the command in a chroot of the host root. The command's exit code and combined output come back
 * through a second, writable 9p share that points at a per-run directory on the host.
 *
 * Deno inside the VM: `DENO_DIR` is an overlay whose lower layer is the host's Deno cache
 * (read-only over 9p) and whose upper layer is a tmpfs, so cached `npm:` packages resolve without
 * network and Deno may still write its caches. Only what the host has cached is available: run
 * `deno cache` (or the same command once) on the host first.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { homedir } from "node:os";

/** Options of {@linkcode runInVm}. */
export interface VmRunOptions {
  /** The program and its arguments, looked up in the guest `PATH` (the host's binaries). */
  command: string[];
  /**
   * Working directory inside the guest; defaults to the host's current directory. When it lies
   * under `/tmp`, `/run` or `/var/tmp` (fresh tmpfs mounts in the guest), it is shared into the
   * guest at the same path, like {@linkcode VmRunOptions.shares}.
   */
  cwd?: string;
  /**
   * Host directories under `/tmp`, `/run` or `/var/tmp` to make visible in the guest (read-only,
   * at the same path). Everything else on the host is visible anyway.
   */
  shares?: string[];
  /**
   * Extra environment for the command. The command starts from a clean environment holding
   * `PATH` (the host's), `HOME=/tmp`, `TMPDIR=/tmp`, `DENO_DIR` (the overlay described in the
   * module doc), `DENO_NO_UPDATE_CHECK=1`, `LANG=C.UTF-8` and `MNP_VM=1`; entries given here
   * are added on top and win.
   */
  env?: Record<string, string>;
  /**
   * Bound for the whole run (boot included, waiting for another caller's VM to finish not
   * included), in seconds. Default 240. qemu is then killed; a guest-side watchdog and coreutils
   * `timeout` around qemu also stop it if the calling process dies first.
   */
  timeoutSeconds?: number;
  /**
   * Use KVM (`-cpu host,-arch-capabilities`) instead of plain emulation (TCG with `-cpu max`).
   * Default false: on the development machines (themselves VMs without nested virtualisation)
   * a KVM guest hangs at boot, and plain `-cpu host` makes qemu abort on MSR 0x10a.
   */
  kvm?: boolean;
  /** Guest memory in MiB. Default 2048. */
  memoryMiB?: number;
  /** Guest CPUs. Default 2 (multi-threaded TCG). */
  cpus?: number;
  /**
   * Give the guest an unrestricted user-mode (slirp) NIC: `eth0` with 10.0.2.15/24 and a
   * default route via 10.0.2.2, where the host's loopback services answer (a guest connection to
   * 10.0.2.2:PORT reaches 127.0.0.1:PORT on the host). That NIC also reaches whatever the host
   * can reach: prefer `hostPorts`. Default false (`-nic none`: no network at all).
   */
  hostForward?: boolean;
  /**
   * Host loopback TCP ports the guest may reach, and nothing else: the guest gets `eth0`
   * (10.0.2.15/24) on an isolated user-mode network (`restrict=on`) where a connection to
   * 10.0.2.100:PORT is forwarded to 127.0.0.1:PORT on the host (qemu `guestfwd`, one busybox
   * `nc` per connection). Ignored when `hostForward` is set.
   */
  hostPorts?: number[];
  /**
   * Make `cwd` writable in the guest with an overlay (upper layer on tmpfs) whose writes are
   * discarded when the VM stops; the host's files are never changed. Default true, so that Deno
   * can write `deno.lock` and tests can leave scratch files next to them. False shows the plain
   * read-only view of the host.
   */
  writableCwd?: boolean;
  /** Kernel modules to load in addition to {@linkcode DEFAULT_MODULES}. */
  modules?: string[];
  /**
   * Receives the command's output live, as the guest produces it (copied over the serial
   * console). The result's `output` is the authoritative copy.
   */
  onOutput?: (text: string) => void;
  /** Aborting it stops the VM; the result then has code 125 and says it was aborted. */
  signal?: AbortSignal;
}

/** What {@linkcode runInVm} reports about one run. */
export interface VmRunResult {
  /**
   * The command's exit code; 124 when the run timed out, 125 when the VM could not run the
   * command (boot failure, missing module, bad cwd); `output` then says why.
   */
  code: number;
  /** The command's combined stdout and stderr (plus a `vm:` line explaining a 124/125). */
  output: string;
  /** Seconds from starting qemu to the moment the guest is about to run the command. */
  bootSeconds: number;
  /** Seconds for the whole run, initramfs build (if needed) and VM shutdown included. */
  totalSeconds: number;
  /** True when the run was killed for exceeding `timeoutSeconds`. */
  timedOut: boolean;
  /** What the guest printed on its serial console (boot diagnostics); for troubleshooting. */
  console: string;
}

/**
 * Modules loaded in every guest: the TC qdisc/classifier/actions the agent programs, conntrack,
 * the devices tests build topologies from, and the protocols tests send.
 */
export const DEFAULT_MODULES: readonly string[] = [
  "sch_ingress",
  "sch_prio",
  "cls_flower",
  "cls_matchall",
  "act_gact",
  "act_ct",
  "act_mirred",
  "act_vlan",
  "nf_conntrack",
  "veth",
  "bridge",
  "8021q",
  "sctp",
  "overlay",
];

/** Exit code reported when the run exceeded its timeout (as coreutils `timeout`). */
export const VM_TIMEOUT_CODE = 124;
/** Exit code reported when the VM could not run the command at all. */
export const VM_FAILURE_CODE = 125;

const BOOT_MODULES = ["virtio_pci", "9pnet_virtio", "9p"];
const INITRAMFS_FORMAT = 1;
const MSIZE = 512000;
const GUEST_DENO_DIR = "/run/mnpvm-deno/dir";

interface Kernel {
  version: string;
  image: string;
  moduleDir: string;
}

function cacheRoot(): string {
  const xdg = Deno.env.get("XDG_CACHE_HOME");
  const base = xdg && xdg.startsWith("/") ? xdg : `${Deno.env.get("HOME") ?? homedir()}/.cache`;
  return `${base}/multi-networkpolicy-tc/vm`;
}

function hostDenoDir(): string {
  const explicit = Deno.env.get("DENO_DIR");
  if (explicit) return explicit;
  const xdg = Deno.env.get("XDG_CACHE_HOME");
  const base = xdg && xdg.startsWith("/") ? xdg : `${Deno.env.get("HOME") ?? homedir()}/.cache`;
  return `${base}/deno`;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

async function findExecutable(name: string): Promise<string | null> {
  const dirs = (Deno.env.get("PATH") ?? "").split(":").filter((d) => d !== "");
  for (const d of ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]) {
    if (!dirs.includes(d)) dirs.push(d);
  }
  for (const d of dirs) {
    try {
      const st = await Deno.stat(`${d}/${name}`);
      if (st.isFile && st.mode !== null && (st.mode & 0o111) !== 0) return `${d}/${name}`;
    } catch {
      // not in this directory
    }
  }
  return null;
}

/** True when `path` is an ELF executable without a program interpreter (statically linked). */
async function isStaticElf(path: string): Promise<boolean> {
  let data: Uint8Array;
  try {
    data = await Deno.readFile(path);
  } catch {
    return false;
  }
  if (data.length < 64 || data[0] !== 0x7f || data[1] !== 0x45 || data[4] !== 2) return false;
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const phoff = Number(view.getBigUint64(32, true));
  const phentsize = view.getUint16(54, true);
  const phnum = view.getUint16(56, true);
  for (let i = 0; i < phnum; i++) {
    const off = phoff + i * phentsize;
    if (off + 4 > data.length) return false;
    if (view.getUint32(off, true) === 3) return false; // PT_INTERP
  }
  return true;
}

async function findStaticBusybox(): Promise<string | null> {
  const candidates = ["/bin/busybox", "/usr/bin/busybox"];
  const inPath = await findExecutable("busybox");
  if (inPath) candidates.push(inPath);
  for (const c of candidates) {
    if (await isStaticElf(c)) return c;
  }
  return null;
}

function compareVersions(a: string, b: string): number {
  const pa = a.split(/[.-]/);
  const pb = b.split(/[.-]/);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i] ?? "";
    const y = pb[i] ?? "";
    const nx = Number(x);
    const ny = Number(y);
    const c = !isNaN(nx) && !isNaN(ny) ? nx - ny : x.localeCompare(y);
    if (c !== 0) return c;
  }
  return 0;
}

/** The newest /boot/vmlinuz-* whose modules include cls_flower (override: MNP_VM_KERNEL). */
async function findKernel(): Promise<Kernel | null> {
  const override = Deno.env.get("MNP_VM_KERNEL");
  const images: string[] = [];
  if (override) {
    images.push(override);
  } else {
    try {
      for await (const e of Deno.readDir("/boot")) {
        if (e.name.startsWith("vmlinuz-")) images.push(`/boot/${e.name}`);
      }
    } catch {
      return null;
    }
    images.sort((a, b) => compareVersions(b.slice(14), a.slice(14)));
  }
  for (const image of images) {
    const version = image.replace(/^.*vmlinuz-/, "");
    const moduleDir = `/lib/modules/${version}`;
    try {
      await (await Deno.open(image)).close();
      const dep = await Deno.readTextFile(`${moduleDir}/modules.dep`);
      if (dep.includes("/cls_flower.ko") && dep.includes("/act_ct.ko")) {
        return { version, image, moduleDir };
      }
    } catch {
      // unreadable image or no modules for it
    }
  }
  return null;
}

/**
 * Tells whether this machine can run {@linkcode runInVm}: null when qemu, a kernel with the TC
 * modules, a static busybox and kmod are present, else a one-line reason naming what is missing
 * and the Debian package that provides it.
 */
export async function vmPrerequisites(): Promise<string | null> {
  const missing: string[] = [];
  const packages: string[] = [];
  if (!(await findExecutable("qemu-system-x86_64"))) {
    missing.push("qemu-system-x86_64");
    packages.push("qemu-system-x86");
  }
  if (!(await findKernel())) {
    missing.push("a readable /boot/vmlinuz-* with cls_flower and act_ct in /lib/modules");
    packages.push("linux-image-amd64");
  }
  if (!(await findStaticBusybox())) {
    missing.push("a statically linked busybox");
    packages.push("busybox-static");
  }
  if (!(await exists("/sbin/modprobe")) && !(await exists("/usr/sbin/modprobe"))) {
    missing.push("modprobe");
    packages.push("kmod");
  }
  if (missing.length === 0) return null;
  return `VM prerequisites missing: ${missing.join(", ")} (apt-get install ${packages.join(" ")})`;
}

/** Module files to insmod, dependencies first, for `names` (builtin modules are skipped). */
async function moduleLoadOrder(kernel: Kernel, names: string[]): Promise<string[]> {
  const dep = await Deno.readTextFile(`${kernel.moduleDir}/modules.dep`);
  let builtin = "";
  try {
    builtin = await Deno.readTextFile(`${kernel.moduleDir}/modules.builtin`);
  } catch {
    // no builtin list
  }
  const norm = (p: string) => p.replace(/^.*\//, "").replace(/\.ko(\..*)?$/, "").replace(/-/g, "_");
  const deps = new Map<string, string[]>();
  const byName = new Map<string, string>();
  for (const line of dep.split("\n")) {
    const colon = line.indexOf(":");
    if (colon < 0) continue;
    const path = line.slice(0, colon);
    deps.set(path, line.slice(colon + 1).trim().split(/\s+/).filter((s) => s !== ""));
    byName.set(norm(path), path);
  }
  const builtins = new Set(builtin.split("\n").filter((s) => s !== "").map(norm));
  const order: string[] = [];
  const seen = new Set<string>();
  const visit = (path: string) => {
    if (seen.has(path)) return;
    seen.add(path);
    for (const d of deps.get(path) ?? []) visit(d);
    order.push(path);
  };
  for (const n of names) {
    const key = n.replace(/-/g, "_");
    if (builtins.has(key)) continue;
    const path = byName.get(key);
    if (!path) throw new Error(`vm: module ${n} not found in ${kernel.moduleDir}/modules.dep`);
    visit(path);
  }
  return order;
}

/** The contents of module file `path`, decompressed (`.ko.gz`, `.ko.xz`, `.ko.zst`). */
async function readModule(path: string): Promise<Uint8Array> {
  const data = await Deno.readFile(path);
  if (path.endsWith(".ko")) return data;
  if (path.endsWith(".gz")) {
    const stream = new Blob([data]).stream().pipeThrough(new DecompressionStream("gzip"));
    return new Uint8Array(await new Response(stream).arrayBuffer());
  }
  const tool = path.endsWith(".xz") ? "xz" : path.endsWith(".zst") ? "zstd" : null;
  if (!tool) throw new Error(`vm: unknown module file type: ${path}`);
  const out = await new Deno.Command(tool, { args: ["-dc", path], stderr: "piped" }).output()
    .catch((e: Error) => {
      throw new Error(`vm: cannot run ${tool} to unpack ${path}: ${e.message}`);
    });
  if (!out.success) throw new Error(`vm: ${tool} -dc ${path} failed`);
  return out.stdout;
}

const INIT_SCRIPT = `#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /newroot /sbin /usr/bin /usr/sbin
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
mount -t proc proc /proc
mount -t sysfs sysfs /sys
die() {
  echo "MNPVM:FAIL $*"
  poweroff -f
  sleep 2
  reboot -f
}
watchdog=0
for arg in $(cat /proc/cmdline); do
  case "$arg" in mnpvm.watchdog=*) watchdog="\${arg#mnpvm.watchdog=}" ;; esac
done
if [ "$watchdog" -gt 0 ]; then
  (sleep "$watchdog"; echo "MNPVM:WATCHDOG"; poweroff -f; sleep 2; reboot -f) &
fi
for m in $(cat /mods/order); do
  insmod "/mods/$m" || die "insmod $m"
done
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=${MSIZE},cache=loose hostroot /newroot \\
  || die "mount hostroot"
mount -t proc proc /newroot/proc || die "mount proc"
mount -t sysfs sysfs /newroot/sys || die "mount sys"
mount -t devtmpfs devtmpfs /newroot/dev || die "mount dev"
mkdir -p /newroot/dev/pts /newroot/dev/shm
mount -t devpts -o newinstance,ptmxmode=0666 devpts /newroot/dev/pts
mount -t tmpfs -o mode=1777 tmpfs /newroot/dev/shm
mount -t tmpfs -o mode=1777 tmpfs /newroot/tmp || die "mount tmp"
mount -t tmpfs -o mode=0755 tmpfs /newroot/run || die "mount run"
mount -t tmpfs -o mode=1777 tmpfs /newroot/var/tmp || die "mount var/tmp"
mount -t bpf bpf /newroot/sys/fs/bpf 2>/dev/null
mkdir -p /newroot/run/mnpvm
mount -t 9p -o trans=virtio,version=9p2000.L,msize=${MSIZE} hostrun /newroot/run/mnpvm \\
  || die "mount hostrun"
echo "MNPVM:MOUNTED uptime $(cut -d" " -f1 /proc/uptime)"
chroot /newroot /bin/sh /run/mnpvm/guest.sh
echo "MNPVM:EXIT $?"
sync
poweroff -f
sleep 2
reboot -f
`;

/** A minimal writer of the "newc" cpio format the kernel unpacks as initramfs. */
class Cpio {
  #parts: Uint8Array[] = [];
  #ino = 1;
  #enc = new TextEncoder();

  #entry(name: string, mode: number, data: Uint8Array, rdev: [number, number] = [0, 0]) {
    const nameBytes = this.#enc.encode(name + "\0");
    const hex = (n: number) => n.toString(16).padStart(8, "0");
    const header = "070701" +
      [
        this.#ino++,
        mode,
        0,
        0,
        (mode & 0o170000) === 0o040000 ? 2 : 1,
        0,
        data.length,
        0,
        0,
        rdev[0],
        rdev[1],
        nameBytes.length,
        0,
      ].map(hex).join("");
    this.#parts.push(this.#enc.encode(header), nameBytes);
    this.#pad(110 + nameBytes.length);
    this.#parts.push(data);
    this.#pad(data.length);
  }

  #pad(len: number) {
    const rest = (4 - (len % 4)) % 4;
    if (rest) this.#parts.push(new Uint8Array(rest));
  }

  dir(name: string) {
    this.#entry(name, 0o040755, new Uint8Array());
  }
  file(name: string, data: Uint8Array, mode = 0o644) {
    this.#entry(name, 0o100000 | mode, data);
  }
  charDev(name: string, major: number, minor: number) {
    this.#entry(name, 0o020600, new Uint8Array(), [major, minor]);
  }
  finish(): Uint8Array {
    this.#entry("TRAILER!!!", 0, new Uint8Array());
    const total = this.#parts.reduce((n, p) => n + p.length, 0);
    const out = new Uint8Array(total + ((512 - (total % 512)) % 512));
    let off = 0;
    for (const p of this.#parts) {
      out.set(p, off);
      off += p.length;
    }
    return out;
  }
}

/** Builds (or reuses from the cache) the initramfs for `kernel`; returns its path. */
async function ensureInitramfs(kernel: Kernel, busybox: string): Promise<string> {
  const modules = await moduleLoadOrder(kernel, BOOT_MODULES);
  const hash = createHash("sha256");
  hash.update(`format ${INITRAMFS_FORMAT}\n${kernel.version}\n${INIT_SCRIPT}\n`);
  const bb = await Deno.stat(busybox);
  hash.update(`${busybox} ${bb.size} ${bb.mtime?.getTime()}\n`);
  for (const m of modules) {
    const st = await Deno.stat(`${kernel.moduleDir}/${m}`);
    hash.update(`${m} ${st.size} ${st.mtime?.getTime()}\n`);
  }
  const dir = cacheRoot();
  const path = `${dir}/initramfs-${kernel.version}-${hash.digest("hex").slice(0, 16)}.cpio`;
  if (await exists(path)) return path;

  await Deno.mkdir(dir, { recursive: true });
  const cpio = new Cpio();
  for (const d of ["bin", "dev", "proc", "sys", "newroot", "mods"]) cpio.dir(d);
  cpio.charDev("dev/console", 5, 1);
  cpio.file("bin/busybox", await Deno.readFile(busybox), 0o755);
  cpio.file("init", new TextEncoder().encode(INIT_SCRIPT), 0o755);
  const names: string[] = [];
  for (const m of modules) {
    const base = m.replace(/^.*\//, "").replace(/\.ko\..*$/, ".ko");
    names.push(base);
    cpio.file(`mods/${base}`, await readModule(`${kernel.moduleDir}/${m}`));
  }
  cpio.file("mods/order", new TextEncoder().encode(names.join("\n") + "\n"));
  const tmp = `${path}.${Deno.pid}.tmp`;
  await Deno.writeFile(tmp, cpio.finish());
  await Deno.rename(tmp, path);
  // Drop initramfs images of earlier inputs.
  for await (const e of Deno.readDir(dir)) {
    if (e.name.startsWith("initramfs-") && `${dir}/${e.name}` !== path) {
      await Deno.remove(`${dir}/${e.name}`).catch(() => {});
    }
  }
  return path;
}

/** Quotes `s` for a POSIX shell. */
function shq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

const GUEST_TMPFS = ["/tmp", "/run", "/var/tmp", "/dev", "/proc", "/sys"];

/** True when `path` is hidden in the guest by a fresh tmpfs (or proc, sys, dev). */
function hiddenInGuest(path: string): boolean {
  return GUEST_TMPFS.some((d) => path === d || path.startsWith(`${d}/`));
}

async function realPathOr(path: string): Promise<string> {
  try {
    return await Deno.realPath(path);
  } catch {
    return path;
  }
}

/** Host directories to share into the guest: `wanted`, minus duplicates and nested ones. */
function shareList(wanted: string[]): string[] {
  const sorted = [...new Set(wanted)].sort();
  return sorted.filter((p, i) => !sorted.slice(0, i).some((q) => p.startsWith(`${q}/`)));
}

function guestScript(
  opts: VmRunOptions,
  cwd: string,
  env: Record<string, string>,
  modules: string[],
  denoLower: string | null,
  shares: string[],
): string {
  const envArgs = Object.entries(env).map(([k, v]) => shq(`${k}=${v}`)).join(" ");
  const cmd = opts.command.map(shq).join(" ");
  const run = `cd ${shq(cwd)} && exec env -i ${envArgs} ${cmd}`;
  const lines = [
    "#!/bin/sh",
    "# Generated by tests/kernel/vm/vm.ts; runs in the guest, chrooted into the host root.",
    "R=/run/mnpvm",
    'fail() { printf \'vm: %s\\n\' "$*" >"$R/output"; echo 125 >"$R/rc"; exit 0; }',
    "failed=''",
    `for m in ${modules.map(shq).join(" ")}; do`,
    '  modprobe "$m" >>"$R/modprobe.log" 2>&1 || failed="$failed $m"',
    "done",
    '[ -z "$failed" ] || fail "modprobe failed for:$failed: $(cat "$R/modprobe.log")"',
    "ip link set lo up || fail 'cannot bring up lo'",
  ];
  if (opts.hostForward || (opts.hostPorts ?? []).length > 0) {
    lines.push(
      "ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0 &&" +
        " ip route add default via 10.0.2.2 || fail 'cannot configure eth0'",
    );
  }
  shares.forEach((path, i) => {
    lines.push(
      `mkdir -p ${shq(path)} && mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=${MSIZE},` +
        `cache=loose share${i} ${shq(path)} || fail ${shq(`cannot mount the share of ${path}`)}`,
    );
  });
  lines.push(
    `D=${shq(GUEST_DENO_DIR.replace(/\/dir$/, ""))}`,
    'mkdir -p "$D/upper" "$D/work" "$D/dir"',
  );
  if (denoLower) {
    lines.push(
      `mount -t overlay overlay -o lowerdir=${shq(denoLower)},upperdir="$D/upper",` +
        `workdir="$D/work" "$D/dir" || fail 'cannot mount the Deno cache overlay'`,
    );
  }
  lines.push(
    `[ -d ${shq(cwd)} ] || fail ${shq(`cwd ${cwd} does not exist in the guest`)}`,
  );
  if (opts.writableCwd !== false && cwd !== "/") {
    lines.push(
      "C=/run/mnpvm-cwd",
      'mkdir -p "$C/upper" "$C/work"',
      `mount -t overlay overlay -o lowerdir=${shq(cwd)},upperdir="$C/upper",workdir="$C/work"` +
        ` ${shq(cwd)} || fail 'cannot mount the overlay on the working directory'`,
    );
  }
  lines.push(
    'echo "MNPVM:READY uptime $(cut -d" " -f1 /proc/uptime)" >/dev/console',
  );
  if (opts.onOutput) {
    lines.push(
      // The output goes to the file only; tail copies it to the console until the command exits.
      // Processes the command leaves behind may keep the file open: nothing waits for them.
      'echo "MNPVM:OUT-BEGIN" >/dev/console',
      `(${run}) </dev/null >"$R/output" 2>&1 &`,
      "pid=$!",
      'tail -s 0.2 -n +1 -f --pid="$pid" "$R/output" >/dev/console 2>&1 &',
      "tpid=$!",
      'wait "$pid"',
      'echo $? >"$R/rc.tmp"',
      'wait "$tpid"',
      'echo "MNPVM:OUT-END" >/dev/console',
    );
  } else {
    lines.push(`(${run}) </dev/null >"$R/output" 2>&1`, 'echo $? >"$R/rc.tmp"');
  }
  lines.push('mv "$R/rc.tmp" "$R/rc"', "sync", "");
  return lines.join("\n");
}

function defaultEnv(): Record<string, string> {
  const path = (Deno.env.get("PATH") ?? "").split(":").filter((d) => d !== "");
  for (const d of ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]) {
    if (!path.includes(d)) path.push(d);
  }
  return {
    PATH: path.join(":"),
    HOME: "/tmp",
    TMPDIR: "/tmp",
    DENO_DIR: GUEST_DENO_DIR,
    DENO_NO_UPDATE_CHECK: "1",
    LANG: "C.UTF-8",
    MNP_VM: "1",
  };
}

/**
 * Runs `opts.command` in a fresh qemu VM (see the module doc) and returns its exit code and
 * output. Runs are serialised across processes by a lock in the cache directory, so concurrent
 * callers wait instead of starting a second VM. Throws when the prerequisites are missing
 * ({@linkcode vmPrerequisites}); a guest failure or timeout is reported in the result.
 */
export async function runInVm(opts: VmRunOptions): Promise<VmRunResult> {
  if (opts.command.length === 0) throw new Error("vm: empty command");
  const reason = await vmPrerequisites();
  if (reason) throw new Error(reason);
  const kernel = await findKernel();
  const busybox = await findStaticBusybox();
  const qemu = await findExecutable("qemu-system-x86_64");
  if (!kernel || !busybox || !qemu) throw new Error("vm: prerequisites vanished");

  const timeoutSeconds = opts.timeoutSeconds ?? 240;
  const cwd = await realPathOr(opts.cwd ?? Deno.cwd());
  const env = { ...defaultEnv(), ...(opts.env ?? {}) };
  const modules = [...DEFAULT_MODULES, ...(opts.modules ?? [])];
  if (opts.hostForward || (opts.hostPorts ?? []).length > 0) modules.push("virtio_net");
  const denoLowerPath = hostDenoDir();
  const denoLower = env.DENO_DIR === GUEST_DENO_DIR && (await exists(denoLowerPath))
    ? await Deno.realPath(denoLowerPath)
    : null;
  const wanted = await Promise.all((opts.shares ?? []).map(realPathOr));
  for (const p of [cwd, denoLower]) {
    if (p !== null && hiddenInGuest(p) && !/^\/(dev|proc|sys)(\/|$)/.test(p)) wanted.push(p);
  }
  const shares = shareList(wanted);

  await Deno.mkdir(cacheRoot(), { recursive: true });
  const lock = await Deno.open(`${cacheRoot()}/lock`, { create: true, write: true });
  await lock.lock(true);
  const start = performance.now();
  // Holding the lock, no other VM runs: whatever is in runs/ was left by a killed run.
  const runs = `${cacheRoot()}/runs`;
  await Deno.remove(runs, { recursive: true }).catch(() => {});
  const runDir = `${runs}/${crypto.randomUUID()}`;
  await Deno.mkdir(runDir, { recursive: true });
  try {
    const initramfs = await ensureInitramfs(kernel, busybox);
    await Deno.writeTextFile(
      `${runDir}/guest.sh`,
      guestScript(opts, cwd, env, modules, denoLower, shares),
    );
    return await runQemu({
      qemu,
      busybox,
      kernel,
      initramfs,
      runDir,
      shares,
      opts,
      timeoutSeconds,
      start,
    });
  } finally {
    await Deno.remove(runDir, { recursive: true }).catch(() => {});
    await lock.unlock().catch(() => {});
    lock.close();
  }
}

/** Address in the guest's user-mode network where `hostPorts` are forwarded. */
export const HOST_PORTS_ADDRESS = "10.0.2.100";

function nicArgs(opts: VmRunOptions, busybox: string): string[] {
  if (opts.hostForward) return ["-nic", "user,model=virtio-net-pci"];
  const ports = opts.hostPorts ?? [];
  if (ports.length === 0) return ["-nic", "none"];
  const fwd = ports.map((p) => {
    if (!Number.isInteger(p) || p <= 0 || p > 65535) throw new Error(`vm: bad host port ${p}`);
    return `guestfwd=tcp:${HOST_PORTS_ADDRESS}:${p}-cmd:${busybox} nc 127.0.0.1 ${p}`;
  });
  return ["-nic", ["user", "model=virtio-net-pci", "restrict=on", ...fwd].join(",")];
}

interface QemuRun {
  qemu: string;
  busybox: string;
  kernel: Kernel;
  initramfs: string;
  runDir: string;
  shares: string[];
  opts: VmRunOptions;
  timeoutSeconds: number;
  start: number;
}

async function runQemu(r: QemuRun): Promise<VmRunResult> {
  const { opts, timeoutSeconds } = r;
  const elapsed = () => (performance.now() - r.start) / 1000;
  const remaining = Math.max(1, timeoutSeconds - elapsed());
  const append = [
    "console=ttyS0",
    "quiet",
    "loglevel=1",
    "panic=-1",
    "rdinit=/init",
    "mitigations=off",
    "8250.nr_uarts=1",
    `mnpvm.watchdog=${Math.ceil(remaining) + 15}`,
  ].join(" ");
  const args = [
    "-nodefaults",
    "-no-user-config",
    "-no-reboot",
    "-display",
    "none",
    "-machine",
    "q35",
    ...(opts.kvm
      ? ["-accel", "kvm", "-cpu", "host,-arch-capabilities"]
      : ["-accel", "tcg", "-cpu", "max"]),
    "-smp",
    String(opts.cpus ?? 2),
    "-m",
    String(opts.memoryMiB ?? 2048),
    "-kernel",
    r.kernel.image,
    "-initrd",
    r.initramfs,
    "-append",
    append,
    "-chardev",
    "stdio,id=con,signal=off",
    "-serial",
    "chardev:con",
    "-virtfs",
    "local,path=/,mount_tag=hostroot,security_model=passthrough,readonly=on,multidevs=remap",
    "-virtfs",
    `local,path=${r.runDir},mount_tag=hostrun,security_model=none`,
    ...r.shares.flatMap((path, i) => [
      "-virtfs",
      `local,path=${path},mount_tag=share${i},security_model=passthrough,readonly=on,` +
      "multidevs=remap",
    ]),
    ...nicArgs(opts, r.busybox),
  ];
  // coreutils `timeout` bounds qemu even if this process dies without killing it.
  const timeoutBin = await findExecutable("timeout");
  const hardLimit = String(Math.ceil(remaining) + 30);
  const cmd = timeoutBin
    ? new Deno.Command(timeoutBin, {
      args: ["--kill-after=5", hardLimit, r.qemu, ...args],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    })
    : new Deno.Command(r.qemu, { args, stdin: "null", stdout: "piped", stderr: "piped" });
  const qemuStart = performance.now();
  const child = cmd.spawn();

  let timedOut = false;
  let bootSeconds = 0;
  let consoleText = "";
  let pending = "";
  let streaming = false;
  const onLine = (line: string) => {
    if (line.startsWith("MNPVM:READY") && bootSeconds === 0) {
      bootSeconds = (performance.now() - qemuStart) / 1000;
    } else if (line.startsWith("MNPVM:OUT-BEGIN")) {
      streaming = true;
      return;
    } else if (streaming && line.includes("MNPVM:OUT-END")) {
      // Output without a final newline shares its last line with the marker.
      const rest = line.slice(0, line.indexOf("MNPVM:OUT-END"));
      if (rest && opts.onOutput) opts.onOutput(rest);
      streaming = false;
      return;
    }
    if (streaming && opts.onOutput) opts.onOutput(line + "\n");
  };
  const readConsole = (async () => {
    const dec = new TextDecoder();
    for await (const chunk of child.stdout) {
      const text = dec.decode(chunk, { stream: true });
      consoleText += text;
      pending += text;
      let nl: number;
      while ((nl = pending.indexOf("\n")) >= 0) {
        onLine(pending.slice(0, nl).replace(/\r$/, ""));
        pending = pending.slice(nl + 1);
      }
    }
    if (pending) onLine(pending.replace(/\r$/, ""));
  })();
  const readStderr = new Response(child.stderr).text();

  let killTimer: ReturnType<typeof setTimeout> | undefined;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      child.kill("SIGTERM");
    } catch {
      // already gone
    }
    killTimer = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch {
        // already gone
      }
    }, 10_000);
  }, remaining * 1000);

  let aborted = false;
  const onAbort = () => {
    aborted = true;
    try {
      child.kill("SIGTERM");
    } catch {
      // already gone
    }
  };
  if (opts.signal?.aborted) onAbort();
  opts.signal?.addEventListener("abort", onAbort, { once: true });

  let status: Deno.CommandStatus;
  try {
    status = await child.status;
  } finally {
    clearTimeout(timer);
    if (killTimer !== undefined) clearTimeout(killTimer);
    opts.signal?.removeEventListener("abort", onAbort);
  }
  await readConsole;
  const stderrText = await readStderr;
  const totalSeconds = elapsed();
  const consoleLog = consoleText.replace(/\r\n/g, "\n") +
    (stderrText ? `\n[qemu stderr]\n${stderrText}` : "");

  let output = "";
  try {
    output = new TextDecoder().decode(await Deno.readFile(`${r.runDir}/output`));
  } catch {
    // the command never ran
  }
  let rcText: string | null = null;
  try {
    rcText = (await Deno.readTextFile(`${r.runDir}/rc`)).trim();
  } catch {
    // no exit code came back
  }
  const base = { bootSeconds, totalSeconds, console: consoleLog };
  if (aborted) {
    return { ...base, code: VM_FAILURE_CODE, timedOut: false, output: output + "\nvm: aborted\n" };
  }
  if (timedOut || /MNPVM:WATCHDOG/.test(consoleText)) {
    return {
      ...base,
      code: VM_TIMEOUT_CODE,
      timedOut: true,
      output: output + `\nvm: timed out after ${timeoutSeconds} s (qemu killed)\n`,
    };
  }
  if (rcText === null || !/^\d+$/.test(rcText)) {
    const fail = consoleText.match(/MNPVM:FAIL ([^\r\n]*)/);
    const why = fail
      ? `guest init failed: ${fail[1]}`
      : `no exit code came back (qemu exit status ${status.code})`;
    const tail = consoleLog.split("\n").slice(-40).join("\n");
    return {
      ...base,
      code: VM_FAILURE_CODE,
      timedOut: false,
      output: output + `\nvm: ${why}\nvm: console tail:\n${tail}\n`,
    };
  }
  return { ...base, code: Number(rcText), timedOut: false, output };
}
