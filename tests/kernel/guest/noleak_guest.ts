/**
 * No-leak: while pod a opens a continuous stream of new connections to b, c
 * and d, the policy is changed 100 times (alternating whether b or c is
 * allowed; d always is). No connection may reach a destination denied for
 * the whole attempt, and no packet to or from d may be dropped
 * (./ledger.ts counts them at both ends). Once per TC driver.
 *
 * Attempts to b and c give up after 400 ms, so that some fall entirely inside
 * a denied period; attempts to d wait {@linkcode PATIENT_MS}.
 */
import assert from "node:assert/strict";
import { createDriver } from "../../../src/drivers/factory.ts";
import { Actuator, type SyncResult } from "../../../src/tc/actuator.ts";
import { objectsOf } from "../../support/cluster.ts";
import { interfaceOf, withTopology } from "../scenario/topology.ts";
import { programInterfaces } from "../scenario/runner.ts";
import { assertNothingLost, countPackets } from "./ledger.ts";
import { ADDRESS, PORT, rulesAllowing, SECOND_PORT, streamManifests } from "./fixtures.ts";
import {
  type Attempt,
  type Change,
  PATIENT_MS,
  possiblyAllowed,
  settle,
  startPongServers,
  startStream,
  stopAll,
} from "./stream.ts";

const CHANGES = 100;

/**
 * How each change reaches the kernel: `in place` swaps one address for
 * another (a couple of filters edited, src/tc/in_place.ts); `swap` also
 * opens a second port to c, so every change writes a new generation.
 */
type Mode = "in place" | "swap";

for (const driver of ["cmdline", "netlink"]) {
  for (const mode of ["in place", "swap"] as const) {
    Deno.test(
      `no leak across 100 policy changes (${mode}) under a stream of new connections (${driver})`,
      () => noLeak(driver, mode),
    );
  }
}

async function noLeak(driver: string, mode: Mode): Promise<void> {
  const allowB = rulesAllowing(["b", "d"]);
  const allowC = rulesAllowing(["c", "d"], mode === "swap" ? [PORT, SECOND_PORT] : [PORT]);
  await withTopology(objectsOf(streamManifests()), "node-a", async (topology) => {
    const netnsOf = (name: string) => interfaceOf(topology, name).netns;
    const servers = startPongServers(["b", "c", "d"].map(netnsOf), PORT);
    const ledger = await countPackets(interfaceOf(topology, "a"), interfaceOf(topology, "d"));
    const actuator = new Actuator(createDriver(driver));
    try {
      await programInterfaces(topology, actuator, [allowB]);
      const initial = new Set([ADDRESS.b, ADDRESS.d]);
      await settle(1000);
      const stream = await startStream(
        netnsOf("a"),
        [ADDRESS.b, ADDRESS.c, ADDRESS.d],
        PORT,
        400,
        { [ADDRESS.d]: PATIENT_MS },
      );
      await settle(3000);
      const changes: Change[] = [];
      /** Commands each change took, and the generations the devices carried after it. */
      const commands: number[] = [];
      const generations = new Set<string>();
      const started = performance.now();
      for (let i = 1; i <= CHANGES; i++) {
        const toC = i % 2 === 1;
        const change: Change = {
          started: Date.now(),
          settled: 0,
          allowed: new Set([toC ? ADDRESS.c : ADDRESS.b, ADDRESS.d]),
        };
        const results: SyncResult[] = [];
        await programInterfaces(topology, actuator, [toC ? allowC : allowB], results);
        change.settled = Date.now();
        commands.push(results.reduce((sum, r) => sum + r.commands, 0));
        generations.add(results.map((r) => `${r.device}:${r.generation}`).join(","));
        changes.push(change);
        // Mostly quick flips, with a longer period every fourth change so that some
        // attempts fall entirely inside a denied period.
        await settle(i % 4 === 0 ? 2500 : 150 + (i % 3) * 50);
      }
      const changeSeconds = (performance.now() - started) / 1000;
      await settle(1500);
      const attempts = await stream.stop();
      await settle(300);
      const count = await ledger.read();
      let mustDeny = 0;
      let leaks = 0;
      let steadyAllowed = 0;
      const drops: Attempt[] = [];
      for (const attempt of attempts) {
        if (attempt.target === ADDRESS.d) {
          steadyAllowed++;
          if (!attempt.ok) drops.push(attempt);
          continue;
        }
        if (!possiblyAllowed(attempt.target, attempt.t0, attempt.t1, initial, changes)) {
          mustDeny++;
          if (attempt.ok) leaks++;
        }
      }
      const okToFlipping = attempts.filter((a) => a.target !== ADDRESS.d && a.ok).length;
      console.log(
        `no-leak (${mode}, ${driver}): ${CHANGES} changes in ${
          changeSeconds.toFixed(1)
        } s; ${attempts.length} attempts; ` +
          `${mustDeny} to destinations denied throughout, ${leaks} of them got through; ` +
          `${steadyAllowed} to the always-allowed destination, ${drops.length} of them failed; ` +
          `${okToFlipping} succeeded to the alternating destinations; ` +
          `${Math.min(...commands)}-${Math.max(...commands)} commands per change`,
      );
      if (mode === "in place") {
        assert.ok(Math.max(...commands) <= 4, `commands per change: ${commands.join(",")}`);
        assert.equal(generations.size, 1, "every change kept the device's generation");
      } else assert.equal(generations.size, 2, "every change swapped generations");
      assert.ok(attempts.length >= 100, "the stream must have run");
      assert.ok(mustDeny >= 20, "enough attempts fell entirely inside denied periods");
      assert.ok(okToFlipping >= 20, "enough attempts went through when allowed");
      assert.equal(leaks, 0, "no connection reached a destination denied throughout");
      for (const drop of drops) console.log(`failed: ${describeAttempt(drop, changes)}`);
      assertNothingLost(count, steadyAllowed, drops.length);
    } finally {
      await stopAll(servers);
    }
  });
}

/** An attempt's timing against the nearest policy change, for a failure message. */
function describeAttempt(attempt: Attempt, changes: Change[]): string {
  const nearest = changes.reduce((best, c) =>
    Math.abs(c.started - attempt.t0) < Math.abs(best.started - attempt.t0) ? c : best
  );
  const handshake = attempt.connectMs === null
    ? "no handshake"
    : `handshake ${attempt.connectMs} ms`;
  return `${attempt.target} at ${attempt.t0 - nearest.started} ms from a change's start ` +
    `(its apply took ${nearest.settled - nearest.started} ms), ${handshake}, ` +
    `gave up after ${attempt.t1 - attempt.t0} ms`;
}
