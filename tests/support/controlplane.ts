/**
 * Helpers for tests that talk to an API server: kubectl, `apply`, the
 * project's CRDs, and polling. Used on the host (tests/k8s, against the
 * control plane tests/k8s/controlplane/ starts) and inside the kernel VM
 * (tests/kernel/e2e, against the host's apiserver).
 *
 * @module
 */
import assert from "node:assert/strict";
import { runProcess } from "../../src/drivers/cmdline/process.ts";

const CRDS = new URL("../../deploy/crds/", import.meta.url).pathname;

/**
 * Where kubectl goes: a kubeconfig path, or one with flags for every call
 * (such as `--request-timeout=20s` where the network may stall).
 */
export type Kube = string | { kubeconfig: string; flags: string[] };

function baseArgs(kube: Kube): string[] {
  return typeof kube === "string"
    ? ["--kubeconfig", kube]
    : ["--kubeconfig", kube.kubeconfig, ...kube.flags];
}

/** Runs kubectl; returns {ok, stdout, stderr}. `input` goes to stdin. */
export async function kubectlRaw(
  kube: Kube,
  args: string[],
  input?: string,
): Promise<{ ok: boolean; stdout: string; stderr: string }> {
  const out = await runProcess("kubectl", [...baseArgs(kube), ...args], input);
  return { ok: out.code === 0, stdout: out.stdout, stderr: out.stderr };
}

/** Runs kubectl and fails the test when it fails. */
export async function kubectl(kube: Kube, ...args: string[]): Promise<string> {
  const out = await kubectlRaw(kube, args);
  assert.ok(out.ok, `kubectl ${args.join(" ")} failed: ${out.stderr}`);
  return out.stdout;
}

/** `kubectl apply -f -` of JSON objects. */
export async function apply(kube: Kube, ...objects: unknown[]): Promise<void> {
  const out = await kubectlRaw(
    kube,
    ["apply", "-f", "-"],
    JSON.stringify({ apiVersion: "v1", kind: "List", items: objects }),
  );
  assert.ok(out.ok, `kubectl apply failed: ${out.stderr}`);
}

/** Installs the repo's CRDs and waits until they are established. */
export async function installCrds(kube: Kube): Promise<void> {
  await kubectl(kube, "apply", "-f", CRDS);
  await kubectl(
    kube,
    "wait",
    "--for=condition=Established",
    "--timeout=60s",
    "crd/multi-networkpolicies.k8s.cni.cncf.io",
    "crd/network-attachment-definitions.k8s.cni.cncf.io",
  );
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** How {@link waitFor} polls. */
export interface WaitOptions {
  /** Give up after this long (default 15 s). */
  timeoutMs?: number;
  /** Pause between checks (default 50 ms). */
  intervalMs?: number;
  /** Asked before each check: why waiting can stop at once (the error's message), or null. */
  abandon?: () => Promise<string | null>;
  /** Appended to the time-out error, such as the last lines of a log. */
  detail?: () => Promise<string>;
}

/**
 * Polls `check` until it returns a truthy value, and returns that value; a
 * check that throws counts as not yet. `options` may be just the time-out.
 */
export async function waitFor<T>(
  what: string,
  check: () => T | Promise<T>,
  options: number | WaitOptions = {},
): Promise<NonNullable<T>> {
  const { timeoutMs = 15_000, intervalMs = 50, abandon, detail } = typeof options === "number"
    ? { timeoutMs: options }
    : options;
  const deadline = performance.now() + timeoutMs;
  let last: unknown;
  while (performance.now() < deadline) {
    const reason = await abandon?.();
    if (reason) throw new Error(reason);
    try {
      const value = await check();
      if (value) return value as NonNullable<T>;
    } catch (error) {
      last = error;
    }
    await sleep(intervalMs);
  }
  const more = detail ? `; ${await detail()}` : "";
  throw new Error(
    `timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${last}` : ""}${more}`,
  );
}

/** One Event as tests read it. */
export interface EventSummary {
  reason: string;
  message: string;
}

/**
 * The Warning Events in `namespace` whose fields match `selector` (e.g.
 * `involvedObject.name=web`); null while there are none, for {@link waitFor}.
 */
export async function warningEvents(
  kubeconfig: string,
  namespace: string,
  selector: string,
): Promise<EventSummary[] | null> {
  const out = await kubectl(
    kubeconfig,
    "-n",
    namespace,
    "get",
    "events",
    "--field-selector",
    `${selector},type=Warning`,
    "-o",
    "json",
  );
  const items = JSON.parse(out).items as EventSummary[];
  return items.length > 0 ? items : null;
}
