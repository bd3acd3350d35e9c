/**
 * A reduced run of the scale harness (`deno task bench:scale`, bench/scale/):
 * 1,000 pods, 15 s of churn, against the real kube-apiserver. It proves the
 * harness still works end to end (loading, the agent in its own process, the
 * churn recognised at the sink, memory read, the heap breakdown), not how fast
 * anything is: no figure is asserted, only that each was measured.
 *
 * Skips (with a one-line reason) when the apiserver is not built and CI is unset; fails when CI
 * is set.
 *
 * @module
 */

import assert from "node:assert/strict";
import { denoRunArgs } from "../../bench/scale/deno_run.ts";
import type { ScaleReport } from "../../bench/scale/report.ts";
import { controlPlanePrerequisites } from "./controlplane/controlplane.ts";

const missing = await controlPlanePrerequisites();
const inCI = (Deno.env.get("CI") ?? "") !== "";
if (missing && !inCI) console.log(`SKIP scale harness smoke test: ${missing}`);

Deno.test({
  name: "scale harness: 1,000 pods, 15 s of churn, every change seen at the sink",
  ignore: missing !== null && !inCI,
  async fn() {
    if (missing) assert.fail(`control plane prerequisites missing (CI is set): ${missing}`);
    const logDir = await Deno.makeTempDir({ prefix: "mnp-scale-smoke-" });
    const run = await new Deno.Command(Deno.execPath(), {
      args: denoRunArgs(
        new URL("../../bench/scale/main.ts", import.meta.url),
        ["--pods", "1000", "--minutes", "0.25", "--json", "--log-dir", logDir],
        ["--expose-gc"],
      ),
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(run.stderr);
    assert.equal(run.code, 0, `harness failed:\n${stderr}`);
    const report = JSON.parse(new TextDecoder().decode(run.stdout)) as ScaleReport;

    // The cluster and the agent as configured; the agent measured as it ships.
    assert.equal(report.config.pods, 1000);
    assert.ok(report.config.vfPods > 0);
    assert.equal(report.startup.interfaces, report.config.vfPods);
    const shipped = JSON.parse(await Deno.readTextFile(new URL("../../deno.json", import.meta.url)))
      .tasks.compile as string;
    assert.deepEqual(
      report.config.v8Flags,
      /--v8-flags=(\S+)/.exec(shipped)?.[1].split(",") ?? [],
    );

    // Every write reached the sink with the expected effect, and nothing else was handed over.
    assert.equal(report.churn.all.writes, 150);
    assert.equal(report.churn.all.failed, 0);
    assert.equal(report.churn.all.unmatched, 0);
    assert.equal(report.churn.syncs.unexpected, 0);
    assert.equal(report.churn.syncs.missing, 0);

    // Memory and CPU are the agent process's (more than its modules alone), and the breakdown ran.
    assert.ok(report.memory.settledAfterSync > 0);
    assert.ok(report.memory.afterSync.heapUsed > report.memory.baseline.heapUsed);
    assert.ok(report.churn.cpuS > 0);
    const podsLine = Object.keys(report.breakdown ?? {}).find((key) => key.includes("pods ("));
    assert.ok(podsLine, `breakdown: ${JSON.stringify(report.breakdown)}`);
    console.log(
      `scale smoke: ${report.churn.all.writes} writes, change → sink p99 ${
        Math.round(report.churn.all.latency.p99)
      } ms, agent RSS ${(report.memory.settledAfterSync / 1048576).toFixed(1)} MiB`,
    );
    await Deno.remove(logDir, { recursive: true });
  },
});
