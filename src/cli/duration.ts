/**
 * Go's duration syntax (`5s`, `1m30s`, `250ms`), which the daemon's duration
 * flags keep from the original agent: read it, and write it back for `--help`.
 */

const UNIT_MS: Record<string, number> = {
  h: 3_600_000,
  m: 60_000,
  s: 1000,
  ms: 1,
  us: 1e-3,
  "µs": 1e-3,
  ns: 1e-6,
};

/** Parses a Go duration such as `5s`, `1m30s` or `250ms` into milliseconds; undefined if invalid. */
export function parseGoDuration(text: string): number | undefined {
  if (text === "0") return 0;
  let total = 0;
  let consumed = 0;
  for (const match of text.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/gy)) {
    total += Number(match[1]) * UNIT_MS[match[2]];
    consumed += match[0].length;
  }
  return consumed === 0 || consumed !== text.length ? undefined : total;
}

/** Writes milliseconds as the shortest Go duration of whole units (`300000` → `5m`). */
export function formatGoDuration(ms: number): string {
  let rest = ms;
  let text = "";
  for (const unit of ["h", "m", "s", "ms"]) {
    const count = Math.floor(rest / UNIT_MS[unit]);
    if (count > 0) text += `${count}${unit}`;
    rest -= count * UNIT_MS[unit];
  }
  return text || "0";
}
