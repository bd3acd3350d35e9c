/**
 * `--pod-rules-path` keeps the original Go agent's layout
 * (`<pod uid>/<namespace>-<network>-<representor>.rules`, plus `uplinks/`),
 * and after the first full sync nothing is left of pods without rules now,
 * including those gone while the agent was down; nothing outside the root is
 * ever touched.
 */
import assert from "node:assert/strict";
import { TcSink } from "../../src/agent/tc_sink.ts";
import { interfaceKey, type InterfaceRules } from "../../src/policy/model.ts";
import { Actuator, interfaceRulesFile } from "../../src/tc/actuator.ts";
import { podRulesDir, sweepRulesDir } from "../../src/tc/rules_dir.ts";
import { iface, render } from "../support/cluster.ts";
import { RecordingDriver } from "../support/fake_driver.ts";
import { mnp, nad, ns, pod } from "../support/manifests.ts";

/** The policed interface of `app/<name>` on network `app/data`. */
function rulesOf(name: string): InterfaceRules {
  return iface(
    render([
      ns("app"),
      nad("app", "data"),
      pod("app", name, { nets: { "app/data": "10.0.0.1" } }),
      mnp("app", "deny", "data", { policyTypes: ["Ingress"] }),
    ]),
    `app/${name}`,
    "app/data",
  );
}

/** Every path under `dir` (relative, sorted), links shown as `path -> target`. */
async function tree(dir: string, prefix = ""): Promise<string[]> {
  const out: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    const path = `${prefix}${entry.name}`;
    if (entry.isSymlink) out.push(`${path} -> ${await Deno.readLink(`${dir}/${entry.name}`)}`);
    else if (entry.isDirectory) {
      out.push(`${path}/`, ...await tree(`${dir}/${entry.name}`, `${path}/`));
    } else out.push(path);
  }
  return out.sort();
}

/** A sink over a fake kernel with representors `rep1`/`rep2` and uplink `p0`. */
function sinkFor(root: string, devices: Record<string, string>) {
  const kernel = new RecordingDriver(["p0", "rep1", "rep2", "rep9"]);
  const actuator = new Actuator(kernel, { podRulesPath: root });
  const lookup = {
    lookup: (pci: string) =>
      Promise.resolve({ representor: devices[pci], uplink: "p0", switchId: "sw0" }),
  };
  const sink = new TcSink(actuator, lookup, () => Promise.resolve(["p0", "rep1", "rep2", "rep9"]));
  return { kernel, actuator, sink };
}

async function withTempDir(run: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "rules-dir-test-" });
  try {
    await run(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("rules files: the Go agent's layout, <uid>/<namespace>-<network>-<representor>.rules", () => {
  const rules = rulesOf("web");
  const file = interfaceRulesFile(rules, "rep1");
  assert.equal(file.dir, "uid-app-web");
  assert.equal(file.name, "app-data-rep1.rules");
  assert.match(file.header[0], /^app\/web net1 network app\/data PCI \S+ representor rep1$/);
});

Deno.test("rules files: a UID unsafe as a directory name gets no file", () => {
  for (const uid of ["", "..", "../etc", "a/b", "uplinks", ".hidden", "a\nb", "x".repeat(200)]) {
    assert.equal(podRulesDir(uid), "", JSON.stringify(uid));
    const rules = rulesOf("web");
    assert.equal(interfaceRulesFile({ ...rules, pod: { ...rules.pod, uid } }, "rep1").dir, "");
  }
  assert.equal(
    podRulesDir("0b5f5c7e-6d3e-4a53-9d43-1f0c8e1f9a10"),
    "0b5f5c7e-6d3e-4a53-9d43-1f0c8e1f9a10",
  );
});

Deno.test("rules files: written in the layout, removed with their pod's directory", async () => {
  await withTempDir(async (root) => {
    const web = rulesOf("web");
    const { sink } = sinkFor(root, { [web.pciAddress]: "rep1" });
    const key = interfaceKey(web);
    const [result] = await sink.apply([{ key, rules: web }]);
    assert.equal(result.error, undefined);
    assert.deepEqual(await tree(root), [
      "uid-app-web/",
      "uid-app-web/app-data-rep1.rules",
      "uplinks/",
      "uplinks/p0.rules",
    ]);
    const text = await Deno.readTextFile(`${root}/uid-app-web/app-data-rep1.rules`);
    assert.match(text, /^# app\/web net1 network app\/data PCI /);
    await sink.apply([{ key, rules: null, previous: web }]);
    assert.deepEqual(await tree(root), ["uplinks/"]);
  });
});

Deno.test("rules files: after a restart, the first full sync removes what pods gone left", async () => {
  await withTempDir(async (base) => {
    const root = `${base}/rules`;
    const outside = `${base}/outside`;
    await Deno.mkdir(`${outside}/dir`, { recursive: true });
    await Deno.writeTextFile(`${outside}/keep.rules`, "not ours\n");
    await Deno.writeTextFile(`${outside}/dir/keep.rules`, "not ours\n");
    const write = async (path: string) => {
      await Deno.mkdir(`${root}/${path.split("/").slice(0, -1).join("/")}`, { recursive: true });
      await Deno.writeTextFile(`${root}/${path}`, "# stale\n");
    };
    // Left by the previous run: a pod deleted while the agent was down, the old
    // layout of a pod that still has rules, an uplink no longer used, a write cut short.
    await write("uid-app-gone/app-data-rep9.rules");
    await write("uid-app-web/app_data-rep1.rules");
    await write("uid-app-web/notes.txt");
    await write("uplinks/p9.rules");
    await write("uid-app-late/app-data-rep2.rules.tmp");
    // Anything else under the root: a directory with links to files outside it.
    await Deno.mkdir(`${root}/not-a-uid..`, { recursive: true });
    await Deno.symlink(`${outside}/keep.rules`, `${root}/not-a-uid../link.rules`);
    await Deno.symlink(`${outside}/dir`, `${root}/not-a-uid../dirlink`);
    await Deno.mkdir(`${root}/nested/deeper`, { recursive: true });
    await Deno.symlink(outside, `${root}/nested/deeper/up`);
    // Top-level links and files are not directories of ours: left, never followed.
    await Deno.symlink(`${outside}/dir`, `${root}/uid-app-link`);
    await Deno.writeTextFile(`${root}/README`, "kept\n");
    await Deno.symlink(`${outside}/keep.rules`, `${root}/uid-app-web/linked.rules`);

    const web = rulesOf("web");
    const { sink } = sinkFor(root, { [web.pciAddress]: "rep1" });
    const [result] = await sink.apply([{ key: interfaceKey(web), rules: web }]);
    assert.equal(result.error, undefined);
    assert.deepEqual(await tree(root), [
      "README",
      `uid-app-link -> ${outside}/dir`,
      "uid-app-web/",
      "uid-app-web/app-data-rep1.rules",
      `uid-app-web/linked.rules -> ${outside}/keep.rules`,
      "uid-app-web/notes.txt",
      "uplinks/",
      "uplinks/p0.rules",
    ]);
    assert.deepEqual(await tree(outside), ["dir/", "dir/keep.rules", "keep.rules"]);

    // Only after the first full sync: a directory appearing later is not swept again.
    await write("uid-app-other/app-data-rep2.rules");
    await sink.apply([{ key: interfaceKey(web), rules: web }]);
    assert.ok((await tree(root)).includes("uid-app-other/app-data-rep2.rules"));
  });
});

Deno.test("rules files: no sweep before every interface is in place", async () => {
  await withTempDir(async (root) => {
    await Deno.mkdir(`${root}/uid-app-gone`);
    const web = rulesOf("web");
    const kernel = new RecordingDriver(["p0"]);
    const lookup = { lookup: () => Promise.reject(new Error("no representor yet")) };
    const sink = new TcSink(
      new Actuator(kernel, { podRulesPath: root }),
      lookup,
      () => Promise.resolve(["p0"]),
    );
    const [result] = await sink.apply([{ key: interfaceKey(web), rules: web }]);
    assert.ok(result.error);
    assert.deepEqual(await tree(root), ["uid-app-gone/"]);
  });
});

Deno.test("rules files: the sweep stays under the root, and a missing root is nothing to do", async () => {
  await withTempDir(async (base) => {
    await Deno.mkdir(`${base}/root/uid-a`, { recursive: true });
    await Deno.writeTextFile(`${base}/root/uid-a/x-y-rep1.rules`, "");
    await Deno.writeTextFile(`${base}/root/uid-a/x-y-rep2.rules`, "");
    await Deno.mkdir(`${base}/sibling`);
    const removed = await sweepRulesDir(
      `${base}/root`,
      new Map([["uid-a", new Set(["x-y-rep1.rules"])]]),
    );
    assert.deepEqual(removed, ["uid-a/x-y-rep2.rules"]);
    assert.deepEqual(await tree(base), [
      "root/",
      "root/uid-a/",
      "root/uid-a/x-y-rep1.rules",
      "sibling/",
    ]);
    assert.deepEqual(await sweepRulesDir(`${base}/absent`, new Map()), []);
  });
});

Deno.test("rules files: removing a pod's files never leaves the root for a hostile UID", async () => {
  await withTempDir(async (base) => {
    const root = `${base}/root`;
    await Deno.mkdir(root);
    await Deno.mkdir(`${base}/victim`);
    await Deno.writeTextFile(`${base}/victim/app-data-rep1.rules`, "not ours\n");
    const actuator = new Actuator(new RecordingDriver(["rep1"]), { podRulesPath: root });
    await actuator.removeRulesFiles("rep1", "../victim");
    await actuator.removeRulesFiles("rep1", "..");
    assert.deepEqual(await tree(base), ["root/", "victim/", "victim/app-data-rep1.rules"]);
  });
});
