/**
 * Revocation: a change that revokes a peer cuts connections already
 * established to it (their packets from the originating side are dropped
 * from the next packet on), while established connections to peers still
 * allowed carry on.
 */
import assert from "node:assert/strict";
import { CmdlineDriver } from "../../../src/drivers/cmdline/driver.ts";
import { Actuator } from "../../../src/tc/actuator.ts";
import { objectsOf } from "../../support/cluster.ts";
import { interfaceOf, withTopology } from "../scenario/topology.ts";
import { programInterfaces } from "../scenario/runner.ts";
import { ADDRESS, PORT, rulesAllowing, streamManifests } from "./fixtures.ts";
import { settle, stopAll } from "./stream.ts";

/** An interactive TCP connection from a namespace, through socat. */
class Session {
  #child: Deno.ChildProcess;
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  #reader: ReadableStreamDefaultReader<Uint8Array>;
  #buffer = "";

  constructor(netns: string, address: string) {
    this.#child = new Deno.Command("ip", {
      args: ["netns", "exec", netns, "socat", "STDIO", `TCP4:${address}:${PORT}`],
      stdin: "piped",
      stdout: "piped",
      stderr: "null",
    }).spawn();
    this.#writer = this.#child.stdin.getWriter();
    this.#reader = this.#child.stdout.getReader();
  }

  /** Sends a line; true when it comes back (echoed) within the timeout. */
  async echo(line: string, timeoutMs = 2000): Promise<boolean> {
    await this.#writer.write(new TextEncoder().encode(`${line}\n`));
    const deadline = Date.now() + timeoutMs;
    while (!this.#buffer.includes(line)) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      const chunk = await Promise.race([
        this.#reader.read(),
        new Promise<null>((resolve) => setTimeout(() => resolve(null), left)),
      ]);
      if (chunk === null || chunk.done) return this.#buffer.includes(line);
      this.#buffer += new TextDecoder().decode(chunk.value);
    }
    return true;
  }

  async close(): Promise<void> {
    try {
      this.#child.kill("SIGKILL");
    } catch {
      // gone
    }
    this.#reader.cancel().catch(() => {});
    await this.#child.status;
  }
}

function echoServers(netns: string[]): Deno.ChildProcess[] {
  return netns.map((ns) =>
    new Deno.Command("ip", {
      args: ["netns", "exec", ns, "socat", `TCP4-LISTEN:${PORT},fork,reuseaddr`, "EXEC:cat"],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn()
  );
}

Deno.test("revoking a peer cuts its established connections at once", async () => {
  const allowB = rulesAllowing(["b", "d"]);
  const allowC = rulesAllowing(["c", "d"]);
  await withTopology(objectsOf(streamManifests()), "node-a", async (topology) => {
    const netnsOf = (name: string) => interfaceOf(topology, name).netns;
    const servers = echoServers(["b", "c", "d"].map(netnsOf));
    const actuator = new Actuator(new CmdlineDriver());
    await settle(1000);
    const toB = new Session(netnsOf("a"), ADDRESS.b);
    const toD = new Session(netnsOf("a"), ADDRESS.d);
    try {
      await programInterfaces(topology, actuator, [allowB]);
      assert.ok(await toB.echo("before-b"), "b reachable while allowed");
      assert.ok(await toD.echo("before-d"), "d reachable while allowed");
      await programInterfaces(topology, actuator, [allowC]);
      assert.equal(await toB.echo("after-b"), false, "the revoked peer's connection is cut");
      assert.ok(await toD.echo("after-d"), "a still-allowed peer's connection carries on");
      assert.ok(await toD.echo("after-d-2"), "and keeps carrying on");
    } finally {
      await toB.close();
      await toD.close();
      await stopAll(servers);
    }
  });
});
