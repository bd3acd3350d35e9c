/**
 * A thin HTTP client for the scale harness's writes: the admin kubeconfig
 * the test control plane writes (tests/k8s/controlplane/), requests with
 * JSON bodies, a few retries on overload, and bulk creation with bounded
 * concurrency. kubectl would cost a process per object.
 */
import type { Manifest } from "../../tests/support/manifests.ts";
import type { ApiRequest } from "./churn.ts";
import { collectionPath } from "./churn.ts";

/** What {@link ApiClient.request} answers. */
export interface ApiResponse {
  status: number;
  body: string;
}

function decode(base64: string): string {
  return new TextDecoder().decode(Uint8Array.from(atob(base64), (c) => c.charCodeAt(0)));
}

/** Talks to one API server as the kubeconfig's (client-certificate) user. */
export class ApiClient {
  readonly #client: Deno.HttpClient;

  private constructor(readonly server: string, client: Deno.HttpClient) {
    this.#client = client;
  }

  /** From a kubeconfig with embedded CA, client certificate and key (as the control plane writes). */
  static async fromKubeconfig(path: string): Promise<ApiClient> {
    const config = JSON.parse(await Deno.readTextFile(path));
    const cluster = config.clusters[0].cluster;
    const user = config.users[0].user;
    const client = Deno.createHttpClient({
      caCerts: [decode(cluster["certificate-authority-data"])],
      cert: decode(user["client-certificate-data"]),
      key: decode(user["client-key-data"]),
    });
    return new ApiClient(cluster.server, client);
  }

  /** Sends one request; retries on 429, 5xx and connection errors (up to 5 times). */
  async request(request: ApiRequest): Promise<ApiResponse> {
    const headers: Record<string, string> = { accept: "application/json" };
    if (request.body !== undefined) {
      headers["content-type"] = request.method === "PATCH"
        ? "application/merge-patch+json"
        : "application/json";
    }
    for (let attempt = 1;; attempt++) {
      try {
        const response = await fetch(`${this.server}${request.path}`, {
          method: request.method,
          headers,
          body: request.body === undefined ? undefined : JSON.stringify(request.body),
          client: this.#client,
        });
        const body = await response.text();
        const retry = response.status === 429 || response.status >= 500;
        if (!retry || attempt >= 5) return { status: response.status, body };
      } catch (error) {
        if (attempt >= 5) throw error;
      }
      await new Promise((resolve) => setTimeout(resolve, 100 * 2 ** attempt));
    }
  }

  /** Releases the connections. */
  close(): void {
    this.#client.close();
  }
}

/** A one-line reason from a failed response. */
export function failure(response: ApiResponse): string | null {
  if (response.status >= 200 && response.status < 300) return null;
  let message = response.body.slice(0, 200);
  try {
    message = JSON.parse(response.body).message ?? message;
  } catch {
    // not JSON
  }
  return `HTTP ${response.status}: ${message}`;
}

/** Creates every manifest, `concurrency` at a time; throws on the first failure. */
export async function createAll(
  api: ApiClient,
  manifests: readonly Manifest[],
  concurrency: number,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < manifests.length) {
      const manifest = manifests[next++];
      const response = await api.request({
        method: "POST",
        path: collectionPath(manifest),
        body: manifest,
      });
      const problem = failure(response);
      if (problem && response.status !== 409) {
        const meta = manifest.metadata as { namespace?: string; name: string };
        throw new Error(
          `creating ${manifest.kind} ${meta.namespace ?? ""}/${meta.name}: ${problem}`,
        );
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, manifests.length) }, worker));
}
