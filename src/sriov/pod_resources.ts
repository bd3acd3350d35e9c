/**
 * The kubelet's PodResources API (`v1.PodResourcesLister/List` on
 * `/var/lib/kubelet/pod-resources/kubelet.sock`): which devices each pod on
 * this node was allocated, per device-plugin resource. For SR-IOV VFs the
 * device IDs are PCI addresses; this is how the agent knows which VF a pod
 * owns without believing the pod's own annotation.
 */
import { Buffer } from "node:buffer";
import * as grpc from "@grpc/grpc-js";
import { checkPciAddress } from "../cluster/validate.ts";
import { allocationsText, type DeviceAllocations } from "../interfaces/local.ts";
import { log } from "../log/klog.ts";
import { bytesOf, fields, stringsOf } from "./protobuf.ts";

/** The kubelet's default PodResources socket. */
export const DEFAULT_POD_RESOURCES_SOCKET = "/var/lib/kubelet/pod-resources/kubelet.sock";

const LIST = "/v1.PodResourcesLister/List";

/** Decodes a `ListPodResourcesResponse`: PCI-address devices per pod and resource. */
export function decodeAllocations(data: Uint8Array): DeviceAllocations {
  const out = new Map<string, Map<string, string[]>>();
  for (const podBytes of bytesOf(fields(data), 1)) {
    const pod = fields(podBytes);
    const [name = ""] = stringsOf(pod, 1);
    const [namespace = ""] = stringsOf(pod, 2);
    const byResource = new Map<string, string[]>();
    for (const containerBytes of bytesOf(pod, 3)) {
      for (const deviceBytes of bytesOf(fields(containerBytes), 2)) {
        const devices = fields(deviceBytes);
        const [resource = ""] = stringsOf(devices, 1);
        const pcis = stringsOf(devices, 2).map((id) => id.toLowerCase())
          .filter((id) => checkPciAddress(id) === null);
        if (resource === "" || pcis.length === 0) continue;
        byResource.set(resource, [...(byResource.get(resource) ?? []), ...pcis]);
      }
    }
    if (byResource.size > 0) out.set(`${namespace}/${name}`, byResource);
  }
  return out;
}

/** A client of the kubelet's PodResources socket. */
export class PodResourcesClient {
  readonly #client: grpc.Client;

  constructor(readonly socketPath: string, private readonly timeoutMs = 5000) {
    // The kubelet restarts now and then: reconnect within a second, not after grpc's 2 minutes.
    this.#client = new grpc.Client(`unix://${socketPath}`, grpc.credentials.createInsecure(), {
      "grpc.initial_reconnect_backoff_ms": 200,
      "grpc.max_reconnect_backoff_ms": 1000,
    });
  }

  /** Every pod's PCI-address devices, as the kubelet allocated them now. */
  list(): Promise<DeviceAllocations> {
    return new Promise((resolve, reject) => {
      this.#client.makeUnaryRequest(
        LIST,
        () => Buffer.alloc(0),
        (bytes: Buffer) => bytes,
        {},
        { deadline: Date.now() + this.timeoutMs },
        (error, value) => {
          if (error || !value) {
            reject(
              new Error(
                `kubelet PodResources ${this.socketPath}: ${error?.details ?? "no answer"}`,
              ),
            );
            return;
          }
          try {
            resolve(decodeAllocations(new Uint8Array(value)));
          } catch (cause) {
            reject(
              new Error(`kubelet PodResources ${this.socketPath}: ${String(cause)}`, { cause }),
            );
          }
        },
      );
    });
  }

  /** Closes the connection. */
  close(): void {
    this.#client.close();
  }
}

/**
 * The kubelet's allocations for each sync: fresh when the kubelet answers,
 * the last answer while it does not (a VF the kubelet gave to one pod is
 * never believed another's meanwhile). Before its first answer there is
 * nothing to go on, and {@link current} throws: the sync is retried rather
 * than run on the pods' word alone.
 */
export class KubeletDevices {
  #last: DeviceAllocations | null = null;
  #lastText = "";
  #failing = false;
  #onChange: () => void = () => {};
  #timer: ReturnType<typeof setInterval> | undefined;

  constructor(private readonly client: { list(): Promise<DeviceAllocations> }) {}

  /**
   * Calls `onChange` whenever an answer differs from the one before it, from
   * a sync or from asking the kubelet every `periodMs` (allocations move
   * without any API event, and a kubelet that comes back must be heard
   * without one).
   */
  watch(onChange: () => void, periodMs = 5000): void {
    this.stop();
    this.#onChange = onChange;
    this.#timer = setInterval(() => this.current().catch(() => {}), periodMs);
  }

  /** Stops {@link watch}. */
  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** The allocations to enforce with now. */
  async current(): Promise<DeviceAllocations> {
    try {
      this.#last = await this.client.list();
      const text = allocationsText(this.#last);
      const changed = this.#lastText !== "" && text !== this.#lastText;
      this.#lastText = text;
      if (changed) this.#onChange();
      if (this.#failing) log.info("kubelet PodResources answers again");
      this.#failing = false;
      return this.#last;
    } catch (error) {
      if (!this.#failing) {
        log.warning(
          this.#last
            ? "kubelet PodResources not answering: using its last answer"
            : "kubelet PodResources not answering: syncs wait for its first answer",
          { err: error instanceof Error ? error.message : String(error) },
        );
      }
      this.#failing = true;
      if (this.#last) return this.#last;
      throw error;
    }
  }
}
