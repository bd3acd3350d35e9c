/**
 * Makes client-node's watches notice when they are dead.
 *
 * On Deno 2.9, a watch started by @kubernetes/client-node 2.0.1 (`k8s.Watch`, used by every
 * informer) never reports the end of its response: when the API server closes the stream
 * (graceful shutdown, server-side watch timeout) or dies (connection reset), and when the
 * client's own 30 s inactivity timeout aborts the request, the `done` callback is never called.
 * The informer then waits forever on a dead stream: no reconnect, no relist, and on a quiet
 * resource the watch silently stops after its first 30 s without events.
 *
 * {@link LivenessWatch} wraps `k8s.Watch` for `k8s.ListWatch`: it keeps its own inactivity timer
 * and, when it fires, ends the watch itself with a `TimeoutError` (the informer then resumes from
 * its last resourceVersion at once). {@link ApiServerProbe} asks the API server for `/version`
 * periodically; when that fails, the owner ends every open watch with the error, so that an API
 * server that went away is noticed within one probe period instead of one inactivity timeout.
 */
import * as k8s from "@kubernetes/client-node";

/** How dead watches are detected. */
export interface LivenessPolicy {
  /** A watch with no event for this long is ended and resumed from its last resourceVersion. */
  idleMs: number;
  /** Period of the `/version` probe; 0: no probe. */
  probeIntervalMs: number;
  /** A probe not answered within this time counts as failed. */
  probeTimeoutMs: number;
}

/** Defaults: 30 s inactivity (client-node's own), a probe every 10 s with a 5 s timeout. */
export const DEFAULT_LIVENESS: LivenessPolicy = {
  idleMs: 30_000,
  probeIntervalMs: 10_000,
  probeTimeoutMs: 5_000,
};

type WatchCallback = Parameters<k8s.Watch["watch"]>[2];
type QueryParams = Parameters<k8s.Watch["watch"]>[1];

function timeoutError(ms: number): DOMException {
  return new DOMException(`no watch event for ${ms} ms`, "TimeoutError");
}

/**
 * A `k8s.Watch` whose watches end (calling `done` exactly once) on inactivity, on
 * {@link LivenessWatch.abortAll}, or when client-node itself reports the end; a watch aborted
 * through the returned controller (the informer stopping or moving on) ends without `done`.
 */
export class LivenessWatch extends k8s.Watch {
  readonly #open = new Set<(error: unknown) => void>();

  constructor(config: k8s.KubeConfig, private readonly idleMs: number) {
    super(config);
    // client-node's own inactivity timeout aborts the request without ever calling `done` on
    // Deno; keep it out of the way (it still bounds the wait for response headers).
    Reflect.set(this, "requestTimeoutMs", idleMs * 2);
  }

  /** Number of watches currently open. */
  get open(): number {
    return this.#open.size;
  }

  /** Ends every open watch, reporting `error` to its informer. */
  abortAll(error: unknown): void {
    for (const finish of [...this.#open]) finish(error);
  }

  /** Starts a watch like `k8s.Watch.watch`, with the liveness guarantees above. */
  override async watch(
    path: string,
    queryParams: QueryParams,
    callback: WatchCallback,
    done: (err: unknown) => void,
  ): Promise<AbortController> {
    let ended = false;
    const inner: { controller?: AbortController } = {};
    let timer: ReturnType<typeof setTimeout> | undefined;
    const end = () => {
      ended = true;
      clearTimeout(timer);
      this.#open.delete(finish);
      inner.controller?.abort();
    };
    const finish = (error: unknown) => {
      if (ended) return;
      end();
      done(error);
    };
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => finish(timeoutError(this.idleMs)), this.idleMs);
    };
    const outer = new AbortController();
    outer.signal.addEventListener("abort", end, { once: true });
    this.#open.add(finish);
    arm();
    try {
      inner.controller = await super.watch(path, queryParams, (phase, object, raw) => {
        if (ended) return;
        arm();
        callback(phase, object, raw);
        // The server ends the stream after an ERROR event (410 Gone: the informer has cleared its
        // resourceVersion and relists), but that end is not reported either.
        if (phase === "ERROR") finish(null);
      }, finish);
    } catch (error) {
      finish(error);
      return outer;
    }
    if (ended) inner.controller.abort();
    return outer;
  }
}

/**
 * Periodically asks the API server for `/version` (allowed to every client, cheap) and reports
 * failures: an error, or no answer within the timeout.
 */
export class ApiServerProbe {
  readonly #version: k8s.VersionApi;
  #timer: ReturnType<typeof setInterval> | undefined;
  #inFlight = false;

  constructor(
    kc: k8s.KubeConfig,
    private readonly policy: LivenessPolicy,
    private readonly onFailure: (error: unknown) => void,
  ) {
    this.#version = kc.makeApiClient(k8s.VersionApi);
  }

  /** Starts probing (no-op when the period is 0). */
  start(): void {
    if (this.policy.probeIntervalMs <= 0 || this.#timer !== undefined) return;
    this.#timer = setInterval(() => void this.probe(), this.policy.probeIntervalMs);
  }

  /** Stops probing. */
  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** One probe; resolves true when the API server answered in time. */
  async probe(): Promise<boolean> {
    if (this.#inFlight) return true;
    this.#inFlight = true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`no answer to /version within ${this.policy.probeTimeoutMs} ms`)),
          this.policy.probeTimeoutMs,
        );
      });
      await Promise.race([this.#version.getCode(), timeout]);
      return true;
    } catch (error) {
      if (this.#timer !== undefined) this.onFailure(error);
      return false;
    } finally {
      clearTimeout(timer);
      this.#inFlight = false;
    }
  }
}
