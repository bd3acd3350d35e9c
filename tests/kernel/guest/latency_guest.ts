/**
 * In the VM: the agent's /healthz keeps answering while the netlink driver,
 * in the same process, applies a program of about 10,000 filters and reads
 * it back. The driver waits for the kernel on FFI threads and gives the event
 * loop a turn while it encodes and decodes, so the health server's answers
 * keep coming while each is in flight. Latencies are printed, not asserted
 * (no timed assertions); what is asserted is that answers came at all.
 */
import assert from "node:assert/strict";
import { healthRoutes, startEndpointServer } from "../../../src/agent/health.ts";
import { NetlinkDriver } from "../../../src/drivers/netlink/driver.ts";
import { generateProgram } from "../../../src/tc/generate.ts";
import { planUpdate } from "../../../src/tc/plan.ts";
import { sameFilters } from "../../../src/tc/compare.ts";
import { peerFilterRules } from "../../../bench/tc_fixture.ts";
import { run, tryRun } from "../scenario/shell.ts";

const DEVICE = "lat0";
const PEER = "lat1";
const ZONE = 42;
/** Pause between two /healthz requests. */
const PROBE_PAUSE_MS = 10;
/** Answers needed while each phase is in flight. */
const MIN_ANSWERS = 3;

/** One /healthz request: when it was sent and when its answer had been read. */
interface Answer {
  sent: number;
  answered: number;
}

/** Requests `url` again and again, a short pause apart, until stopped. */
function startProbing(url: string): { answers: Answer[]; stop: () => Promise<void> } {
  const answers: Answer[] = [];
  let stopped = false;
  const probing = (async () => {
    while (!stopped) {
      const sent = performance.now();
      const response = await fetch(url);
      const body = await response.text();
      assert.equal(response.status, 200, body);
      answers.push({ sent, answered: performance.now() });
      await new Promise((resolve) => setTimeout(resolve, PROBE_PAUSE_MS));
    }
  })();
  return {
    answers,
    stop: () => {
      stopped = true;
      return probing;
    },
  };
}

/** Prints what /healthz did while a phase ran; returns how many answers came meanwhile. */
function report(phase: string, answers: Answer[], start: number, end: number): number {
  const during = answers.filter((a) => a.answered >= start && a.answered <= end);
  const latencies = during.map((a) => a.answered - a.sent).sort((a, b) => a - b);
  const times = [start, ...during.map((a) => a.answered), end];
  const silence = Math.max(...times.slice(1).map((t, i) => t - times[i]));
  const ms = (value: number | undefined) => value === undefined ? "-" : `${value.toFixed(1)} ms`;
  console.log(
    `${phase}: ${ms(end - start)} in flight; /healthz answered ${during.length} times, ` +
      `median ${ms(latencies[Math.floor(latencies.length / 2)])}, worst ${ms(latencies.at(-1))}, ` +
      `longest silence ${ms(silence)}`,
  );
  return during.length;
}

Deno.test("latency: /healthz answers while the netlink driver applies and dumps 10,000 filters", async () => {
  await run(["ip", "link", "add", DEVICE, "type", "veth", "peer", "name", PEER]);
  const server = startEndpointServer("127.0.0.1:0", healthRoutes(() => null));
  const driver = new NetlinkDriver();
  let probing: ReturnType<typeof startProbing> | undefined;
  try {
    driver.open();
    const rules = peerFilterRules(3313);
    const program = (generation: number) =>
      generateProgram(rules, { device: DEVICE, zone: ZONE, generation });
    const expected = program(1);
    assert.ok(expected.filters.length >= 9_500, `${expected.filters.length} filters`);
    // Planned before the clock starts: the phases measure the driver alone.
    const plan = planUpdate(await driver.read(DEVICE), program);
    assert.ok(plan.commands.length >= expected.filters.length);

    probing = startProbing(`http://${server.address}/healthz`);
    while (probing.answers.length < MIN_ANSWERS) {
      await new Promise((resolve) => setTimeout(resolve, PROBE_PAUSE_MS));
    }
    const calls = driver.stats.calls;
    const applyStart = performance.now();
    await driver.apply(DEVICE, plan.commands);
    const applyEnd = performance.now();
    const applyCalls = driver.stats.calls - calls;
    const state = await driver.read(DEVICE);
    const dumpEnd = performance.now();
    const { answers } = probing;
    await probing.stop();
    probing = undefined;

    console.log(
      `latency: ${plan.commands.length} commands in ${applyCalls} sendmsg ` +
        `calls, ${state.filters.length} filters read back`,
    );
    const duringApply = report("apply", answers, applyStart, applyEnd);
    const duringDump = report("dump", answers, applyEnd, dumpEnd);
    assert.ok(sameFilters(state.filters, expected.filters), "the dump reads back the program");
    assert.ok(
      duringApply >= MIN_ANSWERS,
      `/healthz answered ${duringApply} times during the apply`,
    );
    assert.ok(duringDump >= MIN_ANSWERS, `/healthz answered ${duringDump} times during the dump`);
  } finally {
    await probing?.stop();
    driver.close();
    await server.shutdown();
    await tryRun(["ip", "link", "del", DEVICE]);
  }
});
