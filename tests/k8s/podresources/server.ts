/**
 * The PodResources test server (./main.go, built by ./build.sh): the
 * kubelet's real gRPC API on a unix socket, answering from a state file the
 * test rewrites, and stoppable and restartable to play a kubelet that goes
 * away and comes back.
 */

const HERE = new URL("./", import.meta.url).pathname;

/** One pod's allocated devices, as the kubelet reports them. */
export interface PodDevices {
  name: string;
  namespace: string;
  /** resource name → device IDs (PCI addresses for SR-IOV VFs). */
  devices: Record<string, string[]>;
}

/** A running (or stopped) server on one socket. */
export interface PodResourcesServer {
  readonly socket: string;
  /** Replaces what List answers, from the next call on. */
  setPods(pods: PodDevices[]): Promise<void>;
  /** Stops the server and removes its socket (the kubelet going away). */
  stop(): Promise<void>;
  /** Starts it again on the same socket. */
  start(): Promise<void>;
}

/** The built binary's path, or why there is none (build it with ./build.sh). */
export async function podResourcesServerBinary(): Promise<{ path: string } | { missing: string }> {
  const out = await new Deno.Command("bash", {
    args: [`${HERE}build.sh`],
    env: { GOFLAGS: "-mod=mod" },
    stdout: "piped",
    stderr: "piped",
  }).output().catch((error) => ({ success: false, stdout: new Uint8Array(), stderr: error }));
  const path = new TextDecoder().decode(out.stdout).trim().split("\n").at(-1) ?? "";
  if (!out.success || path === "") {
    return { missing: `PodResources test server not built: ${String(out.stderr).slice(0, 200)}` };
  }
  return { path };
}

/** Starts the server in `dir` with the given pods. */
export async function startPodResourcesServer(
  binary: string,
  dir: string,
  pods: PodDevices[],
): Promise<PodResourcesServer> {
  const socket = `${dir}/kubelet.sock`;
  const state = `${dir}/pod-resources.json`;
  let child: Deno.ChildProcess | null = null;
  const setPods = (list: PodDevices[]) =>
    Deno.writeTextFile(
      state,
      JSON.stringify({
        pod_resources: list.map((pod) => ({
          name: pod.name,
          namespace: pod.namespace,
          containers: [{
            name: "c",
            devices: Object.entries(pod.devices).map(([resource_name, device_ids]) => ({
              resource_name,
              device_ids,
            })),
          }],
        })),
      }),
    );
  const start = async () => {
    child = new Deno.Command(binary, {
      args: ["-socket", socket, "-state", state],
      stdout: "null",
      stderr: "inherit",
    }).spawn();
    for (let i = 0; i < 100; i++) {
      if (await Deno.stat(socket).then(() => true, () => false)) return;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(`PodResources test server did not create ${socket}`);
  };
  const stop = async () => {
    if (!child) return;
    child.kill("SIGTERM");
    await child.status;
    child = null;
    await Deno.remove(socket).catch(() => {});
  };
  await setPods(pods);
  await start();
  return { socket, setPods, stop, start };
}
