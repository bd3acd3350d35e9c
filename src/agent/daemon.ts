/**
 * The daemon: connects to the API server, keeps the cluster view up to date,
 * turns each relevant change into a re-render of the affected local
 * interfaces, and hands the results to a {@link RulesSink}. Serves health and
 * metrics, records Events, and on SIGTERM/SIGINT stops cleanly, leaving
 * programmed rules in place.
 */
import type { AgentOptions } from "./options.ts";
import type { Labels, MultiNetworkPolicy, Namespace } from "../cluster/types.ts";
import { hostIdentity, nodeMatchRule } from "../cluster/node_name.ts";
import { log } from "../log/klog.ts";
import { type AffectedContext, affectedLocalPods } from "../watching/affected.ts";
import { ClusterWatcher } from "../watching/informers.ts";
import { KubeConfigError, loadKubeConfig } from "../watching/kubeconfig.ts";
import type { LivenessPolicy } from "../watching/liveness.ts";
import { ClusterStore } from "../watching/store.ts";
import { EventRecorder } from "./events.ts";
import { DropWarnings } from "./drop_warnings.ts";
import {
  type EndpointServer,
  healthRoutes,
  metricsRoutes,
  type Routes,
  startEndpointServer,
} from "./health.ts";
import { AgentMetrics } from "./metrics.ts";
import { KubeletDevices, PodResourcesClient } from "../sriov/pod_resources.ts";
import type { RulesSink } from "./sink.ts";
import { createEnforcement, type Enforcement, startDriftWatch } from "./enforcement.ts";
import { SyncLoop, type SyncReport } from "./syncloop.ts";
import { type CoalescePolicy, DEFAULT_COALESCE } from "./timing.ts";
import { type BackoffPolicy, DEFAULT_BACKOFF } from "../watching/backoff.ts";

/** Knobs beyond the command line, for embedding and tests. */
export interface DaemonHooks {
  /** How often the kubelet's allocations are polled for changes (default 5 s). */
  kubeletPollMs?: number;
  /** Called after every sync with what was handed to the sink. */
  onSync?: (report: SyncReport) => void;
  /** Overrides of the coalescing policy (`minIntervalMs` comes from the options). */
  coalesce?: Partial<CoalescePolicy>;
  /** Backoff for reconnecting watches and retrying failed interfaces. */
  backoff?: BackoffPolicy;
  /** Dead-watch detection (watch inactivity timeout, API server probe). */
  liveness?: LivenessPolicy;
  /** The hostname when `--hostname-override` is empty (default: `Deno.hostname()`). */
  hostname?: () => string;
  /** How often drop counters are read for `--drop-events` (default 10 s). */
  dropPollMs?: number;
}

/** A running daemon. */
export interface Daemon {
  /** The node whose pods are enforced: the host name or override, trimmed and lower-cased. */
  readonly node: string;
  readonly metrics: AgentMetrics;
  /** The bound address of /healthz and /readyz, or null without them. */
  readonly healthAddress: string | null;
  /** The bound address of /metrics, or null without it. */
  readonly metricsAddress: string | null;
  /** Null when ready (caches synced and the last sync succeeded), else why not. */
  notReady(): string | null;
  /** Stops watching and syncing; programmed rules stay in place. */
  stop(): Promise<void>;
}

/** The kubelet's PodResources client, or null (with a warning) when the socket is not set. */
function podResources(socket: string) {
  if (socket === "") {
    log.warning(
      "--pod-resources-socket is empty: which VF a pod owns is taken from its own network-status " +
        "annotation, which the pod can edit",
    );
    return null;
  }
  const client = new PodResourcesClient(socket);
  log.info("VF ownership from the kubelet", { socket });
  return { client, devices: new KubeletDevices(client) };
}

/**
 * Starts the daemon; throws {@link KubeConfigError} when there is no API server
 * configuration, and an Error when the node name is empty.
 */
export function startDaemon(
  options: AgentOptions,
  sink: RulesSink,
  hooks: DaemonHooks = {},
): Daemon {
  const identity = hostIdentity(
    options.hostnameOverride,
    hooks.hostname ?? (() => Deno.hostname()),
  );
  const node = identity.name;
  log.info("acting as node", { node, from: identity.source, matches: nodeMatchRule(node) });
  const kc = loadKubeConfig({ kubeconfig: options.kubeconfig, master: options.master });
  const metrics = new AgentMetrics();
  const backoff = hooks.backoff ?? DEFAULT_BACKOFF;
  const events = new EventRecorder(kc, node, metrics);
  sink.attach?.(metrics, events);
  const kubelet = podResources(options.podResourcesSocket);
  const store = new ClusterStore((ref, errors) => {
    metrics.errors.add(1, { kind: "object" });
    if (ref.kind === "MultiNetworkPolicy" && ref.key.includes("/")) {
      events.policyWarning(
        ref,
        "InvalidPolicy",
        errors.map((error) => `${error.field}: ${error.message}`).join("; "),
      );
    }
  });
  const loop = new SyncLoop({
    node,
    networkPlugins: options.networkPlugins,
    maxFiltersPerInterface: options.maxFiltersPerInterface,
    devices: kubelet ? () => kubelet.devices.current() : undefined,
    coalesce: {
      ...DEFAULT_COALESCE,
      minIntervalMs: options.minSyncIntervalMs,
      ...hooks.coalesce,
    },
    resyncMs: options.resyncPeriodMs,
    retry: backoff,
    snapshot: () => store.snapshot(),
    sink,
    metrics,
    warnings: events,
    onSync: hooks.onSync,
  });
  kubelet?.devices.watch(() => loop.markAll(), hooks.kubeletPollMs);
  const context: AffectedContext = {
    node,
    get localPods() {
      return store.podsOnNode(node);
    },
    get policies() {
      return store.list<MultiNetworkPolicy>("MultiNetworkPolicy");
    },
    namespaceLabels: (name: string): Labels | null =>
      store.get<Namespace>("Namespace", name)?.labels ?? null,
  };
  const watcher = new ClusterWatcher(kc, store, {
    onChange(change) {
      loop.markDirty(affectedLocalPods(change, context));
    },
    onSynced() {
      log.info("caches synced: starting the first full sync", {
        pods: store.count("Pod"),
        localPods: store.podsOnNode(node).length,
        namespaces: store.count("Namespace"),
        networks: store.count("NetworkAttachmentDefinition"),
        policies: store.count("MultiNetworkPolicy"),
      });
      loop.enable();
    },
  }, { backoff, metrics, liveness: hooks.liveness });
  const abort = new AbortController();
  const notReady = (): string | null => {
    if (!watcher.synced) return "caches not synced";
    if (loop.lastSyncOk === null) return "first sync pending";
    if (!loop.lastSyncOk) return "last sync failed";
    return null;
  };
  /** Brings the drop counters up to date (a read at most every two seconds). */
  const readDrops = async () => {
    if (!sink.drops) return;
    await sink.drops.refresh();
    metrics.publishDrops(sink.drops.totals());
  };
  const dropWarnings = options.dropEvents ? new DropWarnings(events) : null;
  const dropPoll = dropWarnings && sink.drops
    ? setInterval(() => {
      void readDrops().then(() => dropWarnings.check(sink.drops!.totals()));
    }, hooks.dropPollMs ?? 10_000)
    : undefined;
  // One listener per address: health and metrics on the same address share it.
  const routesByAddress = new Map<string, Routes>();
  for (
    const [address, routes] of [
      [options.healthAddress, healthRoutes(notReady)],
      [options.metricsAddress, metricsRoutes(metrics, readDrops)],
    ] as const
  ) {
    if (address !== "") {
      routesByAddress.set(address, { ...routesByAddress.get(address), ...routes });
    }
  }
  const servers = new Map<string, EndpointServer>(
    [...routesByAddress].map((
      [address, routes],
    ) => [address, startEndpointServer(address, routes)]),
  );
  const healthAddress = servers.get(options.healthAddress)?.address ?? null;
  const metricsAddress = servers.get(options.metricsAddress)?.address ?? null;
  log.info("starting", { node, networkPlugins: options.networkPlugins.join(",") });
  events.started(`multi-networkpolicy-tc started on node ${node}`);
  void watcher.start(abort.signal);
  let stopping: Promise<void> | null = null;
  return {
    node,
    metrics,
    healthAddress,
    metricsAddress,
    notReady,
    stop() {
      stopping ??= (async () => {
        abort.abort();
        clearInterval(dropPoll);
        await watcher.stop();
        await loop.stop();
        await events.flush();
        await Promise.all([...servers.values()].map((server) => server.shutdown()));
        kubelet?.devices.stop();
        kubelet?.client.close();
        log.info("stopped; programmed rules are left in place");
      })();
      return stopping;
    },
  };
}

/**
 * Runs the daemon with TC enforcement until SIGTERM or SIGINT; returns the
 * exit status (1 when the TC driver or the API server configuration cannot be
 * set up).
 */
export async function runDaemon(options: AgentOptions): Promise<number> {
  let enforcement: Enforcement;
  try {
    enforcement = createEnforcement(options);
  } catch (error) {
    log.error("cannot start the TC driver", {
      driver: options.tcDriver,
      err: error instanceof Error ? error.message : String(error),
    });
    return 1;
  }
  const { sink, driver, blocks } = enforcement;
  let daemon: Daemon;
  try {
    daemon = startDaemon(options, sink);
  } catch (error) {
    if (error instanceof KubeConfigError) {
      log.error(error.message);
      return 1;
    }
    log.error("cannot start", { err: error instanceof Error ? error.message : String(error) });
    return 1;
  }
  const watch = startDriftWatch(sink, driver, blocks);
  const signals: Deno.Signal[] = ["SIGTERM", "SIGINT"];
  const received = await new Promise<Deno.Signal>((resolve) => {
    for (const signal of signals) Deno.addSignalListener(signal, () => resolve(signal));
  });
  log.info("signal received: stopping", { signal: received });
  await watch?.stop();
  await daemon.stop();
  return 0;
}
