/**
 * Builds the client configuration the agent talks to the API server with:
 * `--kubeconfig` (with `--master` overriding the server), else the in-cluster
 * ServiceAccount, else a clear error. Every connection it makes speaks
 * HTTP/1.1 only (see {@link Http1KubeConfig}).
 */
import * as k8s from "@kubernetes/client-node";
import type * as tls from "node:tls";

/** Where the agent's API server configuration comes from. */
export interface KubeConfigSource {
  /** Path of a kubeconfig file; empty: in-cluster configuration. */
  kubeconfig: string;
  /** API server URL overriding the kubeconfig's (or the only setting, like client-go). */
  master: string;
}

/** Thrown when no usable API server configuration can be found. */
export class KubeConfigError extends Error {
  override name = "KubeConfigError";
}

type WithAllowH2<T> = T & { allowH2?: boolean };

/**
 * A KubeConfig whose connections never negotiate HTTP/2.
 *
 * client-node 2.0.1 sends every request through an undici `Agent` built from
 * {@link k8s.KubeConfig.createDispatcherOptions}; undici offers `h2` in TLS ALPN by
 * default, and Deno 2.9's `node:http2` can crash the whole process when the server
 * then sends GOAWAY (kube-apiserver does on graceful shutdown and with
 * `--goaway-chance`; denoland/deno#36788). undici's connector reads `allowH2` from
 * the `connect` options, so setting it to false there makes the client offer only
 * `http/1.1`. Without TLS options client-node would fall back to undici's global
 * dispatcher (HTTP/2 allowed): we always return an agent instead.
 */
export class Http1KubeConfig extends k8s.KubeConfig {
  /** The dispatcher options client-node would use, with HTTP/2 switched off. */
  override createDispatcherOptions(
    cluster: k8s.Cluster | null,
    agentOptions: Parameters<k8s.KubeConfig["createDispatcherOptions"]>[1],
  ): k8s.DispatcherOptions {
    const options = super.createDispatcherOptions(cluster, agentOptions);
    switch (options.type) {
      case "agent":
        return { ...options, connect: http1(options.connect) };
      case "proxy":
        return {
          ...options,
          connect: http1(options.connect),
          requestTls: http1(options.requestTls),
        };
      case "none":
        return {
          type: "agent",
          connect: http1<k8s.ConnectOptions>({ keepAlive: true, keepAliveInitialDelay: 30_000 }),
        };
      case "socks":
        // The SOCKS connector calls tls.connect without ALPN: the server can only pick HTTP/1.1.
        return options;
    }
  }
}

function http1<T extends tls.ConnectionOptions>(options: T): WithAllowH2<T> {
  return { ...options, allowH2: false };
}

function inCluster(): boolean {
  return (Deno.env.get("KUBERNETES_SERVICE_HOST") ?? "") !== "" &&
    (Deno.env.get("KUBERNETES_SERVICE_PORT") ?? "") !== "";
}

function withServer(kc: Http1KubeConfig, server: string): void {
  const current = kc.getCurrentCluster();
  if (!current) throw new KubeConfigError("the kubeconfig has no current cluster");
  kc.loadFromOptions({
    clusters: kc.clusters.map((c) => (c.name === current.name ? { ...c, server } : c)),
    contexts: kc.contexts,
    users: kc.users,
    currentContext: kc.getCurrentContext(),
  });
}

/** Loads the configuration as client-go's BuildConfigFromFlags would; throws {@link KubeConfigError}. */
export function loadKubeConfig(source: KubeConfigSource): Http1KubeConfig {
  const kc = new Http1KubeConfig();
  if (source.kubeconfig !== "") {
    try {
      kc.loadFromFile(source.kubeconfig);
    } catch (error) {
      throw new KubeConfigError(
        `cannot load --kubeconfig ${source.kubeconfig}: ${(error as Error).message}`,
      );
    }
    if (!kc.getCurrentCluster()) {
      throw new KubeConfigError(`--kubeconfig ${source.kubeconfig}: no current context/cluster`);
    }
  } else if (inCluster()) {
    kc.loadFromCluster();
  } else if (source.master !== "") {
    kc.loadFromClusterAndUser(
      { name: "master", server: source.master, skipTLSVerify: false },
      { name: "anonymous" },
    );
    return kc;
  } else {
    throw new KubeConfigError(
      "no API server configuration: pass --kubeconfig (and/or --master), or run in a pod " +
        "(KUBERNETES_SERVICE_HOST/KUBERNETES_SERVICE_PORT are not set)",
    );
  }
  if (source.master !== "") withServer(kc, source.master);
  return kc;
}
