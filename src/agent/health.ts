/**
 * The agent's HTTP endpoints: `/healthz` (the process is alive), `/readyz`
 * (caches synced and the last sync succeeded) and `/metrics` (Prometheus
 * text format).
 */
import { log } from "../log/klog.ts";
import type { AgentMetrics } from "./metrics.ts";

/** What `/readyz` reports: null when ready, else the reason. */
export type ReadinessCheck = () => string | null;

/** A running endpoint server. */
export interface HealthServer {
  /** The address actually bound (`host:port`), useful with port 0. */
  readonly address: string;
  shutdown(): Promise<void>;
}

/** Splits `host:port` (`[v6]:port` too); throws with a one-line reason. */
export function parseListenAddress(address: string): { hostname: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(address);
  const port = match ? Number(match[3]) : NaN;
  if (!match || port > 65535) throw new Error(`invalid address "${address}": want host:port`);
  return { hostname: match[1] ?? (match[2] || "0.0.0.0"), port };
}

/** Serves the endpoints on `address` until shut down. */
export function startHealthServer(
  address: string,
  ready: ReadinessCheck,
  metrics: AgentMetrics,
): HealthServer {
  const { hostname, port } = parseListenAddress(address);
  const server = Deno.serve({ hostname, port, onListen: () => {} }, (request) => {
    const path = new URL(request.url).pathname;
    switch (path) {
      case "/healthz":
        return new Response("ok\n");
      case "/readyz": {
        const reason = ready();
        return reason === null
          ? new Response("ok\n")
          : new Response(`not ready: ${reason}\n`, { status: 503 });
      }
      case "/metrics":
        return new Response(metrics.render(), {
          headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" },
        });
      default:
        return new Response("not found\n", { status: 404 });
    }
  });
  const addr = server.addr as Deno.NetAddr;
  const bound = addr.hostname.includes(":")
    ? `[${addr.hostname}]:${addr.port}`
    : `${addr.hostname}:${addr.port}`;
  log.info("serving /healthz, /readyz and /metrics", { address: bound });
  return { address: bound, shutdown: () => server.shutdown() };
}
