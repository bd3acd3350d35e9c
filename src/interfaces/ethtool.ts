/**
 * Whether a network device has the `hw-tc-offload` feature on, asked of the
 * kernel with the legacy ethtool ioctl (`SIOCETHTOOL`) through Deno's FFI to
 * libc, as `ethtool -k DEV` reads it: the number of feature names
 * (`ETHTOOL_GSSET_INFO` for `ETH_SS_FEATURES`), the index of
 * `hw-tc-offload` among them (`ETHTOOL_GSTRINGS`), then the `active` bit at
 * that index (`ETHTOOL_GFEATURES`). These three commands are reads the
 * kernel allows without CAP_NET_ADMIN.
 *
 * Constants and layouts are those of the Linux UAPI headers (torvalds/linux):
 * include/uapi/linux/sockios.h, include/uapi/linux/ethtool.h and
 * include/uapi/linux/if.h; the feature's name is NETIF_F_HW_TC_BIT's entry of
 * `netdev_features_strings` in net/ethtool/common.c. Structures are laid out
 * for 64-bit Linux (the only kind Deno runs on) in the host's byte order.
 */
import { checkInterfaceName } from "../cluster/validate.ts";

/** sockios.h: `#define SIOCETHTOOL 0x8946` (Ethtool interface). */
const SIOCETHTOOL = 0x8946;
/** ethtool.h: `#define ETHTOOL_GSTRINGS 0x0000001b` (get specified string set). */
const ETHTOOL_GSTRINGS = 0x1b;
/** ethtool.h: `#define ETHTOOL_GSSET_INFO 0x00000037` (get string set info). */
const ETHTOOL_GSSET_INFO = 0x37;
/** ethtool.h: `#define ETHTOOL_GFEATURES 0x0000003a` (get device offload settings). */
const ETHTOOL_GFEATURES = 0x3a;
/** ethtool.h, `enum ethtool_stringset`: ETH_SS_TEST = 0, STATS, PRIV_FLAGS, NTUPLE_FILTERS, FEATURES. */
const ETH_SS_FEATURES = 4;
/** ethtool.h: `#define ETH_GSTRING_LEN 32`; each string is NUL-padded to this size. */
const ETH_GSTRING_LEN = 32;
/** if.h: `IFNAMSIZ` is 16; `struct ifreq` is the name, then a union holding `void *ifru_data`. */
const IFNAMSIZ = 16;
/** `sizeof(struct ifreq)` on 64-bit: 16 name bytes and a 24-byte union (`struct ifmap`). */
const IFREQ_BYTES = 40;
/** socket.h (libc): AF_INET, SOCK_DGRAM, SOCK_CLOEXEC. */
const AF_INET = 2;
const SOCK_DGRAM = 2;
const SOCK_CLOEXEC = 0x80000;

/**
 * `struct ethtool_sset_info { __u32 cmd; __u32 reserved; __u64 sset_mask; __u32 data[]; }`:
 * the count of each string set asked for follows the 16-byte header.
 */
const SSET_INFO = { cmd: 0, mask: 8, data: 16, bytes: 20 } as const;
/** `struct ethtool_gstrings { __u32 cmd; __u32 string_set; __u32 len; __u8 data[]; }`. */
const GSTRINGS = { cmd: 0, stringSet: 4, len: 8, data: 12 } as const;
/**
 * `struct ethtool_gfeatures { __u32 cmd; __u32 size; struct ethtool_get_features_block
 * features[]; }`, each block `{ __u32 available, requested, active, never_changed; }`
 * for 32 features, feature 0 in the least significant bit of block 0.
 */
const GFEATURES = { cmd: 0, size: 4, blocks: 8, blockBytes: 16, active: 8 } as const;

/** The feature's name in the ETH_SS_FEATURES string set. */
const HW_TC_OFFLOAD = "hw-tc-offload";

const SYMBOLS = {
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  // int ioctl(int fd, unsigned long request, ...): the one variadic argument is a pointer.
  ioctl: { parameters: ["i32", "u64", "buffer"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
} as const satisfies Deno.ForeignLibraryInterface;

type Libc = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

let libc: Libc | undefined;

/** A device name that is not one, or no libc to ask with. */
export class EthtoolError extends Error {
  override name = "EthtoolError";
}

function load(): Libc {
  if (!libc) {
    try {
      libc = Deno.dlopen("libc.so.6", SYMBOLS).symbols;
    } catch (error) {
      throw new EthtoolError(
        `cannot load libc for ethtool (run with --allow-ffi): ${(error as Error).message}`,
      );
    }
  }
  return libc;
}

function errno(lib: Libc): number {
  const pointer = lib.__errno_location();
  return pointer ? new Deno.UnsafePointerView(pointer).getInt32() : 0;
}

const ERRNO_NAMES: Record<number, string> = {
  1: "EPERM",
  6: "ENXIO",
  13: "EACCES",
  14: "EFAULT",
  19: "ENODEV",
  22: "EINVAL",
  95: "EOPNOTSUPP",
  97: "EAFNOSUPPORT",
};

/** The host's byte order, which the kernel's structures use. */
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Memory the kernel reads or writes through a pointer: an ArrayBuffer of its own stays put. */
function buffer(bytes: number): { bytes: Uint8Array; view: DataView } {
  const memory = new ArrayBuffer(bytes);
  return { bytes: new Uint8Array(memory), view: new DataView(memory) };
}

/** The kernel's answer, or why it gave none. */
export type HwTcOffload = { active: boolean } | { active: null; reason: string };

/** A refused ioctl: why, in one line. */
class Refused {
  constructor(readonly reason: string) {}
}

/** One SIOCETHTOOL request on `device` with the command structure `data`. */
function ethtool(lib: Libc, fd: number, device: string, what: string, data: Uint8Array): void {
  const ifreq = buffer(IFREQ_BYTES);
  ifreq.bytes.set(new TextEncoder().encode(device).subarray(0, IFNAMSIZ - 1));
  const pointer = Deno.UnsafePointer.value(Deno.UnsafePointer.of(data));
  ifreq.view.setBigUint64(IFNAMSIZ, BigInt(pointer), LITTLE_ENDIAN);
  if (lib.ioctl(fd, BigInt(SIOCETHTOOL), ifreq.bytes) < 0) {
    const code = errno(lib);
    throw new Refused(`${what} on ${device}: ${ERRNO_NAMES[code] ?? `errno ${code}`}`);
  }
}

/** How many feature names the kernel has (ETHTOOL_GSSET_INFO for ETH_SS_FEATURES). */
function featureCount(lib: Libc, fd: number, device: string): number {
  const info = buffer(SSET_INFO.bytes);
  info.view.setUint32(SSET_INFO.cmd, ETHTOOL_GSSET_INFO, LITTLE_ENDIAN);
  info.view.setBigUint64(SSET_INFO.mask, 1n << BigInt(ETH_SS_FEATURES), LITTLE_ENDIAN);
  ethtool(lib, fd, device, "ETHTOOL_GSSET_INFO", info.bytes);
  const supported = info.view.getBigUint64(SSET_INFO.mask, LITTLE_ENDIAN);
  if ((supported & (1n << BigInt(ETH_SS_FEATURES))) === 0n) {
    throw new Refused(`${device} has no feature string set`);
  }
  return info.view.getUint32(SSET_INFO.data, LITTLE_ENDIAN);
}

/**
 * The index of `name` among the feature names (ETHTOOL_GSTRINGS), or -1. The
 * set's size is fixed in a kernel build, so the kernel writes no more than
 * the `count` strings the buffer was sized for.
 */
function featureIndex(lib: Libc, fd: number, device: string, count: number, name: string) {
  const strings = buffer(GSTRINGS.data + count * ETH_GSTRING_LEN);
  strings.view.setUint32(GSTRINGS.cmd, ETHTOOL_GSTRINGS, LITTLE_ENDIAN);
  strings.view.setUint32(GSTRINGS.stringSet, ETH_SS_FEATURES, LITTLE_ENDIAN);
  strings.view.setUint32(GSTRINGS.len, count, LITTLE_ENDIAN);
  ethtool(lib, fd, device, "ETHTOOL_GSTRINGS", strings.bytes);
  const returned = Math.min(count, strings.view.getUint32(GSTRINGS.len, LITTLE_ENDIAN));
  const decoder = new TextDecoder();
  for (let i = 0; i < returned; i++) {
    const start = GSTRINGS.data + i * ETH_GSTRING_LEN;
    const slot = strings.bytes.subarray(start, start + ETH_GSTRING_LEN);
    const end = slot.indexOf(0);
    if (decoder.decode(end < 0 ? slot : slot.subarray(0, end)) === name) return i;
  }
  return -1;
}

/** Whether feature `index` is active (ETHTOOL_GFEATURES); null when the kernel says nothing of it. */
function featureActive(lib: Libc, fd: number, device: string, count: number, index: number) {
  const blocks = Math.ceil(count / 32);
  const features = buffer(GFEATURES.blocks + blocks * GFEATURES.blockBytes);
  features.view.setUint32(GFEATURES.cmd, ETHTOOL_GFEATURES, LITTLE_ENDIAN);
  features.view.setUint32(GFEATURES.size, blocks, LITTLE_ENDIAN);
  ethtool(lib, fd, device, "ETHTOOL_GFEATURES", features.bytes);
  // On return, size is the number of blocks the kernel has; it copied at most `blocks`.
  const block = Math.floor(index / 32);
  if (block >= Math.min(blocks, features.view.getUint32(GFEATURES.size, LITTLE_ENDIAN))) {
    return null;
  }
  const offset = GFEATURES.blocks + block * GFEATURES.blockBytes + GFEATURES.active;
  return ((features.view.getUint32(offset, LITTLE_ENDIAN) >>> (index % 32)) & 1) === 1;
}

/**
 * Asks the kernel whether `device` has `hw-tc-offload` on. A device that does
 * not exist, or an ioctl the kernel refuses, is `active: null` with the
 * reason. Throws {@link EthtoolError} when `device` is not a valid interface
 * name (nothing is asked) or libc cannot be loaded.
 */
export function queryHwTcOffload(device: string): HwTcOffload {
  const problem = checkInterfaceName(device);
  if (problem) throw new EthtoolError(problem);
  const lib = load();
  const fd = lib.socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    const code = errno(lib);
    return { active: null, reason: `socket(AF_INET): ${ERRNO_NAMES[code] ?? `errno ${code}`}` };
  }
  try {
    const count = featureCount(lib, fd, device);
    const index = featureIndex(lib, fd, device, count, HW_TC_OFFLOAD);
    if (index < 0) return { active: null, reason: `the kernel has no ${HW_TC_OFFLOAD} feature` };
    const active = featureActive(lib, fd, device, count, index);
    if (active === null) {
      return { active: null, reason: `${device}: no state for ${HW_TC_OFFLOAD}` };
    }
    return { active };
  } catch (error) {
    if (error instanceof Refused) return { active: null, reason: error.reason };
    throw error;
  } finally {
    lib.close(fd);
  }
}

/**
 * Whether `device` has `hw-tc-offload` on; null when the kernel cannot tell
 * (no such device, or the request refused). Throws {@link EthtoolError} for
 * a name that is not a valid interface name, or without libc.
 */
export function hwTcOffload(device: string): boolean | null {
  return queryHwTcOffload(device).active;
}
