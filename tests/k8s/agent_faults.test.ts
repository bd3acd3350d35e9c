/**
 * The daemon under API server faults, against a real kube-apiserver: the client speaks only
 * HTTP/1.1 (Deno 2.9 can crash on an HTTP/2 GOAWAY), graceful and abrupt apiserver restarts on a
 * server that serves HTTP/2 with --goaway-chance are noticed (probe), keep the last rules (no sink
 * call while the server is away, never a removal) and converge to changes made while the agent was
 * away; a quiet watch survives its inactivity timeout; a watch resumed from a compacted position
 * gets 410 Gone and relists.
 *
 * @module
 */
import assert from "node:assert/strict";
import * as k8s from "@kubernetes/client-node";
import { startDaemon } from "../../src/agent/daemon.ts";
import { log } from "../../src/log/klog.ts";
import { Http1KubeConfig } from "../../src/watching/kubeconfig.ts";
import type { LivenessPolicy } from "../../src/watching/liveness.ts";
import { type ControlPlane, startControlPlane } from "./controlplane/controlplane.ts";
import { apply, installCrds, kubectl, sleep, waitFor } from "../support/controlplane.ts";
import { mnp, nad, ns } from "../support/manifests.ts";
import {
  agentOptions,
  missing,
  RecordingSink,
  requireControlPlane,
  skip,
  webAndDb,
} from "./agent_harness.ts";

if (skip) console.log(`SKIP agent fault tests: ${missing}`);
log.configure(agentOptions("", "node-a", `-v=${Deno.env.get("MNP_TEST_V") ?? "0"}`).klog);

const NODE = "node-a";
const WEB = "app/web/app/net1/net1";
const DB = "app/db/app/net1/net1";
/** A fast probe so that a stopped apiserver is noticed quickly; the default inactivity timeout. */
const LIVENESS: LivenessPolicy = { idleMs: 30_000, probeIntervalMs: 1_000, probeTimeoutMs: 2_000 };

async function seed(cp: ControlPlane): Promise<void> {
  const kc = cp.adminKubeconfig;
  await installCrds(kc);
  await apply(
    kc,
    ns("app"),
    nad("app", "net1", "accelerated-bridge"),
    ...webAndDb(NODE),
    mnp("app", "web-in", "net1", {
      podSelector: { matchLabels: { app: "web" } },
      ingress: [{ ports: [{ protocol: "TCP", port: 80 }] }],
    }),
  );
}

/** The ALPN protocol a client's TLS handshake ends up with against a server offering h2. */
async function negotiated(cp: ControlPlane, kc: k8s.KubeConfig): Promise<string | null> {
  const listener = Deno.listenTls({
    hostname: "127.0.0.1",
    port: 0,
    cert: await Deno.readTextFile(`${cp.dir}/serving.crt`),
    key: await Deno.readTextFile(`${cp.dir}/serving.key`),
    alpnProtocols: ["h2", "http/1.1"],
  });
  const port = (listener.addr as Deno.NetAddr).port;
  const server = kc.getCurrentCluster()!;
  kc.loadFromOptions({
    clusters: [{ ...server, server: `https://127.0.0.1:${port}` }],
    contexts: kc.contexts,
    users: kc.users,
    currentContext: kc.getCurrentContext(),
  });
  const request = kc.makeApiClient(k8s.CoreV1Api).listNamespace().catch(() => null);
  const conn = await listener.accept();
  const { alpnProtocol } = await conn.handshake();
  conn.close();
  listener.close();
  await request;
  return alpnProtocol;
}

Deno.test({
  name: "agent faults: HTTP/1.1 only; apiserver (HTTP/2, GOAWAY) restarts keep rules and converge",
  ignore: skip,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    requireControlPlane();
    // HTTP/2 served, as in a real cluster, and GOAWAY on 2% of requests besides graceful stops.
    const cp = await startControlPlane({ apiServerArgs: ["--goaway-chance=0.02"] });
    const sink = new RecordingSink();
    let daemon: ReturnType<typeof startDaemon> | null = null;
    try {
      const stock = new k8s.KubeConfig();
      stock.loadFromFile(cp.adminKubeconfig);
      assert.equal(await negotiated(cp, stock), "h2", "control: stock client-node offers h2");
      const ours = new Http1KubeConfig();
      ours.loadFromFile(cp.adminKubeconfig);
      assert.equal(
        await negotiated(cp, ours),
        "http/1.1",
        "the agent's client offers only http/1.1",
      );

      await seed(cp);
      const kc = cp.adminKubeconfig;
      daemon = startDaemon(agentOptions(kc, NODE), sink, {
        coalesce: { debounceMs: 50 },
        backoff: { initialMs: 1000, maxMs: 3000, jitter: 0 },
        liveness: LIVENESS,
      });
      await waitFor("first sync", () => sink.programmed.size === 2);
      assert.equal(sink.programmed.get(WEB)!.ingress.isolated, true);
      await waitFor("watches connected", () => daemon!.metrics.apiServerUp.get() === 1);

      for (const signal of ["SIGTERM", "SIGKILL", "SIGTERM"] as const) {
        const from = sink.calls.length;
        const stopAt = performance.now();
        await cp.stopApiServer({ signal });
        const stoppedAt = performance.now();
        await waitFor("disconnect noticed", () => daemon!.metrics.apiServerUp.get() === 0, 20_000);
        const noticedAt = performance.now();
        await sleep(1_500); // some retries against the stopped server
        assert.equal(
          sink.calls.length,
          from,
          `no sink work while the apiserver is down (${signal})`,
        );
        await cp.startApiServer();
        const upAt = performance.now();
        // Changed while the agent is away (its watches are still backing off).
        const isolateDb = signal === "SIGKILL";
        await apply(
          kc,
          mnp("app", "db-in", "net1", {
            podSelector: { matchLabels: { app: "db" } },
            ingress: isolateDb ? [] : [{}],
          }),
        );
        await waitFor(`converged after ${signal}`, () => {
          const db = sink.programmed.get(DB);
          return db?.ingress.isolated === true &&
            db.ingress.allow.length === (isolateDb ? 0 : 1);
        }, 30_000);
        const convergedAt = performance.now();
        await waitFor("watches reconnected", () => daemon!.metrics.apiServerUp.get() === 1);
        console.log(
          `${signal}: apiserver stop took ${Math.round(stoppedAt - stopAt)} ms; loss noticed ` +
            `${Math.round(noticedAt - stopAt)} ms after the stop began; converged ` +
            `${Math.round(convergedAt - upAt)} ms and all watches reconnected ` +
            `${Math.round(performance.now() - upAt)} ms after the restarted apiserver was ready`,
        );
        assert.ok(
          sink.since(from).every((c) => c.key === DB),
          `only db re-rendered: ${sink.keysSince(from)}`,
        );
      }
      assert.equal(sink.programmed.size, 2, "nothing was flushed");
      assert.ok(
        sink.since(0).every((c) => c.rules !== null),
        "no removal was ever handed to the sink",
      );
      assert.ok(daemon.metrics.watchRestarts.get({ resource: "pods" }) > 0);
      // Lots of requests to the HTTP/2-serving apiserver, with GOAWAY chance, while the agent runs.
      for (let i = 0; i < 20; i++) {
        await kubectl(kc, "-n", "app", "label", "pod", "db", `n=${i}`, "--overwrite");
      }
      await sleep(500);
      assert.equal(daemon.notReady(), null);
    } finally {
      await daemon?.stop();
      await cp.stop();
    }
  },
});

async function etcd(port: number, path: string, body: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, {
    method: "POST",
    body: JSON.stringify(body),
  });
  const json = await res.json();
  assert.ok(res.ok, `etcd ${path}: ${JSON.stringify(json)}`);
  return json;
}

Deno.test({
  name: "agent faults: a watch resumed from a compacted position gets 410 Gone and relists",
  ignore: skip,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    requireControlPlane();
    // Without the watch cache, a watch from an old resourceVersion is served by etcd, which
    // answers 410 Gone once that revision is compacted.
    const cp = await startControlPlane({ http2: false, apiServerArgs: ["--watch-cache=false"] });
    const etcdPort = cp.etcdClientPort;
    const sink = new RecordingSink();
    let daemon: ReturnType<typeof startDaemon> | null = null;
    try {
      await seed(cp);
      const kc = cp.adminKubeconfig;
      daemon = startDaemon(agentOptions(kc, NODE), sink, {
        coalesce: { debounceMs: 50 },
        backoff: { initialMs: 7000, maxMs: 7000, jitter: 0 },
        liveness: { ...LIVENESS, idleMs: 2_000 },
      });
      await waitFor("first sync", () => sink.programmed.size === 2);
      // Quiet watches outlive their inactivity timeout (client-node's own one kills them silently
      // on Deno): resumed from their resourceVersion, they still deliver the next change.
      await sleep(3_000);
      assert.ok(daemon.metrics.watchRestarts.get({ resource: "namespaces" }) > 0);
      assert.equal(daemon.metrics.relists.get({ resource: "namespaces" }), 0);
      const quiet = sink.calls.length;
      await kubectl(kc, "-n", "app", "label", "pod", "web", "app=web2", "--overwrite");
      await waitFor("change after a quiet period", () => sink.since(quiet).length > 0);
      assert.equal(sink.programmed.get(WEB)!.ingress.isolated, false);

      await cp.stopApiServer({ signal: "SIGKILL" });
      await waitFor("disconnect noticed", () => daemon!.metrics.apiServerUp.get() === 0, 20_000);
      await cp.startApiServer();
      // While the agent waits to reconnect: a new policy, a deleted pod, then compaction.
      await apply(
        kc,
        mnp("app", "db-in", "net1", { podSelector: { matchLabels: { app: "db" } } }),
      );
      await kubectl(kc, "-n", "app", "delete", "pod", "web", "--grace-period=0", "--force");
      const range = await etcd(etcdPort, "/v3/kv/range", { key: btoa("/") });
      const revision = (range.header as { revision: string }).revision;
      await etcd(etcdPort, "/v3/kv/compaction", { revision, physical: true });
      await waitFor("relisted and converged", () => {
        const db = sink.programmed.get(DB);
        return !sink.programmed.has(WEB) && db?.ingress.isolated === true;
      }, 60_000);
      const relists = ["pods", "multi-networkpolicies", "namespaces"]
        .map((resource) => daemon!.metrics.relists.get({ resource }));
      console.log(`relists after compaction (pods, policies, namespaces): ${relists.join(", ")}`);
      assert.ok(relists[0] > 0 && relists[1] > 0, "pods and policies relisted");
      assert.equal(daemon.notReady(), null);
    } finally {
      await daemon?.stop();
      await cp.stop();
    }
  },
});
