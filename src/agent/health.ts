/**
 * The agent's HTTP endpoints, on two listeners as kube-proxy splits them:
 * health (`/healthz`: the process is alive; `/readyz`: caches synced and the
 * last sync succeeded), which the kubelet probes on every address, and
 * `/metrics` (Prometheus text format), on loopback by default so that pods of
 * a hostNetwork node cannot read it.
 */
import { log } from "../log/klog.ts";
import type { AgentMetrics } from "./metrics.ts";

/** What `/readyz` reports: null when ready, else the reason. */
export type ReadinessCheck = () => string | null;

/** A running endpoint server. */
export interface EndpointServer {
  /** The address actually bound (`host:port`), useful with port 0. */
  readonly address: string;
  shutdown(): Promise<void>;
}

/** Handlers by path. */
export type Routes = Record<string, () => Response | Promise<Response>>;

/** Splits `host:port` (`[v6]:port` too); throws with a one-line reason. */
export function parseListenAddress(address: string): { hostname: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(address);
  const port = match ? Number(match[3]) : NaN;
  if (!match || port > 65535) throw new Error(`invalid address "${address}": want host:port`);
  return { hostname: match[1] ?? (match[2] || "0.0.0.0"), port };
}

/** `/healthz` and `/readyz`. */
export function healthRoutes(ready: ReadinessCheck): Routes {
  return {
    "/healthz": () => new Response("ok\n"),
    "/readyz": () => {
      const reason = ready();
      return reason === null
        ? new Response("ok\n")
        : new Response(`not ready: ${reason}\n`, { status: 503 });
    },
  };
}

/** `/metrics`; `beforeRender` brings metrics read on demand (drop counters) up to date. */
export function metricsRoutes(metrics: AgentMetrics, beforeRender?: () => Promise<void>): Routes {
  return {
    "/metrics": async () => {
      await beforeRender?.();
      return new Response(metrics.render(), {
        headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" },
      });
    },
  };
}

/** Serves `routes` on `address` until shut down; any other path is a 404. */
export function startEndpointServer(address: string, routes: Routes): EndpointServer {
  const { hostname, port } = parseListenAddress(address);
  const server = Deno.serve({ hostname, port, onListen: () => {} }, (request) => {
    const route = routes[new URL(request.url).pathname];
    return route ? route() : new Response("not found\n", { status: 404 });
  });
  const addr = server.addr as Deno.NetAddr;
  const bound = addr.hostname.includes(":")
    ? `[${addr.hostname}]:${addr.port}`
    : `${addr.hostname}:${addr.port}`;
  log.info(`serving ${Object.keys(routes).join(", ")}`, { address: bound });
  return { address: bound, shutdown: () => server.shutdown() };
}
