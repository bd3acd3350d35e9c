/**
 * Making untrusted text safe to print: names, label keys, annotation snippets
 * and kernel or API error text can hold newlines or terminal controls that
 * would forge a log line or an Event. Everything printed passes through here.
 */

/**
 * Characters that must never reach a log line raw: C0 and C1 controls, DEL,
 * the Unicode line and paragraph separators, and the bidirectional overrides
 * that reorder what a terminal shows.
 */
// deno-lint-ignore no-control-regex -- matching control characters is the point
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

function escapeOne(ch: string): string {
  switch (ch) {
    case "\n":
      return "\\n";
    case "\r":
      return "\\r";
    case "\t":
      return "\\t";
    default:
      return `\\u${ch.charCodeAt(0).toString(16).padStart(4, "0")}`;
  }
}

/** The text with every control character written as an escape; printable text unchanged. */
export function escapeControls(text: string): string {
  return text.replace(UNSAFE, escapeOne);
}

/** The text in double quotes, with quotes, backslashes and control characters escaped. */
export function quote(text: string): string {
  return escapeControls(JSON.stringify(text));
}

/** Bare when the text is a plain identifier (letters, digits, `.-_/`), else {@link quote}d. */
export function quoteUnlessPlain(text: string): string {
  return /^[A-Za-z0-9][A-Za-z0-9._/-]*$/.test(text) ? text : quote(text);
}

/** Any untrusted value for a message: strings {@link quote}d, other values as escaped JSON. */
export function show(value: unknown): string {
  if (typeof value === "string") return quote(value);
  return escapeControls(JSON.stringify(value) ?? String(value));
}
