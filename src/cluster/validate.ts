/**
 * Checks for strings that come from the API server and may end up in a tc
 * command line, a batch file or a file path. Each returns null when valid,
 * or a short reason.
 */
import { show } from "../log/quote.ts";

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** A namespace name (DNS-1123 label). */
export function checkNamespaceName(name: string): string | null {
  if (name.length === 0 || name.length > 63 || !DNS1123_LABEL.test(name)) {
    return `invalid namespace name ${show(name)}: want a DNS-1123 label`;
  }
  return null;
}

/** An object name (DNS-1123 subdomain). */
export function checkObjectName(name: string): string | null {
  if (name.length === 0 || name.length > 253 || !DNS1123_SUBDOMAIN.test(name)) {
    return `invalid name ${show(name)}: want a DNS-1123 subdomain`;
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
    return `invalid interface name ${show(name)}`;
  }
  return null;
}

/** A PCI address in `domain:bus:device.function` form, e.g. `0000:3b:00.2`. */
export function checkPciAddress(address: string): string | null {
  if (!/^[0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]$/.test(address)) {
    return `invalid PCI address ${show(address)}: want DDDD:BB:DD.F`;
  }
  return null;
}

/** A pod UID, safe as a directory name. */
export function checkUid(uid: string): string | null {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(uid) || uid.includes("..")) {
    return `invalid uid ${show(uid)}`;
  }
  return null;
}

/** A named port (IANA service name, as Kubernetes validates it). */
export function checkPortName(name: string): string | null {
  if (
    name.length === 0 || name.length > 15 || !/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/.test(name) ||
    !/[a-z]/.test(name) || name.includes("--")
  ) {
    return `invalid port name ${show(name)}`;
  }
  return null;
}

const LABEL_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;

/** A label key: an optional DNS-1123 subdomain prefix and `/`, then a name of 1–63 characters. */
export function checkLabelKey(key: string): string | null {
  const slash = key.indexOf("/");
  const prefix = slash < 0 ? null : key.slice(0, slash);
  const name = slash < 0 ? key : key.slice(slash + 1);
  const prefixOk = prefix === null ||
    (prefix.length > 0 && prefix.length <= 253 && DNS1123_SUBDOMAIN.test(prefix));
  if (!prefixOk || name.length === 0 || name.length > 63 || !LABEL_NAME.test(name)) {
    return `invalid label key ${show(key)}`;
  }
  return null;
}

/** A label value: empty, or 1–63 characters of letters, digits, `-`, `_` and `.`. */
export function checkLabelValue(value: string): string | null {
  if (value !== "" && (value.length > 63 || !LABEL_NAME.test(value))) {
    return `invalid label value ${show(value)}`;
  }
  return null;
}

/** A device-plugin resource name, `vendor-domain/resource` as the kubelet accepts it. */
export function checkResourceName(name: string): string | null {
  const [domain, resource, extra] = name.split("/");
  if (
    extra !== undefined || resource === undefined || domain.length > 253 ||
    !DNS1123_SUBDOMAIN.test(domain) ||
    !/^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/.test(resource)
  ) {
    return `invalid resource name ${show(name)}: want domain/resource`;
  }
  return null;
}
