/**
 * Runs inside a pod's network namespace (`ip netns exec NS deno run ...`):
 * opens a new TCP connection to each target in turn, forever, until the
 * stop file exists, and prints one JSON line per attempt:
 * `{"target": "10.0.0.2", "t0": ms, "t1": ms, "ok": bool, "connectMs": ms | null}`
 * (ok: "pong" read within the target's time limit; connectMs: how long the
 * handshake took, null when it did not complete in time).
 *
 *   prober.ts STOPFILE TIMEOUT_MS PORT TARGET[=TIMEOUT_MS]...
 */
const [stopFile, timeoutText, portText, ...targetArgs] = Deno.args;
const port = Number(portText);
const targets = targetArgs.map((arg) => {
  const [hostname, limit] = arg.split("=");
  return { hostname, timeoutMs: Number(limit ?? timeoutText) };
});

async function attempt(
  hostname: string,
  timeoutMs: number,
): Promise<{ ok: boolean; connectMs: number | null }> {
  const t0 = performance.now();
  let conn: Deno.TcpConn | undefined;
  const timing: { connectMs: number | null } = { connectMs: null };
  const timer = new Promise<false>((resolve) => setTimeout(() => resolve(false), timeoutMs));
  const work = (async () => {
    conn = await Deno.connect({ hostname, port });
    timing.connectMs = Math.round(performance.now() - t0);
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
  const { connectMs } = timing;
  return { ok, connectMs: connectMs !== null && connectMs <= timeoutMs ? connectMs : null };
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
  for (const { hostname, timeoutMs } of targets) {
    const t0 = Date.now();
    const result = await attempt(hostname, timeoutMs);
    console.log(JSON.stringify({ target: hostname, t0, t1: Date.now(), ...result }));
  }
}
// Connection attempts abandoned at their time limit are still pending in the kernel (SYN
// retries go on for about two minutes); they must not keep this process alive.
Deno.exit(0);
