/**
 * Runs inside a pod's network namespace (`ip netns exec NS deno run ...`):
 * opens a new TCP connection to each target in turn, forever, until the
 * stop file exists, and prints one JSON line per attempt:
 * `{"target": "10.0.0.2", "t0": ms, "t1": ms, "ok": bool}` (ok: "pong" read).
 *
 *   prober.ts STOPFILE TIMEOUT_MS PORT TARGET...
 */
const [stopFile, timeoutText, portText, ...targets] = Deno.args;
const timeoutMs = Number(timeoutText);
const port = Number(portText);

async function attempt(hostname: string): Promise<boolean> {
  let conn: Deno.TcpConn | undefined;
  const timer = new Promise<false>((resolve) => setTimeout(() => resolve(false), timeoutMs));
  const work = (async () => {
    conn = await Deno.connect({ hostname, port });
    const buffer = new Uint8Array(16);
    let text = "";
    for (;;) {
      const n = await conn.read(buffer);
      if (n === null) break;
      text += new TextDecoder().decode(buffer.subarray(0, n));
      if (text.includes("pong")) return true;
    }
    return false;
  })().catch(() => false);
  const ok = await Promise.race([work, timer]);
  try {
    conn?.close();
  } catch {
    // already closed
  }
  return ok;
}

async function stopped(): Promise<boolean> {
  try {
    await Deno.stat(stopFile);
    return true;
  } catch {
    return false;
  }
}

while (!(await stopped())) {
  for (const target of targets) {
    const t0 = Date.now();
    const ok = await attempt(target);
    console.log(JSON.stringify({ target, t0, t1: Date.now(), ok }));
  }
}
