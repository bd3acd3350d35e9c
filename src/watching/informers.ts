/**
 * Keeps the store up to date with list + watch informers from
 * @kubernetes/client-node for Pods (all namespaces), Namespaces,
 * MultiNetworkPolicies and NetworkAttachmentDefinitions.
 *
 * client-node's informer resumes a dropped watch from its last
 * resourceVersion and relists after 410 Gone by itself, but stops for good on
 * any other error (API server unreachable, 403, ...): this module restarts it
 * with capped backoff, logs connectivity once per state change, and counts
 * restarts and relists. On Deno the informer never learns that its watch
 * ended (see ./liveness.ts): each watch has an inactivity timeout, and a
 * failed `/version` probe ends every open watch.
 */
import * as k8s from "@kubernetes/client-node";
import { log } from "../log/klog.ts";
import { backoffDelay, type BackoffPolicy } from "./backoff.ts";
import {
  ApiServerProbe,
  DEFAULT_LIVENESS,
  type LivenessPolicy,
  LivenessWatch,
} from "./liveness.ts";
import { slimCachedObject } from "./slim.ts";
import { listInPages, type ListPage } from "./paged_list.ts";
import type { Change, ClusterStore, PreparedObject, WatchedKind } from "./store.ts";

/** The API group of MultiNetworkPolicy and NetworkAttachmentDefinition. */
export const CNI_GROUP = "k8s.cni.cncf.io";

/** What the watcher tells its owner. */
export interface WatcherHooks {
  /** An object changed in a way the policy can see. */
  onChange(change: Change): void;
  /** Every cache has been filled once (called once). */
  onSynced(): void;
}

/** A counter with labels, as the agent's metrics registry provides it. */
export interface LabelledCounter {
  add(delta: number, labels: Record<string, string>): void;
}

/** The metrics the watches report into (the agent's registry satisfies it). */
export interface WatchMetrics {
  watchRestarts: LabelledCounter;
  relists: LabelledCounter;
  errors: LabelledCounter;
  apiServerUp: { set(value: number): void };
}

/** Tuning for {@link ClusterWatcher}. */
export interface WatcherOptions {
  backoff: BackoffPolicy;
  metrics: WatchMetrics;
  /** Dead-watch detection (default {@link DEFAULT_LIVENESS}). */
  liveness?: LivenessPolicy;
}

/** One kind: where it is watched and how it is listed, a page at a time. */
export interface ResourceSpec {
  kind: WatchedKind;
  /** Short name for logs and metric labels. */
  resource: string;
  path: string;
  listPage: ListPage;
}

function errorText(error: unknown): string {
  if (error instanceof k8s.ApiException) {
    return `HTTP ${error.code}: ${error.message.split("\n")[0]}`;
  }
  if (error instanceof Error) {
    const cause = error.cause instanceof Error ? ` (${error.cause.message})` : "";
    return `${error.message}${cause}`;
  }
  return String(error);
}

/** The MultiNetworkPolicy version to watch: v1beta2 when served (it carries endPort), else v1beta1. */
export async function discoverPolicyVersion(kc: k8s.KubeConfig): Promise<string> {
  const groups = await kc.makeApiClient(k8s.ApisApi).getAPIVersions();
  const group = groups.groups.find((g) => g.name === CNI_GROUP);
  const versions = group?.versions.map((v) => v.version) ?? [];
  if (versions.includes("v1beta2")) return "v1beta2";
  if (!group) {
    log.warning("API group not served (are the CRDs installed?); watching v1beta1", {
      group: CNI_GROUP,
    });
  }
  return "v1beta1";
}

/** How to list and watch each kind the agent reads. */
export function resourceSpecs(kc: k8s.KubeConfig, policyVersion: string): ResourceSpec[] {
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  const customList = (version: string, plural: string): ListPage => async (page) =>
    (await custom.listClusterCustomObject({
      group: CNI_GROUP,
      version,
      plural,
      limit: page.limit,
      _continue: page.continueToken,
    })) as k8s.KubernetesListObject<k8s.KubernetesObject>;
  return [
    {
      kind: "Pod",
      resource: "pods",
      path: "/api/v1/pods",
      listPage: (page) =>
        core.listPodForAllNamespaces({ limit: page.limit, _continue: page.continueToken }),
    },
    {
      kind: "Namespace",
      resource: "namespaces",
      path: "/api/v1/namespaces",
      listPage: (page) => core.listNamespace({ limit: page.limit, _continue: page.continueToken }),
    },
    {
      kind: "NetworkAttachmentDefinition",
      resource: "network-attachment-definitions",
      path: `/apis/${CNI_GROUP}/v1/network-attachment-definitions`,
      listPage: customList("v1", "network-attachment-definitions"),
    },
    {
      kind: "MultiNetworkPolicy",
      resource: "multi-networkpolicies",
      path: `/apis/${CNI_GROUP}/${policyVersion}/multi-networkpolicies`,
      listPage: customList(policyVersion, "multi-networkpolicies"),
    },
  ];
}

/** One informer with restart-on-error. */
class ResourceWatch {
  /** client-node's informer (what `makeInformer` builds), typed to expose its position. */
  readonly informer: k8s.ListWatch<k8s.KubernetesObject>;
  /** The informer's watch client, which can end its open watch. */
  readonly watch: LivenessWatch;
  synced = false;
  connected = false;
  #attempt = 0;
  #errored = false;
  #connects = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #stopped = false;

  constructor(
    kc: k8s.KubeConfig,
    readonly spec: ResourceSpec,
    private readonly store: ClusterStore,
    private readonly owner: ClusterWatcher,
  ) {
    this.watch = new LivenessWatch(kc, owner.liveness.idleMs);
    // Each page is parsed as it arrives and its objects reduced to what the
    // cache needs (./slim.ts); the add/update handlers store what was parsed.
    const prepared = new WeakMap<k8s.KubernetesObject, PreparedObject>();
    const list = async (): Promise<k8s.KubernetesListObject<k8s.KubernetesObject>> => {
      const items: k8s.KubernetesObject[] = [];
      const { resourceVersion } = await listInPages(spec.listPage, (page) => {
        for (const obj of page) {
          prepared.set(obj, store.prepare(spec.kind, obj));
          slimCachedObject(obj);
          items.push(obj);
        }
      });
      return { metadata: { resourceVersion }, items };
    };
    const upsert = (obj: k8s.KubernetesObject): Change | null => {
      const parsed = prepared.get(obj);
      if (!parsed) return store.upsert(spec.kind, obj);
      prepared.delete(obj);
      return store.apply(parsed);
    };
    this.informer = new k8s.ListWatch(spec.path, this.watch, list, false);
    const guard =
      (what: string, fn: (obj: k8s.KubernetesObject) => Change | null) =>
      (obj: k8s.KubernetesObject) => {
        try {
          const change = fn(obj);
          if (change) owner.changed(change);
        } catch (error) {
          log.error("failed to handle a watch event", {
            resource: spec.resource,
            event: what,
            err: errorText(error),
          });
        } finally {
          slimCachedObject(obj);
        }
      };
    this.informer.on("add", guard("add", upsert));
    this.informer.on("update", guard("update", upsert));
    this.informer.on("delete", guard("delete", (obj) => store.remove(spec.kind, obj)));
    this.informer.on("error", (error) => this.#failed(error));
    this.informer.on("connect", () => this.#connected());
  }

  start(): void {
    void this.#run();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.informer.stop();
  }

  async #run(): Promise<void> {
    if (this.#stopped) return;
    this.#errored = false;
    try {
      await this.informer.start();
    } catch (error) {
      this.#failed(error);
      return;
    }
    if (this.#errored || this.#stopped) return;
    this.#attempt = 0;
    this.connected = true;
    if (!this.synced && this.informer.latestResourceVersion() !== "") {
      this.synced = true;
      log.v(2, "cache synced", {
        resource: this.spec.resource,
        objects: this.store.count(this.spec.kind),
      });
    }
    this.owner.stateChanged(null);
  }

  #connected(): void {
    if (++this.#connects === 1) return;
    this.owner.metrics.watchRestarts.add(1, { resource: this.spec.resource });
    if (this.informer.latestResourceVersion() === "") {
      this.owner.metrics.relists.add(1, { resource: this.spec.resource });
      log.info("watch position expired (410 Gone): relisting", { resource: this.spec.resource });
    } else {
      log.v(4, "watch resumed", {
        resource: this.spec.resource,
        resourceVersion: this.informer.latestResourceVersion(),
      });
    }
  }

  #failed(error: unknown): void {
    if (this.#stopped) return;
    this.#errored = true;
    this.connected = false;
    this.owner.metrics.errors.add(1, { kind: "watch" });
    const delay = backoffDelay(++this.#attempt, this.owner.backoff, Math.random());
    log.v(2, "watch failed; retrying", {
      resource: this.spec.resource,
      attempt: this.#attempt,
      delayMs: delay,
      err: errorText(error),
    });
    this.owner.stateChanged(errorText(error));
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => void this.#run(), delay);
  }
}

/** Watches the four kinds into a store and reports changes. */
export class ClusterWatcher {
  readonly #watches: ResourceWatch[] = [];
  #syncedReported = false;
  #connected: boolean | null = null;
  #stopped = false;
  #probe: ApiServerProbe | null = null;

  constructor(
    private readonly kc: k8s.KubeConfig,
    private readonly store: ClusterStore,
    private readonly hooks: WatcherHooks,
    private readonly options: WatcherOptions,
  ) {}

  /** The metrics the watches report into. */
  get metrics(): WatchMetrics {
    return this.options.metrics;
  }

  /** The reconnect backoff. */
  get backoff(): BackoffPolicy {
    return this.options.backoff;
  }

  /** Dead-watch detection. */
  get liveness(): LivenessPolicy {
    return this.options.liveness ?? DEFAULT_LIVENESS;
  }

  /** Whether every cache has been filled at least once. */
  get synced(): boolean {
    return this.#watches.length > 0 && this.#watches.every((w) => w.synced);
  }

  /** Whether every watch is currently connected. */
  get connected(): boolean {
    return this.#connected === true;
  }

  /**
   * Finds the policy version to watch (retrying with backoff until the API server answers or
   * `signal` aborts) and starts the informers; returns once they are started, not synced.
   */
  async start(signal: AbortSignal): Promise<void> {
    let policyVersion = "";
    for (let attempt = 1; !signal.aborted; attempt++) {
      try {
        policyVersion = await discoverPolicyVersion(this.kc);
        break;
      } catch (error) {
        this.stateChanged(errorText(error));
        const delay = backoffDelay(attempt, this.options.backoff, Math.random());
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, delay);
          signal.addEventListener("abort", () => {
            clearTimeout(timer);
            resolve();
          }, { once: true });
        });
      }
    }
    if (signal.aborted || this.#stopped) return;
    log.info("watching the API server", {
      server: this.kc.getCurrentCluster()?.server ?? "",
      multiNetworkPolicyVersion: policyVersion,
    });
    for (const spec of resourceSpecs(this.kc, policyVersion)) {
      const watch = new ResourceWatch(this.kc, spec, this.store, this);
      this.#watches.push(watch);
      watch.start();
    }
    this.#probe = new ApiServerProbe(this.kc, this.liveness, (error) => {
      const open = this.#watches.filter((w) => w.watch.open > 0);
      if (open.length === 0) return;
      log.v(2, "API server probe failed: restarting the watches", { err: errorText(error) });
      for (const w of open) w.watch.abortAll(error);
    });
    this.#probe.start();
  }

  /** Stops every informer. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#probe?.stop();
    await Promise.all(this.#watches.map((w) => w.stop()));
  }

  /** @internal Called by a watch with a change from the store. */
  changed(change: Change): void {
    if (this.#syncedReported) this.hooks.onChange(change);
  }

  /** @internal Called by a watch when it connects (error null) or fails. */
  stateChanged(error: string | null): void {
    const connected = error === null && this.#watches.length > 0 &&
      this.#watches.every((w) => w.connected);
    this.options.metrics.apiServerUp.set(connected ? 1 : 0);
    if (error !== null && this.#connected !== false) {
      log.warning("API server unreachable or refusing: keeping the last applied rules, retrying", {
        err: error,
      });
      this.#connected = false;
    } else if (connected && this.#connected !== true) {
      if (this.#connected === false) log.info("API server connection restored");
      this.#connected = true;
    }
    if (!this.#syncedReported && this.synced) {
      this.#syncedReported = true;
      this.hooks.onSynced();
    }
  }
}
