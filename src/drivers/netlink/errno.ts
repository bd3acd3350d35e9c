/** errno values → name and text, for the errors the kernel gives TC requests. */
const ERRNO: Record<number, readonly [string, string]> = {
  1: ["EPERM", "Operation not permitted"],
  2: ["ENOENT", "No such file or directory"],
  3: ["ESRCH", "No such process"],
  6: ["ENXIO", "No such device or address"],
  7: ["E2BIG", "Argument list too long"],
  11: ["EAGAIN", "Resource temporarily unavailable"],
  12: ["ENOMEM", "Cannot allocate memory"],
  13: ["EACCES", "Permission denied"],
  16: ["EBUSY", "Device or resource busy"],
  17: ["EEXIST", "File exists"],
  19: ["ENODEV", "No such device"],
  22: ["EINVAL", "Invalid argument"],
  28: ["ENOSPC", "No space left on device"],
  34: ["ERANGE", "Numerical result out of range"],
  61: ["ENODATA", "No data available"],
  71: ["EPROTO", "Protocol error"],
  75: ["EOVERFLOW", "Value too large for defined data type"],
  90: ["EMSGSIZE", "Message too long"],
  93: ["EPROTONOSUPPORT", "Protocol not supported"],
  95: ["ENOTSUP", "Operation not supported"],
  97: ["EAFNOSUPPORT", "Address family not supported by protocol"],
  105: ["ENOBUFS", "No buffer space available"],
  110: ["ETIMEDOUT", "Connection timed out"],
  125: ["ECANCELED", "Operation canceled"],
};

/**
 * Describes an errno (positive or the kernel's negative form) as
 * `Text (NAME)`, or `errno N` when unknown.
 */
export function errnoText(code: number): string {
  const known = ERRNO[Math.abs(code)];
  return known ? `${known[1]} (${known[0]})` : `errno ${Math.abs(code)}`;
}

/** ENODEV and ENXIO: the device is gone. */
export function isNoDevice(code: number): boolean {
  return Math.abs(code) === 19 || Math.abs(code) === 6;
}
