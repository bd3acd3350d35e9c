/** On the host: a kubeconfig that reaches the host's apiserver from inside the VM. */
import { parse, stringify } from "yaml";
import { HOST_PORTS_ADDRESS } from "../vm/vm.ts";

interface Kubeconfig {
  clusters: { cluster: Record<string, unknown> }[];
}

/**
 * Writes `DIR/guest.kubeconfig`: the admin kubeconfig with the server moved
 * to the address qemu forwards to the host's loopback port (TLS still
 * checked against the `localhost` name in the serving certificate).
 */
export async function writeGuestKubeconfig(
  adminKubeconfig: string,
  port: number,
  dir: string,
): Promise<string> {
  const config = parse(await Deno.readTextFile(adminKubeconfig)) as Kubeconfig;
  for (const entry of config.clusters) {
    entry.cluster.server = `https://${HOST_PORTS_ADDRESS}:${port}`;
    entry.cluster["tls-server-name"] = "localhost";
  }
  const path = `${dir}/guest.kubeconfig`;
  await Deno.writeTextFile(path, stringify(config));
  return path;
}
