/**
 * TC action cookies as the model holds them: lower-case hex text of 1 to
 * 16 bytes (the kernel's TC_COOKIE_MAX_SIZE). Both drivers check a cookie
 * here before writing it, so a malformed one never reaches a batch line or
 * a netlink request.
 */
import { show } from "../log/quote.ts";
import { UnsafeTcInput } from "./serialize.ts";

/** The most bytes a TC action cookie may hold (TC_COOKIE_MAX_SIZE). */
export const COOKIE_MAX_BYTES = 16;

const COOKIE = new RegExp(`^(?:[0-9a-f]{2}){1,${COOKIE_MAX_BYTES}}$`);

/**
 * Checks a cookie for writing: even-length lower-case hex of 1 to 16 bytes.
 * Throws {@link UnsafeTcInput} otherwise.
 */
export function checkedCookie(cookie: string): string {
  if (!COOKIE.test(cookie)) {
    throw new UnsafeTcInput(
      `invalid tc cookie ${show(cookie)}: want 2 to ${COOKIE_MAX_BYTES * 2} lower-case hex digits`,
    );
  }
  return cookie;
}

/** The bytes of a cookie (checked first). */
export function cookieBytes(cookie: string): Uint8Array {
  const text = checkedCookie(cookie);
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** A cookie's bytes as the model's lower-case hex text. */
export function cookieText(bytes: Uint8Array): string {
  let text = "";
  for (const byte of bytes) text += byte.toString(16).padStart(2, "0");
  return text;
}
