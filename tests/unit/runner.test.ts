/** The bounded-frequency runner, on a fake clock: when runs happen, never what they do. */
import assert from "node:assert/strict";
import { Runner, type RunnerOptions, type RunTrigger } from "../../src/agent/runner.ts";
import { FakeClock } from "../support/fake_clock.ts";

const COALESCE = { debounceMs: 100, minIntervalMs: 1000, maxDelayMs: 2000 };
const RETRY = { initialMs: 1000, maxMs: 30_000, jitter: 0 };

/** A runner whose function records when it ran and answers from `outcomes` (then true). */
function setup(options: Partial<RunnerOptions> = {}, outcomes: boolean[] = []) {
  const clock = new FakeClock();
  const starts: number[] = [];
  const triggers: RunTrigger[] = [];
  const runner = new Runner((trigger) => {
    starts.push(clock.now());
    triggers.push(trigger);
    return Promise.resolve(outcomes.shift() ?? true);
  }, { coalesce: COALESCE, periodMs: 0, retry: RETRY, clock, ...options });
  return { clock, runner, starts, triggers };
}

/** A promise the test resolves. */
function deferred() {
  let resolve!: (ok: boolean) => void;
  const promise = new Promise<boolean>((r) => resolve = r);
  return { promise, resolve };
}

/** A step of a scheduling case: start the runner, request a run, or let time pass (ms). */
type Step = "start" | "run" | number;

/** Requests `every` ms apart for `total` ms, as steps. */
const stream = (every: number, total: number): Step[] =>
  Array.from({ length: total / every }, () => ["run", every] as Step[]).flat();

const SCHEDULING: { name: string; steps: Step[]; starts: number[] }[] = [
  {
    name: "a burst of requests becomes one run after the quiet time",
    steps: ["start", ...stream(10, 40), 5000],
    starts: [130],
  },
  {
    name: "requests made before start wait for it",
    steps: ["run", 5000, "start", 1],
    starts: [5000],
  },
  {
    name: "two starts are at least the minimum interval apart",
    steps: ["start", "run", 200, "run", 5000],
    starts: [100, 1100],
  },
  {
    name: "a steady stream of requests delays a run by at most maxDelay",
    steps: ["start", ...stream(50, 2100)],
    starts: [2000],
  },
];

for (const { name, steps, starts: expected } of SCHEDULING) {
  Deno.test(`runner: ${name}`, async () => {
    const { clock, runner, starts } = setup();
    for (const step of steps) {
      if (step === "start") runner.start();
      else if (step === "run") runner.run();
      else await clock.advance(step);
    }
    assert.deepEqual(starts, expected);
    await runner.stop();
  });
}

Deno.test("runner: a failed run is retried with growing backoff; success resets it", async () => {
  const { clock, runner, starts } = setup(
    { coalesce: { ...COALESCE, minIntervalMs: 0 } },
    [false, false, true, false, true],
  );
  runner.start();
  runner.run();
  await clock.advance(3500);
  // Fails at 100 (retry 1 s later), fails at 1100 (retry 2 s later), succeeds at 3100.
  assert.deepEqual(starts, [100, 1100, 3100]);
  runner.run();
  await clock.advance(5000);
  // After the success the backoff starts over: 1 s, not 4 s.
  assert.deepEqual(starts, [100, 1100, 3100, 3600, 4600]);
  await runner.stop();
});

Deno.test("runner: a function that throws counts as a failure and is retried", async () => {
  const clock = new FakeClock();
  const starts: number[] = [];
  const runner = new Runner(() => {
    starts.push(clock.now());
    return starts.length === 1 ? Promise.reject(new Error("boom")) : Promise.resolve(true);
  }, { coalesce: COALESCE, periodMs: 0, retry: RETRY, clock });
  runner.start();
  runner.run();
  await clock.advance(5000);
  assert.deepEqual(starts, [100, 1100]);
  await runner.stop();
});

Deno.test("runner: the periodic run comes every period and says so", async () => {
  const { clock, runner, starts, triggers } = setup({ periodMs: 10_000 });
  runner.start();
  runner.run();
  await clock.advance(25_000);
  assert.deepEqual(starts, [100, 10_100, 20_200]);
  assert.deepEqual(triggers.map((t) => t.periodic), [false, true, true]);
  await runner.stop();
  assert.equal(clock.pending, 0);
});

Deno.test("runner: a period of 0 never runs on its own", async () => {
  const { clock, runner, starts } = setup({ periodMs: 0 });
  runner.start();
  await clock.advance(1_000_000);
  assert.deepEqual(starts, []);
  await runner.stop();
});

Deno.test("runner: never two runs at once; requests during a run make one run after it", async () => {
  const clock = new FakeClock();
  const pending: ReturnType<typeof deferred>[] = [];
  let active = 0;
  let most = 0;
  const starts: number[] = [];
  const runner = new Runner(async () => {
    starts.push(clock.now());
    most = Math.max(most, ++active);
    const done = deferred();
    pending.push(done);
    const ok = await done.promise;
    active--;
    return ok;
  }, { coalesce: COALESCE, periodMs: 0, retry: RETRY, clock });
  runner.start();
  runner.run();
  await clock.advance(200);
  assert.equal(runner.running, true);
  for (let i = 0; i < 5; i++) {
    runner.run();
    await clock.advance(1000);
  }
  assert.deepEqual(starts, [100]);
  pending[0].resolve(true);
  await clock.advance(5000);
  assert.deepEqual(starts.length, 2);
  assert.ok(starts[1] >= 5200);
  pending[1].resolve(true);
  await clock.advance(5000);
  assert.equal(starts.length, 2);
  assert.equal(most, 1);
  await runner.stop();
});

Deno.test("runner: stop waits for the run in flight, then nothing runs again", async () => {
  const clock = new FakeClock();
  const done = deferred();
  let calls = 0;
  const runner = new Runner(() => {
    calls++;
    return done.promise;
  }, { coalesce: COALESCE, periodMs: 10_000, retry: RETRY, clock });
  runner.start();
  runner.run();
  await clock.advance(200);
  assert.equal(calls, 1);
  let stopped = false;
  const stopping = runner.stop().then(() => stopped = true);
  await clock.advance(100);
  assert.equal(stopped, false);
  done.resolve(false);
  await stopping;
  assert.equal(stopped, true);
  runner.run();
  runner.start();
  await clock.advance(100_000);
  assert.equal(calls, 1);
  assert.equal(clock.pending, 0);
});
