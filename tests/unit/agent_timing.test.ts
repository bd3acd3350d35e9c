import assert from "node:assert/strict";
import { type CoalescePolicy, nextSyncAt } from "../../src/agent/timing.ts";
import { backoffDelay } from "../../src/watching/backoff.ts";

const policy: CoalescePolicy = { debounceMs: 100, minIntervalMs: 1000, maxDelayMs: 2000 };

Deno.test("coalesce: nothing pending, no sync", () => {
  assert.equal(
    nextSyncAt({ firstChangeAt: null, lastChangeAt: null, lastSyncStartAt: 0 }, policy),
    null,
  );
});

Deno.test("coalesce: a burst waits for quiet time after its last event", () => {
  assert.equal(
    nextSyncAt({ firstChangeAt: 5000, lastChangeAt: 5050, lastSyncStartAt: null }, policy),
    5150,
  );
});

Deno.test("coalesce: a steady stream cannot delay a sync beyond maxDelay", () => {
  assert.equal(
    nextSyncAt({ firstChangeAt: 5000, lastChangeAt: 9000, lastSyncStartAt: null }, policy),
    7000,
  );
});

Deno.test("coalesce: minimum interval between sync starts", () => {
  assert.equal(
    nextSyncAt({ firstChangeAt: 5000, lastChangeAt: 5000, lastSyncStartAt: 4800 }, policy),
    5800,
  );
});

Deno.test("coalesce: a retry waits for its backoff", () => {
  assert.equal(
    nextSyncAt({
      firstChangeAt: 5000,
      lastChangeAt: 5000,
      lastSyncStartAt: 1000,
      notBefore: 8000,
    }, policy),
    8000,
  );
});

Deno.test("backoff: doubles from the initial delay and is capped", () => {
  const p = { initialMs: 500, maxMs: 30_000, jitter: 0 };
  assert.deepEqual(
    [1, 2, 3, 4, 7, 8, 50].map((n) => backoffDelay(n, p)),
    [500, 1000, 2000, 4000, 30_000, 30_000, 30_000],
  );
});

Deno.test("backoff: jitter adds at most its share and never exceeds the cap", () => {
  const p = { initialMs: 1000, maxMs: 5000, jitter: 0.2 };
  assert.equal(backoffDelay(1, p, 0.5), 1100);
  assert.equal(backoffDelay(3, p, 0.5), 4400);
  assert.equal(backoffDelay(4, p, 0.999), 5000);
});
