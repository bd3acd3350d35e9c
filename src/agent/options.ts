/**
 * What the daemon is configured with: the typed result of parsing the command
 * line (`src/cli/flags.ts`), read by the composition root (`./daemon.ts`).
 */
import type { TcDriverName } from "../drivers/factory.ts";
import type { KlogOptions } from "../log/klog.ts";
import type { OffloadMode } from "./offload_policy.ts";

/** Everything the daemon is configured with. */
export interface AgentOptions {
  kubeconfig: string;
  master: string;
  hostnameOverride: string;
  networkPlugins: string[];
  podRulesPath: string;
  tcDriver: TcDriverName;
  /** Root of sysfs for representor discovery (hidden flag, for tests). */
  sysfsRoot: string;
  /** `host:port` of the /healthz and /readyz endpoints; empty: none. */
  healthAddress: string;
  /** The kubelet's PodResources socket; empty: believe pods' annotations about their VFs. */
  podResourcesSocket: string;
  /** Most TC filters one interface's program may have; beyond it, deny-all (0: no limit). */
  maxFiltersPerInterface: number;
  /** `host:port` of the /metrics endpoint; empty: none; the health address: served there. */
  metricsAddress: string;
  /** Period of the full resync; 0: never. */
  resyncPeriodMs: number;
  /** Whether drops by policy are reported as Warning Events on their pods. */
  dropEvents: boolean;
  /** `--offload`: where filters are meant to be enforced, and what a refusal does. */
  offload: OffloadMode;
  /** Minimum time between two syncs. */
  minSyncIntervalMs: number;
  logFlushFrequencyMs: number;
  klog: KlogOptions;
  help: boolean;
  version: boolean;
}
