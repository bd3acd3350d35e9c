/**
 * Checks for strings that come from the API server and may end up in a tc
 * command line, a batch file or a file path. Each returns null when valid,
 * or a short reason.
 */

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** A namespace name (DNS-1123 label). */
export function checkNamespaceName(name: string): string | null {
  if (name.length === 0 || name.length > 63 || !DNS1123_LABEL.test(name)) {
    return `invalid namespace name ${JSON.stringify(name)}: want a DNS-1123 label`;
  }
  return null;
}

/** An object name (DNS-1123 subdomain). */
export function checkObjectName(name: string): string | null {
  if (name.length === 0 || name.length > 253 || !DNS1123_SUBDOMAIN.test(name)) {
    return `invalid name ${JSON.stringify(name)}: want a DNS-1123 subdomain`;
  }
  return null;
}

/**
 * A Linux network interface name as the kernel accepts it: 1–15 bytes, not
 * `.` or `..`, no `/`, `:`, whitespace or control characters. Anything else
 * could not be a device and must never reach a tc command.
 */
export function checkInterfaceName(name: string): string | null {
  if (
    name.length === 0 || name.length > 15 || name === "." || name === ".." ||
    !/^[\x21-\x7e]+$/.test(name) || /[/:;'"`$\\]/.test(name)
  ) {
    return `invalid interface name ${JSON.stringify(name)}`;
  }
  return null;
}

/** A PCI address in `domain:bus:device.function` form, e.g. `0000:3b:00.2`. */
export function checkPciAddress(address: string): string | null {
  if (!/^[0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]$/.test(address)) {
    return `invalid PCI address ${JSON.stringify(address)}: want DDDD:BB:DD.F`;
  }
  return null;
}

/** A pod UID, safe as a directory name. */
export function checkUid(uid: string): string | null {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(uid) || uid.includes("..")) {
    return `invalid uid ${JSON.stringify(uid)}`;
  }
  return null;
}

/** A named port (IANA service name, as Kubernetes validates it). */
export function checkPortName(name: string): string | null {
  if (
    name.length === 0 || name.length > 15 || !/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/.test(name) ||
    !/[a-z]/.test(name) || name.includes("--")
  ) {
    return `invalid port name ${JSON.stringify(name)}`;
  }
  return null;
}
