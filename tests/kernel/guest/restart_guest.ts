/**
 * Restart: rules are programmed by one agent process, which exits; a new
 * process starts and converges by adopting what is there (no flush, no
 * change), and a stream of new connections sees no denied connection pass
 * and no packet of an allowed one dropped at any moment in between.
 */
import assert from "node:assert/strict";
import { run } from "../scenario/shell.ts";
import { objectsOf } from "../../support/cluster.ts";
import { interfaceOf, withTopology } from "../scenario/topology.ts";
import { assertNothingLost, countPackets } from "./ledger.ts";
import { ADDRESS, PORT, rulesAllowing, streamManifests } from "./fixtures.ts";
import { PATIENT_MS, settle, startPongServers, startStream, stopAll } from "./stream.ts";

const ONCE = new URL("./program_once.ts", import.meta.url).pathname;

Deno.test("a restarted agent adopts the programmed rules without a window", async () => {
  const rules = rulesAllowing(["c", "d"]);
  const file = await Deno.makeTempFile({ suffix: ".json" });
  await Deno.writeTextFile(file, JSON.stringify(rules));
  await withTopology(objectsOf(streamManifests()), "node-a", async (topology) => {
    const netnsOf = (name: string) => interfaceOf(topology, name).netns;
    const servers = startPongServers(["b", "c", "d"].map(netnsOf), PORT);
    const ledger = await countPackets(interfaceOf(topology, "a"), interfaceOf(topology, "d"));
    const device = topology.representors.get(rules.pciAddress)!;
    const uplink = topology.uplinks.get(rules.network)!;
    const agent = () =>
      run([Deno.execPath(), "run", "-A", "--no-check", ONCE, device, uplink, file]);
    try {
      const first = JSON.parse(await agent());
      assert.ok(first.commands > 0);
      await settle(1000);
      const stream = await startStream(netnsOf("a"), [ADDRESS.b, ADDRESS.d], PORT, 400, {
        [ADDRESS.d]: PATIENT_MS,
      });
      await settle(2000);
      const restarts = [];
      restarts.push(JSON.parse(await agent()));
      await settle(1500);
      const attempts = await stream.stop();
      await settle(300);
      const count = await ledger.read();
      const leaked = attempts.filter((a) => a.target === ADDRESS.b && a.ok).length;
      const toD = attempts.filter((a) => a.target === ADDRESS.d);
      const failed = toD.filter((a) => !a.ok).length;
      console.log(
        `restart: ${restarts.length} restarts made ${restarts.map((r) => r.commands).join(", ")} ` +
          `commands; ${attempts.length} attempts, ${leaked} denied passed, ${failed} allowed failed`,
      );
      assert.deepEqual(restarts.map((r) => r.commands), [0]);
      assert.ok(attempts.length >= 10);
      assert.equal(leaked, 0);
      assertNothingLost(count, toD.length, failed);
    } finally {
      await stopAll(servers);
      await Deno.remove(file);
    }
  });
});
