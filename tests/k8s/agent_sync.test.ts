/**
 * The daemon against a real kube-apiserver: every kind of change (pods gaining network-status,
 * pod and namespace label changes, policy add/update/delete, NAD changes, deletions) re-renders
 * exactly the local interfaces it affects, with the right rules, as seen by the sink; objects of
 * other nodes cause no work; bad objects are logged and skipped; a pod whose rules cannot be
 * applied gets a Warning Event; /healthz and /readyz answer on the health listener, /metrics on
 * its own.
 *
 * @module
 */
import assert from "node:assert/strict";
import { startDaemon } from "../../src/agent/daemon.ts";
import type { RulesChange } from "../../src/agent/sink.ts";
import { log } from "../../src/log/klog.ts";
import { startControlPlane } from "./controlplane/controlplane.ts";
import {
  apply,
  installCrds,
  kubectl,
  sleep,
  waitFor,
  warningEvents,
} from "../support/controlplane.ts";
import { apiPod as pod, mnp as policy, nad, ns as namespace } from "../support/manifests.ts";
import {
  agentOptions,
  assertStartedEvent,
  missing,
  RecordingSink,
  requireControlPlane,
  skip,
  webAndDb,
} from "./agent_harness.ts";

if (skip) console.log(`SKIP agent sync tests: ${missing}`);

const NODE = "node-a";
const WEB = "app/web/app/net1/net1";
const DB = "app/db/app/net1/net1";
const NEW = "app/new/app/net1/net1";
/** Long enough for any sync a change could trigger (debounce + min interval + slack). */
const QUIET_MS = 900;

/** app/web-in, reduced to UDP on one port from anywhere. */
function webInOnUdp(port: number) {
  return policy("app", "web-in", "net1", {
    podSelector: { matchLabels: { app: "web" } },
    policyTypes: ["Ingress"],
    ingress: [{ ports: [{ protocol: "UDP", port }] }],
  });
}

Deno.test({
  name: "agent: changes re-render exactly the affected local interfaces (real apiserver)",
  ignore: skip,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    requireControlPlane();
    const cp = await startControlPlane({ http2: false });
    const sink = new RecordingSink();
    let daemon: ReturnType<typeof startDaemon> | null = null;
    const latencies: number[] = [];
    try {
      const kc = cp.adminKubeconfig;
      await installCrds(kc);
      await apply(
        kc,
        namespace("app", { team: "app" }),
        namespace("peers", { team: "peers" }),
        namespace("far"),
        nad("app", "net1", "accelerated-bridge"),
        ...webAndDb(NODE),
        pod("app", "client", "node-b", { app: "client" }, {
          network: "app/net1",
          ip: "10.1.0.20",
          pci: "0000:3b:02.3",
        }),
        pod("peers", "p1", "node-b", { role: "peer" }, {
          network: "app/net1",
          ip: "10.1.0.30",
          pci: "0000:3b:02.4",
        }),
        policy("app", "web-in", "net1", {
          podSelector: { matchLabels: { app: "web" } },
          policyTypes: ["Ingress"],
          ingress: [{
            from: [{ podSelector: { matchLabels: { app: "client" } } }],
            ports: [{ protocol: "TCP", port: 8080, endPort: 8090 }],
          }],
        }),
      );

      const started = performance.now();
      const options = agentOptions(kc, NODE, `-v=${Deno.env.get("MNP_TEST_V") ?? "0"}`);
      log.configure(options.klog);
      daemon = startDaemon(options, sink, {
        coalesce: { debounceMs: 50 },
      });
      const health = `http://${daemon.healthAddress}`;
      assert.equal((await (await fetch(`${health}/healthz`)).text()).trim(), "ok");
      await waitFor("first full sync", () => sink.calls.length > 0);
      const firstSyncMs = sink.calls[0].at - started;
      assert.deepEqual(sink.keysSince(0), [DB, WEB]);
      const web = sink.programmed.get(WEB)!;
      assert.equal(web.ingress.isolated, true);
      assert.deepEqual(web.ingress.allow, [{
        cidrs: ["10.1.0.20/32"],
        protocol: "TCP",
        ports: [{ first: 8080, last: 8090 }],
      }]);
      assert.equal(sink.programmed.get(DB)!.ingress.isolated, false);
      await waitFor("readyz ok", async () => (await fetch(`${health}/readyz`)).status === 200);

      /** Applies a mutation and checks which interfaces the sink got afterwards. */
      const step = async (
        label: string,
        mutate: () => Promise<unknown>,
        expected: string[],
        check: (changes: RulesChange[]) => void = () => {},
        noSync = false,
      ) => {
        const from = sink.calls.length;
        const syncsBefore = daemon!.metrics.syncs.get({ result: "success" });
        await mutate();
        const t0 = performance.now();
        if (expected.length > 0) {
          await waitFor(label, () => expected.every((k) => sink.keysSince(from).includes(k)));
          latencies.push(Math.max(0, sink.calls[from].at - t0));
        }
        await sleep(QUIET_MS);
        assert.deepEqual(sink.keysSince(from), [...expected].sort(), label);
        if (noSync) {
          assert.equal(daemon!.metrics.syncs.get({ result: "success" }), syncsBefore, label);
        }
        check(sink.since(from));
      };
      const last = (changes: RulesChange[], key: string) =>
        changes.filter((c) => c.key === key).at(-1)!;

      await step(
        "peer pod label change",
        () => kubectl(kc, "-n", "app", "label", "pod", "client", "app=other", "--overwrite"),
        [WEB],
        (c) => {
          const rules = last(c, WEB).rules!;
          assert.equal(rules.ingress.isolated, true);
          assert.deepEqual(rules.ingress.allow, []);
        },
      );

      await step(
        "local pod without network-status",
        () => apply(kc, pod("app", "new", NODE, { app: "web" })),
        [],
      );
      await step(
        "local pod gains network-status",
        () =>
          apply(
            kc,
            pod("app", "new", NODE, { app: "web" }, {
              network: "app/net1",
              ip: "10.1.0.12",
              pci: "0000:3b:02.5",
            }),
          ),
        [NEW],
        (c) => {
          const rules = last(c, NEW).rules!;
          assert.equal(rules.pciAddress, "0000:3b:02.5");
          assert.equal(rules.ingress.isolated, true);
        },
      );

      await step(
        "target pod label change",
        () => kubectl(kc, "-n", "app", "label", "pod", "new", "app=worker", "--overwrite"),
        [NEW],
        (c) => {
          assert.equal(last(c, NEW).rules!.ingress.isolated, false);
        },
      );

      await step(
        "policy add (namespaceSelector peer)",
        () =>
          apply(
            kc,
            policy("app", "db-in", "app/net1", {
              podSelector: { matchLabels: { app: "db" } },
              ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: "peers" } } }] }],
            }),
          ),
        [DB],
        (c) => {
          assert.deepEqual(last(c, DB).rules!.ingress.allow, [{
            cidrs: ["10.1.0.30/32"],
            protocol: "any",
            ports: [],
          }]);
        },
      );

      await step(
        "namespace label change",
        () => kubectl(kc, "label", "namespace", "peers", "team=none", "--overwrite"),
        [DB],
        (c) => {
          assert.deepEqual(last(c, DB).rules!.ingress.allow, []);
        },
      );

      await step(
        "policy update",
        () => apply(kc, webInOnUdp(53)),
        [WEB],
        (c) => {
          assert.deepEqual(last(c, WEB).rules!.ingress.allow, [{
            cidrs: ["0.0.0.0/0", "::/0"],
            protocol: "UDP",
            ports: [{ first: 53, last: 53 }],
          }]);
        },
      );

      await step(
        "policy delete",
        () => kubectl(kc, "-n", "app", "delete", "multi-networkpolicy", "db-in"),
        [DB],
        (c) => {
          assert.equal(last(c, DB).rules!.ingress.isolated, false);
        },
      );

      await step(
        "NAD plugin type no longer policed",
        () => apply(kc, nad("app", "net1", "macvlan")),
        [DB, NEW, WEB],
        (c) => {
          for (const key of [DB, NEW, WEB]) assert.equal(last(c, key).rules, null, key);
        },
      );
      assert.equal(sink.programmed.size, 0);
      await step("NAD policed again", () => apply(kc, nad("app", "net1", "accelerated-bridge")), [
        DB,
        NEW,
        WEB,
      ]);

      await step(
        "a policy with a malformed podSelector isolates its namespace and grants nothing",
        () =>
          apply(
            kc,
            policy("app", "broken", "net1", {
              podSelector: { matchExpressions: [{ key: "app", operator: "In" }] },
              policyTypes: ["Ingress"],
              ingress: [{}],
            }),
          ),
        [DB, NEW, WEB],
        (c) => {
          for (const key of [DB, NEW]) {
            assert.deepEqual(last(c, key).rules?.ingress, {
              isolated: true,
              policies: ["app/broken"],
              allow: [],
            }, key);
          }
          assert.deepEqual(last(c, WEB).rules?.ingress.policies, ["app/broken", "app/web-in"]);
        },
      );
      const policyEvents = await waitFor(
        "Warning event on the broken policy",
        () =>
          warningEvents(
            kc,
            "app",
            "involvedObject.kind=MultiNetworkPolicy,involvedObject.name=broken",
          ),
      );
      assert.equal(policyEvents[0].reason, "InvalidPolicy");
      assert.match(
        policyEvents[0].message,
        /spec\.podSelector\.matchExpressions\[0\]\.values: operator In needs at least one value/,
      );
      await step(
        "the malformed policy deleted",
        () => kubectl(kc, "-n", "app", "delete", "multi-networkpolicy", "broken"),
        [DB, NEW, WEB],
      );

      await step(
        "objects of other nodes cause no work",
        async () => {
          await apply(
            kc,
            pod("far", "x", "node-b", { app: "zzz" }, {
              network: "far/other",
              ip: "10.9.0.1",
              pci: "0000:3b:03.1",
            }),
          );
          await kubectl(kc, "-n", "far", "label", "pod", "x", "app=yyy", "--overwrite");
          await kubectl(kc, "-n", "far", "delete", "pod", "x", "--grace-period=0", "--force");
        },
        [],
        () => {},
        true,
      );

      await step("bad objects are logged and skipped", async () => {
        await apply(kc, {
          ...nad("far", "broken", "x"),
          spec: { config: "{not json" },
        });
        await kubectl(
          kc,
          "-n",
          "far",
          "annotate",
          "pod",
          "--all",
          "k8s.v1.cni.cncf.io/network-status=[{",
          "--overwrite",
        ).catch(() => "");
        await apply(kc, {
          ...pod("far", "bad", "node-b", {}),
          metadata: {
            name: "bad",
            namespace: "far",
            annotations: { "k8s.v1.cni.cncf.io/network-status": "[{oops" },
          },
        });
      }, []);
      assert.ok(daemon.metrics.errors.get({ kind: "object" }) >= 2);

      sink.failing.set(WEB, "representor for 0000:3b:02.1 not found");
      await step(
        "a failing interface gets a Warning Event",
        () => apply(kc, webInOnUdp(54)),
        [WEB],
      );
      const events = await waitFor(
        "Warning event on app/web",
        () => warningEvents(kc, "app", "involvedObject.name=web"),
      );
      assert.equal(events[0].reason, "PolicyNotApplied");
      assert.match(events[0].message, /representor for 0000:3b:02.1 not found/);
      await waitFor("readyz reports the failed sync", async () => {
        const res = await fetch(`${health}/readyz`);
        return res.status === 503 && (await res.text()).includes("last sync failed");
      });
      sink.failing.clear();
      await waitFor(
        "retry succeeds",
        () => sink.programmed.get(WEB)?.pod.name === "web" && daemon!.notReady() === null,
      );

      await step(
        "local pod deleted",
        () => kubectl(kc, "-n", "app", "delete", "pod", "new", "--grace-period=0", "--force"),
        [NEW],
        (c) => {
          assert.equal(last(c, NEW).rules, null);
        },
      );

      const metricsUrl = `http://${daemon.metricsAddress}`;
      const metrics = await (await fetch(`${metricsUrl}/metrics`)).text();
      for (const url of [`${health}/metrics`, `${metricsUrl}/healthz`, `${metricsUrl}/readyz`]) {
        const res = await fetch(url);
        await res.body?.cancel();
        assert.equal(res.status, 404, `${url}: each listener serves only its own endpoints`);
      }
      assert.match(metrics, /^mnp_syncs_total\{result="success"\} \d+$/m);
      assert.match(metrics, /^mnp_sync_duration_seconds_count \d+$/m);
      assert.match(metrics, /^mnp_interfaces_programmed 2$/m);
      assert.match(metrics, /^mnp_filters_programmed 6$/m);
      assert.match(metrics, /^mnp_errors_total\{kind="apply"\} \d+$/m);
      await assertStartedEvent(kc, NODE);
      latencies.sort((a, b) => a - b);
      console.log(
        `first full sync ${Math.round(firstSyncMs)} ms after start; change→sink latency ` +
          `median ${Math.round(latencies[latencies.length >> 1])} ms, max ${
            Math.round(latencies.at(-1)!)
          } ms over ${latencies.length} changes; RSS ${
            Math.round(Deno.memoryUsage().rss / 2 ** 20)
          } MiB`,
      );
    } finally {
      await daemon?.stop();
      await cp.stop();
    }
  },
});
